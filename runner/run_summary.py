"""What ``run`` (and ``demo``) print after a run: the outcome, each touched batch's files
from ``etl.v_batch_reconciliation``, and the time, attempts and rows per step."""

from __future__ import annotations

import psycopg2

from runner.contract import FILE_NAMES
from runner.db import connect
from runner.pipeline import RunResult
from runner.redact import redact
from runner.status import StepRow, format_table, step_totals


def run_summary(url: str, result: RunResult) -> str:
    """What ``run`` prints: the outcome, the batches' reconciliation, the time per step."""
    if result.status == "busy":
        return (f"another run holds the pipeline lock: {result.holder_text()}.\n"
                "Try again later, or pass --wait. (exit 75)")
    lines = [f"run {result.run_id or '-'}: {result.status} in {result.seconds:.1f}s, "
             f"{len(result.batches)} batch(es) processed"]
    if result.error:
        lines.append(f"error: {redact(result.error)}")
    if result.touched:
        lines += ["", "Batches (etl.v_batch_reconciliation)", reconciliation_table(
            url, result.touched)]
    if result.steps:
        lines += ["", "Time per step", step_table(result)]
    return "\n".join(lines)


def reconciliation_table(url: str, batch_ids: list[int]) -> str:
    try:
        conn = connect(url, autocommit=True, application_name="warehouse-runner-summary")
    except psycopg2.Error as error:
        return f"(not available: {redact(str(error))})"
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select batch_id, batch_name, file_name, rows_in_file, rows_accepted, "
                "rows_rejected, rows_pending, balanced from etl.v_batch_reconciliation "
                "where batch_id = any(%s) "
                "order by batch_id, array_position(%s::text[], file_name::text)",
                (batch_ids, list(FILE_NAMES)),
            )
            rows = cur.fetchall()
    except psycopg2.Error as error:
        return f"(not available: {redact(' '.join(str(error).split()))})"
    finally:
        conn.close()
    if not rows:
        return "(no files)"
    return format_table(["batch", "name", "file", "in file", "accepted", "rejected", "pending",
                         "balanced"], rows)


def step_table(result: RunResult) -> str:
    steps = [StepRow(s.step, s.batch_id, s.status, s.seconds, s.attempts, s.rows, None, None)
             for s in result.steps]
    return format_table(["step", "batches", "status", "seconds", "attempts", "rows"],
                        step_totals(steps))
