-- analytics.v_payment_methods: one row per payment method and month with at least one
-- order (docs/data-contract.md, "BI views"). Fed by warehouse.agg_payment_method_monthly
-- (completed transactions). revenue_share = revenue of the method / revenue of the month,
-- not rounded; null when the month's revenue is 0.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_payment_methods;

create view analytics.v_payment_methods as
select
    a.month,
    a.payment_method_code as payment_method,
    a.orders,
    a.revenue,
    a.revenue / nullif(sum(a.revenue) over (partition by a.month), 0) as revenue_share
from warehouse.agg_payment_method_monthly a;

comment on view analytics.v_payment_methods is
    'Completed orders and revenue per payment method and month, with the share of revenue';
comment on column analytics.v_payment_methods.month is 'First day of the month';
comment on column analytics.v_payment_methods.payment_method is
    'Payment method code (credit_card, debit_card, paypal, ...)';
comment on column analytics.v_payment_methods.orders is
    'Completed transactions paid with the method';
comment on column analytics.v_payment_methods.revenue is 'Sum of their line amounts';
comment on column analytics.v_payment_methods.revenue_share is
    'revenue / revenue of the month, not rounded; null when the month''s revenue is 0';
