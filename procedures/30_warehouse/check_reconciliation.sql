-- Reconciliation of the warehouse with production (DESIGN.md: the pipeline fails a run when
-- they differ).
--
-- warehouse.sales_reconciliation(p_days date[] default null) returns table
--   For each UTC day of p_days (every day from the first to the last transaction in
--   production or the fact when null): completed revenue, units and item count computed
--   independently from production (transactions joined to items) and from fact_sales, and
--   revenue, units and orders of agg_daily_sales; balanced is true when they all agree.
--   Reads only the given days (production through the transaction_ts index between the
--   first and last day, the fact through dim_date and its date_key index), so a batch's
--   check costs what its days hold. A fact date missing from dim_date counts as a
--   difference (dim_date must cover the fact).
-- warehouse.check_reconciliation(p_batch_id bigint)  (procedure)
--   Checks the days the batch touched (warehouse.agg_refresh_queue, grain day) and raises
--   an exception naming every day that differs and its figures. Writes nothing but its
--   etl.batch_step row (batch_id, 'check_reconciliation', days checked). Safe to call
--   twice: it only reads.
-- The view warehouse.v_reconciliation (v_reconciliation.sql) lists the unbalanced days of
-- the whole history.

create or replace function warehouse.sales_reconciliation(p_days date[] default null)
returns table (
    sales_date         date,
    production_revenue numeric,
    fact_revenue       numeric,
    aggregate_revenue  numeric,
    production_units   bigint,
    fact_units         bigint,
    aggregate_units    bigint,
    production_items   bigint,
    fact_items         bigint,
    production_orders  bigint,
    fact_orders        bigint,
    aggregate_orders   bigint,
    balanced           boolean
)
language plpgsql
stable
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
set work_mem = '256MB'
as $$
declare
    v_days      date[] := p_days;
    v_first_day date;
    v_last_day  date;
begin
    if v_days is null then
        select array(
            select d::date
            from generate_series(
                least(warehouse.utc_date((select min(t.transaction_ts)
                                          from production.transactions t)),
                      warehouse.utc_date((select min(f.transaction_ts)
                                          from warehouse.fact_sales f)))::timestamp,
                greatest(warehouse.utc_date((select max(t.transaction_ts)
                                             from production.transactions t)),
                         warehouse.utc_date((select max(f.transaction_ts)
                                             from warehouse.fact_sales f)))::timestamp,
                interval '1 day') d)
        into v_days;
    end if;
    select min(d), max(d) into v_first_day, v_last_day from unnest(v_days) d;

    return query
    with days as (
        select distinct d as day from unnest(v_days) d where d is not null
    ),
    production_days as (
        -- bounded by the first and last day (the transaction_ts index for recent days),
        -- then matched to the days by their UTC date
        select d.day,
               sum(i.line_amount) as revenue,
               sum(i.quantity)::bigint as units,
               count(*) as items,
               count(distinct t.transaction_id) as orders
        from production.transactions t
        join days d on d.day = warehouse.utc_date(t.transaction_ts)
        join production.transaction_items i on i.transaction_id = t.transaction_id
        where t.transaction_ts >= warehouse.day_start(v_first_day)
          and t.transaction_ts < warehouse.day_start(v_last_day + 1)
          and t.status_code in (
              select s.status_code from production.transaction_statuses s where s.is_sale)
        group by d.day
    ),
    fact_days as (
        -- through the calendar, like the aggregate refresh (hash join for years, the
        -- date_key index for a few days)
        select dd.full_date as day,
               sum(f.line_amount) as revenue,
               sum(f.quantity)::bigint as units,
               count(*) as items,
               count(distinct f.transaction_id) as orders
        from warehouse.dim_date dd
        join warehouse.fact_sales f on f.date_key = dd.date_key
        where dd.full_date = any(v_days)
          and f.status_code in (
              select s.status_code from production.transaction_statuses s where s.is_sale)
        group by dd.full_date
    ),
    compared as (
        select
            d.day,
            coalesce(p.revenue, 0) as production_revenue,
            coalesce(f.revenue, 0) as fact_revenue,
            coalesce(a.revenue, 0) as aggregate_revenue,
            coalesce(p.units, 0) as production_units,
            coalesce(f.units, 0) as fact_units,
            coalesce(a.units, 0) as aggregate_units,
            coalesce(p.items, 0) as production_items,
            coalesce(f.items, 0) as fact_items,
            coalesce(p.orders, 0) as production_orders,
            coalesce(f.orders, 0) as fact_orders,
            coalesce(a.orders, 0) as aggregate_orders
        from days d
        left join production_days p on p.day = d.day
        left join fact_days f on f.day = d.day
        left join warehouse.agg_daily_sales a on a.sales_date = d.day
    )
    select
        c.day, c.production_revenue, c.fact_revenue, c.aggregate_revenue,
        c.production_units, c.fact_units, c.aggregate_units,
        c.production_items, c.fact_items,
        c.production_orders, c.fact_orders, c.aggregate_orders,
        c.production_revenue = c.fact_revenue and c.fact_revenue = c.aggregate_revenue
            and c.production_units = c.fact_units and c.fact_units = c.aggregate_units
            and c.production_items = c.fact_items
            and c.production_orders = c.fact_orders and c.fact_orders = c.aggregate_orders
    from compared c
    order by c.day;
end;
$$;

create or replace procedure warehouse.check_reconciliation(p_batch_id bigint)
language plpgsql
set search_path = warehouse, pg_catalog
as $$
declare
    v_days     date[];
    v_checked  bigint;
    v_failed   bigint;
    v_details  text;
begin
    if not exists (select 1 from etl.batch b where b.batch_id = p_batch_id) then
        raise exception 'check_reconciliation: batch % does not exist', p_batch_id;
    end if;

    v_days := array(
        select q.day from warehouse.agg_refresh_queue q
        where q.batch_id = p_batch_id and q.grain = 'day');

    select count(*),
           count(*) filter (where not r.balanced),
           string_agg(
               format('%s: revenue production %s fact %s aggregate %s, units production %s '
                      'fact %s aggregate %s, items production %s fact %s, orders production '
                      '%s fact %s aggregate %s',
                      r.sales_date, r.production_revenue, r.fact_revenue,
                      r.aggregate_revenue, r.production_units, r.fact_units,
                      r.aggregate_units, r.production_items, r.fact_items,
                      r.production_orders, r.fact_orders, r.aggregate_orders),
               '; ' order by r.sales_date) filter (where not r.balanced)
    into v_checked, v_failed, v_details
    from warehouse.sales_reconciliation(v_days) r;

    if v_failed > 0 then
        raise exception 'check_reconciliation batch %: % of % day(s) differ between '
                        'production, fact_sales and agg_daily_sales: %',
            p_batch_id, v_failed, v_checked, v_details
            using hint = 'Find the cause (select * from warehouse.v_reconciliation), then '
                         'reload the batch''s steps or call warehouse.refresh_aggregates '
                         'for the days named.';
    end if;

    raise notice 'check_reconciliation batch %: % day(s) balanced', p_batch_id, v_checked;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'check_reconciliation', v_checked, clock_timestamp())
    on conflict (batch_id, step) do update
        set rows = excluded.rows, completed_at = excluded.completed_at;
end;
$$;

comment on function warehouse.sales_reconciliation(date[]) is
    'Completed revenue, units, items and orders per UTC day in production, fact_sales and '
    'agg_daily_sales; all days when called without a list';
comment on procedure warehouse.check_reconciliation(bigint) is
    'Raises an exception naming the days a batch touched whose fact totals differ from '
    'production or from the aggregates';
