"""The runner's mechanism on stub steps: order, retries, permanent errors, resume, stop.

Real PostgreSQL; faults are raised for real by the stub procedures (tests/test_runner_stubs.py)
or made by terminating the step's server process from another connection.
"""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from runner.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_STOPPED
from runner.pipeline import CONTROL_APPLICATION, WORK_APPLICATION, RunOptions, run_pipeline
from runner.retry import read_policy
from runner.steps import read_steps
from tests.test_runner_stubs import (
    RUN_STEPS,
    STEPS,
    STUB_ROWS,
    STUBBED,
    Gate,
    add_batches,
    call_count,
    clear_faults,
    committed_calls,
    expected_calls,
    fast_retry,
    fetch,
    inject,
    install_stub_steps,
    step_names,
)


@pytest.fixture
def stubbed(conn):  # noqa: ANN001, ANN201
    install_stub_steps(conn)
    return conn


def options(attempts: int = 5) -> RunOptions:
    return RunOptions(landing=None, retry=fast_retry(attempts), trigger="test")


def step_runs(conn, run_id: int) -> list[tuple]:  # noqa: ANN001
    return fetch(conn, "select step, batch_id, status, attempts, rows, sqlstate, error "
                       "from etl.step_run where run_id = %s order by step_run_id", (run_id,))


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


def test_every_pending_batch_goes_through_every_step_in_order(stubbed, db_url) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    result = run_pipeline(db_url, options())
    assert (result.status, result.exit_code, result.batches) == ("succeeded", EXIT_OK, batches)
    assert committed_calls(stubbed) == expected_calls(batches)
    assert fetch(stubbed, "select batch_id, status from etl.batch order by 1") == [
        (batches[0], "processed"), (batches[1], "processed")]
    runs = fetch(stubbed, "select status, trigger, batches_processed, error, ended_at is not null "
                          "from etl.pipeline_run")
    assert runs == [("succeeded", "test", 2, None, True)]
    history = step_runs(stubbed, result.run_id)
    assert [(s[0], s[1]) for s in history] == [
        *((name, b) for b in batches for name in step_names()), *RUN_STEPS]
    assert {(s[2], s[3]) for s in history} == {("succeeded", 1)}
    rows = {s[0]: s[4] for s in history}
    assert rows == {**{s.name: STUB_ROWS for s in STUBBED}, "mark_processed": 1,
                    **{name: None for name, _ in RUN_STEPS}}


def test_nothing_pending_is_a_successful_empty_run(stubbed, db_url) -> None:  # noqa: ANN001
    result = run_pipeline(db_url, options())
    assert (result.status, result.exit_code, result.batches) == ("succeeded", EXIT_OK, [])
    assert [(s.step, s.batch_id) for s in result.steps] == RUN_STEPS  # once a run, still
    assert committed_calls(stubbed) == []


def test_serialization_failure_is_retried_and_nothing_is_duplicated(stubbed, db_url) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    inject(stubbed, "merge", sqlstate="40001", fail_calls=2, batch_id=batches[0],
           message="could not serialize access due to concurrent update")
    result = run_pipeline(db_url, options())
    assert result.status == "succeeded"
    assert call_count(stubbed, "merge") == 4  # 2 failed + 1 for each batch
    assert committed_calls(stubbed) == expected_calls(batches)  # the failed calls left nothing
    merge = [s for s in step_runs(stubbed, result.run_id) if s[0] == "merge"]
    assert merge[0][:5] == ("merge", batches[0], "succeeded", 3, STUB_ROWS)
    assert merge[0][5] == "40001"  # the last transient error stays in the history
    assert "could not serialize" in merge[0][6]
    assert merge[1][:4] == ("merge", batches[1], "succeeded", 1)


@pytest.mark.parametrize("sqlstate", ["40P01", "55P03", "57P03", "53300"])
def test_other_transient_sqlstates_are_retried(stubbed, db_url, sqlstate: str) -> None:  # noqa: ANN001
    (batch,) = add_batches(stubbed, 1)
    inject(stubbed, "load_dimensions", sqlstate=sqlstate, fail_calls=1)
    result = run_pipeline(db_url, options())
    assert result.status == "succeeded"
    assert call_count(stubbed, "load_dimensions") == 2
    assert committed_calls(stubbed) == expected_calls([batch])


