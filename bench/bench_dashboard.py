"""Benchmark of the HTML dashboard: file size, build time, and how long each filter change
and drill-down takes to re-render in headless Chromium.

    python -m bench.bench_dashboard                  # the configured database, as loaded
    python -m bench.bench_dashboard --rounds 5 --write

Reads the database of DATABASE_URL (else the embedded cluster) as it is: load it first, e.g.
``python -m generator --scale large --out /tmp/large/batch_0001`` and
``python -m runner run /tmp/large`` for the 1M-order preset. Writes the dashboard with
``runner.dashboard.write_dashboard`` (timed), opens it in headless Chromium (the Debian
``chromium`` package, driven as in the browser tests: tests/chromium.py), and times, in the
page, each action a click triggers (the same functions the click handlers call) from its
start until the frame after the charts are drawn. Each action runs ``--rounds`` times after
a first round timed apart (the first interactions also pay for compiling the page's
JavaScript); the median and the worst are reported. ``--write`` records the figures in
docs/figures/dashboard.json with the machine and the command, rendered into the
"## Dashboard" section of docs/performance.md (bench/figures.py). Targets
(issue 15): the file under 10 MB at the large preset, every re-render within 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from bench import figures
from runner.config import load_config
from runner.dashboard import write_dashboard
from runner.db import connect, database_url
from tests.chromium import DevTools, Tab, chromium_binary

SECTION = "## Dashboard"
SIZE_TARGET = 10 * 1000 * 1000
RENDER_TARGET_MS = 300

# (what a user does, the page function a click calls). Each is run in this order, so the
# "back up" actions start from the level the previous one opened.
ACTIONS = (
    ("date preset: last 30 days", "d.setRange(addDays(d.extent.to, -29), d.extent.to, '30d')"),
    ("date preset: all", "d.setRange(d.extent.from, d.extent.to, 'all')"),
    ("category filter", "d.setFilter({category: 0})"),
    ("payment method filter (with the category)", "d.setFilter({method: 0})"),
    ("clear all filters", "d.clearFilters()"),
    ("month -> its days", "d.drill({month: monthWithSales()})"),
    ("days -> back to months", "d.drill({month: null})"),
    ("category -> its products", "d.drill({category: 0, product: null})"),
    ("product -> its monthly trend", "d.drill({product: firstProductShown()})"),
    ("product -> back to categories", "d.drill({category: null, product: null})"),
    ("payment method -> its monthly share", "d.drill({method: 0})"),
    ("share -> back to payment methods", "d.drill({method: null})"),
)
HELPERS_JS = """
const d = window.dashboard;
const addDays = (iso, n) => new Date(Date.parse(iso + 'T00:00:00Z') + n * 864e5)
  .toISOString().slice(0, 10);
const monthWithSales = () => document.getElementById('chart-monthly').data[0].customdata[0];
const firstProductShown = () => document.getElementById('chart-categories').data[0].customdata[0];
const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
"""


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_dashboard",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each action (5)")
    parser.add_argument("--write", action="store_true",
                        help="write the figures into docs/performance.md")
    return parser.parse_args(argv)


def database_volume(url: str) -> tuple[int, int, int]:
    """Transactions of every status, completed orders, days with sales."""
    with closing(connect(url, autocommit=True)) as conn, conn.cursor() as cur:
        cur.execute("select (select count(*) from production.transactions),"
                    " coalesce(sum(orders), 0), count(*) from analytics.v_daily_sales")
        transactions, orders, days = cur.fetchone()
    return int(transactions), int(orders), int(days)


def time_actions(tab: Tab, rounds: int) -> tuple[dict[str, list[float]], float]:
    """Each action ``rounds`` times, after a first round that is timed apart: the first
    interactions after opening also pay for the JavaScript engine compiling the page's
    code. Returns the timings and the first round's worst."""
    timings: dict[str, list[float]] = {name: [] for name, _ in ACTIONS}
    first_round = 0.0
    for round_number in range(rounds + 1):
        for name, call in ACTIONS:
            elapsed = float(tab.evaluate(f"""(async () => {{ {HELPERS_JS}
                const t0 = performance.now(); await {call}; await frame();
                return performance.now() - t0; }})()"""))
            if round_number == 0:
                first_round = max(first_round, elapsed)
            else:
                timings[name].append(elapsed)
    return timings, first_round


