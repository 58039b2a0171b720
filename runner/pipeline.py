"""One pipeline run: ingest new batches, then take every pending batch through the steps.

- One run at a time: the run holds the session advisory lock ``etl.pipeline_lock_key()`` on
  its own *control* connection (autocommit), which also writes the history
  (``etl.pipeline_run``, ``etl.step_run``). A second run reports who holds the lock and
  stops (``EXIT_BUSY``), or waits for it.
- The steps run on a separate *work* connection, each ``CALL`` in its own transaction. The
  step's success is recorded in ``etl.step_run`` inside that same transaction, so the record
  and the work commit together: a run killed at any moment leaves no step done but
  unrecorded. The next run resumes every pending batch after its last recorded step.
- The steps and the retry policy are the database's (``etl.pipeline_step``,
  ``etl.retry_policy``, ``etl.transient_sqlstate``; runner/steps.py, runner/retry.py), read
  on taking the lock: the same chain and policy as ``etl.process_pending()``.
- Transient errors are retried (runner/retry.py) after reconnecting a broken connection; any
  other error fails the run at once, recording the step, batch, SQLSTATE and message.
- A stop request (SIGTERM/SIGINT, set on the ``stop`` event) lets the current step finish,
  then ends the run as ``cancelled``; the next run carries on from there.
- On taking the lock, runs left 'running' by a killed process are marked failed
  (``etl.fail_abandoned_runs()``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions

from runner.config import RetryPolicy
from runner.db import Session
from runner.exitcodes import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_HELD,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_STOPPED,
)
from runner.ingest import BatchRefused, IngestReport, ingest_paths
from runner.redact import redact
from runner.retry import (
    FIRST_CONTACT,
    POLICY_SQL,
    Attempted,
    GaveUp,
    Policy,
    Retrier,
    policy_from_row,
    sqlstate,
)
from runner.steps import (
    FULL_RECONCILIATION,
    INGEST_STEP,
    STEPS_SQL,
    Step,
    steps_from_rows,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


# undefined schema, function or table: the database is not migrated (to this version)
NOT_MIGRATED_SQLSTATES = frozenset({"3F000", "42883", "42P01"})

CONTROL_APPLICATION = "warehouse-runner"
WORK_APPLICATION = "warehouse-runner-step"
LOCK_POLL_SECONDS = 1.0

# Rows a step wrote: its procedure upserts etl.batch_step at its end, inside the step's
# transaction, so the rows of this call are those completed since the transaction began.
_STEP_ROWS_SQL = """
select sum(rows)::bigint from etl.batch_step
where batch_id = %(batch_id)s and completed_at >= now()
"""
_STEP_SUCCEEDED_SQL = """
update etl.step_run
set status = 'succeeded', ended_at = clock_timestamp(), attempts = %(attempts)s,
    rows = %(rows)s
where step_run_id = %(step_run_id)s
"""


class LockLost(RuntimeError):
    """The control connection broke and another run took the pipeline lock meanwhile."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds the pipeline lock (from ``etl.pipeline_lock_holder()``)."""

    backend_pid: int
    run_id: int | None
    hostname: str | None
    pid: int | None
    started_at: datetime | None
    trigger: str | None

    def describe(self) -> str:
        run = f"run {self.run_id} ({self.trigger})" if self.run_id else "a session"
        started = self.started_at.isoformat(timespec="seconds") if self.started_at else "?"
        return (f"{run} on host {self.hostname or '?'}, pid {self.pid or '?'}, "
                f"started {started}, server pid {self.backend_pid}")


@dataclass(frozen=True)
class StepResult:
    step: str
    batch_id: int | None
    seconds: float
    attempts: int
    rows: int | None
    status: str = "succeeded"


@dataclass
class RunResult:
    """What a run did; ``exit_code`` is the command's."""

    status: str  # succeeded, failed, cancelled, busy
    exit_code: int
    run_id: int | None = None
    batches: list[int] = field(default_factory=list)  # marked processed by this run
    touched: list[int] = field(default_factory=list)  # every batch a step ran for
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    failed_step: str | None = None
    holder: LockHolder | None = None
    seconds: float = 0.0

    def one_line(self) -> str:
        """The run's log line."""
        if self.status == "busy":
            return f"run not started: the pipeline lock is held by {self.holder_text()}"
        head = f"run {self.run_id} {self.status} in {self.seconds:.1f}s"
        tail = f": {len(self.batches)} batch(es) processed"
        return head + tail + (f"; {self.error}" if self.error else "")

    def holder_text(self) -> str:
        return self.holder.describe() if self.holder else "another session"