def test_terminated_step_backend_is_reconnected_and_retried(stubbed, db_url) -> None:  # noqa: ANN001
    (batch,) = add_batches(stubbed, 1)
    inject(stubbed, "load_fact_sales", sleep_s=30, sleep_calls=1)
    killed: list[int] = []

    def terminate_the_step() -> None:
        watcher = psycopg2.connect(db_url)
        watcher.autocommit = True
        try:
            with watcher.cursor() as cur:
                def step_is_running() -> bool:
                    cur.execute(
                        "select pid from pg_stat_activity where application_name = %s "
                        "and state = 'active' and query like 'call warehouse.load_fact_sales%%'",
                        (WORK_APPLICATION,))
                    rows = cur.fetchall()
                    killed.extend(row[0] for row in rows)
                    return bool(rows)
                wait_for(step_is_running)
                cur.execute("select pg_terminate_backend(%s)", (killed[0],))
        finally:
            watcher.close()

    thread = threading.Thread(target=terminate_the_step)
    thread.start()
    began = time.monotonic()
    result = run_pipeline(db_url, options())
    thread.join()
    assert time.monotonic() - began < 20  # the 30 s sleep was cut short
    assert result.status == "succeeded", result.error
    assert len(killed) == 1
    assert call_count(stubbed, "load_fact_sales") == 2
    assert committed_calls(stubbed) == expected_calls([batch])
    fact = [s for s in step_runs(stubbed, result.run_id) if s[0] == "load_fact_sales"]
    assert fact[0][2:4] == ("succeeded", 2)
    # psycopg2 sees the connection closed (no SQLSTATE, or 57P01 admin_shutdown): retried on
    # a new connection
    assert fact[0][5] in (None, "57P01")
    assert "terminat" in fact[0][6] or "closed the connection" in fact[0][6]


def test_permanent_error_fails_at_once_with_step_batch_and_message(stubbed, db_url) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    inject(stubbed, "check_reconciliation", sqlstate="P0001", fail_calls=99,
           batch_id=batches[0], message="fact differs from production on 2025-03-01: 12.50")
    result = run_pipeline(db_url, options())
    assert (result.status, result.exit_code) == ("failed", EXIT_FAILED)
    assert call_count(stubbed, "check_reconciliation") == 1  # not retried
    assert result.error == (
        f"step check_reconciliation of batch {batches[0]} (batch_0001): SQLSTATE P0001: "
        "fact differs from production on 2025-03-01: 12.50 (permanent error on attempt 1, "
        "not retried)")
    assert fetch(stubbed, "select status, error_step, error_batch_id, error, batches_processed "
                          "from etl.pipeline_run") == [
        ("failed", "check_reconciliation", batches[0], result.error, 0)]
    failed = step_runs(stubbed, result.run_id)[-1]
    assert failed == ("check_reconciliation", batches[0], "failed", 1, None, "P0001",
                      "SQLSTATE P0001: fact differs from production on 2025-03-01: 12.50")
    assert all(batch == batches[0] for batch, _ in committed_calls(stubbed))  # 2nd untouched
    assert fetch(stubbed, "select count(*) from etl.batch where status = 'processed'") == [(0,)]


def test_transient_error_that_persists_fails_after_the_configured_attempts(
        stubbed, db_url) -> None:  # noqa: ANN001
    add_batches(stubbed, 1)
    inject(stubbed, "validate", sqlstate="40001", fail_calls=99)
    result = run_pipeline(db_url, options(attempts=3))
    assert result.status == "failed"
    assert call_count(stubbed, "validate") == 3
    assert "still failing after 3 attempt(s)" in result.error
    assert step_runs(stubbed, result.run_id)[0][2:4] == ("failed", 3)


def test_next_run_resumes_after_the_last_recorded_step(stubbed, db_url) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    inject(stubbed, "load_fact_sales", sqlstate="23505", fail_calls=1, batch_id=batches[0])
    assert run_pipeline(db_url, options()).status == "failed"
    clear_faults(stubbed)
    second = run_pipeline(db_url, options())
    assert second.status == "succeeded"
    assert committed_calls(stubbed) == expected_calls(batches)  # each step committed once
    resumed = [s[0] for s in step_runs(stubbed, second.run_id) if s[1] == batches[0]]
    assert resumed == step_names()[step_names().index("load_fact_sales"):]


