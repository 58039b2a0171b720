"""``status``: the last runs, their steps, the latest batch's rejects, and freshness.

The verdict is the exit code (runner/exitcodes.py), so cron, a container health check or a
monitoring tool can act on it (docs/operations.md, "Status, freshness and monitoring"):

- held (``EXIT_HELD``): a batch is held by a batch check (an error event); the pipeline
  stops before it until ``CALL etl.release_batch(id)`` or ``CALL etl.discard_batch(id)``
  ends the hold.
- healthy (``EXIT_OK``): the last finished run succeeded, the last successful run is
  younger than ``max_age`` and the newest sale younger than ``max_data_age`` (when on).
- failed (``EXIT_FAILED``): the last finished run failed, or was abandoned (its process was
  killed: it is still 'running' but nobody holds the pipeline lock).
- stale (``EXIT_STALE``): the last successful run, or the newest sale, is older than its
  limit.
- empty (``EXIT_EMPTY``): no sale in the warehouse yet (a fresh warehouse, or a landing area
  that never delivered): nothing is wrong with the pipeline, but nothing is there to serve.
- unavailable (``EXIT_UNAVAILABLE``): the database cannot be reached, or is not migrated.

Checked in that order (held first); the first that applies wins. Runs cancelled by a
signal and the run in progress do not count as finished.

``status`` also lists the held batches and the latest batch-check events, and raises the
freshness alert (``queue_freshness_alert``: once per stale period) that the schedule service
raises too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg2
import psycopg2.extensions

from runner.exitcodes import (
    EXIT_EMPTY,
    EXIT_FAILED,
    EXIT_HELD,
    EXIT_OK,
    EXIT_STALE,
    EXIT_UNAVAILABLE,
)
from runner.pipeline import NOT_MIGRATED_SQLSTATES
from runner.redact import redact

EXIT_HEALTHY = EXIT_OK  # status's name for it
LATEST_EVENTS = 10

VERDICTS = {
    EXIT_HEALTHY: "healthy",
    EXIT_FAILED: "failed",
    EXIT_STALE: "stale",
    EXIT_EMPTY: "empty",
    EXIT_UNAVAILABLE: "unavailable",
    EXIT_HELD: "held",
}

# A run still 'running' whose lock is free was abandoned (its process killed): it reports the
# step and batch it was in, from its last step still 'running' (or its last step).
_RUNS_SQL = """
with holder as (select backend_pid from etl.pipeline_lock_holder()),
runs as (
    select r.*,
           r.status = 'running'
           and not exists (select 1 from holder where holder.backend_pid = r.backend_pid)
               as abandoned
    from etl.pipeline_run r
    order by r.run_id desc
    limit %(limit)s
)
select
    r.run_id, r.trigger,
    case when r.abandoned then 'abandoned' else r.status end as status,
    r.started_at, r.ended_at,
    extract(epoch from coalesce(r.ended_at, clock_timestamp()) - r.started_at)::float8,
    r.batches_processed,
    coalesce(r.error_step, last_step.step),
    coalesce(r.error_batch_id, last_step.batch_id),
    coalesce(r.error, case when r.abandoned then
        'its process stopped (killed, or its connection lost) without recording its end; '
        'the next run marks it failed' end),
    r.hostname, r.pid
from runs r
left join lateral (
    select s.step, s.batch_id
    from etl.step_run s
    where r.abandoned and s.run_id = r.run_id
    order by s.status = 'running' desc, s.step_run_id desc
    limit 1
) last_step on true
order by r.run_id desc
"""

_STEPS_SQL = """
select s.step, s.batch_id, s.status,
       extract(epoch from coalesce(s.ended_at, clock_timestamp()) - s.started_at)::float8,
       s.attempts, s.rows, s.sqlstate, s.error
from etl.step_run s
where s.run_id = %(run_id)s
order by s.step_run_id
"""

_REJECTS_SQL = """
select b.batch_id, b.batch_name, r.file_name, r.rule, r.rows
from (select batch_id, batch_name from etl.batch order by batch_id desc limit 1) b
left join etl.v_reject_summary r on r.batch_id = b.batch_id
order by r.file_name, r.rows desc, r.rule
"""

_FRESHNESS_SQL = """
select newest_transaction_ts, newest_transaction_age, last_successful_run_at,
       last_successful_run_age, clock_timestamp()
from etl.v_freshness
"""

_HELD_SQL = """
select b.batch_id, b.batch_name, b.status_changed_at, etl.hold_message(b.batch_id)
from etl.batch b
where b.status = 'held'
order by b.batch_id
"""

_EVENTS_SQL = """
select e.event_id, e.created_at, e.batch_name, e.file_name, e."check", e.rule, e.severity,
       e.observed, e.threshold, e.message
