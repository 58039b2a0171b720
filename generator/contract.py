"""The data contract's value rules (docs/data-contract.md), as the generator predicts them.

Pure functions over the raw text of one record. The generator runs them on every record it
writes by hand (injected defects and valid variants); clean rows are valid by construction.
Rules that depend on other rows (duplicate_key, email_conflict, unknown_*) are applied by
`generator.model`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

RULES = (
    "missing_required",
    "invalid_integer",
    "invalid_email",
    "email_conflict",
    "invalid_date",
    "invalid_timestamp",
    "out_of_range",
    "invalid_amount",
    "invalid_payment_method",
    "invalid_status",
    "invalid_quantity",
    "invalid_discount",
    "unknown_customer",
    "unknown_product",
    "unknown_transaction",
    "duplicate_key",
    "malformed_row",
)
RULE_BIT = {rule: 1 << i for i, rule in enumerate(RULES)}

PAYMENT_METHODS = (
    "credit_card",
    "debit_card",
    "paypal",
    "bank_transfer",
    "cash_on_delivery",
    "gift_card",
)
STATUSES = ("completed", "pending", "cancelled", "refunded")

KEY_MAX = 9_223_372_036_854_775_807
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_QUANTITY = 1000

_WHITESPACE = " \t\r\n"
_DIGITS = re.compile(r"[0-9]+")
_MONEY = re.compile(r"-?[0-9]{1,10}(\.[0-9]{1,2})?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,6}))?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_SEPARATOR_RUN = re.compile(r"[ _-]+")


@dataclass(frozen=True)
class FileSpec:
    """One of the four files: its columns, which are required, its key and references."""

    name: str
    entity: str
    columns: tuple[str, ...]
    key: str
    optional: frozenset[str] = frozenset()
    references: tuple[tuple[str, str], ...] = ()  # (column, referenced entity)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.optional)


CUSTOMERS = FileSpec(
    name="customers.csv",
    entity="customers",
    columns=(
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "city",
        "state",
        "country",
        "signup_date",
        "updated_at",
    ),
    key="customer_id",
    optional=frozenset({"phone", "city", "state", "updated_at"}),
)
PRODUCTS = FileSpec(
    name="products.csv",
    entity="products",
    columns=("product_id", "product_name", "category", "brand", "unit_price", "cost", "updated_at"),
    key="product_id",
    optional=frozenset({"brand", "updated_at"}),
)
TRANSACTIONS = FileSpec(
    name="transactions.csv",
    entity="transactions",
    columns=("transaction_id", "customer_id", "transaction_ts", "payment_method", "status"),
    key="transaction_id",
    references=(("customer_id", "customers"),),
)
ITEMS = FileSpec(
    name="transaction_items.csv",
    entity="items",
    columns=("item_id", "transaction_id", "product_id", "quantity", "unit_price", "discount"),
    key="item_id",
    optional=frozenset({"discount"}),
    references=(("transaction_id", "transactions"), ("product_id", "products")),
)
FILES = (CUSTOMERS, PRODUCTS, TRANSACTIONS, ITEMS)
UNKNOWN_RULE = {
    "customers": "unknown_customer",
    "products": "unknown_product",
    "transactions": "unknown_transaction",
}


@dataclass(frozen=True)
class Header:
    """A file's header as written: the text of each name and the column it means.

    `columns` holds the contract's column name for each position, or the extra column's own
    name; a contract column absent from the header is empty in every row.
    """

    names: tuple[str, ...]
    columns: tuple[str, ...]

    @classmethod
    def canonical(cls, spec: FileSpec) -> Header:
        return cls(names=spec.columns, columns=spec.columns)

    def position(self, column: str) -> int | None:
        return self.columns.index(column) if column in self.columns else None


@dataclass
class RowCheck:
    """What the contract says about one record on its own."""

    rules: set[str] = field(default_factory=set)
    key: int | None = None
    key_text: str | None = None
    refs: dict[str, int | None] = field(default_factory=dict)
    email: str | None = None  # lower-cased, when present and well-formed


def trim(value: str) -> str:
    """Strip surrounding ASCII white space (space, tab, CR, LF), as the contract does."""
    return value.strip(_WHITESPACE)


def parse_key(raw: str) -> tuple[int | None, str | None]:
    """A key's integer, or the rule it breaks."""
    value = trim(raw)
    if not value:
        return None, "missing_required"
    if not _DIGITS.fullmatch(value):
        return None, "invalid_integer"
    number = int(value)
    if number == 0 or number > KEY_MAX:
        return None, "invalid_integer"
    return number, None


def parse_money(value: str) -> int | None:
    """Cents of a trimmed money value, or None when it does not match the pattern."""
    if not _MONEY.fullmatch(value):
        return None
    negative = value.startswith("-")
    whole, _, fraction = value.lstrip("-").partition(".")
    cents = int(whole) * 100 + int(fraction.ljust(2, "0") or "0")
    return -cents if negative else cents


