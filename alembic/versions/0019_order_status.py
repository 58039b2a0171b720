"""Issue 17, status feeds: an order's status is stored once, in warehouse.fact_order_status.

Status is an attribute of the order (the transaction), but warehouse.fact_sales held it on
each of the order's lines. A status feed (pending to completed, refunds weeks later) spread
over the whole history then rewrote about three lines per changed order, on nearly every
heap page of the fact: at 1M orders 151,915 lines for a 51,800-change feed, about 28 us a
line with its full-page images, the floor of the fact step.

- ``warehouse.fact_order_status`` (transaction_id primary key, status_code, source_batch_id,
  updated_at): one narrow row per accepted transaction (production.transactions), its
  status as the warehouse holds it. Fact lines join it by transaction_id; analytics.v_sales
  still shows the status on every line (docs/data-contract.md, "Warehouse": status is an
  attribute, the grain is unchanged). A status feed writes only these rows (and the
  aggregate deltas of the orders whose sale-ness changes). ``fillfactor = 90``: a changed
  status is written beside the old row version (HOT; only the key is indexed).
  The status stays the production code (text) rather than a small-integer key: 64 bytes
  a row against 56 once aligned (about 7 MB more per million orders), for readers and
  loaders that need no lookup table.
- Filled from the fact (the status its lines hold; every line of an order holds the same)
  and, for transactions without fact lines, from production.
- ``warehouse.fact_sales.status_code`` is dropped (the routines and views of procedures/
  that read it are dropped with it and created again, reading the new table, after the
  revisions). The column's space is reused as rows are rewritten; a table loaded from
  scratch is narrower at once.

Downgrade: the column again, filled from the order rows, then the table dropped.

Revision ID: 0019
Revises: 0018
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
create table warehouse.fact_order_status (
    transaction_id  bigint primary key,
    status_code     text not null,
    source_batch_id bigint not null,
    updated_at      timestamptz not null default now()
) with (fillfactor = 90);
comment on table warehouse.fact_order_status is
    'Status of every accepted transaction (order), one row each: the status attribute of '
    'the fact_sales lines of that order (metrics count completed only)';
comment on column warehouse.fact_order_status.transaction_id is
    'Order (transaction) id: the fact_sales lines with this transaction_id';
comment on column warehouse.fact_order_status.status_code is
    'Transaction status (production.transaction_statuses); metrics count completed only';
comment on column warehouse.fact_order_status.source_batch_id is
    'Batch that last wrote the row';
comment on column warehouse.fact_order_status.updated_at is 'When the row was last written';
insert into warehouse.fact_order_status (transaction_id, status_code, source_batch_id,
                                         updated_at)
select t.transaction_id, coalesce(f.status_code, t.status_code),
       coalesce(f.source_batch_id, t.source_batch_id), coalesce(f.updated_at, now())
from production.transactions t
left join (
    select distinct on (l.transaction_id)
           l.transaction_id, l.status_code, l.source_batch_id, l.updated_at
    from warehouse.fact_sales l
    order by l.transaction_id, l.updated_at desc
) f on f.transaction_id = t.transaction_id
order by t.transaction_id;
analyze warehouse.fact_order_status;
alter table warehouse.fact_sales drop column status_code cascade;
comment on table warehouse.fact_sales is
    'Sales at item grain: one row per accepted transaction item, every status (the order''s '
    'status: fact_order_status, by transaction_id)';
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
alter table warehouse.fact_sales add column status_code text;
update warehouse.fact_sales f
set status_code = os.status_code
from warehouse.fact_order_status os
where os.transaction_id = f.transaction_id;
alter table warehouse.fact_sales alter column status_code set not null;
comment on column warehouse.fact_sales.status_code is
    'Transaction status; metrics count completed only';
comment on table warehouse.fact_sales is
    'Sales at item grain: one row per accepted transaction item, every status';
drop table warehouse.fact_order_status cascade;
"""
    )
