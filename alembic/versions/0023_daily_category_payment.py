"""Issue 17, drill-downs: sales by day, category and payment method are stored.

``analytics.v_daily_category_sales`` and ``analytics.v_daily_payment_sales`` (the
dashboard's grids, the Superset and BI datasets of the category and payment-method filters)
grouped the completed fact lines on every read: one category and one payment method over a
quarter took 280-290 ms at 5M orders (1.4M lines, each tested for its order's status),
the whole grid of the dashboard seconds. Their rows are few (a day has at most categories
times payment methods), so they are now aggregates kept like the others:

- ``warehouse.agg_daily_category_sales`` (sales_date, category, payment_method_code, unique
  with nulls not distinct: the unknown product has no category, the unknown payment method
  no code): completed orders counted once per category (an order with lines in two
  categories is one order of each), units, revenue, discount, margin. The category is the
  product's current version's, as everywhere.
- ``warehouse.agg_daily_payment_sales`` (sales_date, payment_method_code): the same over
  every category, an order counted once.
- Kept by ``warehouse.apply_agg_delta`` (the deltas of every fact change) and recomputed by
  ``warehouse.refresh_sales_aggregates`` for its days; a product moved to another category
  has every day it sold recomputed by ``warehouse.load_dimensions``.
- Filled here from the fact (completed lines: no order row with a status that is not a
  sale).

Downgrade: the tables are dropped (the views of procedures/ that read them are dropped with
them and created again by the checkout's procedures).

Revision ID: 0023
Revises: 0022
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
create table warehouse.agg_daily_category_sales (
    sales_date          date not null,
    category            text,
    payment_method_code text,
    orders              bigint not null,
    units               bigint not null,
    revenue             numeric not null,
    discount            numeric not null,
    margin              numeric not null,
    refreshed_at        timestamptz not null default now(),
    constraint agg_daily_category_sales_key
        unique nulls not distinct (sales_date, category, payment_method_code)
);
comment on table warehouse.agg_daily_category_sales is
    'Completed sales per UTC day, product category (current version) and payment method; '
    'an order counts once per category';
comment on column warehouse.agg_daily_category_sales.category is
    'Category of the products'' current version; null for the unknown product';
comment on column warehouse.agg_daily_category_sales.payment_method_code is
    'Payment method code; null for the unknown method';
comment on column warehouse.agg_daily_category_sales.orders is
    'Completed orders with a line in the category';
comment on column warehouse.agg_daily_category_sales.revenue is
    'Sum of the category''s line amounts (numeric: no overflow at any volume)';

create table warehouse.agg_daily_payment_sales (
    sales_date          date not null,
    payment_method_code text,
    orders              bigint not null,
    units               bigint not null,
    revenue             numeric not null,
    discount            numeric not null,
    margin              numeric not null,
    refreshed_at        timestamptz not null default now(),
    constraint agg_daily_payment_sales_key
        unique nulls not distinct (sales_date, payment_method_code)
);
comment on table warehouse.agg_daily_payment_sales is
    'Completed sales per UTC day and payment method';
comment on column warehouse.agg_daily_payment_sales.payment_method_code is
    'Payment method code; null for the unknown method';
comment on column warehouse.agg_daily_payment_sales.revenue is
    'Sum of line amounts (numeric: no overflow at any volume)';

with order_categories as (
    select f.date_key, f.transaction_id, f.payment_method_key, cur.category,
           sum(f.quantity) as units, sum(f.line_amount) as revenue,
           sum(f.discount) as discount, sum(f.line_margin) as margin
    from warehouse.fact_sales f
    left join warehouse.dim_product p on p.product_key = f.product_key
    left join warehouse.dim_product cur on cur.product_id = p.product_id and cur.is_current
    where not exists (
        select 1 from warehouse.fact_order_status os
        where os.transaction_id = f.transaction_id
          and os.status_code not in (select s.status_code
                                     from production.transaction_statuses s
                                     where s.is_sale))
    group by f.date_key, f.transaction_id, f.payment_method_key, cur.category
)
insert into warehouse.agg_daily_category_sales (
    sales_date, category, payment_method_code, orders, units, revenue, discount, margin)
select d.full_date, o.category, pm.payment_method_code, count(*), sum(o.units),
       sum(o.revenue), sum(o.discount), sum(o.margin)
from order_categories o
join warehouse.dim_date d on d.date_key = o.date_key
join warehouse.dim_payment_method pm on pm.payment_method_key = o.payment_method_key
group by d.full_date, o.category, pm.payment_method_code
order by 1, 2, 3;

insert into warehouse.agg_daily_payment_sales (
    sales_date, payment_method_code, orders, units, revenue, discount, margin)
select d.full_date, pm.payment_method_code, count(distinct f.transaction_id),
       sum(f.quantity), sum(f.line_amount), sum(f.discount), sum(f.line_margin)
from warehouse.fact_sales f
join warehouse.dim_date d on d.date_key = f.date_key
join warehouse.dim_payment_method pm on pm.payment_method_key = f.payment_method_key
where not exists (
    select 1 from warehouse.fact_order_status os
    where os.transaction_id = f.transaction_id
      and os.status_code not in (select s.status_code
                                 from production.transaction_statuses s
                                 where s.is_sale))
group by d.full_date, pm.payment_method_code
order by 1, 2;
analyze warehouse.agg_daily_category_sales, warehouse.agg_daily_payment_sales;
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute("drop table warehouse.agg_daily_category_sales, "
               "warehouse.agg_daily_payment_sales cascade")
