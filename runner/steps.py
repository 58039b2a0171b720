"""The ordered procedure calls that process batches, as the database lists them.

The chain is data: ``etl.pipeline_step`` (seeded by alembic/versions/0008_pipeline_chain.py)
lists the steps in order with the procedure each calls and whether it runs per batch. This
module reads it for the Python runner (runner/pipeline.py); ``etl.process_pending()``
(procedures/90_pipeline/process_pending.sql) reads the same table. Adding a step is one row
there plus its procedure.

Each step is one ``CALL`` in its own transaction. Every procedure is safe to call again, so
a step that failed, or whose success was not recorded, is simply called again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg2.extensions

INGEST_STEP = "ingest"  # the run's first step (batch_id null): files into staging, in Python

STEPS_SQL = "select step, procedure, per_batch from etl.pipeline_step order by step_order"


@dataclass(frozen=True)
class Step:
    """One pipeline step: its name in the run history and the procedure it calls."""

    name: str
    procedure: str  # schema-qualified
    per_batch: bool = True  # call procedure(batch_id) per batch; else procedure() once a run

    @property
    def sql(self) -> str:
        """The step's ``CALL`` (``%(batch_id)s`` is the batch's id for a per-batch step)."""
        return f"call {self.procedure}(%(batch_id)s)" if self.per_batch else \
            f"call {self.procedure}()"


def steps_from_rows(rows: list[tuple[Any, ...]]) -> tuple[Step, ...]:
    """Steps from ``STEPS_SQL``'s rows."""
    return tuple(Step(name, procedure, bool(per_batch)) for name, procedure, per_batch in rows)


# Not in the chain: the full reconciliation (every day of production, the fact and the daily
# aggregate) runs once a run, after the batches, only when asked: `python -m runner reconcile`
# and the weekly job of `schedule` (RunOptions.full_reconciliation).
FULL_RECONCILIATION = Step("full_reconciliation", "warehouse.check_full_reconciliation",
                           per_batch=False)


def read_steps(conn: psycopg2.extensions.connection) -> tuple[Step, ...]:
    """The chain, in order, as ``conn``'s database lists it."""
    with conn.cursor() as cur:
        cur.execute(STEPS_SQL)
        return steps_from_rows(cur.fetchall())


def step_names(steps: tuple[Step, ...]) -> list[str]:
    return [step.name for step in steps]
