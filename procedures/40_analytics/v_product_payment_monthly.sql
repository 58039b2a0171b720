-- analytics.v_product_payment_monthly: one row per product, month and payment method with
-- at least one completed order; v_product_performance split by payment method (its rows
-- for a product and month sum to that product's row there), with the same name, category
-- and brand (the product's current version), so a BI tool filters it by category and
-- payment method at once. Completed means the statuses marked is_sale (the order's row of
-- warehouse.fact_order_status); product_id -1 is the unknown product, as in
-- agg_product_monthly.
-- The current version is joined to the lines before they are grouped (its name, category
-- and brand are grouping columns, functions of the product id), so a filter on category
-- reaches the lines: a category's products paid by card over a quarter read the quarter's
-- lines of that category only (363 ms against 830 ms at 5M orders, docs/performance.md,
-- session 12); reading the whole view costs 13-20 % more (3.6-3.8 s against 4.1-4.6 s at
-- 1M), one more hash probe per line.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_product_payment_monthly;

create view analytics.v_product_payment_monthly as
select
    d.month_start as month,
    coalesce(p.product_id, -1) as product_id,
    cur.product_name,
    cur.category,
    cur.brand,
    pm.payment_method_code as payment_method,
    count(distinct f.transaction_id)::bigint as orders,
    sum(f.quantity)::bigint as units,
    sum(f.line_amount)::numeric(18,2) as revenue,
    sum(f.line_margin)::numeric(18,2) as margin
from warehouse.fact_sales f
join warehouse.fact_order_status os on os.transaction_id = f.transaction_id
join warehouse.dim_date d on d.date_key = f.date_key
left join warehouse.dim_product p on p.product_key = f.product_key
left join warehouse.dim_product cur on cur.product_id = p.product_id and cur.is_current
left join warehouse.dim_payment_method pm on pm.payment_method_key = f.payment_method_key
where os.status_code in (
    select s.status_code from production.transaction_statuses s where s.is_sale)
group by d.month_start, coalesce(p.product_id, -1), cur.product_name, cur.category,
         cur.brand, pm.payment_method_code;

comment on view analytics.v_product_payment_monthly is
    'Completed sales per product, month and payment method (v_product_performance by '
    'payment method)';
comment on column analytics.v_product_payment_monthly.month is 'First day of the month';
comment on column analytics.v_product_payment_monthly.product_id is
    'Product id (-1: unknown product)';
comment on column analytics.v_product_payment_monthly.product_name is
    'Product name (current version)';
comment on column analytics.v_product_payment_monthly.category is 'Category (current version)';
comment on column analytics.v_product_payment_monthly.brand is 'Brand (current version)';
comment on column analytics.v_product_payment_monthly.payment_method is 'Payment method code';
comment on column analytics.v_product_payment_monthly.orders is
    'Completed transactions holding the product, paid with the method';
comment on column analytics.v_product_payment_monthly.units is 'Units sold';
comment on column analytics.v_product_payment_monthly.revenue is 'Sum of line amounts';
comment on column analytics.v_product_payment_monthly.margin is
    'Revenue minus cost (product cost valid at transaction time)';
