-- analytics.v_product_yearly: one row per product and calendar year with at least one
-- completed order: v_product_performance's months added up (orders add up over months: an
-- order has one month), with the name, category and brand of the product's current version.
-- Why a view of its own: a year's ranking through v_product_performance joins the current
-- names to each of the year's product-months (181,973 at 5M orders) and groups after the
-- join (PostgreSQL 15 does not aggregate below a join): 140-163 ms for the top 10 of a year.
-- Here each year's product-months are read through the key range of their months
-- (agg_product_monthly's primary key) and summed by product before the names are joined,
-- so a filter on year reads that year only: 81-89 ms (docs/performance.md, session 12).
-- The years are those of warehouse.dim_date, which holds every day of the fact
-- (load_dimensions and load_fact_sales ensure it), so every product-month's year.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_product_yearly;

create view analytics.v_product_yearly as
select
    y.year,
    s.product_id,
    p.product_name,
    p.category,
    p.brand,
    s.orders,
    s.units,
    s.revenue,
    s.margin
from (select distinct d.year from warehouse.dim_date d where d.year is not null) y
cross join lateral (
    select a.product_id, sum(a.orders)::bigint as orders, sum(a.units)::bigint as units,
           sum(a.revenue)::numeric(18,2) as revenue, sum(a.margin)::numeric(18,2) as margin
    from warehouse.agg_product_monthly a
    where a.month >= make_date(y.year, 1, 1) and a.month < make_date(y.year + 1, 1, 1)
    group by a.product_id
) s
left join warehouse.dim_product p on p.product_id = s.product_id and p.is_current;

comment on view analytics.v_product_yearly is
    'Completed sales per product and calendar year (v_product_performance''s months added up)';
comment on column analytics.v_product_yearly.year is 'Calendar year';
comment on column analytics.v_product_yearly.product_id is 'Product id (-1: unknown product)';
comment on column analytics.v_product_yearly.product_name is 'Product name (current version)';
comment on column analytics.v_product_yearly.category is 'Category (current version)';
comment on column analytics.v_product_yearly.brand is 'Brand (current version)';
comment on column analytics.v_product_yearly.orders is
    'Completed transactions holding the product in the year';
comment on column analytics.v_product_yearly.units is 'Units sold';
comment on column analytics.v_product_yearly.revenue is 'Sum of line amounts';
comment on column analytics.v_product_yearly.margin is
    'Revenue minus cost (product cost valid at transaction time)';
