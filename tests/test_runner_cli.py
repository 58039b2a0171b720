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
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from runner import cli
from runner.config import PROJECT_ROOT
from runner.exitcodes import EXIT_BUSY, EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from runner.localdb import server_user
from runner.pipeline import CONTROL_APPLICATION
from tests.test_runner_stubs import (
    Gate,
    add_batches,
    committed_calls,
    expected_calls,
    fetch,
    inject,
    install_stub_steps,
    run_cli,
    runner_command,
    runner_env,
    start_cli,
    step_names,
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


def test_run_on_a_landing_directory_that_does_not_exist_is_a_usage_error(stubbed, db_url,
                                                                         tmp_path) -> None:  # noqa: ANN001
    add_batches(stubbed, 1)
    done = run_cli(db_url, "run", str(tmp_path / "nowhere"))
    assert done.returncode == 2, done.stderr
    assert f"the landing directory {tmp_path / 'nowhere'} does not exist" in done.stderr
    assert fetch(stubbed, "select status from etl.batch") == [("ingested",)]  # not processed
    assert fetch(stubbed, "select count(*) from etl.pipeline_run") == [(0,)]


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
        ("cancelled", step_names()[step_names().index("validate") + 1])]
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


# -- usage errors, unreadable files, passwords (issue 18) ---------------------------------------


@pytest.mark.parametrize("args, env, named", [
    (["status", "--max-data-age", "soon"], {},
     "argument --max-data-age: not a duration: 'soon' (use e.g. 30s, 15m, 26h, 2d), or off"),
    (["status", "--max-age", "5 weeks"], {},
     "argument --max-age: not a duration: '5 weeks' (use e.g. 30s, 15m, 26h, 2d)"),
    (["status"], {"WAREHOUSE_MAX_AGE": "a day"},
     "python -m runner status: WAREHOUSE_MAX_AGE='a day' is not valid: not a duration: "
     "'a day' (use e.g. 30s, 15m, 26h, 2d)"),
    (["run", "--no-ingest"], {"WAREHOUSE_RETRY_ATTEMPTS": "five"},
     "python -m runner run: WAREHOUSE_RETRY_ATTEMPTS='five' is not valid: not a whole number"),
    (["run", "--no-ingest"], {"WAREHOUSE_RETRY_ATTEMPTS": "0"},
     "python -m runner run: WAREHOUSE_RETRY_ATTEMPTS='0' is not valid: at least 1 (1 means no "
     "retry)"),
    (["run", "/does/not/exist"], {},
     "run: the landing directory /does/not/exist does not exist: give a batch directory or a "
     "directory of batch directories"),
    (["run"], {"WAREHOUSE_LANDING": "/does/not/exist"},
     "run: the landing directory /does/not/exist (WAREHOUSE_LANDING) does not exist"),
    (["schedule", "--every", "0s", "--metrics-port", "0"], {},
     "schedule: --every must be longer than 0s (got 0:00:00)"),
    (["schedule", "--metrics-port", "99999"], {},
     "argument --metrics-port: not a TCP port (0 to 65535): '99999'"),
    (["status", "--runs", "-5"], {}, "argument --runs: must be at least 1: '-5'"),
    (["status"], {"WAREHOUSE_METRICS_PORT": "http"},
     "WAREHOUSE_METRICS_PORT='http' is not valid: not a whole number"),
], ids=["max-data-age", "max-age", "WAREHOUSE_MAX_AGE", "RETRY_ATTEMPTS", "RETRY_ATTEMPTS=0",
        "run-missing-dir", "WAREHOUSE_LANDING", "every-0s", "metrics-port", "runs",
        "METRICS_PORT"])
def test_usage_errors_exit_2_naming_the_bad_value(db_url, args, env, named) -> None:  # noqa: ANN001
    done = subprocess.run(runner_command(*args), cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60, env={**runner_env(db_url), **env})
    assert done.returncode == 2, done.stdout + done.stderr
    assert named in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_status_max_age_0s_is_honoured(stubbed, db_url) -> None:  # noqa: ANN001
    add_batches(stubbed, 1)
    assert run_cli(db_url, "run", "--no-ingest").returncode == EXIT_OK
    fresh = run_cli(db_url, "status", "--max-age", "1h", "--max-data-age", "off", "--quiet")
    stale = run_cli(db_url, "status", "--max-age", "0s", "--max-data-age", "off", "--quiet")
    assert (fresh.returncode, stale.returncode) == (4, 3), fresh.stdout + stale.stdout
    assert stale.stdout.startswith("stale: ") and "(limit 0s)" in stale.stdout


