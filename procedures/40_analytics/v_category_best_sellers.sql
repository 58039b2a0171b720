-- analytics.v_category_best_sellers: the best seller of every category, month by month: one
-- row per month and category (the products' current version) with a completed order, the
-- product ranked first by revenue there (v_product_performance's rows with
-- revenue_rank_in_category = 1, same columns and figures; products tied at the top are each
-- a row).
-- Why a view of its own: v_product_performance ranks every product-month, a sort of all of
-- them (508,000 at 5M orders: 0.6 s) before a filter on the rank can apply. The keys of the
-- best sellers are stored (warehouse.agg_category_best_sellers, kept by
-- warehouse.refresh_best_sellers whenever the product figures or a product's category
-- change); figures and names are joined here at read time, so they are those of
-- v_product_performance. A filter on month reaches the stored keys' primary key.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_category_best_sellers;

create view analytics.v_category_best_sellers as
select
    b.month,
    p.category,
    b.product_id,
    p.product_name,
    p.brand,
    a.orders,
    a.units,
    a.revenue,
    a.margin
from warehouse.agg_category_best_sellers b
join warehouse.agg_product_monthly a on a.month = b.month and a.product_id = b.product_id
left join warehouse.dim_product p on p.product_id = b.product_id and p.is_current;

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
