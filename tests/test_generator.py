"""The data generator (issue 3), pure Python, no database.

The manifest test re-reads the files with the csv module and applies the contract with an
implementation written here, independent of generator/contract.py and generator/model.py,
then requires the same rejected records, rules, counts and resolutions as the manifests.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from generator import Options, generate
from generator.__main__ import main
from generator.pools import build_pools

ALL_RULES = {
    "missing_required", "invalid_integer", "invalid_email", "email_conflict", "invalid_date",
    "invalid_timestamp", "out_of_range", "invalid_amount", "invalid_payment_method",
    "invalid_status", "invalid_quantity", "invalid_discount", "unknown_customer",
    "unknown_product", "unknown_transaction", "duplicate_key", "malformed_row",
}  # fmt: skip
FILE_ORDER = ("customers.csv", "products.csv", "transactions.csv", "transaction_items.csv")
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def small(out: Path, **changes: object) -> Options:
    return Options(out=out, quiet=True, **changes)


@pytest.fixture(scope="module")
def clean_single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean_single")
    generate(small(out), now=NOW)
    return out


@pytest.fixture(scope="module")
def clean_batches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean_batches")
    generate(small(out, batches=4, customers=400, products=100, transactions=4000), now=NOW)
    return out


@pytest.fixture(scope="module")
def dirty_batches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dirty_batches")
    generate(small(out, batches=4, dirty=0.02), now=NOW)
    return out


def batch_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith("batch_"))


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a clean file as dicts (clean files have the canonical header)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- clean data


def test_clean_files_have_exact_row_counts_and_no_defects(clean_single: Path) -> None:
    manifest = json.loads((clean_single / "manifest.json").read_text())
    assert manifest["batch"] == clean_single.name
    assert manifest["seed"] == 42
    assert manifest["defects"] == []
    assert manifest["files"]["customers.csv"] == {"rows": 1000, "accepted": 1000, "rejected": 0}
    assert manifest["files"]["products.csv"] == {"rows": 200, "accepted": 200, "rejected": 0}
    assert manifest["files"]["transactions.csv"] == {
        "rows": 10000, "accepted": 10000, "rejected": 0,
    }  # fmt: skip
    items = len(read_rows(clean_single / "transaction_items.csv"))
    assert manifest["files"]["transaction_items.csv"] == {
        "rows": items, "accepted": items, "rejected": 0,
    }  # fmt: skip


def test_clean_data_is_referentially_whole(clean_batches: Path) -> None:
    signup: dict[str, tuple[date, int]] = {}
    products: set[str] = set()
    transactions: dict[str, int] = {}
    for number, directory in enumerate(batch_dirs(clean_batches)):
        manifest = json.loads((directory / "manifest.json").read_text())
        assert manifest["defects"] == []
        for row in read_rows(directory / "customers.csv"):
            signup.setdefault(row["customer_id"], (date.fromisoformat(row["signup_date"]), number))
        products.update(row["product_id"] for row in read_rows(directory / "products.csv"))
        for row in read_rows(directory / "transactions.csv"):
            customer_signup, customer_batch = signup[row["customer_id"]]
            assert customer_signup <= date.fromisoformat(row["transaction_ts"][:10])
            assert customer_batch <= number
            transactions.setdefault(row["transaction_id"], number)
        for row in read_rows(directory / "transaction_items.csv"):
            assert row["product_id"] in products
            assert transactions[row["transaction_id"]] == number


def test_clean_values_lie_between_2000_and_the_batch_end(clean_batches: Path) -> None:
    for directory in batch_dirs(clean_batches):
        manifest = json.loads((directory / "manifest.json").read_text())
        end = manifest["load_not_before"].replace("T", " ").rstrip("Z")
        stamps = [r["transaction_ts"] for r in read_rows(directory / "transactions.csv")]
        for name in ("customers.csv", "products.csv"):
            stamps += [r["updated_at"] for r in read_rows(directory / name)]
        stamps += [r["signup_date"] for r in read_rows(directory / "customers.csv")]
        assert "2000-01-01" <= min(stamps)
        assert max(stamps) < end


def test_distributions_follow_the_options(clean_single: Path) -> None:
    transactions = read_rows(clean_single / "transactions.csv")
    items = read_rows(clean_single / "transaction_items.csv")
    statuses = Counter(row["status"] for row in transactions)
    shares = {status: count / len(transactions) for status, count in statuses.items()}
    assert shares["completed"] == pytest.approx(0.86, abs=0.02)
    for minority in ("pending", "cancelled", "refunded"):
        assert shares[minority] == pytest.approx(0.05, abs=0.02)
    assert len(Counter(row["payment_method"] for row in transactions)) == 6
    assert len(items) / len(transactions) == pytest.approx(3.0, abs=0.1)
    discounted = sum(Decimal(row["discount"]) > 0 for row in items) / len(items)
    assert discounted == pytest.approx(0.12, abs=0.02)
    products = {r["product_id"]: r for r in read_rows(clean_single / "products.csv")}
    below_cost = sum(Decimal(p["cost"]) >= Decimal(p["unit_price"]) for p in products.values())
    assert below_cost / len(products) < 0.1
    by_product = Counter(row["product_id"] for row in items)
    top_fifth = sum(count for _, count in by_product.most_common(len(products) // 5))
    assert top_fifth / len(items) > 0.5


def test_seasonality_weekends_and_black_friday(clean_single: Path) -> None:
    transactions = read_rows(clean_single / "transactions.csv")
    days = Counter(row["transaction_ts"][:10] for row in transactions)
    by_weekday = Counter()
    for day, count in days.items():
        by_weekday[date.fromisoformat(day).weekday()] += count
    assert by_weekday[5] > by_weekday[1]
    median = sorted(days.values())[len(days) // 2]
    assert days["2025-11-28"] > 2 * median
    first_quarter = sum(c for d, c in days.items() if d < "2025-04-01")
    last_quarter = sum(c for d, c in days.items() if d >= "2025-10-01")
    assert last_quarter > first_quarter


def test_ids_follow_time_and_customers_grow(clean_single: Path) -> None:
    transactions = read_rows(clean_single / "transactions.csv")
    stamps = [row["transaction_ts"] for row in transactions]
    assert stamps == sorted(stamps)
    signups = [row["signup_date"] for row in read_rows(clean_single / "customers.csv")]
    assert signups == sorted(signups)
    assert sum(s < "2025-01-01" for s in signups) == 250


# ---------------------------------------------------------------- determinism and CLI


def test_same_seed_same_bytes_and_another_seed_other_bytes(tmp_path: Path) -> None:
    def files(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.*"))}

    options = {"batches": 2, "dirty": 0.02, "transactions": 1000, "customers": 200}
    generate(small(tmp_path / "a", **options), now=NOW)
    build_pools.cache_clear()  # draw the Faker pools again too
    generate(small(tmp_path / "b", **options), now=NOW)
    generate(small(tmp_path / "c", seed=7, **options), now=NOW)
    first, second, other = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert len(first) == 10
    assert first == second
    assert other.keys() == first.keys()
    assert all(other[name] != first[name] for name in first)


def test_command_line_writes_batches_and_refuses_future_periods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--out", str(tmp_path / "x"), "--quiet", "--transactions", "500",
                 "--customers", "100", "--products", "20", "--batches", "3"])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [
        "batch_0001", "batch_0002", "batch_0003",
    ]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "x" / "batch_0002").iterdir()) == [
        "customers.csv", "manifest.json", "products.csv", "transaction_items.csv",
        "transactions.csv",
    ]  # fmt: skip
    code = main(["--out", str(tmp_path / "y"), "--quiet", "--start", "2999-01-01"])
    assert code == 2
    assert "after today" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--batches"):
        generate(small(tmp_path, days=3, batches=4), now=NOW)
    with pytest.raises(ValueError, match="--dirty"):
        generate(small(tmp_path, dirty=0.5), now=NOW)
    with pytest.raises(ValueError, match="--start"):
        generate(small(tmp_path, start=date(1999, 12, 1)), now=NOW)


# ---------------------------------------------------------------- the contract, independently


WS = " \t\r\n"
DIGITS = re.compile(r"[0-9]+")
MONEY = re.compile(r"-?[0-9]{1,10}(\.[0-9]{1,2})?")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
STAMP = re.compile(
    r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})[T ](?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?P<frac>\.[0-9]{1,6})?(?P<zone>Z|(?P<sign>[+-])(?P<oh>[0-9]{2}):?(?P<om>[0-9]{2}))?"
)
PAYMENTS = {"credit_card", "debit_card", "paypal", "bank_transfer", "cash_on_delivery",
            "gift_card"}  # fmt: skip
STATUSES = {"completed", "pending", "cancelled", "refunded"}
COLUMNS = {
    "customers.csv": ["customer_id", "first_name", "last_name", "email", "phone", "city",
                      "state", "country", "signup_date", "updated_at"],
    "products.csv": ["product_id", "product_name", "category", "brand", "unit_price", "cost",
                     "updated_at"],
    "transactions.csv": ["transaction_id", "customer_id", "transaction_ts", "payment_method",
                         "status"],
    "transaction_items.csv": ["item_id", "transaction_id", "product_id", "quantity",
                              "unit_price", "discount"],
}  # fmt: skip
KEYS = {"customers.csv": "customer_id", "products.csv": "product_id",
        "transactions.csv": "transaction_id", "transaction_items.csv": "item_id"}  # fmt: skip
REFERENCES = {
    "transactions.csv": [("customer_id", "customers.csv", "unknown_customer")],
    "transaction_items.csv": [("transaction_id", "transactions.csv", "unknown_transaction"),
                              ("product_id", "products.csv", "unknown_product")],
}  # fmt: skip
TRACKED = {name: [c for c in columns if c not in (KEYS[name], "updated_at")]
           for name, columns in COLUMNS.items() if name != "transaction_items.csv"}  # fmt: skip


@dataclass
class Row:
    """One record as read back: where it starts, its fields, what the contract says."""

    file: str
    line: int
    values: dict[str, str] | None  # None: malformed
    rules: set[str] = field(default_factory=set)
    key: int | None = None
    refs: dict[str, int] = field(default_factory=dict)

    @property
    def raw_key(self) -> str | None:
        return None if self.values is None else self.values[KEYS[self.file]]


def read_records(path: Path) -> tuple[list[str], list[Row]]:
    """Header names (trimmed, lower) and records with their physical start lines."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip(WS).lower() for name in next(reader)]
        rows = []
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            if not fields:
                continue
            values = None
            if len(fields) == len(header):
                values = {c: "" for c in COLUMNS[path.name]}
                values.update(dict(zip(header, fields, strict=True)))
            rows.append(Row(path.name, start, values))
    return header, rows


