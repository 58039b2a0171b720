-- The aggregate refresh family (docs/data-contract.md, "Business rules and metrics").
-- Every metric counts completed transactions only: the statuses marked is_sale in
-- production.transaction_statuses, the status being each order's row of
-- warehouse.fact_order_status (the fact lines join it by transaction_id). Orders =
-- distinct such transactions with at least one fact row (an accepted item). Aggregate rows
-- exist only where there is something to count. The recompute reads "completed" through
-- warehouse.v_sale_lines (v_sale_lines.sql): "no order row with another status", an anti join with the orders of other statuses (an
-- eighth of the benchmark's) added 0.18 s to a 0.42 s scan of 3M lines, a join with every
-- completed order 0.59 s (its hash is eight times the size). Both are the same while every line's
-- order has its row, which load_fact_sales writes with the lines and the batch check
-- compares for every order it touches (a missing row of an order of another status would
-- show as a difference between production and the fact in the reconciliation).
--
-- Ordinary batches change the aggregates by deltas (agg_delta.sql): warehouse.load_fact_sales
-- records what each order it changed counted before and after, and refresh_batch_aggregates
-- adds that up, so the work follows the orders a batch changed, wherever they lie. The
-- recompute below serves the initial load, repairs and backfills.
--
-- warehouse.refresh_sales_aggregates(p_days date[], p_months date[]) returns bigint
--   First applies every pending delta but the parts the recompute covers
--   (warehouse.apply_agg_delta: a recompute must not be followed by deltas it already
--   contains, and a damaged range must be repairable). Then recomputes from fact_sales
--   agg_daily_sales for exactly p_days, and for the months (first days) of p_months
--   entirely agg_product_monthly, agg_payment_method_monthly, agg_customer_activity and the
--   active_customers of agg_customer_monthly. Orders and customers are counted from one
--   row per completed order (its keys only), the sums of the daily and payment figures are
--   taken per day and payment method from the lines; products are grouped by version key
--   first, then by product id, and the best sellers of those months are recomputed
--   (warehouse.refresh_best_sellers). Returns rows changed.
-- warehouse.refresh_new_customers(p_months date[]) returns bigint
--   new_customers of agg_customer_monthly for these months: current customer versions by
--   signup month (dim_customer_signup_idx). Returns rows changed.
-- Both merge rather than rewrite: a recomputed row is written only when its figures differ
-- (refreshed_at = when it last changed), a row with nothing left to count is deleted, so a
-- refresh of a month where little changed writes little. agg_customer_monthly rows with
-- neither new nor active customers are removed.
-- warehouse.refresh_aggregates(p_from date, p_to date)  (procedure)
--   Backfill or repair: every day from p_from to p_to, and every month overlapping the
--   range entirely (sales and signups).
-- warehouse.refresh_batch_aggregates(p_batch_id bigint)  (procedure)
--   Applies the pending deltas, recomputes what the batch's loaders queued in
--   warehouse.agg_refresh_queue for a recompute (by_delta false: the initial bulk load) and
--   is still pending, those days and their months, and its signup months; then marks the
--   batch's queue rows refreshed. One transaction. Upserts etl.batch_step (batch_id,
--   'refresh_batch_aggregates', rows written).
-- Plans are made for each call's own day list (plan_cache_mode force_custom_plan): one call
-- refreshes three days, another three years. Facts are selected through warehouse.dim_date
-- (every fact date is in it: load_dimensions and load_fact_sales ensure it), whose filter
-- the planner estimates well, so it picks a hash join for years and the date_key index
-- for a few days ("= any(array)" on the fact itself is costed as a linear search per row
-- and forces an index scan even over the whole table). work_mem is raised so a full
-- refresh aggregates in memory.
-- Safe to call twice: each refresh recomputes from the fact and writes only differences,
-- so a second refresh of the same dates writes nothing; a second refresh_batch_aggregates
-- finds nothing pending.

