-- analytics.v_product_performance: one row per product and month with at least one order
-- (docs/data-contract.md, "BI views"). Figures from warehouse.agg_product_monthly (completed
-- transactions, all versions of the product); name, category and brand of the product's
-- current version; revenue_rank_in_category = RANK() by revenue, highest first, within
-- the month and the current category. Filters on month or category reach the aggregate
-- before the ranking (both are partition columns).
-- Dropped and recreated on every apply.
drop view if exists analytics.v_product_performance;

create view analytics.v_product_performance as
select
    a.month,
    a.product_id,
    p.product_name,
    p.category,
    p.brand,
    a.orders,
    a.units,
    a.revenue,
    a.margin,
    rank() over (partition by a.month, p.category order by a.revenue desc)
        as revenue_rank_in_category
from warehouse.agg_product_monthly a
left join warehouse.dim_product p on p.product_id = a.product_id and p.is_current;

comment on view analytics.v_product_performance is
    'Completed sales per product and month, ranked by revenue within month and category';
comment on column analytics.v_product_performance.month is 'First day of the month';
comment on column analytics.v_product_performance.product_id is 'Product id';
comment on column analytics.v_product_performance.product_name is
    'Product name (current version)';
comment on column analytics.v_product_performance.category is 'Category (current version)';
comment on column analytics.v_product_performance.brand is 'Brand (current version)';
comment on column analytics.v_product_performance.orders is
    'Completed transactions holding the product';
comment on column analytics.v_product_performance.units is 'Units sold';
comment on column analytics.v_product_performance.revenue is 'Sum of line amounts';
comment on column analytics.v_product_performance.margin is
    'Revenue minus cost (product cost valid at transaction time)';
comment on column analytics.v_product_performance.revenue_rank_in_category is
    'RANK() by revenue, highest first, within the month and category';