from etl.v_dq_events e
order by e.event_id desc
limit %(limit)s
"""

_HOLDER_SQL = """
select backend_pid, run_id, hostname, pid, started_at, trigger from etl.pipeline_lock_holder()
"""


@dataclass(frozen=True)
class RunRow:
    run_id: int
    trigger: str
    status: str  # running, succeeded, failed, cancelled, abandoned
    started_at: datetime
    ended_at: datetime | None
    seconds: float
    batches_processed: int
    error_step: str | None
    error_batch_id: int | None
    error: str | None
    hostname: str | None
    pid: int | None


@dataclass(frozen=True)
class StepRow:
    step: str
    batch_id: int | None
    status: str
    seconds: float
    attempts: int
    rows: int | None
    sqlstate: str | None
    error: str | None


@dataclass(frozen=True)
class RejectRow:
    file_name: str
    rule: str
    rows: int


@dataclass(frozen=True)
class HeldBatch:
    batch_id: int
    batch_name: str
    held_since: datetime
    message: str


@dataclass(frozen=True)
class EventRow:
    event_id: int
    created_at: datetime
    batch_name: str
    file_name: str
    check: str
    rule: str | None
    severity: str
    observed: Decimal | None
    threshold: Decimal | None
    message: str


@dataclass(frozen=True)
class Freshness:
    newest_transaction_ts: datetime | None
    newest_transaction_age: timedelta | None
    last_successful_run_at: datetime | None
    last_successful_run_age: timedelta | None


@dataclass
class Report:
    checked_at: datetime
    freshness: Freshness
    runs: list[RunRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    steps_run_id: int | None = None
    latest_batch: tuple[int, str] | None = None
    rejects: list[RejectRow] = field(default_factory=list)
    lock_holder: dict[str, Any] | None = None
    held: list[HeldBatch] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)  # the latest, newest first


@dataclass(frozen=True)
class Health:
    exit_code: int
    message: str

    @property
    def verdict(self) -> str:
        return VERDICTS[self.exit_code]

    def one_line(self) -> str:
        return f"{self.verdict}: {self.message}"


@dataclass(frozen=True)
class Limits:
    max_age: timedelta
    max_data_age: timedelta | None  # None: the newest sale's age is not checked


def collect(conn: psycopg2.extensions.connection, limit: int = 10) -> Report:
    """Everything ``status`` shows, read in one snapshot."""
    with conn.cursor() as cur:
        cur.execute("begin isolation level repeatable read read only")
        try:
            cur.execute(_FRESHNESS_SQL)
            *fresh, checked_at = cur.fetchone()
            report = Report(checked_at=checked_at, freshness=Freshness(*fresh))
            cur.execute(_RUNS_SQL, {"limit": limit})
            report.runs = [RunRow(*row) for row in cur.fetchall()]
            cur.execute("select max(run_id) from etl.step_run")
            report.steps_run_id = cur.fetchone()[0]
            cur.execute(_STEPS_SQL, {"run_id": report.steps_run_id})
            report.steps = [StepRow(*row) for row in cur.fetchall()]
            cur.execute(_REJECTS_SQL)
            rows = cur.fetchall()
            if rows:
                report.latest_batch = (rows[0][0], rows[0][1])
                report.rejects = [RejectRow(*row[2:]) for row in rows if row[2] is not None]
            cur.execute(_HELD_SQL)
            report.held = [HeldBatch(*row) for row in cur.fetchall()]
            cur.execute(_EVENTS_SQL, {"limit": LATEST_EVENTS})
            report.events = [EventRow(*row) for row in cur.fetchall()]
            cur.execute(_HOLDER_SQL)
            holder = cur.fetchone()
            if holder:
                keys = ("backend_pid", "run_id", "hostname", "pid", "started_at", "trigger")
                report.lock_holder = dict(zip(keys, holder, strict=True))
        finally:
            cur.execute("rollback")
    return report


def judge(report: Report, limits: Limits) -> Health:
    """The verdict: see the module's docstring for the codes and their order."""
    if report.held:
        first = report.held[0]
        more = f" (and {len(report.held) - 1} more held batch(es))" if len(report.held) > 1 \
            else ""
        return Health(EXIT_HELD, first.message + more)
    finished = [r for r in report.runs if r.status in ("succeeded", "failed", "abandoned")]
    if finished and finished[0].status != "succeeded":
        last = finished[0]
        where = f" at step {last.error_step}" if last.error_step else ""
        batch = f" of batch {last.error_batch_id}" if last.error_batch_id else ""
        return Health(EXIT_FAILED, f"run {last.run_id} {last.status}{where}{batch}: "
                                   f"{last.error or 'no message'}")
    fresh = report.freshness
    if fresh.last_successful_run_at is None and fresh.newest_transaction_ts is None:
        return Health(EXIT_EMPTY, "no successful run and no sales yet: the warehouse is empty")
    breach = stale(report, limits)
    if breach is not None:
        return Health(EXIT_STALE, breach.message)
    run_age = fresh.last_successful_run_age
    if fresh.newest_transaction_ts is None:
        return Health(EXIT_EMPTY, f"the last run succeeded {human_age(run_age)} ago, but "
                                  "there are no sales in the warehouse yet")
    sale_age = fresh.newest_transaction_age
    return Health(EXIT_HEALTHY, f"the last run succeeded {human_age(run_age)} ago; newest "
                                f"sale {human_age(sale_age)} old")


