"""Cost follows the change: a batch's reconciliation checks the orders it changed, and
drill-downs of analytics.v_sales by customer and by product stay index reads.

- etl.unverified_write: one row per statement that wrote production.transactions,
  production.transaction_items, warehouse.fact_sales or warehouse.agg_daily_sales outside
  the pipeline's procedures (a hand change, a script). The statement triggers that fill it
  are routines (procedures/00_common/unverified_write.sql). While it holds rows, a batch's
  reconciliation reads every day the batch touched in full, as before this revision; a
  balanced full check (warehouse.check_full_reconciliation) clears the rows it covered.
- etl.full_reconciliation: the history of balanced full checks (every day of production,
  the fact and agg_daily_sales), run weekly by the schedule service or on demand.
- fact_sales_customer_idx (customer_key) and fact_sales_product_date_idx (product_key,
  date_key): v_sales for one customer, or one product over a month, reads that customer's
  or product's lines instead of the whole fact; the batch reconciliation reads the orders
  re-pointed to a new customer or product version through them. Status changes do not
  touch these columns, so their updates stay HOT.

Revision ID: 0013
Revises: 0012
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
create table etl.unverified_write (
    write_id         bigint generated always as identity primary key,
    written_at       timestamptz not null default clock_timestamp(),
    xact_id          xid8 not null default pg_current_xact_id(),
    table_name       text not null,
    operation        text not null,
    db_user          text not null default session_user,
    application_name text
);
comment on table etl.unverified_write is
    'Statements that wrote production or warehouse sales tables outside the pipeline '
    'procedures; batch reconciliations read whole days while any is listed, a balanced full '
    'check clears them';
comment on column etl.unverified_write.written_at is 'When the statement ran';
comment on column etl.unverified_write.xact_id is
    'Transaction of the statement (a full check clears only writes its snapshot saw)';
comment on column etl.unverified_write.table_name is 'Table written (schema.table)';
comment on column etl.unverified_write.operation is 'INSERT, UPDATE, DELETE or TRUNCATE';
comment on column etl.unverified_write.db_user is 'Session user of the writer';
comment on column etl.unverified_write.application_name is 'application_name of the writer';

create table etl.full_reconciliation (
    check_id        bigint generated always as identity primary key,
    started_at      timestamptz not null,
    ended_at        timestamptz not null default clock_timestamp(),
    days_checked    bigint not null,
    writes_cleared  bigint not null
);
comment on table etl.full_reconciliation is
    'Balanced full reconciliations of production, fact_sales and agg_daily_sales over every '
    'day (an unbalanced check raises and is recorded in etl.step_run)';
comment on column etl.full_reconciliation.started_at is 'Start of the check';
comment on column etl.full_reconciliation.ended_at is 'End of the check';
comment on column etl.full_reconciliation.days_checked is 'Days compared, all balanced';
comment on column etl.full_reconciliation.writes_cleared is
    'Rows of etl.unverified_write the check covered and removed';

comment on column etl.pipeline_run.trigger is
    'What started the run: cli, schedule, watch, reconcile, demo, process_pending';

create index fact_sales_customer_idx on warehouse.fact_sales (customer_key);
create index fact_sales_product_date_idx on warehouse.fact_sales (product_key, date_key);
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
comment on column etl.pipeline_run.trigger is
    'What started the run: cli, schedule, demo, process_pending';
drop index warehouse.fact_sales_product_date_idx;
drop index warehouse.fact_sales_customer_idx;
drop table etl.full_reconciliation;
drop table etl.unverified_write cascade;
drop function if exists etl.log_unverified_write() cascade;
"""
    )
