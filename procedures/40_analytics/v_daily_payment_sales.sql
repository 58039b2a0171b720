-- analytics.v_daily_payment_sales: one row per UTC day and payment method with at least
-- one completed order, from warehouse.v_order_category_sales. Every column adds up over
-- days and payment methods (an order has one day and one method), so it gives the orders
-- of all categories under a payment-method filter; for one day its rows sum to that day's
-- row of v_daily_sales.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_daily_payment_sales;

create view analytics.v_daily_payment_sales as
select
    o.sales_date,
    o.payment_method,
    count(distinct o.transaction_id)::bigint as orders,
    sum(o.units)::bigint as units,
    sum(o.revenue)::numeric(18,2) as revenue,
    sum(o.discount)::numeric(18,2) as discount,
    sum(o.margin)::numeric(18,2) as margin,
    round(sum(o.revenue) / count(distinct o.transaction_id), 2) as avg_order_value
from warehouse.v_order_category_sales o
group by o.sales_date, o.payment_method;

comment on view analytics.v_daily_payment_sales is
    'Completed sales per UTC day and payment method';
comment on column analytics.v_daily_payment_sales.sales_date is 'UTC date of the orders';
comment on column analytics.v_daily_payment_sales.payment_method is 'Payment method code';
comment on column analytics.v_daily_payment_sales.orders is
    'Completed orders paid with the method (with at least one accepted item)';
comment on column analytics.v_daily_payment_sales.units is 'Units sold';
comment on column analytics.v_daily_payment_sales.revenue is
    'Sum of line amounts (quantity * unit_price - discount)';
comment on column analytics.v_daily_payment_sales.discount is 'Sum of line discounts';
comment on column analytics.v_daily_payment_sales.margin is
    'Revenue minus cost (product cost valid at transaction time)';
comment on column analytics.v_daily_payment_sales.avg_order_value is
    'revenue / orders, rounded to 2 decimals';
