"""The runner on the real pipeline: generated batches, real procedures, faults made for real.

Small data (200 customers, 50 products, 1,000 orders in 3 batches with 1 % defects), generated
once per session. "Equal to a clean run" compares every contract view (analytics.v_*,
etl.v_batch_reconciliation, etl.v_reject_summary, the newest sale of etl.v_freshness) between
the faulted database and a second database that ran once without faults. Surrogate keys
(``*_key``) and instants of processing (``*_at``) are left out: they are arbitrary (a
rolled-back insert uses up identity values) or the time of the run, not the data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from runner.config import PROJECT_ROOT
from runner.exitcodes import EXIT_OK
from tests.test_runner_stubs import fetch, run_cli, start_cli, step_names

pytestmark = pytest.mark.slow

CONTRACT_VIEWS = (
    "analytics.v_daily_sales", "analytics.v_monthly_sales", "analytics.v_product_performance",
    "analytics.v_customer_growth", "analytics.v_payment_methods", "analytics.v_sales",
    "etl.v_batch_reconciliation", "etl.v_reject_summary",
)
GENERATOR_ARGS = ("--customers", "200", "--products", "50", "--transactions", "1000",
                  "--batches", "3", "--dirty", "0.01", "--quiet")


@pytest.fixture(scope="session")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing") / "small"
    subprocess.run([sys.executable, "-m", "generator", *GENERATOR_ARGS, "--out", str(out)],
                   cwd=PROJECT_ROOT, check=True)
    return out


def connect(url: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every contract view's rows (sorted), without surrogate keys and processing instants."""
    conn = connect(url)
    try:
        views = {}
        for view in CONTRACT_VIEWS:
            schema, name = view.split(".")
            columns = [row[0] for row in fetch(
                conn, "select column_name from information_schema.columns where "
                      "table_schema = %s and table_name = %s order by ordinal_position",
                (schema, name))]
            assert columns, f"{view} does not exist"
            kept = [c for c in columns if not c.endswith(("_key", "_at", "_age"))]
            rows = fetch(conn, f"select {', '.join(kept)} from {view}")
            views[view] = sorted(rows, key=repr)
        views["newest_sale"] = fetch(conn, "select newest_transaction_ts from etl.v_freshness")
        return views
    finally:
        conn.close()


def clean_run(url: str, landing: Path) -> dict[str, list[tuple]]:
    done = run_cli(url, "run", str(landing))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    views = snapshot(url)
    assert all(views[view] for view in CONTRACT_VIEWS)  # something to compare in each
    return views


