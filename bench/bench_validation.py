"""Benchmark of validation and the production merge: ``python -m bench.bench_validation``.

Stages one batch straight into ``staging.*`` with ``INSERT ... SELECT generate_series``
(raw text as ingestion would stage it: the generator's plain forms, about ``--dirty`` of the
rows broken in ways the contract rejects, a few duplicates and orphans), independent of the
generator and of ingestion, then times ``CALL staging.validate_batch`` and
``CALL production.merge_batch`` (each its own transaction, as the pipeline runs them) and
prints a Markdown table for docs/performance.md.

The database is a scratch one, ``bench_validation`` (dropped and created, then migrated),
on the server of DATABASE_URL or of the embedded cluster, so no other data is touched.
Default volumes: 100k customers, 5k products, 1M transactions, 3 items per transaction.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg2.extensions

from runner import migrate
from runner.config import load_config
from runner.db import connect, database_url

log = logging.getLogger("bench.validation")

SCRATCH_DB = "bench_validation"


@dataclass(frozen=True)
class Volumes:
    customers: int
    products: int
    transactions: int
    items_per_transaction: int
    dirty_every: int  # one row in this many carries a defect (0: none)

    @property
    def items(self) -> int:
        return self.transactions * self.items_per_transaction


def dirty(column_sql: str, bad_sql: str, every: int, phase: int) -> str:
    """SQL: ``bad_sql`` on one row in ``every`` (offset ``phase``), ``column_sql`` otherwise."""
    if every <= 0:
        return column_sql
    return f"case when g % {every} = {phase} then {bad_sql} else {column_sql} end"


def staging_sql(v: Volumes) -> list[str]:
    """The INSERT ... SELECT statements staging the batch (batch_id 1, lines from 2)."""
    e = v.dirty_every
    return [
        f"""
insert into staging.customers (batch_id, line_no, customer_id, first_name, last_name, email,
    phone, city, state, country, signup_date, updated_at)
select 1, g + 1, g::text, 'First' || g, 'Last' || g,
    {dirty("'customer' || g || '@example.com'", "'no-at-sign.example.com'", e, 1)},
    '555-' || lpad((g % 10000)::text, 4, '0'), 'City ' || (g % 500), 'ST', 'US',
    {dirty("to_char(date '2020-01-01' + g % 1500, 'YYYY-MM-DD')", "'2023-02-30'", e, 2)},
    case when g % 10 = 0
         then to_char(timestamp '2024-01-01' + g * interval '1 minute', 'YYYY-MM-DD HH24:MI:SS')
         else '' end
from generate_series(1, {v.customers}) g
""",
        f"""
insert into staging.products (batch_id, line_no, product_id, product_name, category, brand,
    unit_price, cost, updated_at)
select 1, g + 1, g::text, 'Product ' || g, 'Category ' || (g % 40), 'Brand ' || (g % 90),
    {dirty("to_char(5 + (g % 9000) / 100.0, 'FM99990.00')", "'free'", e, 3)},
    to_char(2 + (g % 3000) / 100.0, 'FM99990.00'), ''
from generate_series(1, {v.products}) g
""",
        f"""
insert into staging.transactions (batch_id, line_no, transaction_id, customer_id,
    transaction_ts, payment_method, status)
select 1, g + 1, g::text,
    {dirty(f"(1 + g % {v.customers})::text", f"({v.customers} + 1 + g)::text", e, 4)},
    {dirty("to_char(timestamp '2024-01-01' + g * interval '31 second', 'YYYY-MM-DD HH24:MI:SS')",
           "'2024-13-01 00:00:00'", e, 5)},
    (array['credit_card', 'debit_card', 'paypal', 'bank_transfer', 'cash_on_delivery',
           'gift_card'])[1 + g % 6],
    {dirty("(array['completed', 'completed', 'completed', 'pending', 'cancelled', "
           "'refunded'])[1 + g % 6]", "'shipped'", e, 6)}
from generate_series(1, {v.transactions}) g
""",
        f"""
insert into staging.transaction_items (batch_id, line_no, item_id, transaction_id, product_id,
    quantity, unit_price, discount)
select 1, g + 1, g::text, (1 + (g - 1) / {v.items_per_transaction})::text,
    (1 + g % {v.products})::text,
    {dirty("(1 + g % 5)::text", "'abc'", e, 7)},
    {dirty("to_char(5 + (g % 9000) / 100.0, 'FM99990.00')", "'12,50'", e, 8)},
    case when g % 4 = 0 then '1.00' else '0.00' end
