"""Benchmark of the data generator: rows per second by stage and peak memory.

    python -m bench.bench_generator                   # --scale large
    python -m bench.bench_generator --transactions 10000000 --batches 10

Runs `generator.generate` in this process (no progress bar), into a temporary directory
removed afterwards unless --out is given, and prints wall-clock and CPU rows/s of the
customers stage and of the orders stage (transactions plus items, generated, validated by
the acceptance model and written), and the peak resident memory from getrusage. Wall-clock
figures depend on what else the machine runs; CPU figures much less.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from generator import SCALES, Options, Report, generate


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_generator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="large",
                        help="size preset (default: large)")
    parser.add_argument("--transactions", type=int, help="override the preset's transactions")
    parser.add_argument("--batches", type=int, default=1, help="batches (default: 1)")
    parser.add_argument("--dirty", type=float, default=0.0, help="defect rate (default: 0)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="keep the files here (default: a temp dir)")
    return parser.parse_args(argv)  # fmt: skip


def cpu_model() -> str:
    """The `model name` of /proc/cpuinfo (what lscpu shows), or the platform's processor."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_report(report: Report, options: Options) -> None:
    orders_rows = report.rows["transactions.csv"] + report.rows["transaction_items.csv"]
    stages = [
        ("pools (Faker)", 0, "pools"),
        ("customers", report.rows["customers.csv"], "customers"),
        ("products", report.rows["products.csv"], "products"),
        ("transactions + items", orders_rows, "orders"),
        ("manifests", sum(report.rejected.values()), "manifests"),
    ]
    print(f"generator benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{cpu_model()}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"options: customers={options.customers:,} products={options.products:,} "
          f"transactions={options.transactions:,} batches={options.batches} "
          f"dirty={options.dirty}")  # fmt: skip
    print(f"{'stage':<22}{'rows':>12}{'wall s':>9}{'cpu s':>9}{'rows/s wall':>14}"
          f"{'rows/s cpu':>14}")  # fmt: skip
    for label, rows, stage in stages:
        wall, cpu = report.seconds.get(stage, 0.0), report.cpu_seconds.get(stage, 0.0)
        per_wall = f"{rows / wall:,.0f}" if rows and wall else "-"
        per_cpu = f"{rows / cpu:,.0f}" if rows and cpu else "-"
        print(f"{label:<22}{rows:>12,}{wall:>9.2f}{cpu:>9.2f}{per_wall:>14}{per_cpu:>14}")
    total_rows = sum(report.rows.values())
    wall, cpu = sum(report.seconds.values()), sum(report.cpu_seconds.values())
    print(f"{'total':<22}{total_rows:>12,}{wall:>9.2f}{cpu:>9.2f}"
          f"{total_rows / wall:>14,.0f}{total_rows / cpu:>14,.0f}")  # fmt: skip
    print(f"rejected rows (per manifests): {sum(report.rejected.values()):,}")
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    scale = SCALES[arguments.scale]
    out = arguments.out or Path(tempfile.mkdtemp(prefix="bench-generator-"))
    options = Options(
        out=out,
        customers=scale.customers,
        products=scale.products,
        transactions=arguments.transactions or scale.transactions,
        batches=arguments.batches,
        dirty=arguments.dirty,
        seed=arguments.seed,
        quiet=True,
    )
    try:
        report = generate(options)
    finally:
        if arguments.out is None:
            shutil.rmtree(out, ignore_errors=True)
    print_report(report, options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
