"""Defects and valid variants, written by hand into a few rows of each chunk.

Each rule of the contract has an action that breaks it (and only it, on its own) in a row;
each valid variant (spellings, padding, other timestamp forms, quoted commas and line ends)
has an action that changes the text and not the meaning. `plan_edits` picks distinct rows
for the actions at about `rate` each. What a record really breaks is decided afterwards by
`generator.contract` and `generator.model`, never assumed from the action.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import numpy as np

from generator.contract import (
    CUSTOMERS,
    ITEMS,
    PRODUCTS,
    TRANSACTIONS,
    UNKNOWN_RULE,
    FileSpec,
    Header,
    parse_money,
    trim,
)
from generator.encoding import money_text
from generator.layout import Edit, Table

T = TypeVar("T")
MAX_TOUCHED_SHARE = 0.9


@dataclass
class InjectionContext:
    """What actions may use: randomness, the chunk, and sources of ids and e-mails."""

    rng: np.random.Generator
    spec: FileSpec
    header: Header
    table: Table
    untouched: Callable[[int], bool]  # a row no action writes
    unknown_id: Callable[[str], int]  # an id of that entity that is not known now
    production_email: Callable[[], str | None]  # e-mail of a customer in production

    def pick(self, options: Sequence[T]) -> T:
        return options[int(self.rng.integers(len(options)))]

    def cells(self, values: dict[str, str]) -> list[str]:
        return [values.get(column, "") for column in self.header.columns]

    def has(self, column: str) -> bool:
        return column in self.header.columns


Mutator = Callable[[InjectionContext, dict[str, str], int], str | None]


@dataclass(frozen=True)
class Action:
    """A way to write one row by hand; `weight` scales the rate."""

    name: str
    weight: float
    make: Callable[[InjectionContext, int], list[Edit]]
    orphans: bool = False  # makes unknown references: never on update rows


def plan_edits(ctx: InjectionContext, rate: float) -> list[Edit]:
    """Pick rows for every action of the file at about `rate` each, and write them.

    Rows are drawn by the table's `edit_weight` when it has one: customers and products
    that few orders refer to are more often written by hand, so that a rejected new row
    orphans few orders (cascades stay near the rate instead of multiplying it).
    """
    actions = [a for a in ACTIONS[ctx.spec.name] if not (a.orphans and ctx.table.updates)]
    rows = len(ctx.table)
    if rows == 0 or rate <= 0:
        return []
    total_rate = rate * sum(action.weight for action in actions)
    scale = min(1.0, MAX_TOUCHED_SHARE / total_rate) if total_rate else 1.0
    counts = [int(ctx.rng.binomial(rows, min(1.0, rate * a.weight * scale))) for a in actions]
    weight = ctx.table.edit_weight
    chosen = ctx.rng.choice(
        rows,
        size=min(rows, sum(counts)),
        replace=False,
        p=None if weight is None else weight / weight.sum(),
    )
    taken = {int(row) for row in chosen}
    ctx.untouched = lambda row: row not in taken
    edits: list[Edit] = []
    start = 0
    for action, count in zip(actions, counts, strict=True):
        for row in chosen[start : start + count].tolist():
            edits.extend(action.make(ctx, row))
        start += count
    return edits


def plan_burst(ctx: InjectionContext, rule: str, share: float) -> list[Edit]:
    """A mass defect: about `share` of the chunk's rows not already written by hand break
    `rule` (its action in ACTIONS), on rows drawn with the context's random generator."""
    action = next(a for a in ACTIONS[ctx.spec.name] if a.name == rule)
    if action.orphans and ctx.table.updates:
        return []  # an update row never refers to an unknown parent
    already = ctx.untouched
    free = np.array([row for row in range(len(ctx.table)) if already(row)], dtype=np.int64)
    count = min(len(free), int(round(share * len(ctx.table))))
    if count == 0:
        return []
    chosen = ctx.rng.choice(free, size=count, replace=False)
    taken = {int(row) for row in chosen}
    ctx.untouched = lambda row: already(row) and row not in taken
    edits: list[Edit] = []
    for row in chosen.tolist():
        edits.extend(action.make(ctx, row))
    return edits


