-- analytics.v_daily_signups: one row per day on which at least one customer signed up
-- (current version's signup_date, as agg_customer_monthly counts new customers). Its rows
-- of a month sum to new_customers of v_customer_growth; it serves ranges of days
-- (the dashboard's "new customers" of any period).
-- Dropped and recreated on every apply.
drop view if exists analytics.v_daily_signups;

create view analytics.v_daily_signups as
select
    c.signup_date,
    count(*)::bigint as new_customers
from warehouse.dim_customer c
where c.is_current and c.signup_date is not null
group by c.signup_date;

comment on view analytics.v_daily_signups is
    'New customers per signup day (days with at least one signup)';
comment on column analytics.v_daily_signups.signup_date is 'Signup date';
comment on column analytics.v_daily_signups.new_customers is
    'Customers whose signup_date is the day';