def to_key(text: str) -> tuple[int | None, str | None]:
    text = text.strip(WS)
    if text == "":
        return None, "missing_required"
    if not DIGITS.fullmatch(text) or int(text) == 0 or int(text) > 2**63 - 1:
        return None, "invalid_integer"
    return int(text), None


def to_money(text: str) -> Decimal | None:
    return Decimal(text) if MONEY.fullmatch(text) else None


def to_day(text: str) -> date | None:
    if not DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def to_instant(text: str) -> datetime | None:
    match = STAMP.fullmatch(text)
    if not match or int(match["h"]) > 23 or int(match["m"]) > 59 or int(match["s"]) > 59:
        return None
    try:
        moment = datetime.fromisoformat(f"{match['day']}T{match['h']}:{match['m']}:{match['s']}")
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC)
    if match["frac"]:
        moment += timedelta(seconds=float("0" + match["frac"]))
    if match["sign"]:
        if int(match["oh"]) > 14 or int(match["om"]) > 59:
            return None
        offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"]))
        moment = moment - offset if match["sign"] == "+" else moment + offset
    return moment


def code(text: str) -> str:
    return re.sub(r"[ _-]+", "_", text.strip(WS).lower())


def field_rules(row: Row, load: datetime) -> None:
    """Rules a record breaks on its own; sets its key and references."""
    if row.values is None:
        row.rules = {"malformed_row"}
        return
    v = {name: text.strip(WS) for name, text in row.values.items()}
    rules = row.rules
    row.key, problem = to_key(v[KEYS[row.file]])
    if problem:
        rules.add(problem)
    for column, _, _ in REFERENCES.get(row.file, []):
        ref, problem = to_key(v[column])
        if problem:
            rules.add(problem)
        else:
            row.refs[column] = ref
    earliest = datetime(2000, 1, 1, tzinfo=UTC)

    def stamp(column: str, required: bool) -> None:
        if not v[column]:
            if required:
                rules.add("missing_required")
            return
        moment = to_instant(v[column])
        if moment is None:
            rules.add("invalid_timestamp")
        elif not earliest <= moment <= load:
            rules.add("out_of_range")

    def money(column: str, positive: bool) -> Decimal | None:
        if not v[column]:
            rules.add("missing_required")
            return None
        amount = to_money(v[column])
        if amount is None or amount < 0 or (positive and amount == 0):
            rules.add("invalid_amount")
            return None
        return amount

    def required(*columns: str) -> None:
        if any(not v[column] for column in columns):
            rules.add("missing_required")

    if row.file == "customers.csv":
        required("first_name", "last_name", "country", "email")
        if v["email"] and not EMAIL.fullmatch(v["email"]):
            rules.add("invalid_email")
        if not v["signup_date"]:
            rules.add("missing_required")
        else:
            day = to_day(v["signup_date"])
            if day is None:
                rules.add("invalid_date")
            elif not date(2000, 1, 1) <= day <= load.date():
                rules.add("out_of_range")
        stamp("updated_at", required=False)
    elif row.file == "products.csv":
        required("product_name", "category")
        money("unit_price", positive=True)
        money("cost", positive=False)
        stamp("updated_at", required=False)
    elif row.file == "transactions.csv":
        stamp("transaction_ts", required=True)
        required("payment_method", "status")
        if v["payment_method"] and code(v["payment_method"]) not in PAYMENTS:
            rules.add("invalid_payment_method")
        if v["status"] and code(v["status"]) not in STATUSES:
            rules.add("invalid_status")
    else:
        quantity = None
        if not v["quantity"]:
            rules.add("missing_required")
        elif DIGITS.fullmatch(v["quantity"]) and 1 <= int(v["quantity"]) <= 1000:
            quantity = int(v["quantity"])
        else:
            rules.add("invalid_quantity")
        price = money("unit_price", positive=False)
        if v["discount"]:
            discount = to_money(v["discount"])
            if discount is None or discount < 0:
                rules.add("invalid_discount")
            elif quantity is not None and price is not None and discount > quantity * price:
                rules.add("invalid_discount")


