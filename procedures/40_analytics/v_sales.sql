-- analytics.v_sales: one row per fact row (order line), every status, with the attributes
-- of the dimension versions it points to, for drill-down (docs/data-contract.md, "BI views").
-- Customer and product attributes are those valid at the transaction time (SCD type 2);
-- metrics in other views count completed transactions only, here status is a column: the
-- order's status, stored once per order in warehouse.fact_order_status and shown on each of
-- its lines.
-- Left joins (every key has a dimension row, -1 included; every order its status row) let
-- the planner drop the dimensions and the status a query does not use; a filter on
-- sales_date reaches the fact through dim_date and the fact's date_key index.
-- No direct identifier (docs/data-contract.md, "Personal data"): the customer is its id and its
-- non-identifying attributes; names, e-mail and phone stay in the tables readers cannot read.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_sales;

create view analytics.v_sales as
select
    f.item_id,
    f.transaction_id,
    f.transaction_ts,
    d.full_date as sales_date,
    d.month_start as sales_month,
    d.year as sales_year,
    os.status_code as status,
    c.customer_id,
    c.city,
    c.state,
    c.country,
    c.signup_date,
    p.product_id,
    p.product_name,
    p.category,
    p.brand,
    pm.payment_method_code as payment_method,
    f.quantity,
    f.unit_price,
    f.discount,
    f.line_amount,
    f.line_cost,
    f.line_margin,
    f.date_key,
    f.customer_key,
    f.product_key
from warehouse.fact_sales f
left join warehouse.fact_order_status os on os.transaction_id = f.transaction_id
left join warehouse.dim_date d on d.date_key = f.date_key
left join warehouse.dim_customer c on c.customer_key = f.customer_key
left join warehouse.dim_product p on p.product_key = f.product_key
left join warehouse.dim_payment_method pm on pm.payment_method_key = f.payment_method_key;

comment on view analytics.v_sales is
    'Order lines (one per fact row, every status) with customer, product, payment and date '
    'attributes as valid at the transaction time, for drill-down; the customer by id and '
    'non-identifying attributes only (no name, e-mail or phone)';
comment on column analytics.v_sales.item_id is 'Order line id';
comment on column analytics.v_sales.transaction_id is 'Order (transaction) id';
comment on column analytics.v_sales.transaction_ts is 'Transaction time';
comment on column analytics.v_sales.sales_date is 'UTC date of the transaction';
comment on column analytics.v_sales.sales_month is 'First day of the UTC month';
comment on column analytics.v_sales.sales_year is 'Calendar year (UTC)';
comment on column analytics.v_sales.status is
    'Transaction status: completed, pending, cancelled or refunded (metrics count completed)';
comment on column analytics.v_sales.customer_id is
    'Customer id (pseudonymous: names, e-mail and phone are not in analytics)';
comment on column analytics.v_sales.city is 'Customer city at transaction time';
comment on column analytics.v_sales.state is 'Customer state at transaction time';
comment on column analytics.v_sales.country is 'Customer country at transaction time';
comment on column analytics.v_sales.signup_date is 'Customer signup date';
comment on column analytics.v_sales.product_id is 'Product id';
comment on column analytics.v_sales.product_name is 'Product name at transaction time';
comment on column analytics.v_sales.category is 'Product category at transaction time';
comment on column analytics.v_sales.brand is 'Product brand at transaction time';
comment on column analytics.v_sales.payment_method is 'Payment method code';
comment on column analytics.v_sales.quantity is 'Units';
comment on column analytics.v_sales.unit_price is 'Price charged per unit';
comment on column analytics.v_sales.discount is 'Discount on the line';
comment on column analytics.v_sales.line_amount is 'quantity * unit_price - discount';
comment on column analytics.v_sales.line_cost is
    'quantity * product cost valid at transaction time';
comment on column analytics.v_sales.line_margin is 'line_amount - line_cost';
comment on column analytics.v_sales.date_key is 'Key of warehouse.dim_date (yyyymmdd)';
comment on column analytics.v_sales.customer_key is 'Customer version key (-1 unknown)';
comment on column analytics.v_sales.product_key is 'Product version key (-1 unknown)';