def parse_date(value: str) -> date | None:
    """The calendar day of `YYYY-MM-DD`, or None."""
    match = _DATE.fullmatch(value)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse_timestamp(value: str) -> datetime | None:
    """The UTC instant of a contract timestamp, or None when it is not one."""
    match = _TIMESTAMP.fullmatch(value)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    if hour > 23 or minute > 59 or second > 59:
        return None
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    micro = match[7]
    if micro:
        moment += timedelta(microseconds=int(micro.ljust(6, "0")))
    offset = match[8]
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        off_hours, off_minutes = int(digits[:2]), int(digits[2:])
        if off_hours > 14 or off_minutes > 59:
            return None
        sign = 1 if offset[0] == "+" else -1
        moment -= sign * timedelta(hours=off_hours, minutes=off_minutes)
    return moment


def normalise_code(value: str) -> str:
    """payment_method / status normalisation: trim, lower-case, separator runs to `_`."""
    return _SEPARATOR_RUN.sub("_", trim(value).lower())


def check_record(
    spec: FileSpec, header: Header, cells: list[str], not_after: datetime
) -> RowCheck:
    """Every rule one record breaks on its own; `not_after` is the latest valid instant."""
    if len(cells) != len(header.columns):
        return RowCheck(rules={"malformed_row"})
    values = {column: "" for column in spec.columns}
    values.update(zip(header.columns, cells, strict=True))
    check = RowCheck(key_text=values[spec.key])
    check.key, problem = parse_key(values[spec.key])
    _add(check.rules, problem)
    for column, _entity in spec.references:
        check.refs[column], problem = parse_key(values[column])
        _add(check.rules, problem)
    if spec is CUSTOMERS:
        _check_customer(values, not_after, check)
    elif spec is PRODUCTS:
        _check_product(values, not_after, check.rules)
    elif spec is TRANSACTIONS:
        _check_transaction(values, not_after, check.rules)
    else:
        _check_item(values, check.rules)
    return check


def _add(rules: set[str], rule: str | None) -> None:
    if rule:
        rules.add(rule)


def _required_text(values: dict[str, str], columns: tuple[str, ...], rules: set[str]) -> None:
    if any(not trim(values[column]) for column in columns):
        rules.add("missing_required")


def _date_rule(raw: str, not_after: datetime) -> str | None:
    value = trim(raw)
    if not value:
        return "missing_required"
    day = parse_date(value)
    if day is None:
        return "invalid_date"
    if day < EARLIEST_INSTANT.date() or day > not_after.date():
        return "out_of_range"
    return None


def _timestamp_rule(raw: str, not_after: datetime, required: bool) -> str | None:
    value = trim(raw)
    if not value:
        return "missing_required" if required else None
    moment = parse_timestamp(value)
    if moment is None:
        return "invalid_timestamp"
    if moment < EARLIEST_INSTANT or moment > not_after:
        return "out_of_range"
    return None


def _money_rule(raw: str, minimum_cents: int) -> tuple[int | None, str | None]:
    """Cents and the rule broken; minimum_cents is 0 for `>= 0` and 1 for `> 0`."""
    value = trim(raw)
    if not value:
        return None, "missing_required"
    cents = parse_money(value)
    if cents is None or cents < minimum_cents:
        return None, "invalid_amount"
    return cents, None


def _check_customer(values: dict[str, str], not_after: datetime, check: RowCheck) -> None:
    _required_text(values, ("first_name", "last_name", "country"), check.rules)
    email = trim(values["email"])
    if not email:
        check.rules.add("missing_required")
    elif not _EMAIL.fullmatch(email):
        check.rules.add("invalid_email")
    else:
        check.email = email.lower()
    _add(check.rules, _date_rule(values["signup_date"], not_after))
    _add(check.rules, _timestamp_rule(values["updated_at"], not_after, required=False))


def _check_product(values: dict[str, str], not_after: datetime, rules: set[str]) -> None:
    _required_text(values, ("product_name", "category"), rules)
    _add(rules, _money_rule(values["unit_price"], minimum_cents=1)[1])
    _add(rules, _money_rule(values["cost"], minimum_cents=0)[1])
    _add(rules, _timestamp_rule(values["updated_at"], not_after, required=False))


def _check_transaction(values: dict[str, str], not_after: datetime, rules: set[str]) -> None:
    _add(rules, _timestamp_rule(values["transaction_ts"], not_after, required=True))
    for column, allowed, rule in (
        ("payment_method", PAYMENT_METHODS, "invalid_payment_method"),
        ("status", STATUSES, "invalid_status"),
    ):
        if not trim(values[column]):
            rules.add("missing_required")
        elif normalise_code(values[column]) not in allowed:
            rules.add(rule)


def _check_item(values: dict[str, str], rules: set[str]) -> None:
    quantity_text = trim(values["quantity"])
    quantity = None
    if not quantity_text:
        rules.add("missing_required")
    elif not _DIGITS.fullmatch(quantity_text) or not 1 <= int(quantity_text) <= MAX_QUANTITY:
        rules.add("invalid_quantity")
    else:
        quantity = int(quantity_text)
    price, problem = _money_rule(values["unit_price"], minimum_cents=0)
    _add(rules, problem)
    discount_text = trim(values["discount"])
    if discount_text:
        discount = parse_money(discount_text)
        if discount is None or discount < 0:
            rules.add("invalid_discount")
        elif quantity is not None and price is not None and discount > quantity * price:
            rules.add("invalid_discount")
