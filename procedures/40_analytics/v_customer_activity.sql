-- analytics.v_customer_activity: one row per month and customer with at least one
-- completed order, from warehouse.agg_customer_activity. count(distinct customer_id) over
-- any whole months gives the active customers of that period (a sum of the months'
-- active_customers in v_customer_growth counts a customer once per month); it reads the
-- rows of those months only. No direct identifier: the customer id only.
-- Dropped and recreated on every apply.
drop view if exists analytics.v_customer_activity;

create view analytics.v_customer_activity as
select a.month, a.customer_id, a.orders
from warehouse.agg_customer_activity a;

comment on view analytics.v_customer_activity is
    'Customers with a completed order, per month: one row per month and active customer';
comment on column analytics.v_customer_activity.month is 'First day of the month';
comment on column analytics.v_customer_activity.customer_id is
    'Customer id; not a direct identifier';
comment on column analytics.v_customer_activity.orders is
    'Completed orders of the customer in the month';