from generate_series(1, {v.items}) g
""",
    ]


def prepare(url: str, v: Volumes) -> None:
    """Migrate the scratch database and stage the batch with its ledger rows."""
    migrate.upgrade(url)
    with session(url) as cur:
        cur.execute(
            "insert into etl.batch (batch_name, source_path) values ('bench_0001', 'bench') "
            "returning batch_id"
        )
        (batch_id,) = cur.fetchone()
        if batch_id != 1:
            raise RuntimeError("the scratch database is not empty")
        for statement in staging_sql(v):
            started = time.perf_counter()
            cur.execute(statement)
            log.info("staged %s rows in %.1f s", cur.rowcount, time.perf_counter() - started)
        counts = {
            "customers.csv": v.customers, "products.csv": v.products,
            "transactions.csv": v.transactions, "transaction_items.csv": v.items,
        }
        for index, (file_name, rows) in enumerate(counts.items()):
            cur.execute(
                "insert into etl.batch_file (batch_id, file_name, sha256, size_bytes, header, "
                "rows_in_file, rows_staged, rows_malformed) "
                "values (1, %s, lpad(%s, 64, '0'), 0, '{}', %s, %s, 0)",
                (file_name, str(index), rows, rows),
            )
        cur.execute("vacuum analyze staging.customers, staging.products, staging.transactions,"
                    " staging.transaction_items")
        cur.execute("checkpoint")


def timed_call(url: str, procedure: str) -> tuple[float, list[str]]:
    """Seconds of one CALL in its own transaction, and its notices."""
    with session(url) as cur:
        started = time.perf_counter()
        cur.execute(f"call {procedure}(1)")
        seconds = time.perf_counter() - started
        notices = [n.strip() for n in cur.connection.notices]
    return seconds, notices


@contextmanager
def session(url: str) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor of an autocommit connection, closed afterwards."""
    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def scratch_url(server_url: str) -> str:
    """The server's URL with the scratch database, dropped and created afresh."""
    with session(server_url) as cur:
        cur.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
            (SCRATCH_DB,),
        )
        cur.execute(f"drop database if exists {SCRATCH_DB}")
        cur.execute(f"create database {SCRATCH_DB}")
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{SCRATCH_DB}"))


REFERENCE_UPSERTS = (
    """insert into production.customers (customer_id, first_name, last_name, email, phone,
        city, state, country, signup_date, source_updated_at, source_batch_id)
    select customer_id, first_name, last_name, email, phone, city, state, country,
        signup_date, source_updated_at, 1
    from staging.validated_customers where batch_id = 1 and rules is null
    on conflict (customer_id) do update set city = excluded.city""",
    """insert into production.categories (category_name)
    select distinct category from staging.validated_products where batch_id = 1
    on conflict do nothing""",
    """insert into production.products (product_id, product_name, category_id, brand,
        unit_price, cost, source_batch_id)
    select v.product_id, v.product_name, c.category_id, v.brand, v.unit_price, v.cost, 1
    from staging.validated_products v join production.categories c
        on c.category_name = v.category
    where v.batch_id = 1 and v.rules is null
    on conflict (product_id) do update set cost = excluded.cost""",
    """insert into production.transactions (transaction_id, customer_id, transaction_ts,
        payment_method_code, status_code, source_batch_id)
    select transaction_id, customer_id, transaction_ts, payment_method_code, status_code, 1
    from staging.validated_transactions where batch_id = 1 and rules is null
    on conflict (transaction_id) do update set status_code = excluded.status_code""",
    """insert into production.transaction_items (item_id, transaction_id, product_id,
        quantity, unit_price, discount, source_batch_id)
    select item_id, transaction_id, product_id, quantity, unit_price, coalesce(discount, 0), 1
    from staging.validated_transaction_items where batch_id = 1 and rules is null
    on conflict (item_id) do update set quantity = excluded.quantity""",
)


def reference_upserts(url: str, foreign_key_triggers: bool) -> float:
    """Seconds of bare typed upserts of the accepted rows into production tables emptied by
    TRUNCATE in the same transaction (every index; foreign-key triggers per row or skipped),
    rolled back afterwards."""
    with session(url) as cur:
        cur.execute("begin")
        if not foreign_key_triggers:
            cur.execute("set local session_replication_role = replica")
        cur.execute("truncate production.transaction_items, production.transactions, "
                    "production.products, production.customers")
        started = time.perf_counter()
        for statement in REFERENCE_UPSERTS:
            cur.execute(statement)
        seconds = time.perf_counter() - started
        cur.execute("rollback")
    return seconds


def run(v: Volumes, keep: bool, reference: bool) -> list[tuple[str, float]]:
    config = load_config()
    server = database_url(config)
    url = scratch_url(server)
    log.info("scratch database %s", SCRATCH_DB)
    prepare(url, v)
    results = []
    for procedure in ("staging.validate_batch", "production.merge_batch"):
        seconds, notices = timed_call(url, procedure)
        for notice in notices:
            log.info("%s", notice)
        results.append((procedure, seconds))
    if reference:
        for triggers in (False, True):
            label = ("reference: bare typed upserts, foreign keys checked per row" if triggers
                     else "reference: bare typed upserts, foreign-key triggers skipped")
            results.append((label, reference_upserts(url, triggers)))
    if not keep:
        with session(server) as cur:
            cur.execute(f"drop database if exists {SCRATCH_DB}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_validation",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--items-per-transaction", type=int, default=3)
    parser.add_argument("--dirty-every", type=int, default=100,
                        help="one row in N of each kind carries a defect (0: clean data)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reference", action="store_true",
                        help="also time bare typed upserts of the accepted rows (INSERT ... ON "
                             "CONFLICT, every index), with and without foreign-key triggers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    volumes = Volumes(args.customers, args.products, args.transactions,
                      args.items_per_transaction, args.dirty_every)
    started = os.getloadavg()
    results = run(volumes, args.keep, args.reference)
    pipeline = [(step, seconds) for step, seconds in results if step.startswith("staging.")
                or step.startswith("production.")]
    total = sum(seconds for _, seconds in pipeline)
    print(f"\n{volumes.customers:,} customers, {volumes.products:,} products, "
          f"{volumes.transactions:,} transactions, {volumes.items:,} items\n")
    print(f"load average before / after: {started[0]:.2f} / {os.getloadavg()[0]:.2f}\n")
    print("| step | seconds |\n|---|---:|")
    for procedure, seconds in pipeline:
        print(f"| `CALL {procedure}(1)` | {seconds:.1f} |")
    print(f"| validate + merge | {total:.1f} |")
    for label, seconds in results:
        if label.startswith("reference"):
            print(f"| {label} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
