"""warehouse: aggregates refreshed by deltas. An ordinary batch changes a few thousand
orders, but those orders can lie in any month of the history (a status change of a year-old
order); recomputing every month it touched cost as much as a tenth of the initial load.
Instead warehouse.load_fact_sales records, for every order whose fact rows it writes, the
order's contribution to the aggregates before (sign -1) and after (sign +1) in
warehouse.agg_delta, and warehouse.refresh_batch_aggregates adds them up. The work follows
the orders the batch changed, not the months they lie in.

- fact_sales_transaction_idx: the lines of the orders a change touches, read once before it
  (new orders take growing ids, so the index grows at its right edge like date_key's).
- warehouse.agg_customer_activity: completed orders per month and customer, so that a
  delta can tell when a customer starts or stops being active in a month (active_customers
  of agg_customer_monthly is the number of its rows in the month). Filled here from the
  fact already loaded.
- warehouse.agg_delta: the pending contributions, one row per order, product and sign,
  with the fact's keys (resolved to natural keys when applied, after grouping), consumed
  (deleted) when applied. No key or index: written and read whole, by one batch at a time.
- agg_refresh_queue.by_delta: a queued day whose change arrives as deltas; false (the
  default) asks for a recompute from the fact (the initial bulk load, repairs).

Revision ID: 0006
Revises: 0005
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
create index fact_sales_transaction_idx on warehouse.fact_sales (transaction_id);

create table warehouse.agg_customer_activity (
    month       date not null,
    customer_id bigint not null,
    orders      bigint not null check (orders > 0),
    primary key (month, customer_id)
);
comment on table warehouse.agg_customer_activity is
    'Completed orders per month and customer (rows only for active customers)';
comment on column warehouse.agg_customer_activity.month is 'First day of the month';
comment on column warehouse.agg_customer_activity.customer_id is 'Natural key of the customer';
comment on column warehouse.agg_customer_activity.orders is
    'Completed orders of the customer in the month';

insert into warehouse.agg_customer_activity (month, customer_id, orders)
select d.month_start, dc.customer_id, count(distinct f.transaction_id)
from warehouse.fact_sales f
join warehouse.dim_date d on d.date_key = f.date_key
join warehouse.dim_customer dc on dc.customer_key = f.customer_key
where dc.customer_id is not null
  and f.status_code in (
      select s.status_code from production.transaction_statuses s where s.is_sale)
group by d.month_start, dc.customer_id;

create sequence warehouse.fact_change_seq;
comment on sequence warehouse.fact_change_seq is
    'Numbers the statements of warehouse.load_fact_sales that change the fact '
    '(agg_delta.change_id)';

create table warehouse.agg_delta (
    delta_id           bigint generated always as identity,
    batch_id           bigint not null,
    change_id          bigint not null,
    sign               smallint not null check (sign in (-1, 1)),
    transaction_id     bigint not null,
    date_key           integer not null,
    customer_key       bigint not null,
    payment_method_key integer not null,
    product_key        bigint not null,
    units              bigint not null,
    revenue            numeric(18,2) not null,
    discount           numeric(18,2) not null,
    margin             numeric(18,2) not null,
    recorded_at        timestamptz not null default now()
);
comment on table warehouse.agg_delta is
    'Pending changes of the aggregates: an order''s completed lines per product before '
    '(sign -1) and after (sign +1) load_fact_sales changed it; deleted when applied';
comment on column warehouse.agg_delta.batch_id is 'Batch whose fact load recorded the row';
comment on column warehouse.agg_delta.change_id is
    'The statement of load_fact_sales that changed the order: an order''s rows of one '
    'change and sign are one order';
comment on column warehouse.agg_delta.sign is '-1: contribution removed, +1: added';
comment on column warehouse.agg_delta.transaction_id is 'Order';
comment on column warehouse.agg_delta.date_key is 'UTC date of the order (dim_date)';
comment on column warehouse.agg_delta.customer_key is 'Customer version of the order';
comment on column warehouse.agg_delta.payment_method_key is 'Payment method of the order';
comment on column warehouse.agg_delta.product_key is 'Product version of the lines';
comment on column warehouse.agg_delta.units is 'Units of the order''s lines of the product';
comment on column warehouse.agg_delta.revenue is 'Their line amounts';
comment on column warehouse.agg_delta.discount is 'Their discounts';
comment on column warehouse.agg_delta.margin is 'Their margins';
comment on column warehouse.agg_delta.recorded_at is 'When load_fact_sales recorded it';

alter table warehouse.agg_refresh_queue
    add column by_delta boolean not null default false;

comment on column warehouse.agg_delta.delta_id is 'Surrogate key, in recording order';
comment on column warehouse.agg_refresh_queue.batch_id is 'Batch whose loaders queued it';
comment on column warehouse.agg_refresh_queue.day is
    'The UTC sales date, or the first day of the signup month';
comment on column warehouse.agg_refresh_queue.queued_at is 'When it was (last) queued';
comment on column warehouse.agg_daily_sales.sales_date is 'UTC date';
comment on column warehouse.agg_daily_sales.orders is 'Completed orders';
comment on column warehouse.agg_daily_sales.units is 'Units of their lines';
comment on column warehouse.agg_daily_sales.revenue is 'Sum of their line amounts';
comment on column warehouse.agg_daily_sales.discount is 'Sum of their discounts';
comment on column warehouse.agg_daily_sales.margin is 'Sum of their line margins';
comment on column warehouse.agg_daily_sales.refreshed_at is 'When the row last changed';
comment on column warehouse.agg_product_monthly.month is 'First day of the month';
comment on column warehouse.agg_product_monthly.product_id is
    'Natural key of the product (-1: unknown)';
comment on column warehouse.agg_product_monthly.orders is
    'Completed orders with a line of the product';
comment on column warehouse.agg_product_monthly.units is 'Units of those lines';
comment on column warehouse.agg_product_monthly.revenue is 'Sum of their line amounts';
comment on column warehouse.agg_product_monthly.margin is 'Sum of their line margins';
comment on column warehouse.agg_product_monthly.refreshed_at is 'When the row last changed';
comment on column warehouse.agg_payment_method_monthly.month is 'First day of the month';
comment on column warehouse.agg_payment_method_monthly.payment_method_code is
    'Payment method code (unknown: none)';
comment on column warehouse.agg_payment_method_monthly.orders is 'Completed orders';
comment on column warehouse.agg_payment_method_monthly.revenue is
    'Sum of their line amounts';
comment on column warehouse.agg_payment_method_monthly.refreshed_at is
    'When the row last changed';
comment on column warehouse.agg_customer_monthly.month is 'First day of the month';
comment on column warehouse.agg_customer_monthly.new_customers is
    'Customers whose signup date is in the month';
comment on column warehouse.agg_customer_monthly.active_customers is
    'Customers with a completed order in the month';
comment on column warehouse.agg_customer_monthly.refreshed_at is 'When the row last changed';
comment on column warehouse.agg_refresh_queue.by_delta is
    'True: the day''s change is carried by warehouse.agg_delta; false: recompute the day '
    'and its month from the fact';
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
alter table warehouse.agg_refresh_queue drop column by_delta;
drop table warehouse.agg_delta cascade;
drop sequence warehouse.fact_change_seq;
drop table warehouse.agg_customer_activity cascade;
drop index warehouse.fact_sales_transaction_idx;
"""
    )