def test_stop_request_finishes_the_current_step_then_cancels_the_run(stubbed, db_url) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    stop = threading.Event()
    results = []
    with Gate(db_url) as gate:
        inject(stubbed, "merge", gate=gate)
        thread = threading.Thread(target=lambda: results.append(
            run_pipeline(db_url, options(), stop)))
        thread.start()
        wait_for(lambda: fetch(stubbed, "select count(*) from etl.step_run "
                                        "where step = 'merge' and status = 'running'") == [(1,)])
        stop.set()  # while merge waits at the gate
    thread.join(20)
    (result,) = results
    assert (result.status, result.exit_code) == ("cancelled", EXIT_STOPPED)
    assert committed_calls(stubbed) == [
        (batches[0], name) for name in step_names()[:step_names().index("merge") + 1]]
    assert fetch(stubbed, "select status, error_step, error_batch_id from etl.pipeline_run") == [
        ("cancelled", "reprocess_rejects", batches[0])]
    assert fetch(stubbed, "select count(*) from etl.step_run where status = 'running'") == [(0,)]
    assert run_pipeline(db_url, options()).status == "succeeded"
    assert committed_calls(stubbed) == expected_calls(batches)


def test_killed_run_left_running_is_marked_failed_by_the_next_run(stubbed, db_url) -> None:  # noqa: ANN001
    with stubbed.cursor() as cur:
        cur.execute("insert into etl.pipeline_run (trigger, hostname, pid, backend_pid) "
                    "values ('cli', 'gone-host', 4242, 999999) returning run_id")
        (dead,) = cur.fetchone()
        cur.execute("insert into etl.step_run (run_id, step, batch_id) values (%s, 'merge', 1)",
                    (dead,))
    result = run_pipeline(db_url, options())
    assert result.status == "succeeded"
    (row,) = fetch(stubbed, "select status, ended_at is not null, error, error_step, "
                            "error_batch_id from etl.pipeline_run where run_id = %s", (dead,))
    assert (row[:2], row[3:]) == (("failed", True), ("merge", 1))
    assert row[2].startswith("abandoned: the run ended without recording its end")
    assert fetch(stubbed, "select status, error from etl.step_run where run_id = %s", (dead,)) == [
        ("failed", "abandoned: the run stopped during this step without recording its end")]


def test_fail_abandoned_runs_refuses_a_session_without_the_lock(stubbed) -> None:  # noqa: ANN001
    with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState, match="does not hold"):
        fetch(stubbed, "select etl.fail_abandoned_runs()")


def test_undefined_database_objects_say_to_migrate(empty_db_url) -> None:  # noqa: ANN001
    result = run_pipeline(empty_db_url, options())
    assert (result.status, result.exit_code) == ("failed", EXIT_FAILED)
    assert "python -m runner migrate" in result.error


def test_unreachable_database_is_retried_then_reported() -> None:
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    began = time.monotonic()
    result = run_pipeline(url, options(attempts=2))
    assert result.status == "failed"
    assert result.error.startswith("cannot reach the database")
    assert "still failing after 2 attempt(s)" in result.error
    assert time.monotonic() - began < 10


# -- etl.process_pending: the same chain in PL/pgSQL ------------------------------------------

def test_the_chain_is_the_seeded_table(conn) -> None:  # noqa: ANN001
    assert read_steps(conn) == STEPS
    assert fetch(conn, "select step_order from etl.pipeline_step order by step_order") == [
        (order,) for order in (10, 13, 16, 20, 30, 40, 50, 60, 70, 80, 90)]
    policy = read_policy(conn)
    assert (policy.attempts, policy.base_delay, policy.max_delay) == (5, 0.5, 30.0)
    assert sorted(policy.transient) == ["08000", "08001", "08003", "08006", "40001", "40P01",
                                        "53300", "55P03", "57P01", "57P02", "57P03"]


