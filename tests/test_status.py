"""``status``: verdicts and exit codes for fresh, healthy, stale, failed and empty warehouses."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg2
import pytest

from runner import status
from runner.cli import main
from runner.exitcodes import EXIT_EMPTY, EXIT_FAILED, EXIT_STALE, EXIT_UNAVAILABLE
from runner.status import EXIT_HEALTHY, Limits
from tests.test_runner_stubs import run_cli

LIMITS = Limits(max_age=timedelta(hours=26), max_data_age=timedelta(hours=26))


def execute(conn, sql: str, params: tuple = ()) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(sql, params)


def add_run(conn, status_: str, ended_ago: str | None, *, error_step: str | None = None,  # noqa: ANN001
            error: str | None = None, backend_pid: int | None = None,
            error_batch_id: int | None = None) -> None:
    execute(
        conn,
        "insert into etl.pipeline_run (started_at, ended_at, status, trigger, hostname, pid, "
        "backend_pid, error_step, error_batch_id, error) values ("
        "now() - coalesce(%s::interval, '0') - interval '1 minute', "
        "now() - %s::interval, %s, 'schedule', 'host-a', 101, %s, %s, %s, %s)",
        (ended_ago, ended_ago, status_, backend_pid, error_step, error_batch_id, error),
    )


def add_sale(conn, ago: str) -> None:  # noqa: ANN001
    execute(
        conn,
        "insert into warehouse.fact_sales (item_id, transaction_id, date_key, customer_key, "
        "product_key, payment_method_key, transaction_ts, quantity, unit_price, "
        "discount, line_amount, line_cost, line_margin, source_batch_id) "
        "values ((select coalesce(max(item_id), 0) + 1 from warehouse.fact_sales), 1, -1, -1, "
        "-1, -1, now() - %s::interval, 1, 10, 0, 10, 6, 4, 1)",
        (ago,),
    )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, db_url: str):  # noqa: ANN201
    """``python -m runner ARGS`` in this process: (exit code, stdout)."""
    for name in ("WAREHOUSE_MAX_AGE", "WAREHOUSE_MAX_DATA_AGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", db_url)

    def run(*args: str, **env: str) -> tuple[int, str]:
        with monkeypatch.context() as local:
            for name, value in env.items():
                local.setenv(name, value)
            capsys.readouterr()
            code = main(list(args))
        return code, capsys.readouterr().out

    return run


def verdict(conn, limits: Limits = LIMITS) -> status.Health:  # noqa: ANN001
    return status.judge(status.collect(conn), limits)


def test_fresh_empty_warehouse_is_empty_exit_4(conn, cli) -> None:  # noqa: ANN001
    assert verdict(conn) == status.Health(
        EXIT_EMPTY, "no successful run and no sales yet: the warehouse is empty")
    assert cli("status", "--quiet") == (
        EXIT_EMPTY, "empty: no successful run and no sales yet: the warehouse is empty\n")


def test_successful_runs_without_any_sale_are_empty(conn) -> None:  # noqa: ANN001
    add_run(conn, "succeeded", "5 minutes")
    health = verdict(conn)
    assert health.exit_code == EXIT_EMPTY
    assert health.message == ("the last run succeeded 5m 0s ago, but there are no sales in the "
                              "warehouse yet")


def test_recent_run_and_recent_sale_are_healthy_exit_0(conn, cli) -> None:  # noqa: ANN001
    add_run(conn, "succeeded", "1 hour")
    add_sale(conn, "2 hours")
    assert verdict(conn) == status.Health(
        EXIT_HEALTHY, "the last run succeeded 1h 0m ago; newest sale 2h 0m old")
    code, out = cli("status")
    assert code == EXIT_HEALTHY
    assert out.startswith("Pipeline status: HEALTHY (exit 0): the last run succeeded")
    assert "Last runs" in out and "newest sale" in out


def test_old_last_successful_run_is_stale_exit_3(conn, cli) -> None:  # noqa: ANN001
    add_run(conn, "succeeded", "30 hours")
    add_sale(conn, "31 hours")
    assert verdict(conn) == status.Health(
        EXIT_STALE, "the last successful run ended 1d 6h ago (limit 1d 2h)")
    assert cli("status", "-q")[0] == EXIT_STALE
    assert cli("status", "-q", "--max-age", "2d")[0] == EXIT_HEALTHY
    assert cli("status", "-q", WAREHOUSE_MAX_AGE="3d")[0] == EXIT_HEALTHY


def test_old_newest_sale_is_stale_unless_the_data_check_is_off(conn, cli) -> None:  # noqa: ANN001
    add_run(conn, "succeeded", "10 minutes")
    add_sale(conn, "3 days")
    assert verdict(conn) == status.Health(
        EXIT_STALE, "the newest sale is 3d 0h old (limit 1d 2h); the last run succeeded 10m 0s "
                    "ago")
    assert verdict(conn, Limits(timedelta(hours=26), None)).exit_code == EXIT_HEALTHY
    assert cli("status", "-q", "--max-data-age", "off")[0] == EXIT_HEALTHY
    assert cli("status", "-q", WAREHOUSE_MAX_DATA_AGE="off")[0] == EXIT_HEALTHY
    assert cli("status", "-q", "--max-data-age", "4d")[0] == EXIT_HEALTHY


def test_failed_last_run_is_exit_1_even_when_data_is_fresh(conn, cli) -> None:  # noqa: ANN001
    add_run(conn, "succeeded", "2 hours")
    add_sale(conn, "1 hour")
    add_run(conn, "failed", "1 hour", error_step="merge", error_batch_id=7,
            error="step merge of batch 7 (b7): SQLSTATE 23505: duplicate key")
    expected = ("run 2 failed at step merge of batch 7: step merge of batch 7 (b7): SQLSTATE "
                "23505: duplicate key")
    assert verdict(conn) == status.Health(EXIT_FAILED, expected)
    assert cli("status", "--quiet") == (EXIT_FAILED, f"failed: {expected}\n")


def test_run_left_running_without_the_lock_is_abandoned_and_failed(conn) -> None:  # noqa: ANN001
    add_run(conn, "succeeded", "2 hours")
    add_sale(conn, "1 hour")
    add_run(conn, "running", None, backend_pid=999999)
    report = status.collect(conn)
    assert [r.status for r in report.runs] == ["abandoned", "succeeded"]
    assert status.judge(report, LIMITS) == status.Health(
        EXIT_FAILED, "run 2 abandoned: its process stopped (killed, or its connection lost) "
                     "without recording its end; the next run marks it failed")


def test_abandoned_run_reports_the_step_and_batch_it_was_in(conn) -> None:  # noqa: ANN001
    add_run(conn, "succeeded", "2 hours")
    add_sale(conn, "1 hour")
    add_run(conn, "running", None, backend_pid=999999)
    with conn.cursor() as cur:
        cur.execute("insert into etl.step_run (run_id, step, batch_id, status, ended_at) "
                    "values (2, 'merge', 3, 'succeeded', now()), "
                    "(2, 'load_fact_sales', 3, 'running', null)")
    assert status.judge(status.collect(conn), LIMITS) == status.Health(
        EXIT_FAILED, "run 2 abandoned at step load_fact_sales of batch 3: its process stopped "
                     "(killed, or its connection lost) without recording its end; the next run "
                     "marks it failed")


def test_run_in_progress_holding_the_lock_does_not_count_as_finished(conn, cli, db_url) -> None:  # noqa: ANN001
    add_run(conn, "failed", "3 hours", error="old failure")
    add_run(conn, "succeeded", "2 hours")
    add_sale(conn, "1 hour")
    holder = psycopg2.connect(db_url)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("select pg_advisory_lock(etl.pipeline_lock_key())")
            cur.execute("insert into etl.pipeline_run (trigger, hostname, pid, backend_pid) "
                        "values ('cli', 'host-b', 202, pg_backend_pid())")
        add_run(conn, "cancelled", "30 minutes")  # a cancelled run is no verdict either
        report = status.collect(conn)
        assert [r.status for r in report.runs] == ["cancelled", "running", "succeeded", "failed"]
        assert status.judge(report, LIMITS).exit_code == EXIT_HEALTHY
        assert "A run is in progress: run 3 (cli) on host-b, pid 202" in cli("status")[1]
    finally:
        holder.close()


def test_json_reports_freshness_runs_steps_and_rejects_of_the_latest_batch(conn, cli) -> None:  # noqa: ANN001
    execute(conn, "insert into etl.batch (batch_name, source_path) values ('b1', '/l/b1'), "
                  "('b2', '/l/b2')")
    execute(conn, "insert into etl.rejected_row (batch_id, file_name, line_no, rules) values "
                  "(2, 'customers.csv', 2, '{invalid_email}'), "
                  "(2, 'customers.csv', 3, '{invalid_email,missing_required}'), "
                  "(1, 'products.csv', 2, '{invalid_amount}')")
    add_run(conn, "succeeded", "1 minute")
    execute(conn, "insert into etl.step_run (run_id, step, batch_id, started_at, ended_at, "
                  "status, attempts, rows) values (1, 'validate', 2, now() - interval '3 s', "
                  "now(), 'succeeded', 2, 40)")
    add_sale(conn, "1 hour")
    code, out = cli("status", "--json")
    assert code == EXIT_HEALTHY
    report = json.loads(out)
    assert report["verdict"] == "healthy" and report["exit_code"] == 0
    assert report["limits"] == {"max_age_seconds": 93600.0, "max_data_age_seconds": 93600.0}
    fresh = report["freshness"]
    assert 3590 < fresh["newest_transaction_age_seconds"] < 3700
    assert 50 < fresh["last_successful_run_age_seconds"] < 200
    assert [(r["run_id"], r["status"], r["trigger"]) for r in report["runs"]] == [
        (1, "succeeded", "schedule")]
    (step,) = report["steps"]["steps"]
    assert (step["step"], step["batch_id"], step["attempts"], step["rows"]) == (
        "validate", 2, 2, 40)
    assert 2.9 < step["seconds"] < 3.5
    assert report["rejects"] == {"batch_id": 2, "batch_name": "b2", "rules": [
        {"file_name": "customers.csv", "rule": "invalid_email", "rows": 2},
        {"file_name": "customers.csv", "rule": "missing_required", "rows": 1}]}


def test_unmigrated_or_unreachable_database_is_exit_5(empty_db_url) -> None:  # noqa: ANN001
    done = run_cli(empty_db_url, "status", "--quiet")
    assert done.returncode == EXIT_UNAVAILABLE
    assert done.stdout.startswith("unavailable: the database is not migrated")
    assert "python -m runner migrate" in done.stdout
    gone = run_cli("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", "status", "--json")
    assert gone.returncode == EXIT_UNAVAILABLE
    assert json.loads(gone.stdout)["verdict"] == "unavailable"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59, "59s"), (61, "1m 1s"), (3600, "1h 0m"), (93600, "1d 2h"), (-5, "-5s")])
def test_ages_are_written_for_people(seconds: int, text: str) -> None:
    assert status.human_age(timedelta(seconds=seconds)) == text
