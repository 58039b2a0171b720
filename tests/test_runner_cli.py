"""``python -m runner run`` as a process: one run at a time, kill -9 and resume, the summary.

Stub steps (tests/test_runner_stubs.py) make the runs slow or failing on demand; the runner
itself is the real one, in a subprocess with DATABASE_URL pointing at the test's database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from runner.config import PROJECT_ROOT
from runner.pipeline import CONTROL_APPLICATION, EXIT_BUSY, EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from tests.conftest import url_for
from tests.test_runner_stubs import (
    Gate,
    add_batches,
    committed_calls,
    expected_calls,
    fetch,
    inject,
    install_stub_steps,
    run_cli,
    start_cli,
)


def connect(url: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def wait_for(predicate, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def running_step(conn, step: str, batch_id: int) -> bool:  # noqa: ANN001
    return fetch(conn, "select count(*) from etl.step_run where step = %s and batch_id = %s "
                       "and status = 'running'", (step, batch_id)) == [(1,)]


@pytest.fixture
def stubbed(conn):  # noqa: ANN001, ANN201
    install_stub_steps(conn)
    return conn


@pytest.fixture
def second_db_url(warehouse_server, db_url) -> Iterator[str]:  # noqa: ANN001
    """Another fresh database cloned from the migrated template (a clean reference run)."""
    name = f"second_{uuid.uuid4().hex[:10]}"
    admin = connect(url_for("postgres"))
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}" template "{warehouse_server.template_dbname}"')
    yield url_for(name)
    with admin.cursor() as cur:
        cur.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                    (name,))
        cur.execute(f'drop database if exists "{name}"')
    admin.close()


def test_run_prints_the_summary_and_exits_zero(stubbed, db_url) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    done = run_cli(db_url, "run", "--no-ingest")
    assert done.returncode == EXIT_OK, done.stderr
    assert done.stdout.startswith("run 1: succeeded in ")
    assert "2 batch(es) processed" in done.stdout
    assert "Time per step" in done.stdout
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert lines["validate"][1:3] == ["2", "succeeded"]  # 2 batches
    assert lines["mark_processed"][-1] == "2"  # rows: one per batch
    assert committed_calls(stubbed) == expected_calls(batches)
    info = [line for line in done.stderr.splitlines() if " INFO " in line]
    assert len(info) == 1 and "run 1 succeeded in " in info[0]  # one log line per run


def test_permanent_error_exits_one_printing_step_batch_sqlstate_and_message(
        stubbed, db_url) -> None:  # noqa: ANN001
    add_batches(stubbed, 1)
    inject(stubbed, "merge", sqlstate="23503", fail_calls=9,
           message='insert or update on table "transactions" violates foreign key constraint')
    done = run_cli(db_url, "run", "--no-ingest")
    assert done.returncode == EXIT_FAILED
    assert ("error: step merge of batch 1 (batch_0001): SQLSTATE 23503: insert or update on "
            'table "transactions" violates foreign key constraint (permanent error on attempt '
            "1, not retried)") in done.stdout


def test_second_run_refuses_with_exit_75_naming_the_holder(stubbed, db_url) -> None:  # noqa: ANN001
    (batch,) = add_batches(stubbed, 1)
    with Gate(db_url) as gate:
        inject(stubbed, "merge", gate=gate)
        first = start_cli(db_url, "run", "--no-ingest")
        wait_for(lambda: running_step(stubbed, "merge", batch))
        second = run_cli(db_url, "run", "--no-ingest")
        assert first.poll() is None  # the second did not wait for the first
        assert second.returncode == EXIT_BUSY
        ((run_id, host, pid),) = fetch(stubbed, "select run_id, hostname, pid from "
                                                "etl.pipeline_run where status = 'running'")
        assert pid == first.pid
        assert second.stdout.startswith(f"another run holds the pipeline lock: run {run_id} "
                                        f"(cli) on host {host}, pid {first.pid}, started ")
        assert "Try again later, or pass --wait. (exit 75)" in second.stdout
    out, err = first.communicate(timeout=60)
    assert first.returncode == EXIT_OK, err
    assert fetch(stubbed, "select count(*) from etl.pipeline_run") == [(1,)]  # 2nd not recorded
    assert committed_calls(stubbed) == expected_calls([batch])


def test_second_run_with_wait_runs_after_the_first(stubbed, db_url) -> None:  # noqa: ANN001
    (batch,) = add_batches(stubbed, 1)
    with Gate(db_url) as gate:
        inject(stubbed, "merge", gate=gate)
        first = start_cli(db_url, "run", "--no-ingest")
        wait_for(lambda: running_step(stubbed, "merge", batch))
        second = start_cli(db_url, "run", "--no-ingest", "--wait")
        wait_for(lambda: fetch(stubbed, "select count(*) from pg_stat_activity where "
                                        "application_name = %s", (CONTROL_APPLICATION,))
                 == [(2,)])  # both runs connected; the second is polling the lock
    _, first_err = first.communicate(timeout=60)
    _, second_err = second.communicate(timeout=60)
    assert (first.returncode, second.returncode) == (EXIT_OK, EXIT_OK), first_err + second_err
    assert "waiting for the pipeline lock, held by run 1 (cli)" in second_err
    runs = fetch(stubbed, "select run_id, status, batches_processed, started_at, ended_at "
                          "from etl.pipeline_run order by run_id")
    assert [(r[1], r[2]) for r in runs] == [("succeeded", 1), ("succeeded", 0)]
    assert runs[1][3] >= runs[0][4]  # no overlap
    assert committed_calls(stubbed) == expected_calls([batch])


def test_kill_9_mid_run_then_run_again_equals_a_clean_run(stubbed, db_url, second_db_url
                                                          ) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 3)
    with Gate(db_url) as gate:
        inject(stubbed, "load_fact_sales", gate=gate, batch_id=batches[1])
        victim = start_cli(db_url, "run", "--no-ingest")
        wait_for(lambda: running_step(stubbed, "load_fact_sales", batches[1]))
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=10)
    assert victim.returncode == -signal.SIGKILL
    assert fetch(stubbed, "select status from etl.pipeline_run") == [("running",)]

    again = run_cli(db_url, "run", "--no-ingest")
    assert again.returncode == EXIT_OK, again.stderr
    assert "1 run(s) left 'running' by a killed process marked failed" in again.stderr

    reference = connect(second_db_url)
    try:
        install_stub_steps(reference)
        add_batches(reference, 3)
        clean = run_cli(second_db_url, "run", "--no-ingest")
        assert clean.returncode == EXIT_OK
        state = ("select batch_id, step, count(*) from runner_test.call "
                 "group by 1, 2 order by 1, 2")
        assert fetch(stubbed, state) == fetch(reference, state)
        batch_state = "select batch_id, batch_name, status from etl.batch order by 1"
        assert fetch(stubbed, batch_state) == fetch(reference, batch_state)
    finally:
        reference.close()
    runs = fetch(stubbed, "select status, left(error, 9) from etl.pipeline_run order by run_id")
    assert runs == [("failed", "abandoned"), ("succeeded", None)]
    assert fetch(stubbed, "select count(*) from etl.step_run where status = 'running'") == [(0,)]
    killed_step = fetch(stubbed, "select status from etl.step_run where run_id = 1 "
                                 "and step = 'load_fact_sales' and batch_id = %s", (batches[1],))
    assert killed_step == [("failed",)]


def test_run_without_a_landing_directory_processes_what_is_pending(stubbed, db_url,
                                                                   tmp_path) -> None:  # noqa: ANN001
    add_batches(stubbed, 1)
    done = run_cli(db_url, "-v", "run", str(tmp_path / "nowhere"))
    assert done.returncode == EXIT_OK, done.stderr
    assert "does not exist: nothing to ingest" in done.stderr
    assert fetch(stubbed, "select status from etl.batch") == [("processed",)]


def test_sigterm_during_run_finishes_the_step_and_exits_130(stubbed, db_url) -> None:  # noqa: ANN001
    (batch,) = add_batches(stubbed, 1)
    with Gate(db_url) as gate:
        inject(stubbed, "validate", gate=gate)
        proc = start_cli(db_url, "run", "--no-ingest")
        wait_for(lambda: running_step(stubbed, "validate", batch))
        proc.send_signal(signal.SIGTERM)  # while validate waits at the gate
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert fetch(stubbed, "select step, status from etl.step_run order by step_run_id") == [
        ("validate", "succeeded")]
    assert fetch(stubbed, "select status, error_step from etl.pipeline_run") == [
        ("cancelled", "merge")]
    assert "run 1: cancelled" in out


@pytest.fixture(scope="module")
def tiny_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "landing"
    subprocess.run([sys.executable, "-m", "generator", "--customers", "30", "--products", "10",
                    "--transactions", "60", "--batches", "3", "--quiet", "--out", str(out)],
                   cwd=PROJECT_ROOT, check=True)
    return out


def test_refused_batch_fails_the_run_after_processing_the_batches_before_it(
        stubbed, db_url, tiny_landing, tmp_path) -> None:  # noqa: ANN001
    delivery = tmp_path / "landing"
    shutil.copytree(tiny_landing, delivery)
    customers = delivery / "batch_0002" / "customers.csv"
    lines = customers.read_text(encoding="utf-8").splitlines(keepends=True)
    header = [c for c in lines[0].rstrip("\r\n").split(",") if c.strip().lower() != "email"]
    customers.write_text(",".join(header) + "\n" + "".join(lines[1:]), encoding="utf-8")
    done = run_cli(db_url, "run", str(delivery))
    assert done.returncode == EXIT_REFUSED, done.stdout + done.stderr
    assert ("error: step ingest: batch batch_0002 (" in done.stdout
            and "customers.csv: the header (line 1) lacks the required column email"
            in done.stdout)
    assert fetch(stubbed, "select batch_name, status from etl.batch order by batch_id") == [
        ("batch_0001", "processed")]  # batch_0003 not staged
    assert committed_calls(stubbed) == expected_calls([1])
    assert fetch(stubbed, "select batch_name, file_name from etl.batch_refusal") == [
        ("batch_0002", "customers.csv")]
    assert fetch(stubbed, "select status, error_step, batches_processed from etl.pipeline_run"
                 ) == [("failed", "ingest", 1)]
    assert fetch(stubbed, "select status from etl.step_run where step = 'ingest'") == [
        ("failed",)]
    # fixed and delivered again: the next run takes batch_0002 and batch_0003
    shutil.copy(tiny_landing / "batch_0002" / "customers.csv", customers)
    again = run_cli(db_url, "run", str(delivery))
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    assert fetch(stubbed, "select batch_name, status from etl.batch order by batch_id") == [
        ("batch_0001", "processed"), ("batch_0002", "processed"), ("batch_0003", "processed")]