@dataclass(frozen=True)
class Stale:
    """A freshness limit passed: ``since`` names the stale period (the instant it follows)."""

    since: str
    message: str


def stale(report: Report, limits: Limits) -> Stale | None:
    """The limit the warehouse has passed, if any: the last successful run's age first, then
    the newest sale's (when that check is on and there are sales)."""
    fresh = report.freshness
    run_age = fresh.last_successful_run_age
    if run_age is None or run_age > limits.max_age:
        age = "no successful run recorded" if run_age is None else \
            f"the last successful run ended {human_age(run_age)} ago"
        return Stale(f"run:{_instant(fresh.last_successful_run_at)}",
                     f"{age} (limit {human_age(limits.max_age)})")
    sale_age = fresh.newest_transaction_age
    if limits.max_data_age is not None and sale_age is not None \
            and sale_age > limits.max_data_age:
        return Stale(f"data:{_instant(fresh.newest_transaction_ts)}",
                     f"the newest sale is {human_age(sale_age)} old (limit "
                     f"{human_age(limits.max_data_age)}); the last run succeeded "
                     f"{human_age(run_age)} ago")
    return None


def _instant(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else "never"


def queue_freshness_alert(conn: psycopg2.extensions.connection, report: Report,
                          limits: Limits) -> bool:
    """Queue the alert of a freshness limit passed, once per stale period (its key names
    the last success, or the newest sale, that the period follows). An empty warehouse
    (no run and no sale ever) raises none. Returns True when queued now."""
    fresh = report.freshness
    breach = stale(report, limits)
    if breach is None or (fresh.last_successful_run_at is None
                          and fresh.newest_transaction_ts is None):
        return False
    body = (f"The warehouse is stale: {breach.message}. Readers see old numbers. Look at "
            "`python -m runner status` for failed or held runs, and at the landing directory "
            "for deliveries that did not come.")
    with conn.cursor() as cur:
        cur.execute("select etl.queue_alert(%s, 'freshness', 'warning', null, %s, %s)",
                    (f"freshness:{breach.since}", "warehouse: freshness limit passed", body))
        return bool(cur.fetchone()[0])


def unavailable(error: BaseException) -> Health:
    text = redact(" ".join(str(error).split()))
    if getattr(error, "pgcode", None) in NOT_MIGRATED_SQLSTATES:
        text = f"the database is not migrated ({text}): run `python -m runner migrate`"
    return Health(EXIT_UNAVAILABLE, text)


# -- presentation ---------------------------------------------------------------------------

def human_age(age: timedelta | float | None) -> str:
    """``45s``, ``12m 5s``, ``3h 20m``, ``12d 4h``."""
    if age is None:
        return "-"
    seconds = int(age.total_seconds() if isinstance(age, timedelta) else age)
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes}m"
    elif minutes:
        text = f"{minutes}m {secs}s"
    else:
        text = f"{secs}s"
    return sign + text


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table; numbers right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [any(isinstance(r[i], int | float | Decimal) for r in rows)
               and all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in rows)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w)
                 for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells] if cells else ["(none)"]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and len(value) > 70:
        return value[:67] + "..."
    return str(value)


