"""Benchmark of the erasure of a customer: ``python -m bench.bench_erasure``.

The worst case for etl.erase_customer is a full staging and a large quarantine: the rows of
a customer id in staging and in the quarantine are found by their raw key, and the
addresses in other rows by their value, so those tables are read whole. This stages one
batch as bench.bench_validation does (default 100k customers, 1M transactions, 3M items, one
row in 100 of each kind with a defect: about 280,000 quarantined rows), validates and merges
it and loads the dimensions, leaves staging unpurged, then times ``CALL
etl.erase_customer`` of several customers, each its own transaction, and the merge of a
second batch that delivers an erased customer again against one that delivers none.
Prints a Markdown table for docs/performance.md. Scratch database as bench_validation's.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from bench.bench_validation import SCRATCH_DB, Volumes, prepare, scratch_url, session
from runner.config import load_config
from runner.db import database_url

log = logging.getLogger("bench.erasure")

ERASED_IDS = (42, 4242, 42424)
SECOND_BATCH_SQL = """
insert into etl.batch (batch_name, source_path) values (%(name)s, 'bench') returning batch_id
"""
SECOND_BATCH_ROWS_SQL = """
insert into staging.customers (batch_id, line_no, customer_id, first_name, last_name, email,
    phone, city, state, country, signup_date, updated_at)
select %(batch_id)s, g + 1, (%(first_id)s + g)::text, 'First', 'Last',
       'again' || %(first_id)s + g || '@example.com', '555', 'Moved', 'ST', 'US',
       '2024-01-15', ''
from generate_series(0, 999) g;
insert into etl.batch_file (batch_id, file_name, sha256, size_bytes, header, rows_in_file,
    rows_staged, rows_malformed)
values (%(batch_id)s, 'customers.csv', lpad(%(batch_id)s::text, 64, 'a'), 0, '{}', 1000, 1000, 0)
"""


def timed(url: str, sql: str, params: tuple | dict = ()) -> float:
    with session(url) as cur:
        started = time.perf_counter()
        cur.execute(sql, params)
        return time.perf_counter() - started


def second_batch(url: str, name: str, first_id: int) -> float:
    """Seconds of validate + merge of 1,000 customers starting at ``first_id``."""
    with session(url) as cur:
        cur.execute(SECOND_BATCH_SQL, {"name": name})
        (batch_id,) = cur.fetchone()
        cur.execute(SECOND_BATCH_ROWS_SQL, {"batch_id": batch_id, "first_id": first_id})
    timed(url, "call staging.validate_batch(%s)", (batch_id,))
    return timed(url, "call production.merge_batch(%s)", (batch_id,))


def run(v: Volumes) -> list[tuple[str, float]]:
    server = database_url(load_config())
    url = scratch_url(server)
    prepare(url, v)
    for procedure in ("staging.validate_batch", "production.merge_batch",
                      "warehouse.load_dimensions"):
        log.info("%s: %.1f s", procedure, timed(url, f"call {procedure}(1)"))
    with session(url) as cur:
        cur.execute("select count(*) from etl.rejected_row")
        log.info("quarantined rows: %s", cur.fetchone()[0])
    results = [(f"CALL etl.erase_customer({customer_id}, 'bench')",
                timed(url, "call etl.erase_customer(%s, 'bench')", (customer_id,)))
               for customer_id in ERASED_IDS]
    results.append(("second call for an erased id (nothing to do)",
                    timed(url, "call etl.erase_customer(%s, 'bench')", (ERASED_IDS[0],))))
    results.append(("merge of 1,000 customers, none erased",
                    second_batch(url, "bench_0002", 50_000)))
    results.append(("merge of 1,000 customers, one of them erased",
                    second_batch(url, "bench_0003", ERASED_IDS[0])))
    with session(server) as cur:
        cur.execute(f"drop database if exists {SCRATCH_DB}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_erasure",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    before = os.getloadavg()[0]
    results = run(Volumes(args.customers, 5_000, args.transactions, 3, 100))
    after = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} CPU(s); load average before/after: {before:.2f} / {after:.2f}")
    print("| operation | seconds |\n|---|---|")
    for label, seconds in results:
        print(f"| {label} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
