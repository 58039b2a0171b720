"""``python -m bench.initial_load``: the history preset's initial load alone (issue 17).

The first batch of ``python -m bench --preset history`` (bench/history.py: the same
generated files, the same fresh database on the same server, the same steps and the bare
COPY + typed INSERT floor of the same run), without the daily batches, the watcher and the
queries that follow it: a few minutes instead of a quarter of an hour, for comparing one
change of the initial load's steps back to back on a quiet machine.

Results go to stdout and ``bench/out/initial-<server>-<orders>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from bench import servers
from bench.history import OUT, bare_floor, fresh_database, generate, load, run_batch

DEFAULT_ORDERS = 1_000_000


def run_initial(server: str, orders: int) -> dict:
    from bench.__main__ import machine, maintenance

    data = generate(orders)
    first = min(p for p in data.iterdir() if p.name.startswith("batch_"))
    url = fresh_database(servers.server_url(server), "warehouse_initial")
    results: dict = {
        "command": " ".join(["python -m bench.initial_load", *sys.argv[1:]]),
        "measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "server": server, "orders": orders, "machine": machine(url), "load_before": load()}
    batch_id, steps = run_batch(url, first)
    steps["vacuum"] = maintenance(url).seconds
    results["initial"] = steps
    results["initial_seconds"] = sum(steps.values())
    results["bare_floor_seconds"] = bare_floor(url, first, batch_id)
    results["load_after"] = load()
    print(f"initial {results['initial_seconds']:.1f} s (floor "
          f"{results['bare_floor_seconds']:.1f} s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
          + f"; load {results['load_before']} / {results['load_after']}", flush=True)
    target = OUT / f"initial-{server}-{orders}.json"
    target.write_text(json.dumps(results, indent=2, default=str))
    print(f"results written to {target}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.initial_load",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS,
                        help="orders of the history (customers and products scale with them)")
    parser.add_argument("--server", choices=("durable", "fast"), default="durable",
                        help="the embedded server to measure on (bench/servers.py)")
    args = parser.parse_args(argv)
    run_initial(args.server, args.orders)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
