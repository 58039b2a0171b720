"""The pipeline's chain and retry policy are written by migrations only (issue 18).

``etl.pipeline_step`` names the procedure every run calls, for the runner and for
``etl.process_pending()`` run by a DBA; ``etl.retry_policy`` and ``etl.transient_sqlstate``
say which errors are retried. They are changed by Alembic revisions (docs/operations.md),
like ``etl.routine_checksum`` (revision 0011): the pipeline role may read them, not write
them, so a compromised runner login cannot point a DBA's run at another procedure.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = "etl.pipeline_step, etl.retry_policy, etl.transient_sqlstate"


def upgrade() -> None:
    op.execute(f"revoke insert, update, delete, truncate on {TABLES} from warehouse_etl")


def downgrade() -> None:
    op.execute(f"grant insert, update, delete, truncate on {TABLES} to warehouse_etl")
