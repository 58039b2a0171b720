"""Retention of raw data (docs/privacy.md): how long processed staging rows and the raw
values of final rejects are kept, as one row of etl.retention, applied by the pipeline.

- etl.retention (one row): staging_days, after which the staging rows of processed batches
  are deleted (etl.purge_staging), and reject_raw_days, after which the raw values and raw
  text of final rejects (every quarantined row but the open orphans, which re-validation
  still reads) are set null. Null (the seeded default) keeps them forever. DBAs change it
  with plain SQL.
- etl.rejected_row.raw_purged_at: when retention blanked the row's raw values (null: kept).
  The row itself stays, with its batch, file, line, key and rules, so the reconciliation
  views keep their counts.
- etl.pipeline_step: the step apply_retention (etl.apply_retention(), once per run, after
  the batches).

Revision ID: 0010
Revises: 0009
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
create table etl.retention (
    setting         text primary key default 'default' check (setting = 'default'),
    staging_days    integer check (staging_days >= 0),
    reject_raw_days integer check (reject_raw_days >= 0)
);
comment on table etl.retention is
    'How long raw data is kept (one row; null: forever), applied by the pipeline step '
    'apply_retention (etl.apply_retention)';
comment on column etl.retention.setting is 'Always ''default'' (the table holds one row)';
comment on column etl.retention.staging_days is
    'Days after its batch was processed that a staging row is deleted (null: kept)';
comment on column etl.retention.reject_raw_days is
    'Days after it was rejected that a final reject''s raw values and raw text are set null '
    '(open orphans excepted; null: kept)';
insert into etl.retention (setting) values ('default');

alter table etl.rejected_row add column raw_purged_at timestamptz;
comment on column etl.rejected_row.raw_purged_at is
    'When retention (etl.retention.reject_raw_days) set raw and raw_text null; null: kept';

insert into etl.pipeline_step (step_order, step, procedure, per_batch, description) values
    (90, 'apply_retention', 'etl.apply_retention', false,
     'Deletes staging rows and blanks raw values of final rejects older than etl.retention '
     'says');
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
delete from etl.pipeline_step where step = 'apply_retention';
alter table etl.rejected_row drop column raw_purged_at;
drop table etl.retention cascade;
"""
    )
