-- The aggregate refresh family (DATA_CONTRACT.md, "Business rules and metrics").
-- Every metric counts completed transactions only: the statuses marked is_sale in
-- production.transaction_statuses. Orders = distinct such transactions with at least one
-- fact row (an accepted item). Aggregate rows exist only where there is something to count.
--
-- warehouse.refresh_daily_sales(p_days date[]) returns bigint
--   Recomputes warehouse.agg_daily_sales for exactly these UTC days (delete + insert from
--   fact_sales). Returns rows inserted.
-- warehouse.refresh_monthly_sales(p_months date[]) returns bigint
--   Recomputes agg_product_monthly and agg_payment_method_monthly for these months (first
--   days) entirely, from fact_sales. Returns rows inserted.
-- warehouse.refresh_customer_months(p_signup_months date[], p_sales_months date[])
--   returns bigint
--   agg_customer_monthly: new_customers (current customer versions by signup month) of
--   every month in either list, active_customers (distinct customers with a completed
--   order) of the sales months; rows left with nothing to count are removed. Returns rows
--   written.
-- warehouse.refresh_aggregates(p_from date, p_to date)  (procedure)
--   Backfill or repair: every day from p_from to p_to, and every month overlapping the
--   range entirely (sales and signups).
-- warehouse.refresh_batch_aggregates(p_batch_id bigint)  (procedure)
--   Refreshes exactly what the batch's loaders queued in warehouse.agg_refresh_queue and
--   is still pending: its days, the months of those days, its signup months; then marks
--   them refreshed. One transaction. Upserts etl.batch_step (batch_id,
--   'refresh_batch_aggregates', rows written).
-- Plans are made for each call's own day list (plan_cache_mode force_custom_plan): one call
-- refreshes three days, another three years.
-- Safe to call twice: each refresh recomputes from the fact, so a second refresh of the
-- same dates writes the same rows; a second refresh_batch_aggregates finds nothing pending.

create or replace function warehouse.refresh_daily_sales(p_days date[])
returns bigint
language plpgsql
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
as $$
declare
    v_day_keys integer[];
    v_deleted  bigint;
    v_inserted bigint;
begin
    v_day_keys := array(select distinct warehouse.date_key(d) from unnest(p_days) d);
    if cardinality(v_day_keys) = 0 then
        return 0;
    end if;

    delete from warehouse.agg_daily_sales a where a.sales_date = any(p_days);
    get diagnostics v_deleted = row_count;

    with completed_lines as (
        select f.date_key, f.transaction_id, f.quantity, f.line_amount, f.discount,
               f.line_margin
        from warehouse.fact_sales f
        where f.date_key = any(v_day_keys)
          and f.status_code in (
              select s.status_code from production.transaction_statuses s where s.is_sale)
    )
    insert into warehouse.agg_daily_sales (
        sales_date, orders, units, revenue, discount, margin, refreshed_at
    )
    select
        make_date(cl.date_key / 10000, cl.date_key / 100 % 100, cl.date_key % 100),
        count(distinct cl.transaction_id),
        sum(cl.quantity),
        sum(cl.line_amount),
        sum(cl.discount),
        sum(cl.line_margin),
        now()
    from completed_lines cl
    group by cl.date_key;
    get diagnostics v_inserted = row_count;

    raise notice 'refresh_daily_sales: % day(s) asked, agg_daily_sales % row(s) deleted, % '
                 'inserted', cardinality(v_day_keys), v_deleted, v_inserted;
    return v_inserted;
end;
$$;

create or replace function warehouse.refresh_monthly_sales(p_months date[])
returns bigint
language plpgsql
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
as $$
declare
    v_months    date[];
    v_day_keys  integer[];
    v_products  bigint;
    v_payments  bigint;