@dataclass(frozen=True)
class RunOptions:
    landing: Path | None  # None: ingest nothing, process what is pending
    retry: RetryPolicy  # overrides of the database's etl.retry_policy
    trigger: str = "cli"
    wait: bool = False  # wait for the lock instead of returning busy
    full_reconciliation: bool = False  # after the batches, check every day of the history


class Control:
    """The control connection: the pipeline lock and the run history."""

    def __init__(self, url: str, retrier: Retrier) -> None:
        self.session = Session(url, CONTROL_APPLICATION, autocommit=True)
        self.session.on_connect = self._reacquire
        self.retrier = retrier
        self.locked = False
        self.run_id: int | None = None

    # -- the lock -----------------------------------------------------------------------
    def try_lock(self) -> bool:
        self.locked = bool(self.fetch_value("select pg_try_advisory_lock(etl.pipeline_lock_key())"))
        return self.locked

    def holder(self) -> LockHolder | None:
        rows = self.fetch(
            "select backend_pid, run_id, hostname, pid, started_at, trigger "
            "from etl.pipeline_lock_holder()"
        )
        return LockHolder(*rows[0]) if rows else None

    def ensure_lock(self) -> None:
        """Checks the connection (reconnecting takes the lock again, or raises LockLost)."""
        self.fetch_value("select 1")

    def release(self) -> None:
        if self.locked:
            try:
                with self.session.connection().cursor() as cur:
                    cur.execute("select pg_advisory_unlock(etl.pipeline_lock_key())")
            except psycopg2.Error as error:  # the lock goes with the session anyway
                log.debug("unlock failed: %s", self.policy.describe(error))
            self.locked = False
        self.session.discard()

    def _reacquire(self, conn: psycopg2.extensions.connection) -> None:
        if not self.locked:
            return
        with conn.cursor() as cur:
            cur.execute("select pg_try_advisory_lock(etl.pipeline_lock_key())")
            if not cur.fetchone()[0]:
                self.locked = False
                raise LockLost(
                    "the connection holding the pipeline lock broke and another run took the "
                    "lock meanwhile; this run stops so that two runs never overlap"
                )
            if self.run_id is not None:
                cur.execute(
                    "update etl.pipeline_run set backend_pid = pg_backend_pid() "
                    "where run_id = %s", (self.run_id,)
                )
        log.info("control connection re-established, pipeline lock taken again")

    @property
    def policy(self) -> Policy:
        return self.retrier.policy

    def read_chain(self, overrides: RetryPolicy) -> tuple[Step, ...]:
        """The database's retry policy (put in force, with ``overrides``) and steps."""
        self.retrier.policy = policy_from_row(self.fetch(POLICY_SQL)[0], overrides)
        return steps_from_rows(self.fetch(STEPS_SQL))

    # -- statements, retried -----------------------------------------------------------
    def fetch(self, sql: str, params: dict[str, Any] | tuple = ()) -> list[tuple]:
        def work() -> list[tuple]:
            with self.session.connection().cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []

        return self.retrier.call(
            work, what="control", on_transient=lambda error, attempt: self.session.recover()
        ).value

    def fetch_value(self, sql: str, params: dict[str, Any] | tuple = ()) -> Any:
        rows = self.fetch(sql, params)
        return rows[0][0] if rows else None

    # -- history -------------------------------------------------------------------------
    def start_run(self, trigger: str) -> int:
        abandoned = self.fetch_value("select etl.fail_abandoned_runs()")
        if abandoned:
            log.warning("%d run(s) left 'running' by a killed process marked failed", abandoned)
        self.run_id = self.fetch_value(
            "insert into etl.pipeline_run (trigger, hostname, pid, backend_pid) "
            "values (%s, %s, %s, pg_backend_pid()) returning run_id",
            (trigger, socket.gethostname(), os.getpid()),
        )
        return self.run_id

    def finish_run(self, status: str, batches: int, *, error: str | None = None,
                   step: str | None = None, batch_id: int | None = None) -> None:
        """The run's end, and the end of any of its steps still 'running' (a step whose
        connection was lost for good, or whose run lost the lock, is not left running)."""
        self.fetch(
            "update etl.step_run set status = 'failed', ended_at = clock_timestamp(), "
            "error = coalesce(error, %s) where run_id = %s and status = 'running'",
            (f"the run ended ({status}) during this step before the step's end was recorded"
             + (f": {redact(error)}" if error else ""), self.run_id),
        )
        self.fetch(
            "update etl.pipeline_run set status = %s, ended_at = clock_timestamp(), "
            "batches_processed = %s, error = %s, error_step = %s, error_batch_id = %s "
            "where run_id = %s",
            (status, batches, redact(error) if error else error, step, batch_id, self.run_id),
        )

    def start_step(self, step: str, batch_id: int | None) -> int:
        return self.fetch_value(
            "insert into etl.step_run (run_id, step, batch_id) values (%s, %s, %s) "
            "returning step_run_id",
            (self.run_id, step, batch_id),
        )

    def note_attempt(self, step_run_id: int, attempts: int, error: BaseException) -> None:
        self.fetch(
            "update etl.step_run set attempts = %s, sqlstate = %s, error = %s "
            "where step_run_id = %s",
            (attempts, sqlstate(error), self.policy.describe(error), step_run_id),
        )

    def end_step(self, step_run_id: int, status: str, attempts: int, *,
                 rows: int | None = None, error: BaseException | str | None = None) -> None:
        code = sqlstate(error) if isinstance(error, BaseException) else None
        text = self.policy.describe(error) if isinstance(error, BaseException) else error
        text = redact(text) if text else text
        self.fetch(
            "update etl.step_run set status = %s, ended_at = clock_timestamp(), "
            "attempts = %s, rows = coalesce(%s, rows), sqlstate = coalesce(%s, sqlstate), "
            "error = coalesce(%s, error) where step_run_id = %s",
            (status, attempts, rows, code, text, step_run_id),
        )

    def done_steps(self, batch_id: int) -> set[str]:
        rows = self.fetch(
            "select distinct step from etl.step_run "
            "where batch_id = %s and status = 'succeeded'", (batch_id,)
        )
        return {row[0] for row in rows}

    def pending_batches(self) -> list[tuple[int, str]]:
        """Batches not yet processed, held ones included (a held batch stops the run)."""
        return self.fetch(
            "select batch_id, batch_name from etl.batch "
            "where status in ('ingested', 'held', 'released') order by batch_id"
        )

    def hold_message(self, batch_id: int | None) -> str | None:
        """Why the batch is held and how to end the hold; None when it is not held."""
        if batch_id is None:
            return None
        try:
            return self.fetch_value("select etl.hold_message(%s)", (batch_id,))
        except (psycopg2.Error, GaveUp, LockLost) as problem:
            log.error("could not read the status of batch %s: %s", batch_id, problem)
            return None

    def queue_run_alert(self) -> None:
        """The failed run's alert into the outbox (etl.queue_run_alert); never raises."""
        try:
            self.fetch("select etl.queue_run_alert(%s)", (self.run_id,))
        except (psycopg2.Error, GaveUp, LockLost) as problem:
            log.error("could not queue the alert of run %s: %s", self.run_id, problem)