@pytest.mark.parametrize("args, quoted", [
    (["status"], True), (["status", "--json"], True), (["run", "--no-ingest"], True),
    (["dashboard"], True), (["migrate"], False),  # SQLAlchemy names the scheme only
])
def test_a_malformed_database_url_never_prints_its_password(args, quoted) -> None:  # noqa: ANN001
    secret = "S3cr3t-pw"
    bad_url = f"postgresq://warehouse:{secret}@db.example:5432/warehouse"  # a typo: libpq
    # reads it as key=value pairs and quotes it whole in its "invalid dsn" message
    done = run_cli(bad_url, *args, timeout=60)
    assert done.returncode != 0
    assert secret not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert ("warehouse:***@db.example" in done.stdout + done.stderr) == quoted


def as_unprivileged_user(function, output: Path) -> int:  # noqa: ANN001
    """Run ``function()`` in a forked child as an unprivileged user (the server's when we are
    root, since root reads any file), its stdout and stderr into ``output``; returns its exit
    code."""
    user = server_user()
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        code = 1
        try:
            handle = open(output, "w", buffering=1)  # noqa: SIM115 - flushed below
            sys.stdout = sys.stderr = handle
            if not user.is_self:
                os.setgroups([])
                os.setgid(user.gid)
                os.setuid(user.uid)
            code = function()
        finally:
            sys.stdout.flush()
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_an_unreadable_file_is_refused_like_a_bad_one_after_the_batches_before_it(
        stubbed, db_url, tiny_landing) -> None:  # noqa: ANN001
    delivery = Path(tempfile.mkdtemp(prefix="warehouse-unreadable-"))
    try:
        shutil.copytree(tiny_landing, delivery, dirs_exist_ok=True)
        for path in [delivery, *delivery.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (delivery / "batch_0002" / "products.csv").chmod(0o000)
        out = delivery / "out.txt"

        def run_as_user() -> int:
            os.environ.update(runner_env(db_url))
            return cli.main(["run", str(delivery)])

        code = as_unprivileged_user(run_as_user, out)
        text = out.read_text()
        assert code == EXIT_REFUSED, text
        assert ("batch batch_0002 (" in text and "products.csv cannot be read: Permission denied "
                "(check its owner and permissions)" in text)
        assert fetch(stubbed, "select batch_name, status from etl.batch order by batch_id") == [
            ("batch_0001", "processed")]
        assert fetch(stubbed, "select batch_name, file_name, problem from etl.batch_refusal") == [
            ("batch_0002", "products.csv", "unreadable")]
    finally:
        shutil.rmtree(delivery)


def test_the_runner_login_runs_the_pipeline_and_the_bi_login_reads_only_analytics(
        conn, db_url, tiny_landing) -> None:  # noqa: ANN001
    passwords = {"WAREHOUSE_RUNNER_PASSWORD": "run-pw", "WAREHOUSE_BI_PASSWORD": "bi-pw"}
    done = run_cli(db_url, "logins", **passwords)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] in ("warehouse_runner: created, member of warehouse_etl",
                                           "warehouse_runner: updated, member of warehouse_etl")
    again = run_cli(db_url, "logins", **passwords)  # a second call only updates
    assert again.stdout.splitlines() == [
        "warehouse_runner: updated, member of warehouse_etl",
        "warehouse_bi: updated, member of warehouse_reader"]
    assert fetch(conn, "select rolname, rolsuper, rolcreaterole, rolcreatedb, "
                       "rolpassword like 'SCRAM-SHA-256$%%' from pg_authid "
                       "where rolname in ('warehouse_runner', 'warehouse_bi') order by 1") == [
        ("warehouse_bi", False, False, False, True),
        ("warehouse_runner", False, False, False, True)]
    runner_url = db_url.replace("postgresql://postgres@", "postgresql://warehouse_runner@")
    run = run_cli(runner_url, "run", str(tiny_landing))
    assert run.returncode == EXIT_OK, run.stdout + run.stderr
    assert fetch(conn, "select count(*), count(*) filter (where status = 'processed') "
                       "from etl.batch") == [(3, 3)]
    bi = connect(db_url.replace("postgresql://postgres@", "postgresql://warehouse_bi@"))
    try:
        assert fetch(bi, "select count(*) > 0 from analytics.v_daily_sales") == [(True,)]
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            fetch(bi, "select count(*) from production.customers")
    finally:
        bi.close()


def test_logins_without_passwords_is_a_usage_error(db_url) -> None:  # noqa: ANN001
    done = run_cli(db_url, "logins")
    assert done.returncode == 2
    assert done.stderr.strip() == ("logins: set WAREHOUSE_RUNNER_PASSWORD and "
                                   "WAREHOUSE_BI_PASSWORD (the passwords of the logins to create)")