def tracked(row: Row) -> tuple:
    """The typed tracked attributes of an accepted row, for SCD comparisons."""
    v = {name: text.strip(WS) for name, text in (row.values or {}).items()}
    typed = []
    for column in TRACKED[row.file]:
        value = v[column]
        if column == "email":
            value = value.lower()
        elif column in ("unit_price", "cost"):
            value = Decimal(value)
        elif column == "transaction_ts":
            value = to_instant(value)
        elif column in ("payment_method", "status"):
            value = code(value)
        elif column == "customer_id":
            value = int(value)
        typed.append(value)
    return tuple(typed)


@dataclass
class Warehouse:
    """What production holds, as the contract describes it, batch after batch."""

    known: dict[str, set[int]] = field(default_factory=lambda: {n: set() for n in FILE_ORDER})
    current: dict[str, dict[int, tuple]] = field(
        default_factory=lambda: {n: {} for n in FILE_ORDER}
    )
    email_owner: dict[str, int] = field(default_factory=dict)
    orphans: list[tuple[str, Row]] = field(default_factory=list)  # (batch name, row)
    resolved: dict[tuple[str, str, int], str] = field(default_factory=dict)
    changes_seen: int = 0

    def process(self, directory: Path) -> tuple[dict, list[Row]]:
        load = datetime.fromisoformat(
            json.loads((directory / "manifest.json").read_text())["load_not_before"]
        )
        counts, rejected = {}, []
        for name in FILE_ORDER:
            _, rows = read_records(directory / name)
            for row in rows:
                field_rules(row, load)
            self.mark_duplicates(rows)
            self.check_references(name, rows)
            if name == "customers.csv":
                self.check_emails(rows)
            accepted = [row for row in rows if not row.rules]
            self.accept(name, accepted)
            rejected += [row for row in rows if row.rules]
            self.orphans += [(directory.name, row) for row in rows if is_orphan(row)]
            counts[name] = {"rows": len(rows), "accepted": len(accepted),
                            "rejected": len(rows) - len(accepted)}  # fmt: skip
        self.resolve(directory.name)
        return counts, rejected

    def mark_duplicates(self, rows: list[Row]) -> None:
        last_line = {row.key: row.line for row in rows if row.key is not None}
        for row in rows:
            if row.key is not None and last_line[row.key] != row.line:
                row.rules = {"duplicate_key"}

    def check_references(self, name: str, rows: list[Row]) -> None:
        for row in rows:
            if row.rules == {"duplicate_key"}:
                continue
            for column, parent, rule in REFERENCES.get(name, []):
                if column in row.refs and row.refs[column] not in self.known[parent]:
                    row.rules.add(rule)

    def check_emails(self, rows: list[Row]) -> None:
        claimed: dict[str, int | None] = {}
        for row in rows:
            if row.values is None or row.rules == {"duplicate_key"}:
                continue
            email = row.values["email"].strip(WS).lower()
            if not email or not EMAIL.fullmatch(email):
                continue
            owners = {self.email_owner.get(email, row.key), claimed.get(email, row.key)}
            if owners != {row.key}:
                row.rules.add("email_conflict")
            elif not row.rules:
                claimed[email] = row.key

    def accept(self, name: str, rows: list[Row]) -> None:
        for row in rows:
            if name != "transaction_items.csv":
                if row.key in self.known[name]:
                    assert tracked(row) != self.current[name][row.key], (name, row.line)
                    self.changes_seen += 1
                self.current[name][row.key] = tracked(row)
            self.known[name].add(row.key)
        if name == "customers.csv":
            self.email_owner = {
                attributes[2]: key for key, attributes in self.current[name].items()
            }

    def resolve(self, batch: str) -> None:
        """Accept orphans whose parents are now known, until none resolves."""
        progress = True
        while progress:
            progress = False
            waiting = []
            for origin, row in self.orphans:
                parents = [(parent, row.refs[column])
                           for column, parent, _ in REFERENCES[row.file]]  # fmt: skip
                if all(ref in self.known[parent] for parent, ref in parents):
                    if row.file != "transaction_items.csv":
                        self.current[row.file].setdefault(row.key, tracked(row))
                    self.known[row.file].add(row.key)
                    self.resolved[(origin, row.file, row.line)] = batch
                    progress = True
                else:
                    waiting.append((origin, row))
            self.orphans = waiting


