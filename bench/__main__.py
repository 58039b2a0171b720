"""``python -m bench`` (``make bench``): the whole pipeline at scale, against bare PostgreSQL.

1. A fresh database ``warehouse_bench`` on the configured server (DATABASE_URL's server, or
   the embedded cluster), migrated with ``alembic upgrade head``.
2. Data from the generator: the preset's volume as the initial batch, then ten increments
   of about 1 % each (``--initial-share``), clean unless ``--dirty``. Files are reused
   between runs when the options are the same.
3. The initial batch through every stage (ingest, validate, merge, reprocess, dimensions,
   fact, aggregates, reconciliation): seconds, rows/s and the peak memory of this Python
   process after each stage; beside it, in the same run, the same volumes through bare
   PostgreSQL (COPY of the same files into unindexed text tables, and a bare typed
   ``INSERT ... SELECT`` of the staged rows into unconstrained typed tables) as ratios.
4. Each increment through the whole pipeline, timed, to show cost grows with the batch.
5. Typical BI queries on each contract view (a month, a category, a year), best of five.

Results go to stdout and ``bench/out/results-<scale>.json``; ``--plot FILE`` draws batch
time against batch number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg2

from bench import history, servers
from runner.config import PROJECT_ROOT, load_config
from runner.db import connect, database_url
from runner.ingest import ingest_batch
from runner.steps import read_steps

OUT = PROJECT_ROOT / "bench" / "out"
BENCH_DB = "warehouse_bench"
SCALES = {"small": 10_000, "medium": 200_000, "large": 1_000_000}
INITIAL_SHARE = 0.9  # of the days; the shop grows, so the last tenth holds ~16 % of orders
INITIAL_VOLUME_SHARE = 0.84  # share of the orders in the first 90 % of the days
MAINTENANCE_SQL = (
    "vacuum production.customers, production.products, production.transactions, "
    "production.transaction_items, warehouse.fact_sales, warehouse.dim_customer, "
    "warehouse.dim_product"
)
FILES = ("customers", "products", "transactions", "transaction_items")

# Typical BI queries: (view, what it asks). Parameters come from the loaded data.
BI_QUERIES = {
    "v_daily_sales: one month": (
        "select sales_date, orders, revenue, avg_order_value from analytics.v_daily_sales "
        "where sales_date >= %(month)s and sales_date < %(month)s::date + interval '1 month' "
        "order by sales_date"
    ),
    "v_monthly_sales: one year": (
        "select month, orders, revenue, revenue_growth_pct from analytics.v_monthly_sales "
        "where month >= %(year)s and month < %(year)s::date + interval '1 year' order by month"
    ),
    "v_product_performance: one category, one month": (
        "select product_name, revenue, revenue_rank_in_category "
        "from analytics.v_product_performance "
        "where month = %(month)s and category = %(category)s order by revenue_rank_in_category"
    ),
    "v_product_performance: top 10 of a year": (
        "select product_id, product_name, sum(revenue) as revenue "
        "from analytics.v_product_performance "
        "where month >= %(year)s and month < %(year)s::date + interval '1 year' "
        "group by product_id, product_name order by revenue desc limit 10"
    ),
    "v_product_yearly: top 10 of a year": (
        "select product_id, product_name, revenue from analytics.v_product_yearly "
        "where year = extract(year from %(year)s::date)::int "
        "order by revenue desc, product_id limit 10"
    ),
    "v_customer_growth: one year": (
        "select month, new_customers, cumulative_customers, active_customers "
        "from analytics.v_customer_growth "
        "where month >= %(year)s and month < %(year)s::date + interval '1 year' order by month"
    ),
    "v_payment_methods: one month": (
        "select payment_method, orders, revenue, revenue_share from analytics.v_payment_methods "
        "where month = %(month)s order by revenue desc"
    ),
    "v_sales: one day of one category (drill-down)": (
        "select transaction_id, product_name, quantity, line_amount, status "
        "from analytics.v_sales where sales_date = %(day)s and category = %(category)s "
        "order by line_amount desc limit 100"
    ),
    "v_sales: revenue by category of a month": (
        "select category, sum(line_amount) as revenue from analytics.v_sales "
        "where sales_date >= %(month)s and sales_date < %(month)s::date + interval '1 month' "
        "and status = 'completed' group by category order by revenue desc"
    ),
}


@dataclass
class Stage:
    name: str
    seconds: float
    rows: int
    peak_rss_mb: float
    bare_seconds: float | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def ratio(self) -> float | None:
        """Speed as a share of the bare PostgreSQL operation (1.0 = as fast)."""
        if self.bare_seconds is None or self.seconds <= 0:
            return None
        return self.bare_seconds / self.seconds


@dataclass
class Results:
    scale: str
    machine: str
    generate_seconds: float = 0.0
    generator_peak_rss_mb: float = 0.0
    input_rows: dict[str, int] = field(default_factory=dict)
    initial: list[Stage] = field(default_factory=list)
    increments: list[dict] = field(default_factory=list)
    bi_queries_ms: dict[str, float] = field(default_factory=dict)

    @property
    def initial_seconds(self) -> float:
        return sum(stage.seconds for stage in self.initial)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine(url: str | None = None) -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB RAM, "
            f"PostgreSQL {server_version(url)}")


def server_version(url: str | None = None) -> str:
    url = url or database_url(load_config())
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("show server_version")
            return cur.fetchone()[0]
    finally:
        conn.close()


# -- database -------------------------------------------------------------------------------


def fresh_database(server: str) -> str:
    """Drop and create ``warehouse_bench`` on the server of ``server`` (bench/servers.py),
    migrate it."""
    return history.fresh_database(servers.server_url(server), BENCH_DB)


# -- data -----------------------------------------------------------------------------------


def generate(scale: str, increments: int, dirty: float) -> tuple[Path, float, float]:
    transactions = round(SCALES[scale] / INITIAL_VOLUME_SHARE)
    args = [
        "--scale", scale, "--transactions", str(transactions), "--batches",
        str(increments + 1), "--initial-share", str(INITIAL_SHARE), "--dirty", str(dirty),
        "--seed", "2026", "--quiet",
    ]
    out = OUT / f"data-{scale}-{increments}-{dirty}"
    stamp = out / "options.json"
    if stamp.exists() and json.loads(stamp.read_text()) == args:
        print(f"reusing generated files in {out}")
        return out, 0.0, 0.0
    subprocess.run(["rm", "-rf", str(out)], check=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "generator", *args, "--out", str(out)], check=True)
    seconds = time.perf_counter() - started
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stamp.write_text(json.dumps(args))
    return out, seconds, child_peak


def count_rows(batch: Path) -> dict[str, int]:
    counts = {}
    for name in FILES:
        path = batch / f"{name}.csv"
        if path.exists():
            with path.open("rb") as handle:
                counts[name] = sum(1 for _ in handle) - 1
    return counts


# -- stages ---------------------------------------------------------------------------------


def run_steps(url: str, batch_id: int) -> list[Stage]:
    stages = []
    conn = connect(url, autocommit=True)
    try:
        for step in read_steps(conn):
            if not step.per_batch:
                continue
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(step.sql, {"batch_id": batch_id})
                cur.execute(
                    "select coalesce(max(rows), 0) from etl.batch_step "
                    "where batch_id = %s and step = %s",
                    (batch_id, step.name),
                )
                rows = cur.fetchone()[0]
            stages.append(Stage(step.name, time.perf_counter() - started, rows, peak_rss_mb()))
    finally:
        conn.close()
    return stages


def run_batch(url: str, batch_dir: Path) -> tuple[int, list[Stage]]:
    started = time.perf_counter()
    result = ingest_batch(url, batch_dir)
    ingest = Stage(
        "ingest", time.perf_counter() - started,
        sum(f.rows_in_file for f in result.loaded_files), peak_rss_mb(),
    )
    assert result.batch_id is not None, f"{batch_dir} loaded nothing"
    return result.batch_id, [ingest, *run_steps(url, result.batch_id)]


def maintenance(url: str) -> Stage:
    """VACUUM after a bulk load: sets hint bits and the visibility map once, so the first
    increments do not pay for it page by page. No ANALYZE: the steps analyzed every table
    they loaded whole (etl.end_bulk_load for production and the fact, load_dimensions for
    the dimensions), and a second sample of each would change nothing."""
    conn = connect(url, autocommit=True)
    try:
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(MAINTENANCE_SQL)
        return Stage("vacuum", time.perf_counter() - started, 0, peak_rss_mb())
    finally:
        conn.close()


def bare_copy_seconds(url: str, batch_dir: Path) -> float:
    """COPY of the same files into unindexed text tables: the floor for ingestion."""
    conn = connect(url)
    total = 0.0
    try:
        with conn.cursor() as cur:
            for name in FILES:
                path = batch_dir / f"{name}.csv"
                if not path.exists():
                    continue
                with path.open("rb") as handle:
                    header = handle.readline().decode("utf-8-sig").strip().split(",")
                columns = ", ".join(f"c{i} text" for i in range(len(header)))
                cur.execute(f"create temp table bare_{name} ({columns})")
                started = time.perf_counter()
                with path.open("rb") as handle:
                    cur.copy_expert(
                        f"copy bare_{name} from stdin with (format csv, header true)", handle
                    )
                total += time.perf_counter() - started
        conn.rollback()
    finally:
        conn.close()
    return total


BARE_TYPED_INSERT = {
    "customers": (
        "customer_id bigint, first_name text, last_name text, email text, country text, "
        "signup_date date",
        "select customer_id::bigint, btrim(first_name), btrim(last_name), lower(btrim(email)), "
        "btrim(country), signup_date::date from staging.customers "
        "where batch_id = %(b)s and customer_id ~ '^[0-9]+$' "
        "and signup_date ~ '^\\d{4}-\\d\\d-\\d\\d$'",
    ),
    "transactions": (
        "transaction_id bigint, customer_id bigint, transaction_ts timestamptz, "
        "payment_method text, status text",
        "select transaction_id::bigint, customer_id::bigint, transaction_ts::timestamptz, "
        "lower(btrim(payment_method)), lower(btrim(status)) from staging.transactions "
        "where batch_id = %(b)s and transaction_id ~ '^[0-9]+$' and customer_id ~ '^[0-9]+$' "
        "and transaction_ts ~ '^\\d{4}-\\d\\d-\\d\\d[T ]\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z)?$'",
    ),
    "transaction_items": (
        "item_id bigint, transaction_id bigint, product_id bigint, quantity integer, "
        "unit_price numeric(12,2), discount numeric(12,2)",
        "select item_id::bigint, transaction_id::bigint, product_id::bigint, quantity::integer, "
        "unit_price::numeric(12,2), coalesce(nullif(btrim(discount), ''), '0')::numeric(12,2) "
        "from staging.transaction_items where batch_id = %(b)s and item_id ~ '^[0-9]+$' "
        "and transaction_id ~ '^[0-9]+$' and product_id ~ '^[0-9]+$' "
        "and quantity ~ '^[0-9]+$' and unit_price ~ '^[0-9]+(\\.[0-9]+)?$' "
        "and coalesce(discount, '') ~ '^([0-9]+(\\.[0-9]+)?)?$'",
    ),
}


def bare_typed_insert_seconds(url: str, batch_id: int) -> float:
    """A bare typed INSERT ... SELECT of the staged rows into unconstrained typed tables."""
    conn = connect(url)
    total = 0.0
    try:
        with conn.cursor() as cur:
            for name, (columns, select) in BARE_TYPED_INSERT.items():
                cur.execute(f"create temp table typed_{name} ({columns})")
                started = time.perf_counter()
                cur.execute(f"insert into typed_{name} {select}", {"b": batch_id})
                total += time.perf_counter() - started
        conn.rollback()
    finally:
        conn.close()
    return total


def bi_query_ms(url: str, repeats: int = 5,
                conn: psycopg2.extensions.connection | None = None) -> dict[str, float]:
    """Best milliseconds of each BI query (on ``conn``'s transaction when given)."""
    timings = {}
    with history.reading(url, conn) as reader:
        with reader.cursor() as cur:
            cur.execute(history.LAST_MONTH_SQL)
            month = cur.fetchone()[0]
            cur.execute(
                "select category from analytics.v_product_performance where month = %s "
                "group by category order by sum(revenue) desc limit 1",
                (month,),
            )
            category = cur.fetchone()[0]
            cur.execute("select max(sales_date) from analytics.v_daily_sales")
            day = cur.fetchone()[0]
            params = {"month": month, "year": month.replace(month=1), "category": category,
                      "day": day}
            for label, sql in BI_QUERIES.items():
                best = float("inf")
                for _ in range(repeats):
                    started = time.perf_counter()
                    cur.execute(sql, params)
                    cur.fetchall()
                    best = min(best, time.perf_counter() - started)
                timings[label] = best * 1000
    return timings


# -- report ---------------------------------------------------------------------------------


def print_initial(results: Results) -> None:
    print(f"\nInitial load ({results.scale}): {results.input_rows}")
    print(f"{'stage':<22}{'seconds':>9}{'rows':>12}{'rows/s':>13}{'peak MB':>9}"
          f"{'bare s':>9}{'vs bare':>9}")
    for stage in results.initial:
        bare = f"{stage.bare_seconds:9.2f}" if stage.bare_seconds is not None else " " * 9
        ratio = f"{stage.ratio:9.0%}" if stage.ratio is not None else " " * 9
        print(f"{stage.name:<22}{stage.seconds:9.2f}{stage.rows:12,}"
              f"{stage.rows_per_second:13,.0f}{stage.peak_rss_mb:9.0f}{bare}{ratio}")
    print(f"{'total (CSV to aggregates)':<22}{results.initial_seconds:9.2f}")


def print_increments(results: Results) -> None:
    print("\nIncrements (about 1 % each):")
    print(f"{'batch':<12}{'rows':>10}{'seconds':>9}{'% of initial':>14}")
    for inc in results.increments:
        share = inc["seconds"] / results.initial_seconds
        print(f"{inc['batch']:<12}{inc['rows']:10,}{inc['seconds']:9.2f}{share:14.1%}")


def print_queries(results: Results) -> None:
    print("\nBI queries (best of 5):")
    for label, ms in results.bi_queries_ms.items():
        print(f"  {ms:8.1f} ms  {label}")


def plot(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numbers = list(range(1, len(results.increments) + 2))
    seconds = [results.initial_seconds] + [inc["seconds"] for inc in results.increments]
    rows = [sum(results.input_rows.values())] + [inc["rows"] for inc in results.increments]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.bar(numbers, seconds, color=["#1f77b4"] + ["#ff7f0e"] * len(results.increments))
    top.set_ylabel("seconds")
    top.set_title(f"Batch time against batch number ({results.scale})")
    bottom.bar(numbers, rows, color="#7f7f7f")
    bottom.set_ylabel("input rows")
    bottom.set_xlabel("batch (1 = initial load, then ~1 % increments)")
    bottom.set_yscale("log")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="large")
    parser.add_argument("--increments", type=int, default=10)
    parser.add_argument("--dirty", type=float, default=0.0)
    parser.add_argument("--plot", type=Path, help="write the batch-time plot (PNG) here")
    parser.add_argument("--preset", choices=("scale", "history"), default="scale",
                        help="scale: the --scale volume and ~1 %% increments (default); "
                        "history: three years of a growing shop (bench/history.py)")
    parser.add_argument("--orders", type=int, default=history.HISTORY_ORDERS,
                        help="orders of the history preset (customers and products scale "
                        "with it; default 5,000,000)")
    parser.add_argument("--server", choices=servers.KINDS,
                        default="url" if load_config().database_url else "durable",
                        help="durable: an embedded cluster with docker-compose.yml's settings "
                        "(default); fast: the embedded cluster's own; url: DATABASE_URL's "
                        "server (default when it is set)")
    args = parser.parse_args(argv)
    if args.preset == "history":
        OUT.mkdir(parents=True, exist_ok=True)
        history.run_history(args.server, args.orders)
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    load_before = history.load()
    url = fresh_database(args.server)
    results = Results(scale=args.scale, machine=machine(url))
    print(f"machine: {results.machine}")
    data, results.generate_seconds, results.generator_peak_rss_mb = generate(
        args.scale, args.increments, args.dirty
    )
    batches = sorted(p for p in data.iterdir() if p.name.startswith("batch_"))
    results.input_rows = count_rows(batches[0])
    print(f"generated in {results.generate_seconds:.1f} s (peak "
          f"{results.generator_peak_rss_mb:.0f} MB): {len(batches)} batches in {data}")

    batch_id, results.initial = run_batch(url, batches[0])
    results.initial.append(maintenance(url))
    results.initial[0].bare_seconds = bare_copy_seconds(url, batches[0])
    validate = next(s for s in results.initial if s.name == "validate")
    validate.bare_seconds = bare_typed_insert_seconds(url, batch_id)
    print_initial(results)

    for batch_dir in batches[1:]:
        _, stages = run_batch(url, batch_dir)
        results.increments.append({
            "batch": batch_dir.name,
            "rows": sum(count_rows(batch_dir).values()),
            "seconds": sum(stage.seconds for stage in stages),
            "stages": {stage.name: round(stage.seconds, 3) for stage in stages},
        })
    if results.increments:
        print_increments(results)

    results.bi_queries_ms = bi_query_ms(url)
    print_queries(results)

    record = asdict(results) | {  # what bench/figures.py records as the run's provenance
        "initial_seconds": results.initial_seconds,
        "command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
        "load_before": load_before, "load_after": history.load()}
    target = OUT / f"results-{args.scale}.json"
    target.write_text(json.dumps(record, indent=2, default=str))
    print(f"\nresults written to {target}")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except psycopg2.Error as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
