"""``python -m bench.drill_downs``: the read side of a history database (issue 17).

What the end of ``python -m bench --preset history`` measures (bench/history.py), on a
database it left: the BI queries of ``make bench`` (bench/__main__.py ``BI_QUERIES``), the
drill-downs through ``analytics.v_sales``, the examples of docs/bi.md and the line floors of
the questions over 100 ms (bench/history.py ``LINE_FLOORS``), each fetched into Python
objects and delivered by COPY. Reading takes a minute where building the 5M history
takes a quarter of an hour, so a change of the views, indexes or table layout is measured
again on the same database, on a quiet machine.

The database: ``--url``, else ``warehouse_history`` on the durable server of this checkout
(bench/servers.py), as the history preset leaves it. Results go to stdout and
``bench/out/drill-downs-<orders>.json``.

``--try FILE...``: procedures/ files (views, routines) applied in the measuring session's
transaction, which is rolled back at the end: a changed view is measured on a database one
may only read (another's benchmark database), and nothing of it stays.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import servers
from bench.history import BI_EXAMPLES, LINE_FLOORS, OUT, drill_down_ms, fetch, load
from runner.db import connect


def history_url() -> str:
    """warehouse_history on the durable server (started when needed)."""
    parts = urlsplit(servers.server_url("durable"))
    return urlunsplit(parts._replace(path="/warehouse_history"))


def measure(url: str, tried: list[Path] | None = None) -> dict:
    """Every read of the history database, timed; with ``tried``, on one connection whose
    transaction applies those files first and is rolled back after."""
    from bench.__main__ import bi_query_ms, machine

    orders = fetch(url, "select count(distinct transaction_id) from warehouse.fact_sales")[0][0]
    results: dict = {
        "command": " ".join(["python -m bench.drill_downs", *sys.argv[1:]]),
        "measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": machine(url), "orders_in_fact": orders, "load_before": load()}
    conn = connect(url) if tried else None
    try:
        if conn is not None:
            with conn.cursor() as cur:
                for path in tried:
                    cur.execute(path.read_text(encoding="utf-8"))
            results["tried"] = [str(path) for path in tried]
        results["bi_queries_ms"] = bi_query_ms(url, conn=conn)
        results["drill_downs_ms"] = drill_down_ms(url, conn=conn)
        results["bi_examples_ms"] = drill_down_ms(url, BI_EXAMPLES, repeats=2, conn=conn)
        results["line_floors_ms"] = drill_down_ms(url, LINE_FLOORS, repeats=2, conn=conn)
    finally:
        if conn is not None:
            conn.rollback()
            conn.close()
    results["load_after"] = load()
    for label, ms in results["bi_queries_ms"].items():
        print(f"  {ms:8.1f} ms  {label}")
    for label, drill in {**results["drill_downs_ms"], **results["bi_examples_ms"],
                         **results["line_floors_ms"]}.items():
        print(f"  {drill['ms']:8.1f} ms  {label} ({drill['rows']:,} rows; delivered in "
              f"{drill['delivered_ms']:.1f} ms)")
    print(f"load {results['load_before']} / {results['load_after']}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drill_downs",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="the history database (default: warehouse_history "
                        "on this checkout's durable server)")
    parser.add_argument("--try", dest="tried", nargs="+", type=Path, metavar="FILE",
                        help="procedures/ files applied in the measuring transaction, "
                        "rolled back after: a changed view measured on a read-only database")
    args = parser.parse_args(argv)
    results = measure(args.url or history_url(), args.tried)
    target = OUT / f"drill-downs-{results['orders_in_fact']}.json"
    target.write_text(json.dumps(results, indent=2, default=str))
    print(f"results written to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