def _abort_when_client_dies(conn: psycopg2.extensions.connection) -> None:
    """A killed runner's step stops within seconds instead of running on to its end."""
    if conn.server_version >= 140000:
        with conn.cursor() as cur:
            cur.execute("set client_connection_check_interval = '2s'")
        conn.commit()


class RunFailed(Exception):
    """A step failed: carries what the history and the user are told."""

    def __init__(self, step: str, batch: tuple[int, str] | None, message: str,
                 *, status: str = "failed", exit_code: int = EXIT_FAILED) -> None:
        self.step = step
        self.batch_id = batch[0] if batch else None
        self.status = status
        self.exit_code = exit_code
        where = f"step {step}" + (f" of batch {batch[0]} ({batch[1]})" if batch else "")
        super().__init__(f"{where}: {message}")


class Run:
    """One run, from taking the lock to releasing it."""

    def __init__(self, url: str, options: RunOptions, stop: threading.Event) -> None:
        self.url = url
        self.options = options
        self.stop = stop
        self.retrier = Retrier(FIRST_CONTACT.overridden(options.retry), sleep=stop.wait)
        self.control = Control(url, self.retrier)
        self.work = Session(url, WORK_APPLICATION, autocommit=False)
        self.work.on_connect = _abort_when_client_dies
        self.result = RunResult(status="running", exit_code=EXIT_OK)
        self.began = time.monotonic()
        self.steps: tuple[Step, ...] = ()

    # -- the whole run -----------------------------------------------------------------
    def execute(self) -> RunResult:
        self.began = time.monotonic()
        try:
            if not self._take_lock():
                return self.result
            self.steps = self.control.read_chain(self.options.retry)
            self.result.run_id = self.control.start_run(self.options.trigger)
            log.debug("run %s started (%s)", self.result.run_id, self.options.trigger)
            self._run_locked()
        finally:
            self.result.seconds = time.monotonic() - self.began
            self.work.discard()
            self.control.release()
        return self.result

    def _take_lock(self) -> bool:
        announced = False
        while not self.control.try_lock():
            holder = self.control.holder()
            if not self.options.wait:
                self.result.status, self.result.exit_code = "busy", EXIT_BUSY
                self.result.holder = holder
                return False
            if not announced:
                log.info("waiting for the pipeline lock, held by %s",
                         holder.describe() if holder else "another session")
                announced = True
            if self.stop.wait(LOCK_POLL_SECONDS):
                self.result.status, self.result.exit_code = "cancelled", EXIT_STOPPED
                self.result.error = "stopped while waiting for the pipeline lock"
                return False
        return True

    def _run_locked(self) -> None:
        refusal: str | None = None
        try:
            if self.options.landing is not None:
                refusal = self._ingest(self.options.landing)
            for batch in self.control.pending_batches():
                self._process_batch(batch)
            for step in self.steps:
                if not step.per_batch:
                    self._check_stop(step.name, None)
                    self._run_step(step, None)
            if self.options.full_reconciliation:
                self._check_stop(FULL_RECONCILIATION.name, None)
                self._run_step(FULL_RECONCILIATION, None)
            if refusal is not None:
                raise RunFailed(INGEST_STEP, None, refusal, exit_code=EXIT_REFUSED)
        except RunFailed as failure:
            held = self.control.hold_message(failure.batch_id)
            if held is not None:  # the run stopped before a held batch's merge
                self._finish("failed", EXIT_HELD, held, step=failure.step,
                             batch_id=failure.batch_id)
            else:
                self._finish(failure.status, failure.exit_code, str(failure),
                             step=failure.step, batch_id=failure.batch_id)
            return
        except (LockLost, GaveUp) as error:
            self._finish("failed", EXIT_FAILED, str(error))
            return
        self._finish("succeeded", EXIT_OK, None)

    def _finish(self, status: str, exit_code: int, error: str | None, *,
                step: str | None = None, batch_id: int | None = None) -> None:
        error = redact(error) if error else error  # the result feeds alerts and the summary
        self.result.status, self.result.exit_code, self.result.error = status, exit_code, error
        self.result.failed_step = step
        self.result.seconds = time.monotonic() - self.began
        try:
            self.control.finish_run(status, len(self.result.batches), error=error, step=step,
                                    batch_id=batch_id)
        except (psycopg2.Error, GaveUp, LockLost) as problem:
            log.error("could not record the end of run %s: %s", self.result.run_id, problem)
        if status == "failed":
            self.control.queue_run_alert()
        (log.info if status == "succeeded" else log.error)("%s", self.result.one_line())

    # -- ingestion ---------------------------------------------------------------------
    def _ingest(self, landing: Path) -> str | None:
        """Stage the landing directory's new batches; returns a refusal's message."""
        self._check_stop(INGEST_STEP, None)
        if not landing.exists():
            log.debug("landing directory %s does not exist: nothing to ingest", landing)
            return None
        step_run_id = self.control.start_step(INGEST_STEP, None)
        began = time.monotonic()
        done = self._attempt(step_run_id, INGEST_STEP, None,
                             lambda: ingest_landing(self.url, landing))
        outcome: IngestOutcome = done.value
        self.control.end_step(step_run_id, "failed" if outcome.refusal else "succeeded",
                              done.attempts, rows=outcome.rows, error=outcome.refusal)
        self._record(INGEST_STEP, None, began, done.attempts, outcome.rows,
                     status="failed" if outcome.refusal else "succeeded")
        return outcome.refusal

    # -- batches and steps -------------------------------------------------------------
    def _process_batch(self, batch: tuple[int, str]) -> None:
        done = self.control.done_steps(batch[0])
        if done:
            log.info("batch %s (%s): resuming after %s", batch[0], batch[1],
                     ", ".join(s.name for s in self.steps if s.name in done))
        for step in self.steps:
            if step.name in done or not step.per_batch:
                continue
            self._check_stop(step.name, batch)
            self._run_step(step, batch)
        self.result.batches.append(batch[0])

    def _check_stop(self, step: str, batch: tuple[int, str] | None) -> None:
        if self.stop.is_set():
            raise RunFailed(step, batch, "stopped by a signal before this step; the next run "
                            "carries on from here", status="cancelled", exit_code=EXIT_STOPPED)

    def _run_step(self, step: Step, batch: tuple[int, str] | None) -> None:
        batch_id = batch[0] if batch else None
        if batch_id is not None and batch_id not in self.result.touched:
            self.result.touched.append(batch_id)
        step_run_id = self.control.start_step(step.name, batch_id)
        began = time.monotonic()
        attempts = 0

        def work() -> int | None:
            nonlocal attempts
            attempts += 1
            self.control.ensure_lock()
            conn = self.work.connection()
            with conn.cursor() as cur:
                cur.execute(step.sql, {"batch_id": batch_id})
                cur.execute(_STEP_ROWS_SQL, {"batch_id": batch_id})
                rows = cur.fetchone()[0]
                # Recorded in the step's own transaction: done and recorded commit together.
                cur.execute(_STEP_SUCCEEDED_SQL, {"attempts": attempts, "rows": rows,
                                                  "step_run_id": step_run_id})
            conn.commit()
            return rows

        done = self._attempt(step_run_id, step.name, batch, work)
        for notice in self.work.notices():
            log.debug("batch %s %s: %s", batch_id, step.name, notice)
        self._record(step.name, batch_id, began, done.attempts, done.value)

    def _attempt(self, step_run_id: int, step: str, batch: tuple[int, str] | None,
                 work: Callable[[], T]) -> Attempted[T]:
        """``work`` with retries; a failure is recorded on the step and raised as RunFailed."""
        what = f"step {step}" + (f" of batch {batch[0]}" if batch else "")

        def transient(error: BaseException, attempt: int) -> None:
            self.work.recover()
            self.control.note_attempt(step_run_id, attempt + 1, error)

        try:
            return self.retrier.call(work, what=what, on_transient=transient)
        except GaveUp as gave_up:
            self.work.recover()
            status = "cancelled" if gave_up.stopped else "failed"
            self.control.end_step(step_run_id, status, gave_up.attempts, error=gave_up.cause)
            raise RunFailed(step, batch, gave_up.summary(), status=status,
                            exit_code=EXIT_STOPPED if gave_up.stopped else EXIT_FAILED
                            ) from gave_up
        except LockLost as lost:
            self.work.recover()
            raise RunFailed(step, batch, str(lost)) from lost
        except Exception as error:  # not the database (a file, a bug): record it and stop
            self.work.recover()
            message = f"{type(error).__name__}: {error}"
            self.control.end_step(step_run_id, "failed", 1, error=message)
            raise RunFailed(step, batch, message) from error

    def _record(self, step: str, batch_id: int | None, began: float, attempts: int,
                rows: int | None, *, status: str = "succeeded") -> None:
        seconds = time.monotonic() - began
        self.result.steps.append(StepResult(step, batch_id, seconds, attempts, rows, status))
        log.debug("%s%s done in %.2fs (%d attempt(s), %s rows)", step,
                  f" of batch {batch_id}" if batch_id else "", seconds, attempts,
                  "?" if rows is None else rows)