def burst_rules() -> dict[str, list[str]]:
    """The rules a --defect-burst can name, per file: those with an action of their own."""
    return {file: sorted({a.name for a in actions if a.name in RULE_ACTIONS})
            for file, actions in ACTIONS.items()}


# ----------------------------------------------------------------------------- actions


def replace_with(name: str, *mutators: Mutator) -> Callable[[InjectionContext, int], list[Edit]]:
    """An action that rewrites a row's values with the mutators, in place."""

    def make(ctx: InjectionContext, row: int) -> list[Edit]:
        values = ctx.table.values(row)
        intended = set()
        for mutate in mutators:
            rule = mutate(ctx, values, row)
            if rule is None:
                return []
            if rule:
                intended.add(rule)
        return [Edit(row, False, ctx.cells(values), frozenset(intended), name)]

    return make


def duplicate(ctx: InjectionContext, row: int) -> list[Edit]:
    """An earlier copy of the row, its key written another way: rejected as duplicate_key."""
    values = ctx.table.values(row)
    key = values[ctx.spec.key]
    values[ctx.spec.key] = ctx.pick([key, key, "0" + key, f" {key} ", "00" + key])
    return [Edit(row, True, ctx.cells(values), frozenset({"duplicate_key"}), "duplicate_key")]


def malformed(ctx: InjectionContext, row: int) -> list[Edit]:
    """A record with the wrong number of fields: one too many, one too few, or spaces."""
    cells = ctx.cells(ctx.table.values(row))
    form = int(ctx.rng.integers(3))
    intended = frozenset({"malformed_row"})
    if form == 0:
        return [Edit(row, False, [*cells, ctx.pick(["", "x", "extra"])], intended, "malformed")]
    if form == 1 and len(cells) > 1:
        return [Edit(row, False, cells[:-1], intended, "malformed")]
    return [Edit(row, True, [ctx.pick([" ", "   ", "\t "])], intended, "malformed_spaces")]


def blank_line(ctx: InjectionContext, row: int) -> list[Edit]:
    """An empty line before the row: skipped, not a record."""
    return [Edit(row, True, None, frozenset(), "blank_line")]


# ----------------------------------------------------------------------------- mutators
# A mutator changes `values` and returns the rule it breaks, "" for a valid variant, or
# None when it cannot apply to this row (the row is then left alone).


