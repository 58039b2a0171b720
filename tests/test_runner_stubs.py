"""Test-only step procedures and helpers for the runner's tests (no tests in this module).

``install_stub_steps`` replaces, in the test's own database, every per-batch step procedure
of etl.pipeline_step (but etl.mark_batch_processed, the real one) with a stub that:

- counts every call in a sequence (``runner_test.calls_<step>``): sequences are not
  transactional, so calls rolled back by a failure are counted too;
- records the call in ``runner_test.call`` (transactional: a rolled-back call leaves no row,
  so a duplicate row means work committed twice);
- obeys ``runner_test.fault``: wait at a gate (a shared advisory lock the test holds
  exclusively until it opens the gate), sleep, and/or raise a given SQLSTATE on its first N
  calls;
- reports 10 rows in etl.batch_step, as the real steps report theirs.

The mechanism (order, retries, lock, history, resume, signals) is tested on these; the full
pipeline tests (test_runner_pipeline_real.py) run the real procedures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import psycopg2
import psycopg2.extensions

from runner.config import PROJECT_ROOT, RetryPolicy
from runner.steps import Step

# The chain as alembic/versions/0008_pipeline_chain.py and the revisions named below seed
# etl.pipeline_step (the runners read the table; test_the_chain_is_the_seeded_table checks
# it against this list).
STEPS: tuple[Step, ...] = (
    Step("validate", "staging.validate_batch"),
    Step("check", "etl.check_batch"),  # 0012_batch_checks_holds_alerts.py
    Step("hold", "etl.stop_if_held"),  # 0012_batch_checks_holds_alerts.py
    Step("merge", "production.merge_batch"),
    Step("reprocess_rejects", "etl.reprocess_rejects"),
    Step("load_dimensions", "warehouse.load_dimensions"),
    Step("load_fact_sales", "warehouse.load_fact_sales"),
    Step("refresh_aggregates", "warehouse.refresh_batch_aggregates"),
    Step("check_reconciliation", "warehouse.check_reconciliation"),
    Step("mark_processed", "etl.mark_batch_processed"),
    Step("apply_retention", "etl.apply_retention", per_batch=False),  # 0010_retention.py
)
BATCH_STEPS = tuple(step for step in STEPS if step.per_batch)
# the once-a-run retention step stays real: with the seeded settings (null) it changes nothing
STUBBED = [step for step in BATCH_STEPS if step.procedure != "etl.mark_batch_processed"]
RUN_STEPS = [(step.name, None) for step in STEPS if not step.per_batch]
STUB_ROWS = 10

_SETUP_SQL = """
create schema if not exists runner_test;
create table if not exists runner_test.call (
    call_id  bigint generated always as identity primary key,
    batch_id bigint not null,
    step     text not null
);
create table if not exists runner_test.fault (
    step        text not null,
    batch_id    bigint,           -- null: every batch
    sqlstate    text,             -- null: no error
    message     text,
    fail_calls  integer not null default 0,
    sleep_s     float8 not null default 0,
    sleep_calls integer not null default 0,
    gate        bigint            -- advisory lock key: wait until the test opens the gate
);
"""

_STUB_SQL = """
drop procedure if exists {procedure}(bigint);
create sequence if not exists runner_test.calls_{step};
create procedure {procedure}(p_batch_id bigint)
language plpgsql
as $body$
declare
    v_call bigint := nextval('runner_test.calls_{step}');
    v_fault runner_test.fault;
begin
    insert into runner_test.call (batch_id, step) values (p_batch_id, '{step}');
    for v_fault in
        select * from runner_test.fault f
        where f.step = '{step}' and (f.batch_id is null or f.batch_id = p_batch_id)
    loop
        if v_fault.gate is not null then
            perform pg_advisory_xact_lock_shared(v_fault.gate);
        end if;
        if v_call <= v_fault.sleep_calls then
            perform pg_sleep(v_fault.sleep_s);
        end if;
        if v_fault.sqlstate is not null and v_call <= v_fault.fail_calls then
            raise exception '%', coalesce(v_fault.message, 'injected fault')
                using errcode = v_fault.sqlstate;
        end if;
    end loop;
    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, '{step}', {rows}, now())
    on conflict (batch_id, step) do update
    set rows = excluded.rows, completed_at = excluded.completed_at;