_ADDED_STEPS_SQL = """
create table runner_test.added_call (
    call_id  bigint generated always as identity primary key,
    batch_id bigint,
    step     text not null
);
create procedure runner_test.check_batch(p_batch_id bigint) language sql as $$
    insert into runner_test.added_call (batch_id, step) values (p_batch_id, 'check_batch')
$$;
create procedure runner_test.after_batches() language sql as $$
    insert into runner_test.added_call (batch_id, step) values (null, 'after_batches')
$$;
insert into etl.pipeline_step (step_order, step, procedure, per_batch, description) values
    (18, 'check_batch', 'runner_test.check_batch', true, 'between hold and merge'),
    (95, 'after_batches', 'runner_test.after_batches', false, 'once a run, after the batches');
"""


@pytest.mark.parametrize("runner", ["python", "process_pending"])
def test_a_step_is_one_row_for_both_runners(stubbed, db_url, runner: str) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    with stubbed.cursor() as cur:
        cur.execute(_ADDED_STEPS_SQL)
    if runner == "python":
        assert run_pipeline(db_url, options()).status == "succeeded"
    else:
        with stubbed.cursor() as cur:
            cur.execute("call etl.process_pending()")
    merge = step_names().index("merge")
    chain = [*step_names()[:merge], "check_batch", *step_names()[merge:]]
    ((run_id,),) = fetch(stubbed, "select run_id from etl.pipeline_run")
    assert [(s[0], s[1], s[2]) for s in step_runs(stubbed, run_id)] == [
        *((name, b, "succeeded") for b in batches for name in chain),
        *((name, b, "succeeded") for name, b in RUN_STEPS),
        ("after_batches", None, "succeeded")]
    assert fetch(stubbed, "select batch_id, step from runner_test.added_call order by 1") == [
        (batches[0], "check_batch"), (batches[1], "check_batch"), (None, "after_batches")]
    assert committed_calls(stubbed) == expected_calls(batches)
    assert fetch(stubbed, "select batches_processed from etl.pipeline_run") == [(2,)]


def test_process_pending_runs_every_batch_and_records_the_run(stubbed) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    with stubbed.cursor() as cur:
        cur.execute("call etl.process_pending()")
    assert committed_calls(stubbed) == expected_calls(batches)
    assert fetch(stubbed, "select status, trigger, batches_processed from etl.pipeline_run") == [
        ("succeeded", "process_pending", 2)]
    assert fetch(stubbed, "select count(*), count(*) filter (where status = 'succeeded') "
                          "from etl.step_run") == [(2 * len(step_names()) + len(RUN_STEPS),
                                                   2 * len(step_names()) + len(RUN_STEPS))]
    assert fetch(stubbed, "select count(*) from etl.batch where status = 'processed'") == [(2,)]
    assert fetch(stubbed, "select * from etl.pipeline_lock_holder()") == []


def test_process_pending_records_and_raises_a_failure_then_resumes(stubbed) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 1)
    inject(stubbed, "load_dimensions", sqlstate="23514", fail_calls=1,
           message="check constraint violated")
    with pytest.raises(psycopg2.errors.CheckViolation,
                       match="failed at step load_dimensions of batch 1"):
        with stubbed.cursor() as cur:
            cur.execute("call etl.process_pending()")
    assert fetch(stubbed, "select status, error_step, error from etl.pipeline_run") == [
        ("failed", "load_dimensions", "SQLSTATE 23514: check constraint violated")]
    assert fetch(stubbed, "select * from etl.pipeline_lock_holder()") == []  # lock released
    with stubbed.cursor() as cur:
        cur.execute("call etl.process_pending()")
    assert committed_calls(stubbed) == expected_calls(batches)


def test_process_pending_retries_a_serialization_failure(stubbed) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 1)
    inject(stubbed, "merge", sqlstate="40001", fail_calls=2)
    with stubbed.cursor() as cur:
        cur.execute("call etl.process_pending()")
    assert call_count(stubbed, "merge") == 3
    assert committed_calls(stubbed) == expected_calls(batches)
    assert fetch(stubbed, "select attempts from etl.step_run where step = 'merge'") == [(3,)]


