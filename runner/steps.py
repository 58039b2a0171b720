"""The ordered procedure calls that process one batch (DESIGN.md, "Procedures").

Each step is one ``CALL`` in its own transaction. Every procedure is safe to call again, so
a step that failed, or whose success was not recorded, is simply called again. The same
chain in PL/pgSQL is ``etl.process_pending()`` (procedures/90_pipeline/process_pending.sql);
a test keeps the two lists equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One pipeline step: its name in the run history and the procedure it calls."""

    name: str
    procedure: str  # schema-qualified; called as ``call <procedure>(batch_id)``

    @property
    def sql(self) -> str:
        return f"call {self.procedure}(%(batch_id)s)"


STEPS: tuple[Step, ...] = (
    Step("validate", "staging.validate_batch"),
    Step("merge", "production.merge_batch"),
    Step("reprocess_rejects", "etl.reprocess_rejects"),
    Step("load_dimensions", "warehouse.load_dimensions"),
    Step("load_fact_sales", "warehouse.load_fact_sales"),
    Step("refresh_aggregates", "warehouse.refresh_batch_aggregates"),
    Step("check_reconciliation", "warehouse.check_reconciliation"),
    Step("mark_processed", "etl.mark_batch_processed"),
)

INGEST_STEP = "ingest"  # the run's first step (batch_id null): files into staging


def step_names(steps: tuple[Step, ...] = STEPS) -> list[str]:
    return [step.name for step in steps]