def is_orphan(row: Row) -> bool:
    unknown = {"unknown_customer", "unknown_product", "unknown_transaction"}
    return bool(row.rules) and row.rules <= unknown


def test_manifests_match_an_independent_reading_of_the_contract(dirty_batches: Path) -> None:
    warehouse = Warehouse()
    derived: dict[str, tuple[dict, list[Row]]] = {}
    for directory in batch_dirs(dirty_batches):
        derived[directory.name] = warehouse.process(directory)
    seen_rules: set[str] = set()
    resolved = 0
    for directory in batch_dirs(dirty_batches):
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        counts, rejected = derived[directory.name]
        assert manifest["files"] == counts
        expected = [
            {"file": row.file, "line": row.line, "key": row.raw_key,
             "rules": sorted(row.rules)}
            | ({"resolved_by": warehouse.resolved[(directory.name, row.file, row.line)]}
               if (directory.name, row.file, row.line) in warehouse.resolved else {})
            for row in rejected
        ]  # fmt: skip
        assert manifest["defects"] == expected
        for defect in manifest["defects"]:
            seen_rules.update(defect["rules"])
            resolved += "resolved_by" in defect
    assert seen_rules == ALL_RULES
    assert resolved > 100
    assert warehouse.changes_seen > 100


def test_dirty_batches_use_every_file_variant(dirty_batches: Path) -> None:
    seen = Counter()
    for directory in batch_dirs(dirty_batches):
        for name in FILE_ORDER:
            data = (directory / name).read_bytes()
            header, _ = read_records(directory / name)
            first_line = data.split(b"\n", 1)[0].lstrip("\ufeff".encode())
            seen["bom"] += data.startswith("\ufeff".encode())
            seen["crlf"] += b"\r\n" in data
            seen["order"] += [h for h in header if h in COLUMNS[name]] != [
                c for c in COLUMNS[name] if c in header
            ]
            seen["case"] += first_line.decode().lower() != first_line.decode()
            seen["extra"] += any(h not in COLUMNS[name] for h in header)
            seen["no_discount"] += name == "transaction_items.csv" and "discount" not in header
            seen["blank_line"] += b"\n\n" in data or b"\n\r\n" in data
            seen["quoted_newline"] += bool(re.search(rb'"[^"\n]*\n[^"]*"', data))
    assert all(seen[variant] > 0 for variant in (
        "bom", "crlf", "order", "case", "extra", "no_discount", "blank_line", "quoted_newline",
    )), seen  # fmt: skip


