"""Issue 17, cost follows the change: the raw staging tables are partitioned by batch.

Validation reads one batch's staged rows (``where batch_id = <batch>``). Staging has no index
(revision 0003: COPY runs near a bare COPY), so that read was a sequential scan of every
batch still in staging: the whole initial load for each later batch until the purge, the
larger part of a daily batch's validation at 5M orders. Partitioned by batch (LIST on
batch_id), a batch's rows are one table of their own, and the planner reads only it.

- ``staging.customers``, ``products``, ``transactions`` and ``transaction_items`` become
  partitioned tables with the same columns, comments and privileges. Ingestion creates the
  batch's partition (``staging.add_batch_partition``, procedures/10_staging/) before its COPY,
  in the batch's transaction: a rolled-back ingestion leaves no partition.
- A DEFAULT partition (``staging.<file>_default``) takes rows written without a partition of
  their own (a hand-written INSERT, the tests' staged rows); ingestion never writes there.
- ``etl.delete_staged_rows`` (purge, discard) drops a batch's partitions instead of deleting
  their rows, so the space returns at once, without VACUUM.
- Rows already staged move into one partition per batch.

Downgrade: plain tables again, with every staged row.

Revision ID: 0016
Revises: 0015
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("customers", "products", "transactions", "transaction_items")


def upgrade() -> None:
    # the typed_<file> functions (SQL-standard bodies) depend on the tables they read: they
    # are dropped with the old tables and created again from procedures/ after the revisions
    op.execute(FORGET_ROUTINES_SQL)
    for table in TABLES:
        op.execute(
            f"""
alter table staging.{table} rename to {table}_unpartitioned;
create table staging.{table} (like staging.{table}_unpartitioned including all)
    partition by list (batch_id);
comment on table staging.{table} is
    'Raw rows of {table}.csv as delivered (trimmed of nothing, empty fields null), one per '
    'record that has the header''s number of fields; one partition per batch '
    '(staging.{table}_<batch_id>), created by ingestion';
create table staging.{table}_default partition of staging.{table} default;
comment on table staging.{table}_default is
    'Staged {table}.csv rows of a batch without a partition of its own (written by hand)';
do $$
declare
    v_batch_id bigint;
begin
    for v_batch_id in select distinct s.batch_id from staging.{table}_unpartitioned s
    loop
        execute format('create table staging.%I partition of staging.{table} '
                       'for values in (%s)', '{table}_' || v_batch_id, v_batch_id);
    end loop;
end $$;
insert into staging.{table} select * from staging.{table}_unpartitioned;
drop table staging.{table}_unpartitioned cascade;
"""
        )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute("drop procedure if exists staging.add_batch_partition(text, bigint)")
    for table in TABLES:
        op.execute(
            f"""
create table staging.{table}_unpartitioned (like staging.{table} including all);
insert into staging.{table}_unpartitioned select * from staging.{table};
drop table staging.{table} cascade;
alter table staging.{table}_unpartitioned rename to {table};
comment on table staging.{table} is
    'Raw rows of {table}.csv as delivered (trimmed of nothing, empty fields null), one per '
    'record that has the header''s number of fields';
"""
        )
