-- analytics.v_monthly_sales: one row per calendar month from the first to the last month
-- with an order, months without orders as zeros (docs/data-contract.md, "BI views"). Fed by
-- warehouse.agg_daily_sales: orders add up over days because a transaction has one time.
-- revenue_growth_pct compares with the previous calendar month (the previous row, since
-- the months are contiguous); null for the first month or when the previous revenue is 0.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_monthly_sales;

create view analytics.v_monthly_sales as
with sales_by_month as (
    select
        date_trunc('month', a.sales_date::timestamp)::date as month,
        sum(a.orders)::bigint as orders,
        sum(a.units)::bigint as units,
        sum(a.revenue) as revenue,
        sum(a.discount) as discount,
        sum(a.margin) as margin
    from warehouse.agg_daily_sales a
    group by 1
),
calendar as (
    select m::date as month
    from (select min(s.month) as first_month, max(s.month) as last_month
          from sales_by_month s) bounds,
         generate_series(bounds.first_month::timestamp, bounds.last_month::timestamp,
                         interval '1 month') m
),
monthly as (
    select
        c.month,
        coalesce(s.orders, 0) as orders,
        coalesce(s.units, 0) as units,
        round(coalesce(s.revenue, 0), 2) as revenue,
        round(coalesce(s.discount, 0), 2) as discount,
        round(coalesce(s.margin, 0), 2) as margin
    from calendar c
    left join sales_by_month s on s.month = c.month
)
select
    m.month,
    m.orders,
    m.units,
    m.revenue,
    m.discount,
    m.margin,
    round(m.revenue / nullif(m.orders, 0), 2) as avg_order_value,
    round(100 * (m.revenue - lag(m.revenue) over by_month)
          / nullif(lag(m.revenue) over by_month, 0), 2) as revenue_growth_pct
from monthly m
window by_month as (order by m.month);

comment on view analytics.v_monthly_sales is
    'Completed sales per calendar month, every month from the first to the last with an order';
comment on column analytics.v_monthly_sales.month is 'First day of the month';
comment on column analytics.v_monthly_sales.orders is
    'Completed transactions with at least one accepted item';
comment on column analytics.v_monthly_sales.units is 'Units sold (sum of quantity)';
comment on column analytics.v_monthly_sales.revenue is
    'Sum of line amounts (quantity * unit_price - discount)';
comment on column analytics.v_monthly_sales.discount is 'Sum of line discounts';
comment on column analytics.v_monthly_sales.margin is
    'Revenue minus cost (quantity * product cost valid at transaction time)';
comment on column analytics.v_monthly_sales.avg_order_value is
    'revenue / orders, rounded to 2 decimals; null when there are no orders';
comment on column analytics.v_monthly_sales.revenue_growth_pct is
    'round(100 * (revenue - previous month) / previous month, 2); null for the first month '
    'or when the previous month''s revenue is 0';
