"""``python -m bench.bench_field_limit``: the longest field every step can process.

Ingestion bounds a record (runner/csvstream.MAX_RECORD_BYTES); the steps after it must
process any record ingestion accepts, or a batch passes ingest and then fails validation or
the merge on every run (a poison batch). This measures it: for each size and each text
column, a batch whose one row holds a field of that size (streamed to a file, never kept)
goes through ingest and every step on a fresh database of a throwaway cluster; the output
says which step failed, with the database's message, or the time the batch took.

    python -m bench.bench_field_limit --sizes 2000,2001,1M --columns product_name,email
    python -m bench.bench_field_limit --no-field-limit --sizes 2000,2800,1M,64M

Figures and the command that produced them are in docs/performance.md ("Field limit").
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg2

from runner import csvstream, migrate
from runner.config import RetryPolicy
from runner.ingest import BatchRefused, ingest_batch
from runner.localdb import WAREHOUSE_SETTINGS, LocalCluster
from runner.pipeline import RunOptions, run_pipeline

HEADERS = {
    "customers.csv": "customer_id,first_name,last_name,email,country,signup_date",
    "products.csv": "product_id,product_name,category,brand,unit_price,cost",
    "transactions.csv": "transaction_id,customer_id,transaction_ts,payment_method,status",
    "transaction_items.csv": "item_id,transaction_id,product_id,quantity,unit_price",
}
ROWS = {
    "customers.csv": ["1", "{first_name}", "{last_name}", "{email}", "{country}", "2024-01-01"],
    "products.csv": ["1", "{product_name}", "{category}", "{brand}", "1.00", "0.50"],
    "transactions.csv": ["1", "1", "2024-02-01T10:00:00Z", "paypal", "completed"],
    "transaction_items.csv": ["1", "1", "1", "1", "1.00"],
}
DEFAULTS = {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
            "country": "NO", "product_name": "Lamp", "category": "Home", "brand": "Acme"}
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


def parse_size(text: str) -> int:
    text = text.strip().upper()
    unit = text[-1] if text[-1] in _UNITS else ""
    return int(text[:-1] if unit else text) * _UNITS[unit]


def write_batch(folder: Path, column: str, size: int) -> Path:
    """A batch of one row per file; ``column`` holds ``size`` bytes (an e-mail stays one)."""
    batch = folder / "batch_0001"
    batch.mkdir(parents=True)
    for file_name, header in HEADERS.items():
        with open(batch / file_name, "w") as out:
            out.write(header + "\n")
            for cell in ROWS[file_name]:
                name = cell.strip("{}")
                if cell.startswith("{") and name == column:
                    _stream_value(out, column, size)
                else:
                    out.write(DEFAULTS.get(name, cell) if cell.startswith("{") else cell)
                out.write("," if cell is not ROWS[file_name][-1] else "\n")
    return batch


def _stream_value(out, column: str, size: int) -> None:  # noqa: ANN001
    """Random letters (base64 of random bytes): values that do not compress, as a btree
    index sees the worst case."""
    suffix = "@example.com" if column == "email" else ""
    left = size - len(suffix)
    while left > 0:
        block = base64.b64encode(os.urandom(min(left, 3 << 20))).decode()[:left]
        out.write(block)
        left -= len(block)
    out.write(suffix)


def measure(cluster: LocalCluster, column: str, size: int) -> str:
    name = f"field_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(cluster.url("postgres"))
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    url = cluster.url(name)
    folder = Path(tempfile.mkdtemp(prefix="field-limit-"))
    try:
        migrate.upgrade(url)
        batch = write_batch(folder, column, size)
        began = time.monotonic()
        try:
            ingest_batch(url, batch)
        except BatchRefused as refused:
            return f"refused at ingest: {refused.refusal.message}"
        options = RunOptions(landing=None, retry=RetryPolicy(attempts=1))
        result = run_pipeline(url, options, threading.Event())
        seconds = time.monotonic() - began
        if result.status != "succeeded":
            return f"FAILED after {seconds:.1f}s: {result.error}"
        return f"ok in {seconds:.1f}s"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        admin.cursor().execute(f'drop database "{name}" with (force)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1K,3K,1M,16M,64M")
    parser.add_argument("--columns", default="product_name,category,email")
    parser.add_argument("--no-field-limit", action="store_true",
                        help="lift ingestion's limits, to see where the later steps fail")
    args = parser.parse_args()
    if args.no_field_limit:
        csvstream.MAX_RECORD_BYTES = 1024 ** 3
        csvstream.MAX_FIELD_BYTES = 1024 ** 3
    cluster = LocalCluster(Path(tempfile.gettempdir()) / f"field-limit-{uuid.uuid4().hex[:8]}",
                           dbname="postgres", fast_init=True,
                           settings={**WAREHOUSE_SETTINGS, "shared_buffers": "256MB",
                                     "fsync": "off"})  # thrown away afterwards
    cluster.start()
    try:
        for size_text in args.sizes.split(","):
            for column in args.columns.split(","):
                outcome = measure(cluster, column, parse_size(size_text))
                print(f"{column:14} {size_text:>6}  {outcome}", flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.base, ignore_errors=True)


if __name__ == "__main__":
    main()
