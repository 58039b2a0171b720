"""End to end: generator -> ingestion -> validation, merge, orphans -> warehouse -> views.

A dirty four-batch data set is generated and run through the real pipeline
(``python -m runner run``). Independently, this test reads the same CSV files and applies
docs/data-contract.md in plain Python: parsing, every validation rule, duplicates, e-mail
conflicts, orphans and their resolution, last batch wins, SCD2 product costs, completed
transactions only. Every row of every contract view (and every fact row through
analytics.v_sales) must equal the Python figures to the cent. The only thing read from the
database for the computation is each batch's load time (etl.batch.load_ts): the clock of
ingestion, which the range rules and SCD2 versions depend on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg2
import pytest

from runner.config import PROJECT_ROOT

pytestmark = pytest.mark.slow

GENERATOR_ARGS = ["--batches", "4", "--dirty", "0.02", "--seed", "11", "--quiet"]

# -- the contract, written again in Python ----------------------------------------------------

ASCII_SPACE = " \t\r\n"
MAX_BIGINT = 9_223_372_036_854_775_807
EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)
PAYMENT_METHODS = {"credit_card", "debit_card", "paypal", "bank_transfer", "cash_on_delivery",
                   "gift_card"}
STATUSES = {"completed", "pending", "cancelled", "refunded"}
ORPHAN_RULES = {"unknown_customer", "unknown_transaction", "unknown_product"}
KEY = re.compile(r"^[0-9]+$")
MONEY = re.compile(r"^-?[0-9]{1,10}(\.[0-9]{1,2})?$")
DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
TIMESTAMP = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,6}))?(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", re.ASCII)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class FileSpec:
    name: str
    key: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


FILES = (
    FileSpec("customers.csv", "customer_id",
             ("customer_id", "first_name", "last_name", "email", "country", "signup_date"),
             ("phone", "city", "state", "updated_at")),
    FileSpec("products.csv", "product_id",
             ("product_id", "product_name", "category", "unit_price", "cost"),
             ("brand", "updated_at")),
    FileSpec("transactions.csv", "transaction_id",
             ("transaction_id", "customer_id", "transaction_ts", "payment_method", "status")),
    FileSpec("transaction_items.csv", "item_id",
             ("item_id", "transaction_id", "product_id", "quantity", "unit_price"),
             ("discount",)),
)


class Refused(Exception):
    """The whole batch is refused (docs/data-contract.md, "Refusal")."""


def trim(value: str) -> str:
    return value.strip(ASCII_SPACE)


def parse_key(value: str) -> tuple[str | None, int | None]:
    if value == "":
        return "missing_required", None
    if not KEY.match(value) or int(value) == 0 or int(value) > MAX_BIGINT:
        return "invalid_integer", None
    return None, int(value)


def parse_money(value: str) -> Decimal | None:
    return Decimal(value) + 0 if MONEY.match(value) else None  # + 0: -0.00 is 0


def parse_date(value: str) -> date | None:
    match = DATE.match(value)
    if not match:
        return None
    try:
        return date(*map(int, match.groups()))
    except ValueError:
        return None


def parse_timestamp(value: str) -> datetime | None:
    match = TIMESTAMP.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          int((fraction or "0").ljust(6, "0")), tzinfo=UTC)
    except ValueError:
        return None
    if zone and zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        if hours > 14 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        moment = moment - offset if zone[0] == "+" else moment + offset
    return moment


def normalise_code(value: str) -> str:
    return re.sub(r"[ _-]+", "_", trim(value).lower())


@dataclass
class Record:
    line_no: int
    values: dict[str, str]  # trimmed, by column; absent optional columns are ""
    malformed: bool = False


def read_file(path: Path, spec: FileSpec) -> list[Record]:
    """Records of one file, or Refused; empty lines skipped, line numbers physical."""
    data = path.read_bytes()
    if not data:
        raise Refused(f"{spec.name}: empty file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"{spec.name}: not UTF-8") from exc
    text = text.removeprefix("\ufeff")
    if text == "" or text.startswith(("\n", "\r\n")):
        raise Refused(f"{spec.name}: no header")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [trim(name).lower() for name in next(reader)]
    if len(set(header)) != len(header):
        raise Refused(f"{spec.name}: a column named twice")
    if missing := set(spec.required) - set(header):
        raise Refused(f"{spec.name}: missing {sorted(missing)}")
    records, last_line = [], reader.line_num
    for fields in reader:
        start, last_line = last_line + 1, reader.line_num
        if not fields:
            continue  # an empty line
        if len(fields) != len(header):
            records.append(Record(start, {}, malformed=True))
            continue
        given = dict(zip(header, fields, strict=True))
        records.append(Record(start, {c: trim(given.get(c, ""))
                                      for c in spec.required + spec.optional}))
    return records


# -- production, as the contract says it evolves ----------------------------------------------

@dataclass
class Version:
    attributes: tuple
    cost: Decimal | None
    valid_from: datetime


@dataclass
class Production:
    customers: dict[int, dict] = field(default_factory=dict)
    products: dict[int, dict] = field(default_factory=dict)
    transactions: dict[int, dict] = field(default_factory=dict)
    items: dict[int, dict] = field(default_factory=dict)
    origin: dict[tuple[str, int], int] = field(default_factory=dict)  # batch of the data
    product_versions: dict[int, list[Version]] = field(default_factory=dict)

    def table(self, file_name: str) -> dict[int, dict]:
        return {"customers.csv": self.customers, "products.csv": self.products,
                "transactions.csv": self.transactions,
                "transaction_items.csv": self.items}[file_name]

    def merge(self, file_name: str, key: int, row: dict, batch: int) -> None:
        self.table(file_name)[key] = row
        self.origin[(file_name, key)] = batch

    def version_product(self, product_id: int, row: dict, at: datetime) -> None:
        """SCD2: a new version when the tracked attributes differ from the current one."""
        attributes = (row["product_name"], row["category"], row["brand"], row["unit_price"],
                      row["cost"])
        versions = self.product_versions.setdefault(product_id, [])
        if not versions:
            versions.append(Version(attributes, row["cost"], datetime.min.replace(tzinfo=UTC)))
        elif versions[-1].attributes != attributes:
            start = versions[-1].valid_from
            valid_from = at if at > start else start + timedelta(microseconds=1)
            versions.append(Version(attributes, row["cost"], valid_from))

    def cost_at(self, product_id: int, moment: datetime) -> Decimal:
        current = None
        for version in self.product_versions[product_id]:
            if version.valid_from <= moment:
                current = version
        return current.cost


@dataclass
class Orphan:
    batch: int
    file_name: str
    line_no: int
    key: int
    row: dict


class Contract:
    """Validates and merges batches in order, exactly as docs/data-contract.md describes."""

    def __init__(self, load_times: dict[str, datetime]) -> None:
        self.load_times = load_times
        self.production = Production()
        self.orphans: list[Orphan] = []
        self.loaded_hashes: set[str] = set()
        self.processed: list[str] = []
        self.refused: str | None = None

    # .. a landing directory
    def run(self, landing: Path) -> None:
        for number, batch_dir in enumerate(sorted(p for p in landing.iterdir() if p.is_dir()),
                                           start=1):
            try:
                files = self.read_batch(batch_dir)
            except Refused as refusal:
                self.refused = f"{batch_dir.name}: {refusal}"
                return  # the run stops before this batch
            self.process(number, batch_dir.name, files)
            self.processed.append(batch_dir.name)

    def read_batch(self, batch_dir: Path) -> list[tuple[FileSpec, list[Record]]]:
        files, hashes = [], set()
        for spec in FILES:
            path = batch_dir / spec.name
            if not path.exists():
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            records = read_file(path, spec)
            if digest in self.loaded_hashes or digest in hashes:
                continue  # loaded before: skipped
            hashes.add(digest)
            files.append((spec, records))
        self.loaded_hashes |= hashes
        return files

    # .. one batch
    def process(self, batch: int, batch_name: str, files: list) -> None:
        load_ts = self.load_times[batch_name]
        accepted: dict[str, dict[int, dict]] = {}
        for spec, records in files:
            accepted[spec.name] = self.validate(batch, spec, records, load_ts, accepted)
        for spec, _ in files:  # merge: customers, products, transactions, items
            for key, row in accepted[spec.name].items():
                self.production.merge(spec.name, key, row, batch)
                if spec.name == "products.csv":
                    self.production.version_product(key, row, row["updated_at"] or load_ts)
        self.reprocess_orphans(batch)

    def known(self, file_name: str, key: int | None, accepted: dict) -> bool:
        return key in self.production.table(file_name) or key in accepted.get(file_name, {})

    def validate(self, batch: int, spec: FileSpec, records: list[Record], load_ts: datetime,
                 accepted: dict) -> dict[int, dict]:
        last_line: dict[int, int] = {}
        for record in records:
            if not record.malformed:
                rule, key = parse_key(record.values[spec.key])
                if rule is None:
                    last_line[key] = record.line_no
        claimed = {row["email"]: cid for cid, row in self.production.customers.items()}
        batch_emails: dict[str, int] = {}
        result: dict[int, dict] = {}
        for record in records:
            if record.malformed:
                continue
            rule, key = parse_key(record.values[spec.key])
            if rule is None and last_line[key] != record.line_no:
                continue  # duplicate_key: an earlier row of the key
            rules, row = self.check(spec, record.values, load_ts, accepted)
            if rule:
                rules.add(rule)
            if spec.name == "customers.csv" and not rules:
                email = row["email"]
                owners = {claimed.get(email), batch_emails.get(email)} - {None, key}
                if owners:
                    rules.add("email_conflict")
                else:
                    batch_emails[email] = key
            if not rules:
                result[key] = row
            elif rules <= ORPHAN_RULES:
                self.orphans.append(Orphan(batch, spec.name, record.line_no, key, row))
        return result

    def check(self, spec: FileSpec, v: dict[str, str], load_ts: datetime, accepted: dict
              ) -> tuple[set[str], dict]:
        rules: set[str] = set()
        row: dict = {}

        def required(column: str) -> str | None:
            if v[column] == "":
                rules.add("missing_required")
                return None
            return v[column]

        def moment(column: str, *, optional: bool = False) -> datetime | None:
            if v[column] == "" and optional:
                return None
            if required(column) is None:
                return None
            value = parse_timestamp(v[column])
            if value is None:
                rules.add("invalid_timestamp")
            elif not EPOCH_2000 <= value <= load_ts:
                rules.add("out_of_range")
            return value

        def reference(column: str, file_name: str, unknown: str) -> int | None:
            rule, key = parse_key(v[column])
            if rule:
                rules.add(rule)
            elif not self.known(file_name, key, accepted):
                rules.add(unknown)
            return key

        def money(column: str, minimum_exclusive: bool) -> Decimal | None:
            if required(column) is None:
                return None
            value = parse_money(v[column])
            if value is None or value < 0 or (minimum_exclusive and value == 0):
                rules.add("invalid_amount")
                return None
            return value

        if spec.name == "customers.csv":
            for column in ("first_name", "last_name", "country"):
                row[column] = required(column)
            email = required("email")
            if email is not None and not EMAIL.match(email):
                rules.add("invalid_email")
            row["email"] = email.lower() if email else None
            signup = None
            if required("signup_date") is not None:
                signup = parse_date(v["signup_date"])
                if signup is None:
                    rules.add("invalid_date")
                elif not date(2000, 1, 1) <= signup <= load_ts.date():
                    rules.add("out_of_range")
            row["signup_date"] = signup
            row["updated_at"] = moment("updated_at", optional=True)
        elif spec.name == "products.csv":
            row["product_name"] = required("product_name")
            row["category"] = required("category")
            row["brand"] = v["brand"] or None
            row["unit_price"] = money("unit_price", minimum_exclusive=True)
            row["cost"] = money("cost", minimum_exclusive=False)
            row["updated_at"] = moment("updated_at", optional=True)
        elif spec.name == "transactions.csv":
            row["customer_id"] = reference("customer_id", "customers.csv", "unknown_customer")
            row["transaction_ts"] = moment("transaction_ts")
            for column, allowed, rule in (("payment_method", PAYMENT_METHODS,
                                           "invalid_payment_method"),
                                          ("status", STATUSES, "invalid_status")):
                if required(column) is not None:
                    row[column] = normalise_code(v[column])
                    if row[column] not in allowed:
                        rules.add(rule)
        else:
            row["transaction_id"] = reference("transaction_id", "transactions.csv",
                                              "unknown_transaction")
            row["product_id"] = reference("product_id", "products.csv", "unknown_product")
            quantity = None
            if required("quantity") is not None:
                if KEY.match(v["quantity"]) and 1 <= int(v["quantity"]) <= 1000:
                    quantity = int(v["quantity"])
                else:
                    rules.add("invalid_quantity")
            price = money("unit_price", minimum_exclusive=False)
            discount = parse_money(v["discount"]) if v["discount"] else Decimal("0")
            if discount is None or discount < 0 or (
                    quantity is not None and price is not None and discount > quantity * price):
                rules.add("invalid_discount")
            row.update(quantity=quantity, unit_price=price, discount=discount)
        return rules, row

    def reprocess_orphans(self, batch: int) -> None:
        """Re-validate open orphans until none resolves (a resolved transaction can resolve
        its items in the same step); a key accepted from a later batch wins."""
        parents = {"transactions.csv": [("customer_id", "customers.csv")],
                   "transaction_items.csv": [("transaction_id", "transactions.csv"),
                                             ("product_id", "products.csv")]}
        progress = True
        while progress:
            progress = False
            for orphan in sorted(self.orphans, key=lambda o: (o.batch, o.line_no)):
                origin = self.production.origin.get((orphan.file_name, orphan.key))
                if origin is not None and origin > orphan.batch:
                    self.orphans.remove(orphan)  # superseded: resolved, not merged
                    continue
                if all(orphan.row[column] in self.production.table(parent)
                       for column, parent in parents[orphan.file_name]):
                    self.production.merge(orphan.file_name, orphan.key, orphan.row,
                                          orphan.batch)
                    self.orphans.remove(orphan)
                    progress = True


# -- the contract's metrics ------------------------------------------------------------------

def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def month_of(day: date) -> date:
    return day.replace(day=1)


def months_between(first: date, last: date) -> Iterator[date]:
    month = first
    while month <= last:
        yield month
        month = (month + timedelta(days=32)).replace(day=1)


@dataclass
class Line:
    item_id: int
    transaction_id: int
    status: str
    customer_id: int
    product_id: int
    payment_method: str
    day: date
    quantity: int
    discount: Decimal
    amount: Decimal
    cost: Decimal

    @property
    def margin(self) -> Decimal:
        return self.amount - self.cost


def fact_lines(production: Production) -> list[Line]:
    lines = []
    for item_id, item in production.items.items():
        txn = production.transactions[item["transaction_id"]]
        moment = txn["transaction_ts"]
        amount = item["quantity"] * item["unit_price"] - item["discount"]
        cost = item["quantity"] * production.cost_at(item["product_id"], moment)
        lines.append(Line(item_id, item["transaction_id"], txn["status"], txn["customer_id"],
                          item["product_id"], txn["payment_method"], moment.date(),
                          item["quantity"], item["discount"], amount, cost))
    return lines


def expected_views(production: Production) -> dict[str, list[tuple]]:
    lines = fact_lines(production)
    sold = [line for line in lines if line.status == "completed"]

    def totals(group: list[Line]) -> tuple:
        return (len({ln.transaction_id for ln in group}), sum(ln.quantity for ln in group),
                sum(ln.amount for ln in group), sum(ln.discount for ln in group),
                sum(ln.margin for ln in group))

    by_day, by_month = defaultdict(list), defaultdict(list)
    for line in sold:
        by_day[line.day].append(line)
        by_month[month_of(line.day)].append(line)
    daily = []
    for day in sorted(by_day):
        orders, units, revenue, discount, margin = totals(by_day[day])
        daily.append((day, orders, units, revenue, discount, margin, round2(revenue / orders)))

    monthly, previous = [], None
    for month in months_between(min(by_month), max(by_month)):
        orders, units, revenue, discount, margin = (
            totals(by_month[month]) if month in by_month else (0, 0, 0, 0, 0))
        revenue = Decimal(revenue)
        growth = (round2(100 * (revenue - previous) / previous) if previous else None)
        monthly.append((month, orders, units, revenue, Decimal(discount), Decimal(margin),
                        round2(revenue / orders) if orders else None, growth))
        previous = revenue

    by_product_month = defaultdict(list)
    for line in sold:
        by_product_month[(month_of(line.day), line.product_id)].append(line)
    figures = {}
    for (month, product_id), group in by_product_month.items():
        product = production.products[product_id]
        orders, units, revenue, _, margin = totals(group)
        figures[(month, product_id)] = (product["product_name"], product["category"],
                                        product["brand"], orders, units, revenue, margin)
    revenues = defaultdict(list)  # RANK(): 1 + how many in the month and category earn more
    for (month, _), figure in figures.items():
        revenues[(month, figure[1])].append(figure[5])
    products = []
    for (month, product_id), (name, category, brand, orders, units, revenue, margin) in \
            figures.items():
        rank = 1 + sum(1 for other in revenues[(month, category)] if other > revenue)
        products.append((month, product_id, name, category, brand, orders, units, revenue,
                         margin, rank))

    signups = defaultdict(int)
    for customer in production.customers.values():
        signups[month_of(customer["signup_date"])] += 1
    active = defaultdict(set)
    for line in sold:
        active[month_of(line.day)].add(line.customer_id)
    growth_rows, cumulative = [], 0
    for month in months_between(min(signups), max(max(signups), max(active))):
        cumulative += signups[month]
        growth_rows.append((month, signups[month], cumulative, len(active[month])))

    by_method = defaultdict(list)
    for line in sold:
        by_method[(month_of(line.day), line.payment_method)].append(line)
    month_revenue = {month: totals(group)[2] for month, group in by_month.items()}
    payments = []
    for (month, method), group in by_method.items():
        orders, _, revenue, _, _ = totals(group)
        share = revenue / month_revenue[month] if month_revenue[month] else None
        payments.append((month, method, orders, revenue, share))

    sales = [(ln.item_id, ln.transaction_id, ln.day, ln.status, ln.customer_id, ln.product_id,
              ln.payment_method, ln.quantity, ln.amount, ln.cost, ln.margin) for ln in lines]
    return {"v_daily_sales": daily, "v_monthly_sales": monthly,
            "v_product_performance": products, "v_customer_growth": growth_rows,
            "v_payment_methods": payments, "v_sales": sales}


VIEW_QUERIES = {
    "v_daily_sales": "select * from analytics.v_daily_sales",
    "v_monthly_sales": "select * from analytics.v_monthly_sales",
    "v_product_performance": "select * from analytics.v_product_performance",
    "v_customer_growth": "select * from analytics.v_customer_growth",
    "v_payment_methods": "select * from analytics.v_payment_methods",
    "v_sales": "select item_id, transaction_id, sales_date, status, customer_id, product_id, "
               "payment_method, quantity, line_amount, line_cost, line_margin "
               "from analytics.v_sales",
}


def comparable(view: str, rows: list[tuple]) -> list[tuple]:
    """Rows in one order; the unrounded revenue_share compared to 15 decimals (PostgreSQL
    divides to at least 16 significant digits)."""
    if view == "v_payment_methods":
        rows = [(*r[:4], None if r[4] is None else r[4].quantize(Decimal("1e-15")))
                for r in rows]
    return sorted(rows, key=lambda r: tuple((x is None, x) for x in r))


# -- the test -----------------------------------------------------------------------------

def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_every_contract_view_matches_an_independent_computation_from_the_csv_files(
        db_url: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    env = {**os.environ, "DATABASE_URL": db_url}
    generated = run(["-m", "generator", "--out", str(landing), *GENERATOR_ARGS], env)
    assert generated.returncode == 0, generated.stderr
    pipeline = run(["-m", "runner", "run", str(landing)], env)

    with psycopg2.connect(db_url, options="-c timezone=UTC") as conn, conn.cursor() as cur:
        cur.execute("select batch_name, load_ts from etl.batch")
        load_times = dict(cur.fetchall())
        contract = Contract(load_times)
        contract.run(landing)
        assert (pipeline.returncode == 0) == (contract.refused is None), (
            contract.refused, pipeline.stdout[-3000:], pipeline.stderr[-3000:])
        assert sorted(load_times) == contract.processed
        cur.execute("select batch_name from etl.batch where status = 'processed' order by 1")
        assert [r[0] for r in cur.fetchall()] == contract.processed

        expected = expected_views(contract.production)
        assert len(expected["v_sales"]) > 1000 and len(expected["v_monthly_sales"]) >= 6
        for view, query in VIEW_QUERIES.items():
            cur.execute(query)
            actual = comparable(view, cur.fetchall())
            wanted = comparable(view, expected[view])
            assert len(actual) == len(wanted), view
            for got, want in zip(actual, wanted, strict=True):
                assert got == want, (view, got, want)

        cur.execute("select count(*) from warehouse.v_reconciliation")
        assert cur.fetchone() == (0,)

        # the batches' deltas left the aggregates exactly where a recompute puts them
        cur.execute("select count(*) from warehouse.agg_delta")
        assert cur.fetchone() == (0,)
        before = aggregate_tables(cur)
        cur.execute("select min(sales_date), max(sales_date) from warehouse.agg_daily_sales")
        first, last = cur.fetchone()
        cur.execute("call warehouse.refresh_aggregates(%s, %s)", (first, last))
        assert aggregate_tables(cur) == before
    conn.close()


def aggregate_tables(cur) -> dict[str, list[tuple]]:  # noqa: ANN001 - psycopg2 cursor
    """The aggregate tables' figures (without refreshed_at), in key order."""
    queries = {
        "agg_daily_sales": "select sales_date, orders, units, revenue, discount, margin "
                           "from warehouse.agg_daily_sales order by 1",
        "agg_product_monthly": "select month, product_id, orders, units, revenue, margin "
                               "from warehouse.agg_product_monthly order by 1, 2",
        "agg_payment_method_monthly": "select month, payment_method_code, orders, revenue "
                                      "from warehouse.agg_payment_method_monthly order by 1, 2",
        "agg_customer_monthly": "select month, new_customers, active_customers "
                                "from warehouse.agg_customer_monthly order by 1",
        "agg_customer_activity": "select month, customer_id, orders "
                                 "from warehouse.agg_customer_activity order by 1, 2",
    }
    tables = {}
    for table, query in queries.items():
        cur.execute(query)
        tables[table] = cur.fetchall()
    return tables