end
$body$;
"""


def install_stub_steps(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute(_SETUP_SQL)
        for step in STUBBED:
            cur.execute(_STUB_SQL.format(procedure=step.procedure, step=step.name,
                                         rows=STUB_ROWS))


def add_batches(conn: psycopg2.extensions.connection, count: int) -> list[int]:
    with conn.cursor() as cur:
        cur.execute(
            "insert into etl.batch (batch_name, source_path) "
            "select format('batch_%%s', lpad(n::text, 4, '0')), '/landing' "
            "from generate_series(1, %s) n returning batch_id", (count,)
        )
        return sorted(row[0] for row in cur.fetchall())


def inject(conn: psycopg2.extensions.connection, step: str, *, sqlstate: str | None = None,
           fail_calls: int = 0, sleep_s: float = 0.0, sleep_calls: int = 0,
           batch_id: int | None = None, message: str | None = None,
           gate: Gate | None = None) -> None:
    """Make ``step`` wait at ``gate`` while it is closed, sleep on its first ``sleep_calls``
    calls, and fail on its first ``fail_calls`` calls with ``sqlstate``."""
    with conn.cursor() as cur:
        cur.execute(
            "insert into runner_test.fault (step, batch_id, sqlstate, message, fail_calls, "
            "sleep_s, sleep_calls, gate) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            (step, batch_id, sqlstate, message, fail_calls, sleep_s, sleep_calls,
             gate.key if gate else None),
        )


class Gate:
    """Closed while this connection holds the advisory lock ``key``: steps injected with the
    gate wait there (deterministically, unlike a sleep) until ``open()``."""

    key = 7_300_042

    def __init__(self, url: str) -> None:
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s)", (self.key,))

    def open(self) -> None:
        if not self.conn.closed:
            self.conn.close()

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.open()


def clear_faults(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute("delete from runner_test.fault")


def fetch(conn: psycopg2.extensions.connection, sql: str, params: Sequence = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def committed_calls(conn: psycopg2.extensions.connection) -> list[tuple[int, str]]:
    """(batch_id, step) of every committed stub call, in call order."""
    return fetch(conn, "select batch_id, step from runner_test.call order by call_id")


def call_count(conn: psycopg2.extensions.connection, step: str) -> int:
    """Calls of ``step`` including those rolled back."""
    ((last, called),) = fetch(conn, f"select last_value, is_called from runner_test.calls_{step}")
    return last if called else 0


def step_names() -> list[str]:
    """The per-batch chain's step names, in order."""
    return [step.name for step in BATCH_STEPS]


def expected_calls(batch_ids: Sequence[int]) -> list[tuple[int, str]]:
    return [(batch_id, step.name) for batch_id in batch_ids for step in STUBBED]


def fast_retry(attempts: int = 5) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05)


def runner_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": db_url, "WAREHOUSE_RETRY_BASE_DELAY": "0.01",
           "WAREHOUSE_RETRY_MAX_DELAY": "0.05", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("WAREHOUSE_LANDING", None)
    return env


def runner_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner", *args]


def run_cli(db_url: str, *args: str, timeout: float = 120, **extra: str
            ) -> subprocess.CompletedProcess:
    return subprocess.run(runner_command(*args), cwd=PROJECT_ROOT, env=runner_env(db_url, **extra),
                          capture_output=True, text=True, timeout=timeout)


def start_cli(db_url: str, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(runner_command(*args), cwd=PROJECT_ROOT,
                            env=runner_env(db_url, **extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