def missing_required(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    column = ctx.pick([c for c in ctx.spec.required if ctx.has(c)])
    values[column] = ctx.pick(["", "", " ", "   ", "\t"])
    if ctx.spec is ITEMS and column in ("quantity", "unit_price"):
        zero_discount(values)
    return "missing_required"


def missing_column(column: str) -> Mutator:
    def mutate(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
        values[column] = ctx.pick(["", " "])
        return "missing_required"

    return mutate


def invalid_integer(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    column = ctx.pick([ctx.spec.key, *(c for c, _ in ctx.spec.references)])
    value = trim(values[column])
    values[column] = ctx.pick(
        [f"{value}a", "abc", "0", "00", f"-{value}", f"{value}.0", "9223372036854775808",
         "18446744073709551616", f"+{value}", "1e3", f"#{value}", "n/a", f"{value[:1]} {value}"]
    )  # fmt: skip
    return "invalid_integer"


def invalid_email(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    local, _, domain = values["email"].partition("@")
    values["email"] = ctx.pick(
        [f"{local}.{domain}", f"{local}@@{domain}", f"{local[:2]} {local[2:]}@{domain}",
         f"{local}@{domain.split('.')[0]}", f"@{domain}", f"{local}@", f"{local}@{domain} x"]
    )  # fmt: skip
    return "invalid_email"


def email_conflict(ctx: InjectionContext, values: dict[str, str], row: int) -> str | None:
    """The e-mail of another customer: in production, or on an earlier clean line."""
    victim = None
    for _ in range(5):
        earlier = int(ctx.rng.integers(row)) if row else None
        if earlier is not None and ctx.untouched(earlier):
            victim = (ctx.table.emails or [])[earlier]
            break
    if victim is None:
        victim = ctx.production_email()
    if victim is None:
        return None
    values["email"] = ctx.pick([victim, victim, victim.upper(), f" {victim}"])
    return "email_conflict"


def invalid_date(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    year, month, day = values["signup_date"].split("-")
    values["signup_date"] = ctx.pick(
        [f"{year}-02-30", f"{year}-13-{day}", f"{month}/{day}/{year}", f"{year}{month}{day}",
         "2023-02-29", f"{day}.{month}.{year}", f"{year}-{month}-32", f"{year}-00-{day}",
         f"{year}/{month}/{day}", f"{int(year)}-{int(month)}-{int(day)}x"]
    )  # fmt: skip
    return "invalid_date"


def timestamp_column(spec: FileSpec) -> str:
    return "transaction_ts" if spec is TRANSACTIONS else "updated_at"


def invalid_timestamp(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    column = timestamp_column(ctx.spec)
    day, clock = values[column].split(" ")
    hour, minute, second = clock.split(":")
    year, month, dom = day.split("-")
    values[column] = ctx.pick(
        [day, f"{day} 24:{minute}:{second}", f"{day}T{hour}:60:{second}", f"{day}t{clock}",
         f"{day}T{clock}z", f"2023-02-29 {clock}", "now", f"{month}/{dom}/{year} {hour}:{minute}",
         f"{day}T{clock}+15:00", f"{day}T{clock}+05:60", f"{day} {clock}.1234567",
         f"{day} {hour}:{minute}", f"{day}  {clock}", f"{day}T{clock} +01:00",
         f"{day} {hour}:{minute}:61"]
    )  # fmt: skip
    return "invalid_timestamp"


def out_of_range(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    if ctx.spec is CUSTOMERS and ctx.rng.random() < 0.5:
        values["signup_date"] = ctx.pick(["1999-12-31", "1970-01-01", "2099-01-01", "2999-12-31"])
        return "out_of_range"
    values[timestamp_column(ctx.spec)] = ctx.pick(
        ["1999-12-31 23:59:59", "2000-01-01T00:30:00+01:00", "1999-06-15T08:00:00Z",
         "2099-03-01 12:00:00", "2100-01-01T00:00:00Z", "1990-05-05 05:05:05"]
    )  # fmt: skip
    return "out_of_range"


def invalid_amount(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    column = "cost" if ctx.spec is PRODUCTS and ctx.rng.random() < 0.4 else "unit_price"
    return amount_column(column)(ctx, values, row) or ""


def amount_column(column: str) -> Mutator:
    def mutate(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
        value = values[column]
        whole, _, fraction = value.partition(".")
        malformed = [f"{value}5", f"${value}", "abc", "12345678901.00", f"{whole},{fraction}",
                     f"{value}.5", f"{value} EUR", "free"]  # fmt: skip
        if ctx.spec is ITEMS:
            options = malformed
            zero_discount(values)
        elif column == "unit_price":
            options = [*malformed, "0", "0.00", "-0.00", f"-{value}"]
        else:
            options = [*malformed, "-1.00", "-0.01", f"-{whole}.50"]
        values[column] = ctx.pick(options)
        return "invalid_amount"

    return mutate


def invalid_payment_method(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    values["payment_method"] = ctx.pick(
        ["bitcoin", "cheque", "creditcard", "credit card visa", "voucher", "Pay Pal", "wire",
         "cash", "apple_pay", "store credit", "klarna"]
    )  # fmt: skip
    return "invalid_payment_method"


def invalid_status(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    values["status"] = ctx.pick(
        ["shipped", "complete", "canceled", "returned", "processing", "done", "paid", "on hold"]
    )
    return "invalid_status"


def invalid_quantity(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    values["quantity"] = ctx.pick(["0", "1001", "abc", "2.5", "1e2", "two", "10000", "1 2"])
    zero_discount(values)
    return "invalid_quantity"


def invalid_discount(ctx: InjectionContext, values: dict[str, str], row: int) -> str | None:
    if not ctx.has("discount"):
        return None
    line_cents = int(values["quantity"]) * (parse_money(values["unit_price"]) or 0)
    over = money_text(line_cents + 1 + int(ctx.rng.integers(500)))
    negative = "-" + money_text(max(1, line_cents // 10))
    values["discount"] = ctx.pick([over, over, negative, "10%", "1.234", "abc", "5,00"])
    return "invalid_discount"


def unknown_reference(entity: str) -> Mutator:
    """A reference to an id that is not known: later, never, or rejected earlier."""

    def mutate(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
        column = next(c for c, e in ctx.spec.references if e == entity)
        values[column] = str(ctx.unknown_id(entity))
        return UNKNOWN_RULE[entity]

    return mutate


def zero_discount(values: dict[str, str]) -> None:
    """Where quantity or price is broken, keep the discount 0 so no reading differs."""
    if values.get("discount"):
        values["discount"] = "0.00"


# ----------------------------------------------------------------------------- variants


PADDED_COLUMNS = {
    CUSTOMERS.name: ("first_name", "last_name", "city", "country", "email", "customer_id"),
    PRODUCTS.name: ("product_name", "category", "brand", "unit_price", "product_id"),
    TRANSACTIONS.name: ("customer_id", "transaction_id", "payment_method", "status"),
    ITEMS.name: ("quantity", "unit_price", "product_id", "transaction_id"),
}


def padded(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    column = ctx.pick([c for c in PADDED_COLUMNS[ctx.spec.name] if ctx.has(c)])
    left, right = ctx.pick(["", " ", "  ", "\t"]), ctx.pick([" ", "  ", "\t", " \t"])
    values[column] = f"{left}{values[column]}{right}"
    return ""


def email_case(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    email = values["email"]
    values["email"] = ctx.pick([email.upper(), email.title(), email[:1].upper() + email[1:]])
    return ""


def key_zeros(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    column = ctx.pick([ctx.spec.key, *(c for c, _ in ctx.spec.references)])
    values[column] = ctx.pick(["0", "00", "000"]) + values[column]
    return ""


OFFSET_MINUTES = (60, 120, 330, -240, -300, -480, 840, -720, 545)


def timestamp_form(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    """The same instant written another way: `T`, `Z`, a fraction, or a zone offset."""
    column = timestamp_column(ctx.spec)
    text = values[column]
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    form = int(ctx.rng.integers(6))
    if form == 0:
        values[column] = text.replace(" ", "T")
    elif form == 1:
        values[column] = text.replace(" ", "T") + "Z"
    elif form == 2:
        values[column] = text + "Z"
    elif form == 3:
        values[column] = text + ctx.pick([".0", ".000", ".000000"])
    else:
        minutes = ctx.pick(OFFSET_MINUTES)
        local = moment + timedelta(minutes=minutes)
        sign = "+" if minutes >= 0 else "-"
        hours, rest = divmod(abs(minutes), 60)
        separator = ":" if form == 4 else ""
        stamp = local.strftime("%Y-%m-%dT%H:%M:%S")
        values[column] = f"{stamp}{sign}{hours:02d}{separator}{rest:02d}"
    return ""


def no_updated_at(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    values["updated_at"] = ""
    return ""


def multiline_city(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    values["city"] = f"{values['city']},\n{values['state'] or values['country']}"
    return ""


def comma_name(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    values["last_name"] = values["last_name"] + ctx.pick([", Jr.", ", Sr.", ', "The Third"'])
    return ""


def unicode_name(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    values["first_name"] = ctx.pick(["Zoë", "Łukasz", "José", "Ærin", "Søren", "Renée",
                                     "Þóra", "Dvořák", "美咲", "Ольга"])  # fmt: skip
    return ""


def price_form(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
    """The same amount written another way: `19.9`, `20`, `019.90`, padded."""
    column = "cost" if ctx.spec is PRODUCTS and ctx.rng.random() < 0.3 else "unit_price"
    whole, _, fraction = values[column].partition(".")
    if fraction == "00":
        values[column] = whole
    elif fraction.endswith("0"):
        values[column] = f"{whole}.{fraction[0]}"
    else:
        values[column] = ctx.pick([f"0{whole}.{fraction}", f" {whole}.{fraction} "])
    return ""


def code_spelling(column: str) -> Mutator:
    """A payment method or status spelled as people do: `Credit Card`, ` credit-card `."""

    def mutate(ctx: InjectionContext, values: dict[str, str], row: int) -> str:
        words = trim(values[column]).split("_")
        separator = ctx.pick([" ", "-", "__", " - ", "_ ", "  "])
        text = separator.join(words)
        text = ctx.pick([text, text.upper(), text.title(), text.lower()])
        values[column] = ctx.pick([text, f" {text} ", f"{text}  "])
        return ""

    return mutate


def discount_form(ctx: InjectionContext, values: dict[str, str], row: int) -> str | None:
    if not ctx.has("discount"):
        return None
    if values["discount"] == "0.00":
        values["discount"] = ctx.pick(["", "0", " 0.00", "0.0", "-0.00"])
    else:
        whole, _, fraction = values["discount"].partition(".")
        short = f"{whole}.{fraction[0]}" if fraction.endswith("0") else f" {whole}.{fraction}"
        values["discount"] = short
    return ""


# ----------------------------------------------------------------------------- catalogue


def _rule(name: str, *mutators: Mutator, weight: float = 1.0, orphans: bool = False) -> Action:
    return Action(name, weight, replace_with(name, *mutators), orphans)


COMMON = (
    _rule("missing_required", missing_required),
    _rule("invalid_integer", invalid_integer),
    Action("duplicate_key", 1.0, duplicate),
    Action("malformed_row", 1.0, malformed),
    Action("blank_line", 0.5, blank_line),
    _rule("padded", padded),
    _rule("key_zeros", key_zeros, weight=0.5),
)
ACTIONS: dict[str, tuple[Action, ...]] = {
    CUSTOMERS.name: COMMON + (
        _rule("invalid_email", invalid_email),
        _rule("email_conflict", email_conflict),
        _rule("invalid_date", invalid_date),
        _rule("invalid_timestamp", invalid_timestamp),
        _rule("out_of_range", out_of_range),
        _rule("several", invalid_email, invalid_date, weight=0.25),
        _rule("several", missing_column("first_name"), out_of_range, weight=0.25),
        _rule("email_case", email_case),
        _rule("timestamp_form", timestamp_form),
        _rule("no_updated_at", no_updated_at, weight=0.5),
        _rule("multiline_city", multiline_city, weight=0.5),
        _rule("comma_name", comma_name, weight=0.5),
        _rule("unicode_name", unicode_name, weight=0.5),
    ),
    PRODUCTS.name: COMMON + (
        _rule("invalid_amount", invalid_amount),
        _rule("invalid_timestamp", invalid_timestamp),
        _rule("out_of_range", out_of_range),
        _rule("several", amount_column("unit_price"), missing_column("category"), weight=0.5),
        _rule("price_form", price_form),
        _rule("timestamp_form", timestamp_form),
        _rule("no_updated_at", no_updated_at, weight=0.5),
    ),
    TRANSACTIONS.name: COMMON + (
        _rule("invalid_timestamp", invalid_timestamp),
        _rule("out_of_range", out_of_range),
        _rule("invalid_payment_method", invalid_payment_method),
        _rule("invalid_status", invalid_status),
        _rule("unknown_customer", unknown_reference("customers"), orphans=True),
        _rule("several", invalid_payment_method, invalid_status, weight=0.5),
        _rule("payment_spelling", code_spelling("payment_method")),
        _rule("status_spelling", code_spelling("status")),
        _rule("timestamp_form", timestamp_form),
    ),
    ITEMS.name: COMMON + (
        _rule("invalid_quantity", invalid_quantity),
        _rule("invalid_amount", invalid_amount),
        _rule("invalid_discount", invalid_discount),
        _rule("unknown_product", unknown_reference("products"), orphans=True),
        _rule("unknown_transaction", unknown_reference("transactions"), orphans=True),
        _rule("several", invalid_quantity, unknown_reference("products"), weight=0.5,
              orphans=True),
        _rule("price_form", price_form),
        _rule("discount_form", discount_form),
    ),
}  # fmt: skip

RULE_ACTIONS = frozenset({
    "missing_required", "invalid_integer", "duplicate_key", "malformed_row", "invalid_email",
    "email_conflict", "invalid_date", "invalid_timestamp", "out_of_range", "invalid_amount",
    "invalid_payment_method", "invalid_status", "unknown_customer", "invalid_quantity",
    "invalid_discount", "unknown_product", "unknown_transaction",
})  # the actions named after the contract rule they break (the others are variants)
