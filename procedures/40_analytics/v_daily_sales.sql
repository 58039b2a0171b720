-- analytics.v_daily_sales: one row per UTC day with at least one order
-- (docs/data-contract.md, "BI views"). Fed by warehouse.agg_daily_sales, which holds completed
-- transactions only and is refreshed for the days each batch touches.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_daily_sales;

create view analytics.v_daily_sales as
select
    a.sales_date,
    a.orders,
    a.units,
    a.revenue,
    a.discount,
    a.margin,
    round(a.revenue / nullif(a.orders, 0), 2) as avg_order_value
from warehouse.agg_daily_sales a;

comment on view analytics.v_daily_sales is
    'Completed sales per UTC day, one row per day with at least one order';
comment on column analytics.v_daily_sales.sales_date is 'UTC date of the transactions';
comment on column analytics.v_daily_sales.orders is
    'Completed transactions with at least one accepted item';
comment on column analytics.v_daily_sales.units is 'Units sold (sum of quantity)';
comment on column analytics.v_daily_sales.revenue is
    'Sum of line amounts (quantity * unit_price - discount)';
comment on column analytics.v_daily_sales.discount is 'Sum of line discounts';
comment on column analytics.v_daily_sales.margin is
    'Revenue minus cost (quantity * product cost valid at transaction time)';
comment on column analytics.v_daily_sales.avg_order_value is
    'revenue / orders, rounded to 2 decimals; null when there are no orders';
