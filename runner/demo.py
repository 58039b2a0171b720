"""``demo`` (``make demo``): the whole project on one machine in a few minutes.

On the configured database (the embedded cluster unless DATABASE_URL is set): migrate,
generate a multi-batch dataset with a few defects under ``data/demo`` unless one is there,
run the pipeline on it, then print the KPIs from the ``analytics`` views, the rejects per
rule, and write the HTML dashboard. Running it again generates nothing and ingests nothing
new (files are identified by their SHA-256): it prints the same numbers.

Size: the generator's ``medium`` scale (20,000 customers, 2,000 products, 200,000 orders,
about 850,000 lines in all) in 6 batches with 1 % defects per rule. It records its own
timings (generation, migration, pipeline and its steps, in all; the load average before and
after) in ``reports/demo-figures.json``; ``python -m bench.figures record demo
reports/demo-figures.json --label medium --command "make demo"`` puts a fresh demo's into
docs/figures/demo.json, from which README.md and docs/operations.md ("The demo") render their
figures.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from runner.config import Config
from runner.db import connect, database_url
from runner.pipeline import RunOptions, RunResult, run_pipeline, stop_on_signals
from runner.run_summary import run_summary
from runner.status import format_table

log = logging.getLogger(__name__)

DEMO_GENERATOR_ARGS = ("--scale", "medium", "--batches", "6", "--dirty", "0.01")
DEMO_DESCRIPTION = "a medium 6-batch dataset (200,000 orders) with 1% defects"
CHATTY_LOGGERS = ("alembic", "runner.routines", "runner.ingest", "runner.dashboard")
DEFAULT_DEMO_DIR = Path("data") / "demo"
DASHBOARD_FILE = Path("reports") / "dashboard.html"
FIGURES_FILE = Path("reports") / "demo-figures.json"

KPI_SQL = """
with totals as (
    select sum(revenue) as revenue, sum(orders) as orders, sum(units) as units,
           sum(margin) as margin, min(month) as first_month, max(month) as last_month
    from analytics.v_monthly_sales
),
customers as (
    select max(cumulative_customers) as customers from analytics.v_customer_growth
)
select totals.revenue, totals.orders,
       round(totals.revenue / nullif(totals.orders, 0), 2) as avg_order_value,
       customers.customers, totals.units, totals.margin, totals.first_month, totals.last_month
from totals cross join customers
"""

TOP_CATEGORIES_SQL = """
select category, sum(revenue) as revenue, sum(units) as units,
       round(100 * sum(revenue) / nullif(sum(sum(revenue)) over (), 0), 1) as share_pct
from analytics.v_product_performance
group by category
order by revenue desc, category
limit 5
"""

PAYMENT_SHARES_SQL = """
select payment_method, sum(orders) as orders, sum(revenue) as revenue,
       round(100 * sum(revenue) / nullif(sum(sum(revenue)) over (), 0), 1) as share_pct
from analytics.v_payment_methods
group by payment_method
order by revenue desc, payment_method
"""

REJECTS_SQL = """
select rule, sum(rows)::bigint as rows, count(distinct batch_id) as batches
from etl.v_reject_summary
group by rule
order by rows desc, rule
"""

CHECKS_SQL = """
select e."check", e.severity, count(*) as events, count(distinct e.batch_name) as batches,
       max(e.observed) as highest_observed
