-- analytics.v_category_best_sellers: the best seller of every category, month by month: one
-- row per month and category (the products' current version) with a completed order, the
-- product ranked first by revenue there (v_product_performance's rows with
-- revenue_rank_in_category = 1, same columns and figures; products tied at the top are each
-- a row).
-- Why a view of its own: v_product_performance ranks every product-month, a sort of all of
-- them (508,000 at 5M orders: 0.6 s) before a filter on the rank can apply. Here the top
-- revenue of each month and category is a hash aggregate (category_tops), and only the
-- product-months whose revenue is a top of their month (of any category: a few per
-- category) are ranked within month and category: those ranked first are the products
-- with their category's top revenue, ties included (RANK() semantics); a product that only
-- matches another category's top ranks below its own category's top and drops out. Filters
-- on month or category reach both passes (grouping and partition columns).
-- Dropped and recreated on every apply.
drop view if exists analytics.v_category_best_sellers;

create view analytics.v_category_best_sellers as
with product_months as not materialized (
    select a.month, a.product_id, p.product_name, p.category, p.brand,
           a.orders, a.units, a.revenue, a.margin
    from warehouse.agg_product_monthly a
    left join warehouse.dim_product p on p.product_id = a.product_id and p.is_current
),
category_tops as (
    select pm.month, pm.category, max(pm.revenue) as revenue
    from product_months pm
    group by pm.month, pm.category
),
ranked_candidates as (
    select pm.month, pm.category, pm.product_id, pm.product_name, pm.brand,
           pm.orders, pm.units, pm.revenue, pm.margin,
           rank() over (partition by pm.month, pm.category order by pm.revenue desc)
               as revenue_rank
    from product_months pm
    where (pm.month, pm.revenue) in (select ct.month, ct.revenue from category_tops ct)
)
select
    rc.month,
    rc.category,
    rc.product_id,
    rc.product_name,
    rc.brand,
    rc.orders,
    rc.units,
    rc.revenue,
    rc.margin
from ranked_candidates rc
where rc.revenue_rank = 1;

comment on view analytics.v_category_best_sellers is
    'Best seller of every category and month: the products ranked first by revenue within '
    'month and current category (v_product_performance with revenue_rank_in_category = 1)';
comment on column analytics.v_category_best_sellers.month is 'First day of the month';
comment on column analytics.v_category_best_sellers.category is 'Category (current version)';
comment on column analytics.v_category_best_sellers.product_id is 'Product id';
comment on column analytics.v_category_best_sellers.product_name is
    'Product name (current version)';
comment on column analytics.v_category_best_sellers.brand is 'Brand (current version)';
comment on column analytics.v_category_best_sellers.orders is
    'Completed transactions holding the product';
comment on column analytics.v_category_best_sellers.units is 'Units sold';
comment on column analytics.v_category_best_sellers.revenue is
    'Sum of line amounts: the highest of the month and category (ties: one row each)';
comment on column analytics.v_category_best_sellers.margin is
    'Revenue minus cost (product cost valid at transaction time)';
