"""``python -m bench.feed_replay``: the status feed (or a daily batch) again, on its database.

The status feed (``batch_0002`` of ``python -m bench --preset history``, bench/history.py) is
the write target that is hardest to meet, and measuring a change of it by a whole history
takes a quarter of an hour. This replays it on the database the history preset left, in
about a minute, rolled back, so a change of the steps' procedures is compared with the
procedures as they are, alternated, on the same database:

1. The feed's files, with each transaction's status changed against the status production
   holds now (a status other than completed becomes completed, 97 in 100; a completed one
   becomes refunded or cancelled, 9 in 10; seeded, so every replay of one database is the
   same feed): about 244,000 status changes over the whole history at 5M, the items as the
   feed delivered them. Written once under ``bench/out/feed-replay-<orders>/``, rows in
   reverse order (new file hashes: ingestion takes each file once).
2. For each replay: the files ingested as a new batch (committed: ingestion commits), then
   ``CHECKPOINT``, then every per-batch step of the chain (``etl.pipeline_step``, but marking
   the batch processed and retention) called and timed in one transaction, which is rolled
   back; the batch's ledger rows are deleted (the next replay ingests the same bytes again)
   and the tables the replay wrote are vacuumed, so the next one starts from the same state.
   ``--daily``: an ordinary daily batch instead (``batch_0007``, about 7,000 orders and
   20,000 lines), its orders and their lines given new ids (DAILY_OFFSET added), so that they
   are new to the database; the lines of orders it does not carry, and the customers and
   products, as delivered. Written under ``bench/out/daily-replay-<orders>/``.
3. ``--try FILE...``: procedures/ files applied first in the replay's transaction (rolled
   back with it); with ``--repeat N``, N replays as they are and N with the files,
   alternated (as is, tried, as is, ...).
4. ``--step STEP`` (with ``--try``): one replay; the steps before STEP run once, then STEP
   is timed 2N times from the same state (a savepoint, rolled back to after each), as it is
   and with the files, in the order as is, tried, tried, as is, ...: a change of one step
   measured without the noise of separate replays, each of which ingests and vacuums.

The database: ``--url``, else ``warehouse_history`` on the durable server of this checkout.
Results go to stdout and ``bench/out/feed-replay-<orders>.json`` (``daily-replay-<orders>.json``
with ``--daily``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.drill_downs import history_url
from bench.history import HISTORY_ORDERS, OUT, fetch, generate, load, read_csv, write_csv
from runner.db import connect
from runner.ingest import ingest_batch
from runner.steps import read_steps

FEED = "batch_0002"
DAILY = "batch_0007"
DAILY_OFFSET = 1_000_000_000  # order and line ids of the daily replay: above the history's
SKIPPED_STEPS = ("mark_processed", "apply_retention")
# what a replay writes (rolled back) and leaves dead rows in: vacuumed after each replay
WRITTEN = ("production.transactions", "production.transaction_items", "production.customers",
           "production.products", "staging.transaction_changes", "warehouse.fact_order_status",
           "warehouse.fact_sales", "warehouse.agg_delta", "warehouse.agg_refresh_queue",
           "warehouse.agg_daily_sales", "warehouse.agg_product_monthly",
           "warehouse.agg_customer_activity", "warehouse.agg_payment_method_monthly",
           "etl.batch_step")


def feed_files(url: str, orders: int) -> Path:
    """The feed's files with statuses changed against production's (step 1)."""
    source = generate(orders) / FEED
    target = OUT / f"feed-replay-{orders}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    header, rows = read_csv(source / "transactions.csv")
    key, status = header.index("transaction_id"), header.index("status")
    now = dict(fetch(url, "select transaction_id, status_code from production.transactions "
                          "where transaction_id = any(%s)", ([int(r[key]) for r in rows],)))
    draw = random.Random(2026)
    for row in rows:
        current = now.get(int(row[key]))
        if current is None:
            continue
        chance = draw.random()
        if current != "completed":
            row[status] = ("completed" if chance < 0.97
                           else "cancelled" if current != "cancelled" else "refunded")
        else:
            row[status] = ("refunded" if chance < 0.6
                           else "cancelled" if chance < 0.9 else "completed")
    write_csv(target / "transactions.csv", header, list(reversed(rows)))
    for name in ("customers", "products", "transaction_items"):
        if (source / f"{name}.csv").exists():
            lines = (source / f"{name}.csv").read_text(encoding="utf-8").splitlines()
            (target / f"{name}.csv").write_text(
                "\n".join([lines[0], *reversed(lines[1:])]) + "\n", encoding="utf-8")
    return target


def daily_files(orders: int) -> Path:
    """An ordinary daily batch whose orders and their lines are new (``--daily``)."""
    source = generate(orders) / DAILY
    target = OUT / f"daily-replay-{orders}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    header, rows = read_csv(source / "transactions.csv")
    key = header.index("transaction_id")
    carried = {row[key] for row in rows}
    for row in rows:
        row[key] = str(int(row[key]) + DAILY_OFFSET)
    write_csv(target / "transactions.csv", header, rows)
    header, rows = read_csv(source / "transaction_items.csv")
    item, order = header.index("item_id"), header.index("transaction_id")
    for row in rows:
        if row[order] in carried:
            row[item] = str(int(row[item]) + DAILY_OFFSET)
            row[order] = str(int(row[order]) + DAILY_OFFSET)
    write_csv(target / "transaction_items.csv", header, rows)
    for name in ("customers", "products"):
        if (source / f"{name}.csv").exists():
            shutil.copy(source / f"{name}.csv", target / f"{name}.csv")
    return target


@contextmanager
def replay_session(url: str, files: Path) -> Iterator[tuple[int, object, list]]:
    """The replayed files ingested as a new batch, then (its id, a cursor of one
    transaction, the per-batch steps a replay runs, in order); after, the transaction rolled
    back, the batch's ledger rows deleted and the tables a replay writes vacuumed."""
    landing = OUT / f"feed-replay-landing-{uuid.uuid4().hex[:8]}"
    shutil.copytree(files, landing)
    try:
        batch_id = ingest_batch(url, landing).batch_id
    finally:
        shutil.rmtree(landing)
    assert batch_id is not None, f"{files} loaded nothing"
    fetch(url, "checkpoint")
    conn = connect(url)
    try:
        steps = [s for s in read_steps(conn) if s.per_batch and s.name not in SKIPPED_STEPS]
        with conn.cursor() as cur:
            yield batch_id, cur, steps
    finally:
        conn.rollback()
        conn.close()
        fetch(url, "delete from etl.batch_file where batch_id = %s", (batch_id,))
        for table in WRITTEN:
            fetch(url, f"vacuum {table}")