from etl.v_dq_events e
group by e."check", e.severity
order by e."check", e.severity
"""


def has_data(directory: Path) -> bool:
    return directory.is_dir() and any(directory.rglob("*.csv"))


def generate(directory: Path, project_root: Path) -> None:
    """``python -m generator`` with the demo's arguments (a separate process)."""
    command = [sys.executable, "-m", "generator", *DEMO_GENERATOR_ARGS,
               "--out", str(directory), "--quiet"]
    print(f"generating demo data: {' '.join(command[1:])}", flush=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(command, cwd=project_root, check=True)


def kpi_report(url: str) -> str:
    """KPIs from the analytics views and rejects per rule, as text tables."""
    conn = connect(url, autocommit=True, application_name="warehouse-demo")
    try:
        with conn.cursor() as cur:
            cur.execute(KPI_SQL)
            revenue, orders, aov, customers, units, margin, first, last = cur.fetchone()
            kpis = format_table(["KPI (completed orders)", "value"], [
                ["revenue", revenue], ["orders", orders], ["average order value", aov],
                ["units", units], ["margin", margin], ["customers (signed up)", customers],
                ["months", f"{first} .. {last}" if first else None],
            ])
            cur.execute(TOP_CATEGORIES_SQL)
            categories = format_table(["category", "revenue", "units", "share %"],
                                      cur.fetchall())
            cur.execute(PAYMENT_SHARES_SQL)
            payments = format_table(["payment method", "orders", "revenue", "share %"],
                                    cur.fetchall())
            cur.execute(REJECTS_SQL)
            rejects = cur.fetchall()
            cur.execute(CHECKS_SQL)
            checks = cur.fetchall()
    finally:
        conn.close()
    parts = [kpis, "", "Top categories by revenue", categories, "",
             "Payment methods (share of revenue)", payments, ""]
    if rejects:
        parts += ["Rejected rows now in quarantine, by rule (etl.v_reject_summary)",
                  format_table(["rule", "rows", "batches"], rejects)]
    else:
        parts.append("No rejected rows.")
    if checks:  # warnings are expected at 1 % defects; an error would hold the batch
        parts += ["", "Batch checks that fired (etl.v_dq_events)",
                  format_table(["check", "severity", "events", "batches", "highest observed"],
                               checks)]
    return "\n".join(parts)


VOLUME_SQL = """
select coalesce(sum(rows_in_file) filter (where file_name = 'transactions.csv'), 0)::bigint,
       coalesce(sum(rows_in_file), 0)::bigint
from etl.batch_file where batch_id = any(%s)
"""


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def demo_figures(url: str, result: RunResult, seconds: dict[str, float | None],
                 command: str, load_before: str) -> dict:
    """What the demo measured, for docs/figures/demo.json (bench/figures.py)."""
    conn = connect(url, autocommit=True, application_name="warehouse-demo")
    try:
        with conn.cursor() as cur:
            cur.execute(VOLUME_SQL, (result.touched,))
            transaction_rows, lines = cur.fetchone()
    finally:
        conn.close()
    steps: dict[str, float] = {}
    for step in result.steps:
        steps[step.step] = steps.get(step.step, 0.0) + step.seconds
    return {"command": command, "measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "load_average": f"{load_before} / {_load()}", "exit_code": result.exit_code,
            "batches": len(result.batches), "transaction_rows": transaction_rows,
            "lines": lines,
            **seconds, "pipeline_seconds": result.seconds, "steps": steps}


def write_dashboard(url: str, out: Path, config: Config) -> Path | None:
    """The HTML dashboard (runner/dashboard.py), when that module is there."""
    try:
        from runner.dashboard import write_dashboard as write
    except ImportError:
        log.info("runner/dashboard.py is not available: no dashboard written")
        return None
    return write(url, out, max_age=config.max_age)


def run_demo(config: Config, data_dir: Path | None = None) -> int:
    began = time.monotonic()
    load_before = _load()
    seconds: dict[str, float | None] = {"generate_seconds": None}
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # the tables say it all
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    url = database_url(config)
    print(f"database: {url}", flush=True)
    from runner import migrate  # alembic is slow to import: only when the demo runs

    migrate.upgrade(url)
    seconds["migrate_seconds"] = time.monotonic() - began
    print("migrated to head", flush=True)
    directory = data_dir or config.project_root / DEFAULT_DEMO_DIR
    if has_data(directory):
        print(f"demo data found in {directory}: not generated again", flush=True)
    else:
        started = time.monotonic()
        generate(directory, config.project_root)
        seconds["generate_seconds"] = time.monotonic() - started
    options = RunOptions(landing=directory, retry=config.retry, trigger="demo", wait=True)
    with stop_on_signals(threading.Event()) as stop:
        result = run_pipeline(url, options, stop)
    print(run_summary(url, result))
    print()
    print(kpi_report(url))
    dashboard = write_dashboard(url, config.project_root / DASHBOARD_FILE, config)
    if dashboard is not None:
        print(f"\ndashboard: {dashboard.resolve()}")
    seconds["total_seconds"] = time.monotonic() - began
    print(f"\ndemo finished in {seconds['total_seconds']:.0f}s (pipeline exit code "
          f"{result.exit_code}); `python -m runner status` shows the run history")
    if result.run_id is not None:
        command = "python -m runner demo" + (f" --out {data_dir}" if data_dir else "")
        figures = config.project_root / FIGURES_FILE
        figures.parent.mkdir(parents=True, exist_ok=True)
        figures.write_text(json.dumps(demo_figures(url, result, seconds, command, load_before),
                                      indent=2) + "\n")
    return result.exit_code