create or replace function warehouse.refresh_sales_aggregates(p_days date[], p_months date[])
returns bigint
language plpgsql
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
set work_mem = '256MB'
as $$
declare
    v_days      date[];
    v_months    date[];
    v_daily     bigint;
    v_products  bigint;
    v_payments  bigint;
    v_customers bigint;
    v_removed   bigint;
    v_applied   bigint;
    v_activity  bigint;
    v_activity_empty boolean;
    v_best      bigint;
begin
    v_days := array(select distinct d from unnest(p_days) d where d is not null);
    v_months := array(
        select distinct date_trunc('month', m::timestamp)::date
        from unnest(p_months) m where m is not null);
    v_applied := warehouse.apply_agg_delta(v_days, v_months);
    -- the initial load (no activity in these months yet) inserts without conflict checks
    v_activity_empty := not exists (
        select 1 from warehouse.agg_customer_activity a where a.month = any(v_months));
    if cardinality(v_days) = 0 and cardinality(v_months) = 0 then
        return v_applied;
    end if;

    -- Facts are reached through dim_date: the planner estimates the days a filter on the
    -- small calendar keeps, then joins the fact by hash (years) or through its date_key
    -- index (a few days). Orders are counted from one row per order holding its keys only,
    -- and the sums are taken per day and payment method straight from the lines: a hash of
    -- per-order numeric sums held about 1.2 kB an order (422 MB for 360,000 orders at 5M)
    -- and spilled to disk for the months of an initial load; keys alone hold 130 bytes.
    with completed_lines as not materialized (
        select d.full_date, d.month_start, f.transaction_id, f.payment_method_key,
               f.customer_key, f.quantity, f.line_amount, f.discount, f.line_margin
        from warehouse.dim_date d
        join warehouse.v_sale_lines f on f.date_key = d.date_key  -- completed lines
        where (d.full_date = any(v_days) or d.month_start = any(v_months))
    ),
    completed_orders as materialized (
        select o.full_date, o.month_start, o.transaction_id, o.payment_method_key,
               dc.customer_id
        from (
            select distinct cl.full_date, cl.month_start, cl.transaction_id,
                            cl.payment_method_key, cl.customer_key
            from completed_lines cl
        ) o
        left join warehouse.dim_customer dc on dc.customer_key = o.customer_key
    ),
    day_method_sums as materialized (
        select cl.full_date, cl.month_start, cl.payment_method_key,
               sum(cl.quantity) as units, sum(cl.line_amount) as revenue,
               sum(cl.discount) as discount, sum(cl.line_margin) as margin
        from completed_lines cl
        group by cl.full_date, cl.month_start, cl.payment_method_key
    ),
    fresh_daily as materialized (
        select s.sales_date, o.orders, s.units, s.revenue, s.discount, s.margin
        from (
            select dms.full_date as sales_date, sum(dms.units) as units,
                   sum(dms.revenue) as revenue, sum(dms.discount) as discount,
                   sum(dms.margin) as margin
            from day_method_sums dms
            where dms.full_date = any(v_days)
            group by dms.full_date
        ) s
        join (
            select co.full_date, count(*) as orders
            from completed_orders co
            where co.full_date = any(v_days)
            group by co.full_date
        ) o on o.full_date = s.sales_date
    ),
    daily_written as (
        insert into warehouse.agg_daily_sales as a (
            sales_date, orders, units, revenue, discount, margin, refreshed_at
        )
        select fd.sales_date, fd.orders, fd.units, fd.revenue, fd.discount, fd.margin, now()
        from fresh_daily fd
        on conflict (sales_date) do update
            set orders = excluded.orders, units = excluded.units,
                revenue = excluded.revenue, discount = excluded.discount,
                margin = excluded.margin, refreshed_at = excluded.refreshed_at
            where (a.orders, a.units, a.revenue, a.discount, a.margin) is distinct from
                  (excluded.orders, excluded.units, excluded.revenue, excluded.discount,
                   excluded.margin)
        returning 1
    ),
    daily_removed as (
        delete from warehouse.agg_daily_sales a
        where a.sales_date = any(v_days)
          and not exists (select 1 from fresh_daily fd where fd.sales_date = a.sales_date)
        returning 1
    ),
    fresh_payments as materialized (
        select s.month, s.payment_method_code, o.orders, s.revenue
        from (
            select dms.month_start as month,
                   coalesce(dpm.payment_method_code, 'unknown') as payment_method_code,
                   sum(dms.revenue) as revenue
            from day_method_sums dms
            join warehouse.dim_payment_method dpm
                on dpm.payment_method_key = dms.payment_method_key
            where dms.month_start = any(v_months)
            group by dms.month_start, coalesce(dpm.payment_method_code, 'unknown')
        ) s
        join (
            select co.month_start as month,
                   coalesce(dpm.payment_method_code, 'unknown') as payment_method_code,
                   count(*) as orders
            from completed_orders co
            join warehouse.dim_payment_method dpm
                on dpm.payment_method_key = co.payment_method_key
            where co.month_start = any(v_months)
            group by co.month_start, coalesce(dpm.payment_method_code, 'unknown')
        ) o on o.month = s.month and o.payment_method_code = s.payment_method_code
    ),
    payments_written as (
        insert into warehouse.agg_payment_method_monthly as a (
            month, payment_method_code, orders, revenue, refreshed_at
        )
        select fp.month, fp.payment_method_code, fp.orders, fp.revenue, now()
        from fresh_payments fp
        on conflict (month, payment_method_code) do update
            set orders = excluded.orders, revenue = excluded.revenue,
                refreshed_at = excluded.refreshed_at
            where (a.orders, a.revenue) is distinct from (excluded.orders, excluded.revenue)
        returning 1
    ),
    payments_removed as (
        delete from warehouse.agg_payment_method_monthly a
        where a.month = any(v_months)
          and not exists (select 1 from fresh_payments fp
                          where fp.month = a.month
                            and fp.payment_method_code = a.payment_method_code)
        returning 1
    ),
    fresh_activity as materialized (
        select co.month_start as month, co.customer_id, count(*) as orders
        from completed_orders co
        where co.month_start = any(v_months) and co.customer_id is not null
        group by co.month_start, co.customer_id
    ),
    activity_loaded as (
        insert into warehouse.agg_customer_activity (month, customer_id, orders)
        select fa.month, fa.customer_id, fa.orders
        from fresh_activity fa
        where v_activity_empty
        -- in key order: the primary key grows at its right edge (half the time of random
        -- order at 750,000 rows)
        order by fa.month, fa.customer_id
        returning 1
    ),
    activity_written as (
        insert into warehouse.agg_customer_activity as a (month, customer_id, orders)
        select fa.month, fa.customer_id, fa.orders
        from fresh_activity fa
        -- unchanged customer-months are left out by one anti join
        where not v_activity_empty
          and not exists (
            select 1 from warehouse.agg_customer_activity x
            where x.month = any(v_months)
              and x.month = fa.month and x.customer_id = fa.customer_id
              and x.orders = fa.orders)
        order by fa.month, fa.customer_id
        on conflict (month, customer_id) do update
            set orders = excluded.orders
            where a.orders <> excluded.orders
        returning 1
    ),
    activity_removed as (
        delete from warehouse.agg_customer_activity a
        where a.month = any(v_months)
          and not exists (select 1 from fresh_activity fa
                          where fa.month = a.month and fa.customer_id = a.customer_id)
        returning 1
    ),
    fresh_active as materialized (
        select m.month, coalesce(ac.customers, 0) as customers
        from unnest(v_months) m(month)
        left join (
            select fa.month, count(*) as customers
            from fresh_activity fa
            group by fa.month
        ) ac on ac.month = m.month
    ),
    active_written as (
        insert into warehouse.agg_customer_monthly as a (
            month, new_customers, active_customers, refreshed_at
        )
        select fa.month, 0, fa.customers, now()
        from fresh_active fa
        where fa.customers > 0
           or exists (select 1 from warehouse.agg_customer_monthly x where x.month = fa.month)
        on conflict (month) do update
            set active_customers = excluded.active_customers,
                refreshed_at = excluded.refreshed_at
            where a.active_customers <> excluded.active_customers
        returning 1
    )
    select (select count(*) from daily_written) + (select count(*) from daily_removed),
           (select count(*) from payments_written) + (select count(*) from payments_removed),
           (select count(*) from active_written),
           (select count(*) from activity_loaded) + (select count(*) from activity_written)
           + (select count(*) from activity_removed)
    into v_daily, v_payments, v_customers, v_activity;

    with product_key_months as (
        select
            d.month_start,
            f.product_key,
            count(distinct f.transaction_id) as orders,
            sum(f.quantity) as units,
            sum(f.line_amount) as revenue,
            sum(f.line_margin) as margin
        from warehouse.dim_date d
        join warehouse.v_sale_lines f on f.date_key = d.date_key  -- completed lines
        where d.month_start = any(v_months)
        group by d.month_start, f.product_key
    ),
    fresh_products as materialized (
        select
            pkm.month_start as month,
            coalesce(dp.product_id, -1) as product_id,
            -- one transaction's lines of a product share its time, so one version: orders
            -- add up over the product's versions
            sum(pkm.orders) as orders, sum(pkm.units) as units, sum(pkm.revenue) as revenue,
            sum(pkm.margin) as margin
        from product_key_months pkm
        join warehouse.dim_product dp on dp.product_key = pkm.product_key
        group by pkm.month_start, coalesce(dp.product_id, -1)
    ),
    products_written as (
        insert into warehouse.agg_product_monthly as a (
            month, product_id, orders, units, revenue, margin, refreshed_at
        )
        select fp.month, fp.product_id, fp.orders, fp.units, fp.revenue, fp.margin, now()
        from fresh_products fp
        -- thousands of product-months per month: unchanged ones are left out by one anti
        -- join, cheaper than taking each through on conflict
        where not exists (
            select 1 from warehouse.agg_product_monthly x
            where x.month = any(v_months)
              and x.month = fp.month and x.product_id = fp.product_id
              and (x.orders, x.units, x.revenue, x.margin)
                  = (fp.orders, fp.units, fp.revenue, fp.margin))
        order by fp.month, fp.product_id
        on conflict (month, product_id) do update
            set orders = excluded.orders, units = excluded.units,
                revenue = excluded.revenue, margin = excluded.margin,
                refreshed_at = excluded.refreshed_at
            where (a.orders, a.units, a.revenue, a.margin) is distinct from
                  (excluded.orders, excluded.units, excluded.revenue, excluded.margin)
        returning 1
    ),
    products_removed as (
        delete from warehouse.agg_product_monthly a
        where a.month = any(v_months)
          and not exists (select 1 from fresh_products fp
                          where fp.month = a.month and fp.product_id = a.product_id)
        returning 1
    )
    select (select count(*) from products_written) + (select count(*) from products_removed)
    into v_products;
    -- every recomputed month, changed or not: a repair also mends the best sellers
    v_best := warehouse.refresh_best_sellers(v_months);

    delete from warehouse.agg_customer_monthly a
    where a.month = any(v_months) and a.new_customers = 0 and a.active_customers = 0;
    get diagnostics v_removed = row_count;

    raise notice 'refresh_sales_aggregates: % day(s), % month(s) recomputed; rows changed: '
                 'agg_daily_sales %, agg_product_monthly %, agg_payment_method_monthly %, '
                 'agg_customer_activity %, agg_customer_monthly % (% emptied row(s) removed), '
                 'agg_category_best_sellers %',
        cardinality(v_days), cardinality(v_months), v_daily, v_products, v_payments,
        v_activity, v_customers, v_removed, v_best;
    return v_applied + v_daily + v_products + v_payments + v_activity + v_customers
           + v_removed + v_best;