@dataclass(frozen=True)
class IngestOutcome:
    rows: int | None  # rows staged
    refusal: str | None  # why a batch was refused (the batches before it were staged)


def ingest_landing(url: str, landing: Path) -> IngestOutcome:
    """Stage the new batches under ``landing`` (runner/ingest.py: one transaction per batch,
    files already loaded are skipped, so calling it again after an error is safe)."""
    try:
        report = ingest_paths(url, [landing])
    except BatchRefused as refused:
        return IngestOutcome(rows=_rows_in_new_files(refused.report),
                             refusal=refused.refusal.describe())
    return IngestOutcome(rows=_rows_in_new_files(report), refusal=None)


def _rows_in_new_files(report: IngestReport) -> int:
    return report.rows_staged + report.rows_malformed


def run_pipeline(url: str, options: RunOptions, stop: threading.Event | None = None
                 ) -> RunResult:
    """One run; never raises for database errors: they are in the result."""
    stop = stop or threading.Event()
    run = Run(url, options, stop)
    try:
        return run.execute()
    except GaveUp as gave_up:  # taking the lock or starting the run failed
        return _unstarted(run.result, gave_up)
    except LockLost as lost:
        run.result.status, run.result.exit_code, run.result.error = "failed", EXIT_FAILED, \
            str(lost)
        return run.result


def _unstarted(result: RunResult, gave_up: GaveUp) -> RunResult:
    result.status, result.exit_code = "failed", EXIT_FAILED
    if gave_up.sqlstate in NOT_MIGRATED_SQLSTATES:
        result.error = (f"the database is not migrated ({gave_up.described}): "
                        "run `python -m runner migrate` first")
    elif gave_up.transient:
        result.error = f"cannot reach the database: {gave_up.summary()}"
    else:
        result.error = gave_up.summary()
    log.error("run not started: %s", result.error)
    return result


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """SIGTERM and SIGINT set ``stop`` (the current step finishes) while inside."""
    import signal

    def handler(signum: int, frame: object) -> None:
        log.warning("%s received: finishing the current step, then stopping",
                    signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