def apply_files(cur, tried: list[Path]) -> None:
    for path in tried:
        cur.execute(path.read_text(encoding="utf-8"))


def replay(url: str, files: Path, tried: list[Path]) -> dict[str, float]:
    """One replay (step 2): each step's seconds."""
    timings: dict[str, float] = {}
    with replay_session(url, files) as (batch_id, cur, steps):
        apply_files(cur, tried)
        for step in steps:
            started = time.perf_counter()
            cur.execute(step.sql, {"batch_id": batch_id})
            timings[step.name] = time.perf_counter() - started
    return timings


def replay_step(url: str, files: Path, tried: list[Path], name: str,
                repeat: int) -> list[tuple[str, float]]:
    """One replay timing step ``name`` as is and tried, alternated (step 4)."""
    timings: list[tuple[str, float]] = []
    with replay_session(url, files) as (batch_id, cur, steps):
        names = [s.name for s in steps]
        if name not in names:
            raise SystemExit(f"--step {name}: not a per-batch step ({', '.join(names)})")
        timed = names.index(name)
        for step in steps[:timed]:
            cur.execute(step.sql, {"batch_id": batch_id})
        cur.execute("savepoint before_step")
        for turn in range(repeat):
            for kind in (("as is", "tried") if turn % 2 == 0 else ("tried", "as is")):
                if kind == "tried":
                    apply_files(cur, tried)
                started = time.perf_counter()
                cur.execute(steps[timed].sql, {"batch_id": batch_id})
                timings.append((kind, time.perf_counter() - started))
                cur.execute("rollback to savepoint before_step")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.feed_replay",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="the history database (default: warehouse_history "
                        "on this checkout's durable server)")
    parser.add_argument("--try", dest="tried", nargs="+", type=Path, default=[],
                        metavar="FILE", help="procedures/ files applied in each tried "
                        "replay's transaction, rolled back after")
    parser.add_argument("--orders", type=int, default=HISTORY_ORDERS,
                        help="orders of the history the database holds (its generated "
                        "files are read; default %(default)s)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="replays of each kind, alternated (default 1)")
    parser.add_argument("--daily", action="store_true",
                        help=f"replay an ordinary daily batch ({DAILY}, new order ids) "
                        "instead of the status feed")
    parser.add_argument("--step", help="time this step only, as is and tried, --repeat "
                        "times each from one state (needs --try)")
    args = parser.parse_args(argv)
    if args.step and not args.tried:
        parser.error("--step needs --try")
    url = args.url or history_url()
    from bench.__main__ import machine

    results: dict = {
        "command": " ".join(["python -m bench.feed_replay", *sys.argv[1:]]),
        "measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": machine(url), "orders": args.orders, "load_before": load(),
        "tried": [str(path) for path in args.tried], "replays": []}
    results["batch"] = "daily" if args.daily else "feed"
    files = daily_files(args.orders) if args.daily else feed_files(url, args.orders)
    kinds = ["as is", "tried"] if args.tried else ["as is"]
    if args.step:
        results["step"] = args.step
        for kind, seconds in replay_step(url, files, args.tried, args.step, args.repeat):
            results["replays"].append({"kind": kind, "seconds": seconds,
                                       "steps": {args.step: seconds}})
            print(f"{kind}: {args.step} {seconds:.2f} s", flush=True)
    else:
        for _ in range(args.repeat):
            for kind in kinds:
                timings = replay(url, files, args.tried if kind == "tried" else [])
                results["replays"].append({"kind": kind, "seconds": sum(timings.values()),
                                           "steps": timings})
                print(f"{kind}: {sum(timings.values()):.2f} s: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in timings.items() if v >= 0.01),
                      flush=True)
    results["medians"] = {}
    for kind in kinds:
        runs = [r for r in results["replays"] if r["kind"] == kind]
        results["medians"][kind] = {
            "seconds": statistics.median(r["seconds"] for r in runs),
            **{step: statistics.median(r["steps"][step] for r in runs)
               for step in runs[0]["steps"]}}
    results["load_after"] = load()
    target = OUT / f"{results['batch']}-replay-{args.orders}.json"
    target.write_text(json.dumps(results, indent=2, default=str))
    print(f"load {results['load_before']} / {results['load_after']}; results written to "
          f"{target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