def test_contract_helpers_follow_the_value_rules() -> None:
    """The test's own reading of the contract, on the contract's examples."""
    assert parse_key("007") == (None, 7)
    assert parse_key("0")[0] == parse_key("9223372036854775808")[0] == "invalid_integer"
    assert parse_money("-0.00") == 0 and parse_money("19.9") == Decimal("19.90")
    assert parse_money("1.234") is None and parse_money("12345678901") is None
    assert parse_date("2025-02-30") is None and parse_date("2024-02-29") == date(2024, 2, 29)
    assert parse_timestamp("2025-03-05T10:00:00+0530") == datetime(2025, 3, 5, 4, 30,
                                                                   tzinfo=UTC)
    assert parse_timestamp("2025-03-05 10:00:00.5Z") == datetime(2025, 3, 5, 10, 0, 0, 500000,
                                                                 tzinfo=UTC)
    for wrong in ("now", "03/05/2025", "2025-03-05", "2025-03-05t10:00:00",
                  "2025-03-05 24:00:00", "2025-03-05 10:00:00+15:00", "2025-03-05 10:00:60"):
        assert parse_timestamp(wrong) is None, wrong
    assert normalise_code(" Credit - Card ") == normalise_code("credit__card") == "credit_card"
    assert round2(Decimal("10.005")) == Decimal("10.01")
