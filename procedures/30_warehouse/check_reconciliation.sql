-- Reconciliation of the warehouse with production (DESIGN.md: the pipeline fails a run when
-- they differ). A small family: what one day, one batch and the whole history must satisfy.
--
-- warehouse.sales_reconciliation(p_days date[] default null) returns table
--   For each UTC day of p_days (every day from the first to the last transaction in
--   production or the fact when null): completed revenue, units and item count computed
--   independently from production (transactions joined to items) and from fact_sales, and
--   revenue, units and orders of agg_daily_sales; balanced is true when they all agree.
--   Reads only the given days (production through the transaction_ts index between the
--   first and last day, the fact through dim_date and its date_key index), so it costs what
--   the days hold. A fact date missing from dim_date counts as a difference (dim_date must
--   cover the fact).
-- warehouse.unbalanced_days(p_days date[], p_limit integer default null)
--   returns (days_checked, days_unbalanced, details): sales_reconciliation of the days
--   (all when null) summed up, details naming each unbalanced day (the first p_limit) and
--   its figures.
-- warehouse.batch_line_differences(p_batch_id bigint) returns table
--   What differs, among the orders a batch changed, between production and the warehouse:
--   order lines (warehouse.v_sales_lines, what the fact must hold, against fact_sales:
--   missing from the fact, in the fact but not in production, or with any key or measure
--   different) and order statuses (production.transactions against
--   warehouse.fact_order_status: missing or different; item_id null). The orders a batch
--   changed: those of its new and changed items and transactions, and those whose lines,
--   from the day the batch's new version of a customer or product starts, point at any
--   version of it (the re-pointed lines, and any line left on the version before).
--   Every such order's status row is compared. Lines are compared one by one for the
--   orders of the batch's items, of the versioned customers and products, and for those of
--   its transactions whose fact lines the batch wrote, or that disagree with the
--   transaction on an order's keys (time, customer version, payment method), hold an
--   unknown product or have no line: a transaction whose lines agree and that the batch
--   did not write kept lines that were compared when their own batch wrote them (and
--   anything written outside the pipeline since is in etl.unverified_write), so a status
--   feed is checked by its order rows and one read of its lines' keys. Reads those orders
--   through the transaction_id indexes, the versioned customers' and products' lines
--   through the fact's customer_key and (product_key, date_key) indexes: the work follows
--   the batch.
-- warehouse.check_reconciliation(p_batch_id bigint)  (procedure)
--   The check of one batch. Every fact line of a day the batch touched was either written
--   for this batch (its orders: compared line by line, batch_line_differences) or balanced
--   when the batch that last wrote it was checked and not written since: writes outside the
--   pipeline's procedures are logged by statement triggers (etl.unverified_write,
--   procedures/00_common/unverified_write.sql). While that log holds rows, and for a batch
--   that loaded an empty fact (the initial load: its days are queued for a recompute, not
--   by delta), the check reads every day the batch touched (warehouse.agg_refresh_queue,
--   grain day) in full instead, production against the fact and agg_daily_sales
--   (sales_reconciliation). Raises an
--   exception naming every day that differs, and the lines or figures. Writes nothing but
--   its etl.batch_step row (batch_id, 'check_reconciliation', lines or days compared).
--   Safe to call twice: it only reads.
-- warehouse.check_full_reconciliation()  (procedure)
--   Every day of the history (sales_reconciliation without a day list), for DBAs and the
--   weekly run of the schedule service (`python -m runner reconcile`). Raises naming the
--   first 20 days that differ; when balanced, records the check in etl.full_reconciliation
--   and clears the etl.unverified_write rows its snapshot covered (written by transactions
--   committed before it began), so batch checks go back to reading orders only.
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
-- each side's lines joined and sorted by two parallel workers and merged in day order: the
-- default cost of passing a row from a worker (0.1) priced the 2.5M lines of a 1M-order
-- history above a serial plan, which took 4.1-4.6 s against 3.2-3.3 s (docs/performance.md)
set parallel_tuple_cost = 0.01
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
        -- completed as the aggregates count it (v_sale_lines.sql)
        join warehouse.v_sale_lines f on f.date_key = dd.date_key
        where dd.full_date = any(v_days)
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

create or replace function warehouse.unbalanced_days(
    p_days date[], p_limit integer default null,
    out days_checked bigint, out days_unbalanced bigint, out details text)