def render_text(report: Report, health: Health, limits: Limits) -> str:
    parts = [f"Pipeline status: {health.verdict.upper()} (exit {health.exit_code}): "
             f"{health.message}"]
    holder = report.lock_holder
    if holder:
        parts.append(f"A run is in progress: run {holder['run_id']} ({holder['trigger']}) "
                     f"on {holder['hostname']}, pid {holder['pid']}, "
                     f"started {_cell(holder['started_at'])} UTC")
    if report.held:
        parts.append("\nHeld batches (end a hold with CALL etl.release_batch(id) or CALL "
                     "etl.discard_batch(id))\n" + format_table(
                         ["batch", "name", "held since (UTC)"],
                         [[h.batch_id, h.batch_name, h.held_since] for h in report.held]))
        parts += [f"  {h.message}" for h in report.held]
    if report.events:
        parts.append("\nLatest batch-check events (etl.v_dq_events)\n" + format_table(
            ["event", "batch", "file", "check", "rule", "severity", "observed", "threshold"],
            [[e.event_id, e.batch_name, e.file_name, e.check, e.rule, e.severity, e.observed,
              e.threshold] for e in report.events]))
    fresh = report.freshness
    parts.append(
        "\nFreshness\n" + format_table(
            ["what", "at (UTC)", "age", "limit"],
            [["newest sale", fresh.newest_transaction_ts,
              human_age(fresh.newest_transaction_age),
              human_age(limits.max_data_age) if limits.max_data_age is not None else "off"],
             ["last successful run", fresh.last_successful_run_at,
              human_age(fresh.last_successful_run_age), human_age(limits.max_age)]],
        )
    )
    if report.runs:
        parts.append("\nLast runs\n" + format_table(
            ["run", "trigger", "status", "started (UTC)", "seconds", "batches", "error"],
            [[r.run_id, r.trigger, r.status, r.started_at, r.seconds, r.batches_processed,
              _run_error(r)] for r in report.runs],
        ))
    else:
        parts.append("\nNo pipeline run recorded yet.")
    if report.steps:
        parts.append(f"\nSteps of run {report.steps_run_id} (the latest run with steps)\n"
                     + format_table(["step", "batches", "status", "seconds", "attempts", "rows"],
                                    step_totals(report.steps)))
        parts += [f"  {s.step} of batch {s.batch_id}: {s.status}: {s.error}"
                  for s in report.steps if s.status not in ("succeeded", "running")]
    if report.latest_batch:
        batch_id, name = report.latest_batch
        if report.rejects:
            parts.append(f"\nRejects of the latest batch {batch_id} ({name})\n" + format_table(
                ["file", "rule", "rows"],
                [[r.file_name, r.rule, r.rows] for r in report.rejects],
            ))
        else:
            parts.append(f"\nNo rejects in the latest batch {batch_id} ({name}).")
    return "\n".join(parts)


def step_totals(steps: Sequence[StepRow]) -> list[list[Any]]:
    """One row per step name, in first-run order: batches, worst status, sums."""
    totals: dict[str, list[Any]] = {}
    for s in steps:
        row = totals.setdefault(s.step, [s.step, 0, "succeeded", 0.0, 0, None])
        row[1] += 1 if s.batch_id is not None else 0
        if _STATUS_RANK[s.status] > _STATUS_RANK[row[2]]:
            row[2] = s.status
        row[3] += s.seconds
        row[4] += s.attempts
        if s.rows is not None:
            row[5] = (row[5] or 0) + s.rows
    return list(totals.values())


_STATUS_RANK = {"succeeded": 0, "running": 1, "cancelled": 2, "failed": 3}


def _run_error(run: RunRow) -> str | None:
    if not run.error:
        return None
    where = f"{run.error_step}" + (f"/batch {run.error_batch_id}" if run.error_batch_id else "")
    return f"[{where}] {run.error}" if run.error_step else run.error


def to_json(report: Report | None, health: Health, limits: Limits) -> str:
    """Machine-readable status: verdict, exit code, freshness in seconds, runs, rejects."""
    document: dict[str, Any] = {
        "verdict": health.verdict,
        "exit_code": health.exit_code,
        "message": health.message,
        "limits": {
            "max_age_seconds": limits.max_age.total_seconds(),
            "max_data_age_seconds": limits.max_data_age.total_seconds()
            if limits.max_data_age is not None else None,
        },
    }
    if report is not None:
        fresh = report.freshness
        document.update({
            "checked_at": report.checked_at,
            "freshness": {
                "newest_transaction_ts": fresh.newest_transaction_ts,
                "newest_transaction_age_seconds": fresh.newest_transaction_age,
                "last_successful_run_at": fresh.last_successful_run_at,
                "last_successful_run_age_seconds": fresh.last_successful_run_age,
            },
            "lock_holder": report.lock_holder,
            "held": [asdict(h) for h in report.held],
            "events": [asdict(e) for e in report.events],
            "runs": [asdict(r) for r in report.runs],
            "steps": {"run_id": report.steps_run_id, "steps": [asdict(s) for s in report.steps]},
            "rejects": {
                "batch_id": report.latest_batch[0] if report.latest_batch else None,
                "batch_name": report.latest_batch[1] if report.latest_batch else None,
                "rules": [asdict(r) for r in report.rejects],
            },
        })
    return json.dumps(document, default=_json_default, indent=2)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