begin
    v_months := array(
        select distinct date_trunc('month', m::timestamp)::date from unnest(p_months) m);
    if cardinality(v_months) = 0 then
        return 0;
    end if;
    v_day_keys := array(
        select warehouse.date_key(day::date)
        from unnest(v_months) m,
             generate_series(m::timestamp, m::timestamp + interval '1 month' - interval '1 day',
                             interval '1 day') day
    );

    delete from warehouse.agg_product_monthly a where a.month = any(v_months);
    delete from warehouse.agg_payment_method_monthly a where a.month = any(v_months);

    with completed_lines as (
        select make_date(f.date_key / 10000, f.date_key / 100 % 100, 1) as month,
               f.transaction_id, f.product_key, f.quantity, f.line_amount, f.line_margin
        from warehouse.fact_sales f
        where f.date_key = any(v_day_keys)
          and f.status_code in (
              select s.status_code from production.transaction_statuses s where s.is_sale)
    )
    insert into warehouse.agg_product_monthly (
        month, product_id, orders, units, revenue, margin, refreshed_at
    )
    select
        cl.month,
        coalesce(dp.product_id, -1),
        count(distinct cl.transaction_id),
        sum(cl.quantity),
        sum(cl.line_amount),
        sum(cl.line_margin),
        now()
    from completed_lines cl
    join warehouse.dim_product dp on dp.product_key = cl.product_key
    group by cl.month, coalesce(dp.product_id, -1);
    get diagnostics v_products = row_count;

    with completed_lines as (
        select make_date(f.date_key / 10000, f.date_key / 100 % 100, 1) as month,
               f.transaction_id, f.payment_method_key, f.line_amount
        from warehouse.fact_sales f
        where f.date_key = any(v_day_keys)
          and f.status_code in (
              select s.status_code from production.transaction_statuses s where s.is_sale)
    )
    insert into warehouse.agg_payment_method_monthly (
        month, payment_method_code, orders, revenue, refreshed_at
    )
    select
        cl.month,
        coalesce(dpm.payment_method_code, 'unknown'),
        count(distinct cl.transaction_id),
        sum(cl.line_amount),
        now()
    from completed_lines cl
    join warehouse.dim_payment_method dpm on dpm.payment_method_key = cl.payment_method_key
    group by cl.month, coalesce(dpm.payment_method_code, 'unknown');
    get diagnostics v_payments = row_count;

    raise notice 'refresh_monthly_sales: % month(s), agg_product_monthly % row(s), '
                 'agg_payment_method_monthly % row(s)',
        cardinality(v_months), v_products, v_payments;
    return v_products + v_payments;
end;
$$;

create or replace function warehouse.refresh_customer_months(
    p_signup_months date[], p_sales_months date[]
)
returns bigint
language plpgsql
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
as $$
declare
    v_sales_months date[];
    v_all_months   date[];
    v_day_keys     integer[];
    v_written      bigint;
    v_removed      bigint;
begin
    v_sales_months := array(
        select distinct date_trunc('month', m::timestamp)::date from unnest(p_sales_months) m);
    v_all_months := array(
        select distinct date_trunc('month', m::timestamp)::date
        from unnest(coalesce(p_signup_months, '{}') || coalesce(p_sales_months, '{}')) m);
    if cardinality(v_all_months) = 0 then
        return 0;
    end if;
    v_day_keys := array(
        select warehouse.date_key(day::date)
        from unnest(v_sales_months) m,
             generate_series(m::timestamp, m::timestamp + interval '1 month' - interval '1 day',
                             interval '1 day') day
    );

    with months as (
        select m as month from unnest(v_all_months) m
    ),
    signup_ranges as (
        select m.month, (m.month + interval '1 month')::date as next_month from months m
    ),
    new_customers as (
        select sr.month, count(c.customer_key) as customers
        from signup_ranges sr
        join warehouse.dim_customer c
            on c.is_current
           and c.signup_date >= sr.month and c.signup_date < sr.next_month
        group by sr.month
    ),
    active_customers as (
        select make_date(f.date_key / 10000, f.date_key / 100 % 100, 1) as month,
               count(distinct dc.customer_id) as customers
        from warehouse.fact_sales f
        join warehouse.dim_customer dc on dc.customer_key = f.customer_key
        where f.date_key = any(v_day_keys)
          and f.status_code in (
              select s.status_code from production.transaction_statuses s where s.is_sale)
        group by 1
    )
    insert into warehouse.agg_customer_monthly (
        month, new_customers, active_customers, refreshed_at
    )
    select m.month, coalesce(nc.customers, 0), coalesce(ac.customers, 0), now()
    from months m
    left join new_customers nc on nc.month = m.month
    left join active_customers ac on ac.month = m.month
    on conflict (month) do update
        set new_customers = excluded.new_customers,
            active_customers = case
                when excluded.month = any(v_sales_months) then excluded.active_customers
                else agg_customer_monthly.active_customers
            end,
            refreshed_at = excluded.refreshed_at;
    get diagnostics v_written = row_count;

    delete from warehouse.agg_customer_monthly a
    where a.month = any(v_all_months) and a.new_customers = 0 and a.active_customers = 0;
    get diagnostics v_removed = row_count;

    raise notice 'refresh_customer_months: % month(s) (% with sales), agg_customer_monthly % '
                 'row(s) written, % empty row(s) removed',
        cardinality(v_all_months), cardinality(v_sales_months), v_written, v_removed;
    return v_written;
