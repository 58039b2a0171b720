-- analytics.v_daily_category_sales: one row per UTC day, product category (current
-- version) and payment method with at least one completed order, from
-- warehouse.v_order_category_sales. orders counts each order once per category: for ONE
-- category it adds up over days and payment methods (an order has one day and one
-- method); summed over several categories it counts an order with lines in two of them
-- twice (use v_daily_payment_sales or v_daily_sales for orders of all categories).
-- Revenue, units, discount and margin add up over every column.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_daily_category_sales;

create view analytics.v_daily_category_sales as
select
    o.sales_date,
    o.category,
    o.payment_method,
    count(*)::bigint as orders,
    sum(o.units)::bigint as units,
    sum(o.revenue)::numeric(18,2) as revenue,
    sum(o.discount)::numeric(18,2) as discount,
    sum(o.margin)::numeric(18,2) as margin,
    round(sum(o.revenue) / count(*), 2) as avg_order_value
from warehouse.v_order_category_sales o
group by o.sales_date, o.category, o.payment_method;

comment on view analytics.v_daily_category_sales is
    'Completed sales per UTC day, product category and payment method; orders count an '
    'order once per category';
comment on column analytics.v_daily_category_sales.sales_date is 'UTC date of the orders';
comment on column analytics.v_daily_category_sales.category is
    'Product category (current version); null for an unknown product';
comment on column analytics.v_daily_category_sales.payment_method is 'Payment method code';
comment on column analytics.v_daily_category_sales.orders is
    'Completed orders with at least one line in the category (adds up over days and payment '
    'methods, not over categories)';
comment on column analytics.v_daily_category_sales.units is 'Units of the category''s lines';
comment on column analytics.v_daily_category_sales.revenue is
    'Sum of the category''s line amounts';
comment on column analytics.v_daily_category_sales.discount is
    'Sum of the category''s line discounts';
comment on column analytics.v_daily_category_sales.margin is
    'Revenue minus cost of the category''s lines';
comment on column analytics.v_daily_category_sales.avg_order_value is
    'revenue / orders, rounded to 2 decimals (the category''s share of each order)';
