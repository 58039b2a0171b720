"""Issue 17, status feeds: updates of production.transactions become HOT.

A status feed rewrites hundreds of thousands of transactions spread over the whole history.
Every such update changed source_batch_id, which was indexed (the warehouse loaders found a
batch's transactions through it), so no update could be HOT: each wrote a new entry into all
four indexes of the table, at random places of the key, customer and time indexes.

- ``staging.transaction_changes`` (batch_id, transaction_id): the transactions each batch
  wrote, one row per (source_batch_id, transaction_id) ever written to
  production.transactions, filled by statement triggers on that table (routines:
  procedures/20_production/transaction_changes.sql) and read through
  ``production.batch_transactions(batch_id)``. A staging table: the purge deletes the rows of
  processed batches with the rest of their staging rows. Filled here from production.
- ``fillfactor = 90`` on production.transactions: room on each page for the new version of a
  changed row (pages written from now on; VACUUM FULL applies it to the pages there are).

- The index on production.transactions (source_batch_id) is dropped: no reader needs it
  (the loaders read production.batch_transactions), and while it existed, every update
  changed an indexed column and could not be HOT. Now a status change is written beside the
  old row version, with no new index entry.

Downgrade: the index again; the table (and the triggers that fill it) dropped, the default
fillfactor.

Revision ID: 0018
Revises: 0017
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
create table staging.transaction_changes (
    batch_id       bigint not null,
    transaction_id bigint not null
);
create index transaction_changes_batch_idx
    on staging.transaction_changes (batch_id, transaction_id);
comment on table staging.transaction_changes is
    'Transactions each batch wrote to production.transactions (its source_batch_id): how the '
    'warehouse loaders find them (production.batch_transactions); purged with staging';
comment on column staging.transaction_changes.batch_id is
    'The batch whose write set production.transactions.source_batch_id';
comment on column staging.transaction_changes.transaction_id is
    'The transaction written';
insert into staging.transaction_changes (batch_id, transaction_id)
select t.source_batch_id, t.transaction_id from production.transactions t;
alter table production.transactions set (fillfactor = 90);
drop index production.transactions_source_batch_idx;
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
create index transactions_source_batch_idx on production.transactions (source_batch_id);
drop trigger if exists transactions_changes_inserted on production.transactions;
drop trigger if exists transactions_changes_updated on production.transactions;
drop function if exists production.batch_transactions(bigint) cascade;
drop function if exists production.log_transaction_changes();
drop table staging.transaction_changes;
alter table production.transactions reset (fillfactor);
"""
    )