language sql
stable
set search_path = warehouse, pg_catalog
begin atomic
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
               '; ' order by r.sales_date)
               filter (where not r.balanced and (p_limit is null or r.position <= p_limit))
    from (select s.*,
                 row_number() over (partition by s.balanced order by s.sales_date) as position
          from warehouse.sales_reconciliation(p_days) s) r;
end;

create or replace function warehouse.batch_line_differences(p_batch_id bigint)
returns table (sales_date date, item_id bigint, transaction_id bigint, difference text)
language plpgsql
stable
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
-- the orders' items arrive sorted by transaction_id, and a merge join with
-- production.transactions then reads that table's whole primary key (3 of 4 s for 130,000
-- orders of 2.5M); a few orders take index probes, many a hash join
set enable_mergejoin = off
-- a status feed's fact lines (393,000 at 2.5M orders, estimated at 1.8 million) are hashed
-- in memory: with the server's 64MB that hash spilled to disk
set work_mem = '256MB'
as $$
declare
    v_orders       bigint[];
    v_batch        production.transactions[];
    v_batch_orders bigint[];
begin
    -- the batch's transactions read once, whole, into an array whose size the planner then
    -- knows (the log's semi join is estimated at a twentieth of a status feed)
    v_batch := production.batch_transaction_rows(p_batch_id);
    v_batch_orders := array(select t.transaction_id from unnest(v_batch) t);
    v_orders := array(
        with versioned_customers as (
            select v.customer_id, min(v.valid_from) as since
            from warehouse.dim_customer v
            where v.source_batch_id = p_batch_id and v.valid_from > '-infinity'
            group by v.customer_id
        ),
        versioned_products as (
            select v.product_id, min(v.valid_from) as since
            from warehouse.dim_product v
            where v.source_batch_id = p_batch_id and v.valid_from > '-infinity'
            group by v.product_id
        ),
        batch_orders as (
            -- the batch's transactions with the order keys their lines must hold
            select t.transaction_id, t.transaction_ts,
                   coalesce(dc.customer_key, -1) as customer_key,
                   coalesce(dpm.payment_method_key, -1) as payment_method_key
            from unnest(v_batch) t
            left join warehouse.dim_customer dc
                on dc.customer_id = t.customer_id
               and dc.valid_from <= t.transaction_ts and t.transaction_ts < dc.valid_to
            left join warehouse.dim_payment_method dpm
                on dpm.payment_method_code = t.payment_method_code
        ),
        order_keys as materialized (
            -- their fact lines' keys, one row per order; computed once (as a subquery the
            -- planner hashed it in each parallel worker: three index scans of a feed's
            -- lines, 5.8 s against 3.9 s for the whole query at 5M orders)
            select f.transaction_id,
                   min(f.transaction_ts) as first_ts, max(f.transaction_ts) as last_ts,
                   min(f.customer_key) as first_customer, max(f.customer_key) as last_customer,
                   min(f.payment_method_key) as first_method,
                   max(f.payment_method_key) as last_method,
                   bool_or(f.source_batch_id = p_batch_id or f.product_key = -1) as rewritten
            from warehouse.fact_sales f
            where f.transaction_id = any (v_batch_orders)
            group by f.transaction_id
        )
        select i.transaction_id
        from production.transaction_items i
        where i.source_batch_id = p_batch_id
        union
        select bo.transaction_id
        from batch_orders bo
        left join order_keys k on k.transaction_id = bo.transaction_id
        where k.transaction_id is null
           or k.rewritten
           or (bo.transaction_ts, bo.customer_key, bo.payment_method_key)
              <> (k.first_ts, k.first_customer, k.first_method)
           or (bo.transaction_ts, bo.customer_key, bo.payment_method_key)
              <> (k.last_ts, k.last_customer, k.last_method)
        union
        -- customers and products alike: one rule, each dimension through its own fact index
        select f.transaction_id
        from versioned_customers vc
        join warehouse.dim_customer dc on dc.customer_id = vc.customer_id
        join warehouse.fact_sales f
            on f.customer_key = dc.customer_key
           and f.date_key >= warehouse.date_key(warehouse.utc_date(vc.since))
        union
        select f.transaction_id
        from versioned_products vp
        join warehouse.dim_product dp on dp.product_id = vp.product_id
        join warehouse.fact_sales f
            on f.product_key = dp.product_key
           and f.date_key >= warehouse.date_key(warehouse.utc_date(vp.since)));

    return query
    with expected as (
        select l.*
        from warehouse.v_sales_lines l
        where l.transaction_id = any (v_orders)
    ),
    actual as (
        select f.*
        from warehouse.fact_sales f
        where f.transaction_id = any (v_orders)
    ),
    line_differences as (
        select coalesce(e.item_id, a.item_id) as item_id,
               coalesce(e.transaction_id, a.transaction_id) as transaction_id,
               coalesce(e.transaction_ts, a.transaction_ts) as transaction_ts,
               case when a.item_id is null then 'missing from fact_sales'
                    when e.item_id is null then 'in fact_sales, not in production'
                    else 'fact_sales differs from production'
               end as difference
        from expected e
        full join actual a on a.item_id = e.item_id
        where a.item_id is null
           or e.item_id is null
           -- the fact's 12 line columns, as load_fact_sales compares them before it writes
           -- (step 2b): there inside its join with the batch's lines, here after it, inline
           -- in both so that each stays one join
           or (a.transaction_id, a.date_key, a.customer_key, a.product_key,
               a.payment_method_key, a.transaction_ts, a.quantity,
               a.unit_price, a.discount, a.line_amount, a.line_cost, a.line_margin)
              is distinct from
              (e.transaction_id, e.date_key, e.customer_key, e.product_key,
               e.payment_method_key, e.transaction_ts, e.quantity,
               e.unit_price, e.discount, e.line_amount, e.line_cost, e.line_margin)
    ),
    status_differences as (
        -- the order rows of the batch's transactions and of the orders compared above
        select null::bigint as item_id, t.transaction_id, t.transaction_ts,
               case when os.transaction_id is null
                    then format('status %s missing from fact_order_status', t.status_code)
                    else format('status %s in fact_order_status, %s in production',
                                os.status_code, t.status_code)
               end as difference
        from (
            -- the batch's transactions as read above, the other orders from production
            select b.transaction_id, b.transaction_ts, b.status_code
            from unnest(v_batch) b
            union all
            select p.transaction_id, p.transaction_ts, p.status_code
            from production.transactions p
            where p.transaction_id = any (v_orders)
              and not (p.transaction_id = any (v_batch_orders))
        ) t
        -- one probe of the order rows' key per order (limit 1 keeps the planner from
        -- hashing every order row instead: 2.2 s at 5M, where the probes of a status feed's
        -- 244,000 orders take about 0.4 s and the read of those orders from production by
        -- an array took 1.0 s)
        left join lateral (
            select o.transaction_id, o.status_code
            from warehouse.fact_order_status o
            where o.transaction_id = t.transaction_id
            limit 1
        ) os on true
        where os.status_code is distinct from t.status_code
    )
    select warehouse.utc_date(c.transaction_ts), c.item_id, c.transaction_id, c.difference
    from (
        select ld.item_id, ld.transaction_id, ld.transaction_ts, ld.difference
        from line_differences ld
        union all
        select sd.item_id, sd.transaction_id, sd.transaction_ts, sd.difference
        from status_differences sd
    ) c
    order by 1, 3, 2 nulls first;
