-- analytics.v_order_categories: one row per completed order and product category (current
-- version), from warehouse.v_order_category_sales. The detail behind the category and
-- payment-method filters: count(distinct customer_id) gives active customers for any
-- selection of days, categories and payment methods; count(*) for one category gives its
-- orders (an order with lines in two categories is one order of each). No direct
-- identifier: the customer id only.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_order_categories;

create view analytics.v_order_categories as
select
    o.transaction_id,
    o.sales_date,
    o.sales_month,
    o.customer_id,
    o.payment_method,
    o.category,
    o.lines,
    o.units,
    o.revenue,
    o.discount,
    o.margin
from warehouse.v_order_category_sales o;

comment on view analytics.v_order_categories is
    'Completed orders split by product category (current version): one row per order and '
    'category, for exact filters by category and payment method';
comment on column analytics.v_order_categories.transaction_id is 'Order (transaction) id';
comment on column analytics.v_order_categories.sales_date is 'UTC date of the order';
comment on column analytics.v_order_categories.sales_month is 'First day of its UTC month';
comment on column analytics.v_order_categories.customer_id is
    'Customer id (null for the unknown customer); not a direct identifier';
comment on column analytics.v_order_categories.payment_method is 'Payment method code';
comment on column analytics.v_order_categories.category is
    'Category of the products (current version); null for an unknown product';
comment on column analytics.v_order_categories.lines is 'Order lines in the category';
comment on column analytics.v_order_categories.units is 'Units of those lines';
comment on column analytics.v_order_categories.revenue is
    'Sum of their line amounts (quantity * unit_price - discount)';
comment on column analytics.v_order_categories.discount is 'Sum of their discounts';
comment on column analytics.v_order_categories.margin is
    'Revenue minus cost of those lines (product cost valid at transaction time)';
