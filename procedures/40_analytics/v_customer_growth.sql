-- analytics.v_customer_growth: one row per calendar month from the earliest signup month
-- to the latest month with a signup or an order (docs/data-contract.md, "BI views"). Fed by
-- warehouse.agg_customer_monthly (new customers by signup month, active customers with a
-- completed order); cumulative_customers is the running sum of new customers, which counts
-- every customer because the months start at the earliest signup.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_customer_growth;

create view analytics.v_customer_growth as
with bounds as (
    select
        min(a.month) filter (where a.new_customers > 0) as first_month,
        max(a.month) as last_month
    from warehouse.agg_customer_monthly a
),
calendar as (
    select m::date as month
    from bounds,
         generate_series(bounds.first_month::timestamp, bounds.last_month::timestamp,
                         interval '1 month') m
)
select
    c.month,
    coalesce(a.new_customers, 0) as new_customers,
    sum(coalesce(a.new_customers, 0)) over (order by c.month)::bigint as cumulative_customers,
    coalesce(a.active_customers, 0) as active_customers
from calendar c
left join warehouse.agg_customer_monthly a on a.month = c.month;

comment on view analytics.v_customer_growth is
    'New, cumulative and active customers per month, from the earliest signup month';
comment on column analytics.v_customer_growth.month is 'First day of the month';
comment on column analytics.v_customer_growth.new_customers is
    'Customers whose signup_date falls in the month';
comment on column analytics.v_customer_growth.cumulative_customers is
    'Customers with signup_date up to the end of the month';
comment on column analytics.v_customer_growth.active_customers is
    'Distinct customers with a completed order in the month';