end;
$$;

create or replace procedure warehouse.check_reconciliation(p_batch_id bigint)
language plpgsql
set search_path = warehouse, pg_catalog
as $$
declare
    v_days     date[];
    v_by_days  boolean;
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
    -- whole days when something wrote outside the pipeline, or when this batch loaded an
    -- empty fact (its days queued for a recompute: every line is the batch's, and a pass
    -- over the days costs less than probing each order)
    v_by_days := exists (select 1 from etl.unverified_write)
                 or exists (select 1 from warehouse.agg_refresh_queue q
                            where q.batch_id = p_batch_id and q.grain = 'day'
                              and not q.by_delta);

    if v_by_days then
        -- something wrote the sales tables outside the pipeline: read the batch's days whole
        select u.days_checked, u.days_unbalanced, u.details
        into v_checked, v_failed, v_details
        from warehouse.unbalanced_days(v_days) u;

        if v_failed > 0 then
            raise exception 'check_reconciliation batch %: % of % day(s) differ between '
                            'production, fact_sales and agg_daily_sales: %',
                p_batch_id, v_failed, v_checked, v_details
                using hint = 'Find the cause (select * from warehouse.v_reconciliation), '
                             'then reload the batch''s steps or call '
                             'warehouse.refresh_aggregates for the days named.';
        end if;
        raise notice 'check_reconciliation batch %: % day(s) balanced, read whole (% '
                     'write(s) outside the pipeline listed in etl.unverified_write, or a '
                     'fact loaded whole)',
            p_batch_id, v_checked, (select count(*) from etl.unverified_write);
    else
        with differences as (
            select d.sales_date, count(*) as lines,
                   string_agg(case when d.item_id is null
                                   then format('order %s: %s', d.transaction_id, d.difference)
                                   else format('item %s of order %s: %s', d.item_id,
                                               d.transaction_id, d.difference)
                              end, ', '
                              order by d.transaction_id, d.item_id nulls first) as lines_text
            from warehouse.batch_line_differences(p_batch_id) d
            group by d.sales_date
        )
        select count(*), sum(df.lines),
               string_agg(format('%s: %s', df.sales_date, df.lines_text), '; '
                          order by df.sales_date)
        into v_failed, v_checked, v_details
        from differences df;

        if v_failed > 0 then
            raise exception 'check_reconciliation batch %: % line(s) or order status(es) on '
                            '% day(s) differ between production and fact_sales or '
                            'fact_order_status: %',
                p_batch_id, v_checked, v_failed, left(v_details, 4000)
                using hint = 'Reload the batch''s fact (call warehouse.load_fact_sales), or '
                             'find the cause with call warehouse.check_full_reconciliation().';
        end if;
        v_checked := cardinality(v_days);
        raise notice 'check_reconciliation batch %: the batch''s orders on % day(s) match '
                     'production line by line', p_batch_id, v_checked;
    end if;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'check_reconciliation', v_checked, clock_timestamp())
    on conflict (batch_id, step) do update
        set rows = excluded.rows, completed_at = excluded.completed_at;