def test_clean_change_rows_are_real_changes(clean_batches: Path) -> None:
    warehouse = Warehouse()
    for directory in batch_dirs(clean_batches):
        counts, rejected = warehouse.process(directory)
        assert rejected == []
    assert warehouse.changes_seen > 50


def test_change_rows_are_stamped_after_the_version_they_replace(clean_batches: Path) -> None:
    updated_at: dict[tuple[str, str], str] = {}
    period_start = "2025-01-01 00:00:00"
    changes = Counter()
    for directory in batch_dirs(clean_batches):
        manifest = json.loads((directory / "manifest.json").read_text())
        period_end = manifest["load_not_before"].replace("T", " ").rstrip("Z")
        for name in ("customers.csv", "products.csv"):
            for row in read_rows(directory / name):
                key = (name, row[KEYS[name]])
                if key in updated_at:
                    changes[name] += 1
                    assert updated_at[key] < row["updated_at"]
                    assert period_start <= row["updated_at"] < period_end
                updated_at[key] = row["updated_at"]
        statuses = Counter(row["status"] for row in read_rows(directory / "transactions.csv"))
        assert statuses["refunded"] > 0
        period_start = period_end
    assert changes["customers.csv"] > 20
    assert changes["products.csv"] > 10


def test_initial_share_gives_a_large_first_batch_and_even_increments() -> None:
    from generator.timeline import Timeline

    bounds = Timeline(date(2025, 1, 1), 365, 11, initial_share=0.9).bounds().tolist()
    assert bounds[0] == 0 and bounds[1] == 328 and bounds[-1] == 365
    spans = [b - a for a, b in zip(bounds[1:-1], bounds[2:], strict=True)]
    assert len(spans) == 10 and set(spans) <= {3, 4} and sum(spans) == 37
    assert Timeline(date(2025, 1, 1), 10, 2).bounds().tolist() == [0, 5, 10]