def measure(url: str, rounds: int, workdir: Path) -> dict:
    started = time.perf_counter()
    path = write_dashboard(url, workdir / "dashboard.html")
    build_seconds = time.perf_counter() - started
    binary = chromium_binary()
    if binary is None:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    browser = DevTools(binary, workdir)
    try:
        tab = Tab(browser, width=1280)
        started = time.perf_counter()
        tab.open(path)
        tab.wait_for("document.documentElement.dataset.ready === 'true'", timeout=120)
        load_seconds = time.perf_counter() - started
        timings, first_round = time_actions(tab, rounds)
        problems = tab.problems()
    finally:
        browser.close()
    return {"bytes": path.stat().st_size, "build_seconds": build_seconds,
            "load_seconds": load_seconds, "timings": timings, "first_round": first_round,
            "problems": problems}


def report(result: dict, volume: tuple[int, int, int], rounds: int, command: str) -> str:
    transactions, orders, days = volume
    worst = max(max(v) for v in result["timings"].values())
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        models = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` on {os.cpu_count()} "
        f"CPU(s) ({models[0] if models else cpu}), load average before: "
        f"{os.getloadavg()[0]:.2f}; headless Chromium (Debian `chromium`), 1280 px wide. "
        f"Data: {transactions:,} transactions, of which {orders:,} completed orders (what "
        f"the dashboard counts), over {days:,} days.",
        "",
        f"- file: **{result['bytes'] / 1e6:.2f} MB** (target: under 10 MB; "
        f"{'met' if result['bytes'] < SIZE_TARGET else 'NOT met'}), written in "
        f"{result['build_seconds']:.1f} s (the views' queries and the packing);",
        f"- opened, unpacked and first drawn in {result['load_seconds']:.2f} s;",
        f"- each action below, {rounds} runs after a first round, from the call a click makes "
        f"until the frame after the charts are drawn; worst {worst:.0f} ms (target: 300 ms; "
        f"{'met' if worst <= RENDER_TARGET_MS else 'NOT met'}); in the first round, while "
        f"the browser still compiles the page's code, the worst took "
        f"{result['first_round']:.0f} ms.",
        "",
        "| action | median ms | worst ms |",
        "|---|---:|---:|",
    ]
    for name, values in result["timings"].items():
        lines.append(f"| {name} | {statistics.median(values):.0f} | {max(values):.0f} |")
    lines += ["", "Problems reported by the page (console errors, exceptions): "
              + (", ".join(result["problems"]) or "none") + ".", "",
              "The times are the browser's work on one core: they grow with what else the "
              "machine runs (with two test suites on the same 2 cores, load average 5.6, the "
              "worst filter change took about twice as long), so compare runs at a similar "
              "load average.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    url = database_url(load_config())
    volume = database_volume(url)
    with tempfile.TemporaryDirectory(prefix="bench_dashboard_") as tmp:
        result = measure(url, args.rounds, Path(tmp))
    command = "python -m bench.bench_dashboard " + " ".join(argv if argv is not None
                                                            else sys.argv[1:])
    text = report(result, volume, args.rounds, command.strip())
    print(f"{SECTION}\n\n{text}")
    print(json.dumps({k: v for k, v in result.items() if k != "timings"}))
    if args.write:
        figures.publish("dashboard", {"command": command.strip(),
                                      "load_average": f"{os.getloadavg()[0]:.2f} (after)",
                                      "markdown": text, **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