end;
$$;

create or replace procedure warehouse.check_full_reconciliation()
language plpgsql
set search_path = warehouse, pg_catalog
as $$
declare
    v_started  timestamptz := clock_timestamp();
    v_snapshot pg_snapshot := pg_current_snapshot();
    v_checked  bigint;
    v_failed   bigint;
    v_details  text;
    v_cleared  bigint;
begin
    -- the snapshot is taken before the days are read: a write it sees, the read sees too
    select u.days_checked, u.days_unbalanced, u.details
    into v_checked, v_failed, v_details
    from warehouse.unbalanced_days(null, 20) u;

    if v_failed > 0 then
        raise exception 'check_full_reconciliation: % of % day(s) differ between production, '
                        'fact_sales and agg_daily_sales (the first 20: %)',
            v_failed, v_checked, v_details
            using hint = 'select * from warehouse.v_reconciliation lists them all; reload the '
                         'batches concerned or call warehouse.refresh_aggregates for the days.';
    end if;

    delete from etl.unverified_write w
    where pg_visible_in_snapshot(w.xact_id, v_snapshot);
    get diagnostics v_cleared = row_count;

    insert into etl.full_reconciliation (started_at, days_checked, writes_cleared)
    values (v_started, v_checked, v_cleared);
    raise notice 'check_full_reconciliation: % day(s) balanced, % unverified write(s) cleared',
        v_checked, v_cleared;
end;
$$;

comment on function warehouse.sales_reconciliation(date[]) is
    'Completed revenue, units, items and orders per UTC day in production, fact_sales and '
    'agg_daily_sales; all days when called without a list';
comment on function warehouse.unbalanced_days(date[], integer) is
    'Days compared, days unbalanced and the unbalanced days'' figures (sales_reconciliation)';
comment on function warehouse.batch_line_differences(bigint) is
    'Order lines and order statuses of the orders a batch changed that differ between '
    'production and fact_sales or fact_order_status';
comment on procedure warehouse.check_reconciliation(bigint) is
    'Raises an exception naming the lines of a batch''s orders that differ from production '
    '(or, after writes outside the pipeline, the days it touched whose totals differ)';
comment on procedure warehouse.check_full_reconciliation() is
    'Raises an exception naming the days of the history whose totals differ between '
    'production, fact_sales and agg_daily_sales; clears etl.unverified_write when balanced';