end;
$$;

create or replace function warehouse.refresh_new_customers(p_months date[])
returns bigint
language plpgsql
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
as $$
declare
    v_months  date[];
    v_written bigint;
    v_removed bigint;
begin
    v_months := array(
        select distinct date_trunc('month', m::timestamp)::date
        from unnest(p_months) m where m is not null);
    if cardinality(v_months) = 0 then
        return 0;
    end if;

    with months as (
        select m as month, (m + interval '1 month')::date as next_month
        from unnest(v_months) m
    ),
    new_customers as (
        select m.month, count(c.customer_key) as customers
        from months m
        left join warehouse.dim_customer c
            on c.is_current
           and c.signup_date >= m.month and c.signup_date < m.next_month
        group by m.month
    )
    insert into warehouse.agg_customer_monthly as a (
        month, new_customers, active_customers, refreshed_at
    )
    select nc.month, nc.customers, 0, now()
    from new_customers nc
    where nc.customers > 0
       or exists (select 1 from warehouse.agg_customer_monthly x where x.month = nc.month)
    on conflict (month) do update
        set new_customers = excluded.new_customers, refreshed_at = excluded.refreshed_at
        where a.new_customers <> excluded.new_customers;
    get diagnostics v_written = row_count;

    delete from warehouse.agg_customer_monthly a
    where a.month = any(v_months) and a.new_customers = 0 and a.active_customers = 0;
    get diagnostics v_removed = row_count;

    raise notice 'refresh_new_customers: % month(s), agg_customer_monthly % row(s) written, % '
                 'emptied row(s) removed', cardinality(v_months), v_written, v_removed;
    return v_written;
