"""Batches built directly in the database, without CSV files or ingestion.

Tests of validation, the merge, orphans and the warehouse state the smallest data that shows
a rule as Python dicts of raw text (what ingestion would stage), and this module writes them
where ingestion would: ``etl.batch``, ``etl.batch_file`` (the ledger: a unique fake SHA-256,
the header, rows in file = staged + malformed), ``staging.<file>`` (line 2 onwards unless a
row says ``"_line"``) and, for malformed records, ``etl.rejected_row`` (rule malformed_row,
raw text). Values are stored as given, untrimmed; a column missing from a dict is NULL (as
for an optional column absent from the file).

    batch = create_batch(conn, {
        "customers.csv": [customer(1), customer(2, email="ANN@EXAMPLE.COM ")],
        "transactions.csv": [transaction(10, customer_id="1")],
    })
    run_batch(conn, batch)      # validate, merge, reprocess orphans

``customer``, ``product``, ``transaction`` and ``item`` return valid rows; keyword
arguments override columns (``None`` for a NULL, ``""`` for an empty field).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import psycopg2.extensions
from psycopg2.extras import execute_values

Row = Mapping[str, str | int | None]

FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "customers.csv": ("customers", (
        "customer_id", "first_name", "last_name", "email", "phone", "city", "state",
        "country", "signup_date", "updated_at",
    )),
    "products.csv": ("products", (
        "product_id", "product_name", "category", "brand", "unit_price", "cost", "updated_at",
    )),
    "transactions.csv": ("transactions", (
        "transaction_id", "customer_id", "transaction_ts", "payment_method", "status",
    )),
    "transaction_items.csv": ("transaction_items", (
        "item_id", "transaction_id", "product_id", "quantity", "unit_price", "discount",
    )),
}
FILE_ORDER = tuple(FILES)
DEFAULT_LOAD_TS = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def customer(customer_id: int | str, **values: str | None) -> dict[str, str | None]:
    """A valid customers.csv row; keyword arguments override columns."""
    row: dict[str, str | None] = {
        "customer_id": str(customer_id), "first_name": "Ann", "last_name": "Lee",
        "email": f"customer{customer_id}@example.com", "phone": "555-0100",
        "city": "Springfield", "state": "IL", "country": "US", "signup_date": "2024-01-15",
        "updated_at": "",
    }
    row.update(values)
    return row


def product(product_id: int | str, **values: str | None) -> dict[str, str | None]:
    """A valid products.csv row; keyword arguments override columns."""
    row: dict[str, str | None] = {
        "product_id": str(product_id), "product_name": f"Product {product_id}",
        "category": "Books", "brand": "Acme", "unit_price": "19.90", "cost": "7.50",
        "updated_at": "",
    }
    row.update(values)
    return row


def transaction(transaction_id: int | str, **values: str | None) -> dict[str, str | None]:
    """A valid transactions.csv row (customer 1 unless overridden)."""
    row: dict[str, str | None] = {
        "transaction_id": str(transaction_id), "customer_id": "1",
        "transaction_ts": "2025-05-01 10:00:00", "payment_method": "credit_card",
        "status": "completed",
    }
    row.update(values)
    return row


def item(item_id: int | str, **values: str | None) -> dict[str, str | None]:
    """A valid transaction_items.csv row (transaction 10, product 100 unless overridden)."""
    row: dict[str, str | None] = {
        "item_id": str(item_id), "transaction_id": "10", "product_id": "100",
        "quantity": "2", "unit_price": "19.90", "discount": "0.00",
    }
    row.update(values)
    return row


def create_batch(
    conn: psycopg2.extensions.connection,
    files: Mapping[str, Sequence[Row]],
    *,
    name: str | None = None,
    load_ts: datetime = DEFAULT_LOAD_TS,
    malformed: Mapping[str, Sequence[tuple[int, str]]] | None = None,
) -> int:
    """Stage a batch as ingestion would and return its batch_id.

    ``files``: rows per file name; a row's ``"_line"`` sets its physical line (default: the
    next line after the previous row, from 2). ``malformed``: (line, raw text) per file,
    recorded as rejected malformed_row records. Commits (the connection may be autocommit).
    """
    malformed = malformed or {}
    unknown = (set(files) | set(malformed)) - set(FILES)
    if unknown:
        raise ValueError(f"not a contract file: {sorted(unknown)}")
    with conn.cursor() as cur:
        cur.execute(
            "insert into etl.batch (batch_name, source_path, load_ts) values (%s, %s, %s) "
            "returning batch_id",
            (name or f"test_{uuid.uuid4().hex[:8]}", "/tests", load_ts),
        )
        (batch_id,) = cur.fetchone()
        for file_name in FILE_ORDER:
            if file_name in files or file_name in malformed:
                _stage_file(cur, batch_id, file_name, files.get(file_name, ()),
                            malformed.get(file_name, ()))
    if not conn.autocommit:
        conn.commit()
    return batch_id


def _stage_file(cur: psycopg2.extensions.cursor, batch_id: int, file_name: str,
                rows: Sequence[Row], malformed: Sequence[tuple[int, str]]) -> None:
    table, columns = FILES[file_name]
    staged = []
    line = 1
    for row in rows:
        extra = set(row) - set(columns) - {"_line"}
        if extra:
            raise ValueError(f"{file_name}: unknown columns {sorted(extra)}")
        line = int(row.get("_line") or line + 1)
        staged.append((batch_id, line, *(_text(row.get(column)) for column in columns)))
    if staged:
        execute_values(
            cur,
            f"insert into staging.{table} (batch_id, line_no, {', '.join(columns)}) values %s",
            staged,
        )
    for malformed_line, raw_text in malformed:
        cur.execute(
            "insert into etl.rejected_row (batch_id, file_name, line_no, rules, raw_text) "
            "values (%s, %s, %s, array['malformed_row'], %s)",
            (batch_id, file_name, malformed_line, raw_text),
        )
    sha = hashlib.sha256(f"{batch_id}/{file_name}/{uuid.uuid4()}".encode()).hexdigest()
    cur.execute(
        "insert into etl.batch_file (batch_id, file_name, sha256, size_bytes, header, "
        "rows_in_file, rows_staged, rows_malformed) values (%s, %s, %s, 0, %s, %s, %s, %s)",
        (batch_id, file_name, sha, list(columns), len(staged) + len(malformed), len(staged),
         len(malformed)),
    )


def _text(value: str | int | None) -> str | None:
    return None if value is None else str(value)


def call(conn: psycopg2.extensions.connection, procedure: str, *args: object) -> list[str]:
    """CALL a procedure; returns the messages of the notices it raised."""
    del conn.notices[:]
    placeholders = ", ".join(["%s"] * len(args))
    with conn.cursor() as cur:
        cur.execute(f"call {procedure}({placeholders})", args)
    if not conn.autocommit:
        conn.commit()
    return [notice.strip().split(":  ", 1)[-1] for notice in conn.notices]


def run_batch(conn: psycopg2.extensions.connection, batch_id: int) -> None:
    """Validate, merge and reprocess orphans for one batch, as the pipeline does."""
    call(conn, "staging.validate_batch", batch_id)
    call(conn, "production.merge_batch", batch_id)
    call(conn, "etl.reprocess_rejects", batch_id)


def rejects(conn: psycopg2.extensions.connection, batch_id: int,
            file_name: str | None = None) -> dict[int, list[str]]:
    """Rules of the open rejects of a batch (one file or all), by line."""
    with conn.cursor() as cur:
        cur.execute(
            "select line_no, rules from etl.rejected_row where batch_id = %s "
            "and (%s::text is null or file_name = %s) and resolved_at is null order by line_no",
            (batch_id, file_name, file_name),
        )
        return {line: sorted(rules) for line, rules in cur.fetchall()}


def fetch(conn: psycopg2.extensions.connection, sql: str, params: Sequence[object] = ()
          ) -> list[tuple]:
    """Rows of a query."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def hold_no_batch(conn: psycopg2.extensions.connection) -> None:
    """Turn the batch checks' error threshold off (etl.dq_threshold, docs/data-contract.md "Batch
    checks, holds and alerts"): a tiny batch that shows a rule rejects most of its rows and
    would be held before its merge. For tests about something else than holds."""
    with conn.cursor() as cur:
        cur.execute("update etl.dq_threshold set error_ratio = null")
    if not conn.autocommit:
        conn.commit()