def wait_for(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_run_processes_every_generated_batch_and_every_file_balances(conn, db_url,
                                                                     landing) -> None:  # noqa: ANN001
    done = run_cli(db_url, "run", str(landing))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert "3 batch(es) processed" in done.stdout
    expected = {}
    for manifest in sorted(landing.glob("batch_*/manifest.json")):
        document = json.loads(manifest.read_text())
        for file_name, counts in document["files"].items():
            expected[(document["batch"], file_name)] = counts["rows"]
    rows = fetch(conn, "select batch_name, file_name, rows_in_file, balanced "
                       "from etl.v_batch_reconciliation")
    assert {(r[0], r[1]): r[2] for r in rows} == expected
    assert all(r[3] for r in rows)
    assert fetch(conn, "select status, batches_processed from etl.pipeline_run") == [
        ("succeeded", 3)]
    assert fetch(conn, "select count(*) from etl.batch where status <> 'processed'") == [(0,)]
    reported = fetch(conn, "select step, count(*), count(rows) from etl.step_run "
                           "where batch_id is not null group by step")
    assert {r[0]: r[1] for r in reported} == {name: 3 for name in step_names()}
    before = snapshot(db_url)
    again = run_cli(db_url, "run", str(landing))  # nothing new: same warehouse
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    assert "0 batch(es) processed" in again.stdout
    assert snapshot(db_url) == before


def test_transient_error_in_a_real_step_is_retried_and_nothing_is_duplicated(
        conn, db_url, second_db_url, landing) -> None:  # noqa: ANN001
    with conn.cursor() as cur:  # the first insert into the fact fails, once
        cur.execute("""
            create sequence public.fault_calls;
            create function public.fault_once() returns trigger language plpgsql as $$
            begin
                if nextval('public.fault_calls') = 1 then
                    raise exception 'could not serialize access (injected)'
                        using errcode = '40001';
                end if;
                return null;
            end $$;
            create trigger fault_once after insert on warehouse.fact_sales
                for each statement execute function public.fault_once();
        """)
    done = run_cli(db_url, "run", str(landing))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert "transient error on attempt 1/5" in done.stderr
    assert fetch(conn, "select batch_id, attempts, sqlstate from etl.step_run "
                       "where step = 'load_fact_sales' and attempts > 1") == [(1, 2, "40001")]
    assert snapshot(db_url) == clean_run(second_db_url, landing)


def test_kill_9_in_the_middle_of_a_run_then_run_again_equals_a_clean_run(
        conn, db_url, second_db_url, landing) -> None:  # noqa: ANN001
    with conn.cursor() as cur:  # the fact load of the second batch lingers, once
        cur.execute("""
            create sequence public.slow_calls;
            create function public.slow_once() returns trigger language plpgsql as $$
            begin
                if new.source_batch_id = 2 and nextval('public.slow_calls') = 1 then
                    perform pg_sleep(20);
                end if;
                return new;
            end $$;
            create trigger slow_once before insert on warehouse.fact_sales
                for each row execute function public.slow_once();
        """)
    victim = start_cli(db_url, "run", str(landing))
    wait_for(lambda: fetch(conn, "select count(*) from pg_stat_activity where "
                                 "wait_event = 'PgSleep' and datname = current_database()")
             == [(1,)])
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=10)
    assert fetch(conn, "select status from etl.pipeline_run") == [("running",)]
    assert fetch(conn, "select batch_id, status from etl.batch order by 1") == [
        (1, "processed"), (2, "ingested"), (3, "ingested")]
    report = run_cli(db_url, "status", "--quiet")
    assert report.stdout.startswith(
        "failed: run 1 abandoned at step load_fact_sales of batch 2: its process stopped"
    ), report.stdout + report.stderr

    again = run_cli(db_url, "run", str(landing))
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    assert fetch(conn, "select status, left(error, 10), error_step, error_batch_id "
                       "from etl.pipeline_run order by 1") == [
        ("failed", "abandoned:", "load_fact_sales", 2), ("succeeded", None, None, None)]
    assert snapshot(db_url) == clean_run(second_db_url, landing)


def test_process_pending_from_psql_gives_the_same_warehouse_as_the_runner(
        conn, db_url, second_db_url, landing) -> None:  # noqa: ANN001
    staged = run_cli(db_url, "ingest", str(landing))
    assert staged.returncode == 0, staged.stdout + staged.stderr
    with conn.cursor() as cur:
        cur.execute("call etl.process_pending()")
    assert fetch(conn, "select status, trigger, batches_processed from etl.pipeline_run") == [
        ("succeeded", "process_pending", 3)]
    assert snapshot(db_url) == clean_run(second_db_url, landing)


def test_demo_on_existing_data_prints_kpis_and_rejects(db_url, landing) -> None:  # noqa: ANN001
    done = subprocess.run([sys.executable, "-m", "runner", "demo", "--out", str(landing)],
                          cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": db_url},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert "not generated again" in done.stdout
    for text in ("average order value", "Top categories by revenue",
                 "Payment methods (share of revenue)", "by rule (etl.v_reject_summary)",
                 "Batch checks that fired (etl.v_dq_events)", "3 batch(es) processed"):
        assert text in done.stdout
    conn = connect(db_url)  # the demo's 1 % defects warn, and never hold
    try:
        assert fetch(conn, "select severity, count(*) > 0 from etl.dq_event group by 1") == [
            ("warn", True)]
    finally:
        conn.close()