end;
$$;

create or replace procedure warehouse.refresh_aggregates(p_from date, p_to date)
language plpgsql
set warehouse.writer = 'refresh_aggregates'
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

    v_rows := warehouse.refresh_sales_aggregates(v_days, v_months)
              + warehouse.refresh_new_customers(v_months);

    raise notice 'refresh_aggregates % .. %: % day(s), % month(s), % aggregate row(s) changed',
        p_from, p_to, cardinality(v_days), cardinality(v_months), v_rows;
end;
$$;

create or replace procedure warehouse.refresh_batch_aggregates(p_batch_id bigint)
language plpgsql
set warehouse.writer = 'refresh_batch_aggregates'
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
          and not q.by_delta
        order by q.day);
    v_signup_months := array(
        select q.day from warehouse.agg_refresh_queue q
        where q.batch_id = p_batch_id and q.grain = 'signup_month' and q.refreshed_at is null
        order by q.day);
    v_sales_months := array(
        select distinct date_trunc('month', d::timestamp)::date from unnest(v_days) d);

    v_rows := warehouse.refresh_sales_aggregates(v_days, v_sales_months)
              + warehouse.refresh_new_customers(v_signup_months);

    update warehouse.agg_refresh_queue q
    set refreshed_at = now()
    where q.batch_id = p_batch_id and q.refreshed_at is null;
    get diagnostics v_marked = row_count;

    raise notice 'refresh_batch_aggregates batch %: deltas applied, % day(s) and % sales '
                 'month(s) recomputed, % signup month(s) refreshed, % aggregate row(s) '
                 'changed, % queue row(s) cleared',
        p_batch_id, cardinality(v_days), cardinality(v_sales_months),
        cardinality(v_signup_months), v_rows, v_marked;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'refresh_batch_aggregates', v_rows, clock_timestamp())
    on conflict (batch_id, step) do update
        set rows = excluded.rows, completed_at = excluded.completed_at;
end;
$$;

comment on function warehouse.refresh_sales_aggregates(date[], date[]) is
    'Recomputes the daily aggregate for given days and the monthly sales aggregates for '
    'given months from fact_sales';
comment on function warehouse.refresh_new_customers(date[]) is
    'Recomputes new customers of the given signup months';
comment on procedure warehouse.refresh_aggregates(date, date) is
    'Recomputes every aggregate for the days of a range and the months overlapping it';
comment on procedure warehouse.refresh_batch_aggregates(bigint) is
    'Refreshes the days and months a batch touched (as queued by the loaders)';
