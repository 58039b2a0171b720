"""Hardening (issue 18), second revision: the chain and retry policy are written by
migrations only, and a record spanning many lines is a batch-check event.

- ``etl.pipeline_step`` names the procedure every run calls, for the runner and for
  ``etl.process_pending()`` run by a DBA; ``etl.retry_policy`` and ``etl.transient_sqlstate``
  say which errors are retried. They are changed by Alembic revisions (docs/operations.md),
  like ``etl.routine_checksum`` (revision 0011): the pipeline role may read them, not write
  them, so a compromised runner login cannot point a DBA's run at another procedure.
- ``etl.dq_event.check_name`` gains ``long_record``: ingestion records one warning per file
  whose longest record spans more than 5 physical lines (a stray quote, such as an unquoted
  12" in a product name, makes the rest of a file one malformed record), naming the line
  where the quote opened; it is alerted like every event (etl.check_batch).

Downgrade: the write grants come back; the old check list is restored NOT VALID, so events
recorded meanwhile stay.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OWNED_BY_MIGRATIONS = "etl.pipeline_step, etl.retry_policy, etl.transient_sqlstate"
CHECKS = ("reject_ratio", "volume", "schema_change")


def _checks(names: tuple[str, ...], *, not_valid: bool = False) -> None:
    listed = ", ".join(f"'{name}'" for name in names)
    op.execute("alter table etl.dq_event drop constraint dq_event_check_name_check")
    op.execute(f"alter table etl.dq_event add constraint dq_event_check_name_check "
               f"check (check_name in ({listed})){' not valid' if not_valid else ''}")


def upgrade() -> None:
    op.execute(f"revoke insert, update, delete, truncate on {OWNED_BY_MIGRATIONS} "
               "from warehouse_etl")
    _checks((*CHECKS, "long_record"))
    op.execute("comment on column etl.dq_event.check_name is "
               "'reject_ratio, volume, schema_change or long_record (a record spanning more "
               "than 5 lines: a stray quote?)'")
    op.execute("comment on column etl.dq_event.observed is 'reject_ratio: rejected rows / "
               "rows in the file; volume: rows in the file; schema_change: columns added plus "
               "removed; long_record: physical lines of the longest record'")
    op.execute("comment on column etl.dq_event.threshold is 'reject_ratio: the ratio "
               "exceeded; volume: the bound crossed (a third or three times the median); "
               "schema_change: null; long_record: the lines a record may span unreported (5)'")


def downgrade() -> None:
    _checks(CHECKS, not_valid=True)
    op.execute("comment on column etl.dq_event.check_name is "
               "'reject_ratio, volume or schema_change'")
    op.execute("comment on column etl.dq_event.observed is 'reject_ratio: rejected rows / "
               "rows in the file; volume: rows in the file; schema_change: columns added plus "
               "removed'")
    op.execute("comment on column etl.dq_event.threshold is 'reject_ratio: the ratio "
               "exceeded; volume: the bound crossed (a third or three times the median); "
               "schema_change: null'")
    op.execute(f"grant insert, update, delete, truncate on {OWNED_BY_MIGRATIONS} "
               "to warehouse_etl")