end;
$$;

create or replace procedure warehouse.refresh_aggregates(p_from date, p_to date)
language plpgsql
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
as $$
declare
    v_days   date[];
    v_months date[];
    v_rows   bigint;
begin
    if p_from is null or p_to is null or p_from > p_to then
        raise exception 'refresh_aggregates: need p_from <= p_to, got % .. %', p_from, p_to;
    end if;
    v_days := array(
        select d::date from generate_series(p_from::timestamp, p_to::timestamp,
                                            interval '1 day') d);
    v_months := array(
        select m::date
        from generate_series(date_trunc('month', p_from::timestamp),
                             date_trunc('month', p_to::timestamp), interval '1 month') m);

    v_rows := warehouse.refresh_daily_sales(v_days)
              + warehouse.refresh_monthly_sales(v_months)
              + warehouse.refresh_customer_months(v_months, v_months);

    raise notice 'refresh_aggregates % .. %: % day(s), % month(s), % aggregate row(s) written',
        p_from, p_to, cardinality(v_days), cardinality(v_months), v_rows;
end;
$$;

create or replace procedure warehouse.refresh_batch_aggregates(p_batch_id bigint)
language plpgsql
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
as $$
declare
    v_days          date[];
    v_signup_months date[];
    v_sales_months  date[];
    v_rows          bigint;
    v_marked        bigint;
begin
    if not exists (select 1 from etl.batch b where b.batch_id = p_batch_id) then
        raise exception 'refresh_batch_aggregates: batch % does not exist', p_batch_id;
    end if;

    v_days := array(
        select q.day from warehouse.agg_refresh_queue q
        where q.batch_id = p_batch_id and q.grain = 'day' and q.refreshed_at is null
        order by q.day);
    v_signup_months := array(
        select q.day from warehouse.agg_refresh_queue q
        where q.batch_id = p_batch_id and q.grain = 'signup_month' and q.refreshed_at is null
        order by q.day);
    v_sales_months := array(
        select distinct date_trunc('month', d::timestamp)::date from unnest(v_days) d);

    v_rows := warehouse.refresh_daily_sales(v_days)
              + warehouse.refresh_monthly_sales(v_sales_months)
              + warehouse.refresh_customer_months(v_signup_months, v_sales_months);

    update warehouse.agg_refresh_queue q
    set refreshed_at = now()
    where q.batch_id = p_batch_id and q.refreshed_at is null;
    get diagnostics v_marked = row_count;

    raise notice 'refresh_batch_aggregates batch %: % day(s), % sales month(s), % signup '
                 'month(s) refreshed, % aggregate row(s) written, % queue row(s) cleared',
        p_batch_id, cardinality(v_days), cardinality(v_sales_months),
        cardinality(v_signup_months), v_rows, v_marked;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'refresh_batch_aggregates', v_rows, clock_timestamp())
    on conflict (batch_id, step) do update
        set rows = excluded.rows, completed_at = excluded.completed_at;
end;
$$;

comment on function warehouse.refresh_daily_sales(date[]) is
    'Recomputes agg_daily_sales for the given UTC days from fact_sales';
comment on function warehouse.refresh_monthly_sales(date[]) is
    'Recomputes agg_product_monthly and agg_payment_method_monthly for the given months';
comment on function warehouse.refresh_customer_months(date[], date[]) is
    'Recomputes new customers of signup months and active customers of sales months';
comment on procedure warehouse.refresh_aggregates(date, date) is
    'Recomputes every aggregate for the days of a range and the months overlapping it';
comment on procedure warehouse.refresh_batch_aggregates(bigint) is
    'Refreshes the days and months a batch touched (as queued by the loaders)';