def test_process_pending_refuses_while_a_run_holds_the_lock(stubbed, db_url) -> None:  # noqa: ANN001
    holder = psycopg2.connect(db_url)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("select pg_advisory_lock(etl.pipeline_lock_key()), pg_backend_pid()")
            backend = cur.fetchone()[1]
        with pytest.raises(psycopg2.errors.LockNotAvailable,
                           match=f"another pipeline run holds the lock \\(server pid {backend}"):
            with stubbed.cursor() as cur:
                cur.execute("call etl.process_pending()")
    finally:
        holder.close()


def test_process_pending_inside_a_transaction_block_refuses_up_front_and_leaves_no_lock(
        stubbed, db_url) -> None:  # noqa: ANN001
    add_batches(stubbed, 1)
    dba = psycopg2.connect(db_url)  # not autocommit: psycopg2 opens a transaction block
    try:
        with dba.cursor() as cur:
            cur.execute("select 1")
            with pytest.raises(psycopg2.errors.ActiveSqlTransaction) as refused:
                cur.execute("call etl.process_pending()")
        assert refused.value.diag.message_primary == (
            "etl.process_pending: called inside a transaction block; it commits after every "
            "step, so it must be called on its own")
        assert refused.value.diag.message_hint.startswith(
            "ROLLBACK, then CALL etl.process_pending(); outside BEGIN ... COMMIT")
        dba.rollback()
        assert fetch(stubbed, "select * from etl.pipeline_lock_holder()") == []
        result = run_pipeline(db_url, options())  # the next run is not blocked
        assert (result.status, result.batches) == ("succeeded", [1])
    finally:
        dba.close()


def test_process_pending_holds_the_lock_only_inside_its_transactions(stubbed, db_url) -> None:  # noqa: ANN001
    """An error the procedure does not catch (here: a trigger refusing its run-history row)
    still releases the lock with the rollback."""
    add_batches(stubbed, 1)
    with stubbed.cursor() as cur:
        cur.execute("create function runner_test.refuse_run() returns trigger language plpgsql "
                    "as $$ begin raise exception 'history unavailable'; end $$")
        cur.execute("create trigger refuse_run before insert on etl.pipeline_run "
                    "for each row execute function runner_test.refuse_run()")
        with pytest.raises(psycopg2.errors.RaiseException, match="history unavailable"):
            cur.execute("call etl.process_pending()")
        assert fetch(stubbed, "select * from etl.pipeline_lock_holder()") == []
        cur.execute("drop trigger refuse_run on etl.pipeline_run")
        cur.execute("call etl.process_pending()")
    assert fetch(stubbed, "select status, batches_processed from etl.pipeline_run") == [
        ("succeeded", 1)]


def test_a_step_whose_run_lost_its_connection_and_lock_is_not_left_running(stubbed, db_url
                                                                           ) -> None:  # noqa: ANN001
    (batch,) = add_batches(stubbed, 1)
    inject(stubbed, "merge", sleep_s=30, sleep_calls=1)
    thief = psycopg2.connect(db_url)
    thief.autocommit = True

    def lose_both_connections_and_the_lock() -> None:
        with thief.cursor() as cur:
            def merge_is_running() -> bool:
                cur.execute("select count(*) from pg_stat_activity where application_name = %s "
                            "and state = 'active' and query like 'call production.merge_batch%%'",
                            (WORK_APPLICATION,))
                return cur.fetchone()[0] == 1
            wait_for(merge_is_running)
            cur.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                        "where application_name = %s", (CONTROL_APPLICATION,))
            cur.execute("select pg_advisory_lock(etl.pipeline_lock_key())")
            cur.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                        "where application_name = %s", (WORK_APPLICATION,))

    thread = threading.Thread(target=lose_both_connections_and_the_lock)
    thread.start()
    try:
        result = run_pipeline(db_url, options())
    finally:
        thread.join()
        thief.close()
    assert result.status == "failed"
    assert "another run took the lock meanwhile" in result.error
    steps = step_runs(stubbed, result.run_id)
    before_merge = step_names()[:step_names().index("merge")]
    assert [(s[0], s[2]) for s in steps] == [
        *((name, "succeeded") for name in before_merge), ("merge", "failed")]
    assert steps[-1][6].startswith("the run ended (failed) during this step before the step's "
                                  "end was recorded: step merge of batch 1 (batch_0001): ")
    assert fetch(stubbed, "select status from etl.pipeline_run") == [("failed",)]
    assert batch == 1
