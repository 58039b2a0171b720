-- warehouse.load_fact_sales(p_batch_id bigint)
--
-- Contract (docs/data-contract.md, "Business rules and metrics", "Warehouse"):
--   Inputs: production.transaction_items and production.transactions rows whose
--   source_batch_id is the batch (new and changed items; transactions whose status, time,
--   customer or payment method changed, with all their items), the dimension versions
--   the batch added (warehouse.load_dimensions runs first).
--   Writes warehouse.fact_sales, one row per accepted item, every status, and
--   warehouse.fact_order_status, one row per accepted transaction holding its status (the
--   status attribute of its lines, stored once per order: a status feed writes these
--   narrow rows, not the lines):
--   - keys of the dimension versions valid at the transaction time
--     (valid_from <= transaction_ts < valid_to), -1 when none is found, never null;
--     date_key = yyyymmdd of the UTC date of transaction_ts;
--   - line_amount = quantity * unit_price - discount; line_cost = quantity * cost of the
--     product version valid at transaction time; line_margin = line_amount - line_cost.
--   Steps:
--   1. Re-pointing: for every customer or product version the batch added after a first
--      version, fact rows of the version before it with transaction_ts in the new
--      version's validity move to the new key (cost and margin follow).
--   2a. Status changes: the batch's transactions whose order row holds another status and
--      whose fact lines all agree with them (same time, payment method, customer version
--      valid at that time, a known product; none of their items in the batch) get their
--      fact_order_status row written, no line: the lines are read once, for the
--      qualification and for the aggregate deltas of the orders whose sale-ness changes.
--      Status feeds (pending to completed, refunds) are mostly this, spread over the whole
--      history.
--   2b. The batch's other lines (warehouse.batch_sales_lines: its items, and all items of
--      its other transactions) are compared with the fact; only rows that differ are
--      inserted or updated; the order rows of its other transactions and of those lines'
--      orders are written where their status differs from production (or is missing).
--      Into an empty fact (the initial load) the rows are bulk-loaded instead: indexes and
--      primary key dropped, the table truncated, rows inserted, indexes and key rebuilt
--      from their catalog definitions, the table analyzed (only when this role owns the
--      table; otherwise the incremental path does the same work, slower); the order rows
--      too when fact_order_status is empty (otherwise they are upserted).
--   Aggregates (agg_delta.sql): each statement that changes fact rows or order statuses
--   also writes into warehouse.agg_delta the completed lines of every order it touches, as
--   they were (sign -1, read through the transaction_id index in the statement's snapshot,
--   with the order's status then) and as they are after it (sign +1: the rows it returns,
--   and the orders' other lines, with the order's new status), per order and product,
--   numbered by the statement (change_id). refresh_batch_aggregates adds them up.
--   Into an empty fact (the bulk path, or a fact truncated to be rebuilt by a role that
--   does not own it) nothing is recorded: every day from the first to the last of the fact
--   and of the aggregates is queued for a recompute instead (by_delta false).
--   Every written row queues its old and new UTC day in warehouse.agg_refresh_queue
--   (by_delta true on the incremental path), for check_reconciliation and, on the bulk
--   path, the recompute; warehouse.dim_date is extended to cover them. Upserts
--   etl.batch_step (batch_id, 'load_fact_sales', rows written).
--   Work follows the batch: production and dimensions are read through their
--   source_batch_id indexes (transactions through production.batch_transactions), the
--   fact through item_id and transaction_id, order rows through transaction_id, facts to
--   re-point through date_key from the earliest new version's start.
-- Safe to call twice: after the first call no fact row points at a closed version inside
-- the new version's validity, every recomputed row equals the fact and every order row
-- holds production's status, so the second call writes, records and queues nothing.
create or replace procedure warehouse.load_fact_sales(p_batch_id bigint)
language plpgsql
set warehouse.writer = 'load_fact_sales'
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
-- a status feed changes hundreds of thousands of lines: its lines, as they were and as
-- they are, stay in memory
set work_mem = '512MB'
-- lines in production's order, so in date order (procedures/00_common/bulk_load.sql)
set synchronize_seqscans = off
as $$
declare
    v_customer_repointed bigint := 0;
    v_product_repointed  bigint := 0;
    v_customer_since     timestamptz;
    v_product_since      timestamptz;
    v_inserted           bigint;
    v_updated            bigint;
    v_empty              boolean;
    v_bulk               boolean;
    v_index_ddl          text[];
    v_first_day          date;
    v_last_day           date;
    v_change_id          bigint;
    v_repoint_deltas     bigint := 0;
    v_line_deltas        bigint := 0;
    v_status_updated     bigint := 0;
    v_status_deltas      bigint := 0;
    v_full_orders        bigint[];
    v_orders_empty       boolean;
    v_bulk_tables        regclass[];
    v_orders_written     bigint := 0;
    v_batch_orders       production.transactions[];
    -- the statuses that count as sales (completed), read once
    v_sale_statuses      text[] := array(select s.status_code
                                         from production.transaction_statuses s
                                         where s.is_sale);
begin
    if not exists (select 1 from etl.batch b where b.batch_id = p_batch_id) then
        raise exception 'load_fact_sales: batch % does not exist', p_batch_id;
    end if;
    -- bulk path: an empty fact that this role may re-index (it owns the table)
    v_empty := not exists (select 1 from warehouse.fact_sales);
    v_bulk := v_empty
              and (select pg_has_role(c.relowner, 'USAGE') from pg_class c
                   where c.oid = 'warehouse.fact_sales'::regclass);

    -- 1. re-point facts to the customer and product versions the batch added after an
    --    earlier version: the fact rows of the previous version inside the new version's
    --    validity, read through the date_key index from the earliest new start on (recent
    --    for a usual change; as far back as a back-dated change reaches). A product's cost,
    --    so line cost and margin, follow. One statement for both, so an order whose lines
    --    move to a new customer and a new product version is recorded once before and once
    --    after (warehouse.record_fact_change).
    select min(v.valid_from) into v_customer_since
    from warehouse.dim_customer v
    where v.source_batch_id = p_batch_id and v.valid_from > '-infinity';
    select min(v.valid_from) into v_product_since
    from warehouse.dim_product v
    where v.source_batch_id = p_batch_id and v.valid_from > '-infinity';
    if v_customer_since is not null or v_product_since is not null then
        v_change_id := nextval('warehouse.fact_change_seq');
        with new_customer_versions as (
            select v.customer_key, v.valid_from, v.valid_to, prev.customer_key as previous_key
            from warehouse.dim_customer v
            join warehouse.dim_customer prev
                on prev.customer_id = v.customer_id and prev.valid_to = v.valid_from
            where v.source_batch_id = p_batch_id
        ),
        customer_targets as (
            select f.item_id, f.transaction_id, nv.customer_key
            from warehouse.fact_sales f
            join new_customer_versions nv on f.customer_key = nv.previous_key
            where f.date_key >= warehouse.date_key(warehouse.utc_date(v_customer_since))
              and f.transaction_ts >= nv.valid_from and f.transaction_ts < nv.valid_to
        ),
        new_product_versions as (
            select v.product_key, v.cost, v.valid_from, v.valid_to,
                   prev.product_key as previous_key
            from warehouse.dim_product v
            join warehouse.dim_product prev
                on prev.product_id = v.product_id and prev.valid_to = v.valid_from
            where v.source_batch_id = p_batch_id
        ),
        product_targets as (
            select f.item_id, f.transaction_id, nv.product_key, nv.cost
            from warehouse.fact_sales f
            join new_product_versions nv on f.product_key = nv.previous_key
            where f.date_key >= warehouse.date_key(warehouse.utc_date(v_product_since))
              and f.transaction_ts >= nv.valid_from and f.transaction_ts < nv.valid_to
        ),
        targets as materialized (
            select coalesce(ct.item_id, pt.item_id) as item_id,
                   coalesce(ct.transaction_id, pt.transaction_id) as transaction_id,
                   ct.customer_key, pt.product_key, pt.cost
            from customer_targets ct
            full join product_targets pt on pt.item_id = ct.item_id
        ),
        old_lines as materialized (
            -- every line of the completed orders it touches as it is before the statement
            -- (re-pointing changes no status: the other orders count neither before nor
            -- after)
            select f as line
            from warehouse.fact_sales f
            where f.transaction_id = any (array(
                select os.transaction_id
                from warehouse.fact_order_status os
                where os.transaction_id in (select t.transaction_id from targets t)
                  and os.status_code = any (v_sale_statuses)))
        ),
        repointed as (
            update warehouse.fact_sales f
            set customer_key = coalesce(t.customer_key, f.customer_key),
                product_key = coalesce(t.product_key, f.product_key),
                line_cost = coalesce(f.quantity * t.cost, f.line_cost),
                line_margin = coalesce(f.line_amount - f.quantity * t.cost, f.line_margin),
                source_batch_id = p_batch_id,
                updated_at = now()
            from targets t
            where f.item_id = t.item_id
            returning f as line, t.customer_key is not null as to_customer,
                      t.product_key is not null as to_product
        ),
        new_lines as (
            -- ... and after: the re-pointed lines of those orders as written, the others as
            -- they were
            select r.line
            from repointed r
            join warehouse.fact_order_status os on os.transaction_id = (r.line).transaction_id
            where os.status_code = any (v_sale_statuses)
            union all
            select ol.line from old_lines ol
            where not exists (select 1 from targets t where t.item_id = (ol.line).item_id)
        ),
        queued as (
            insert into warehouse.agg_refresh_queue as q (batch_id, grain, day, by_delta)
            select distinct p_batch_id, 'day', warehouse.utc_date((r.line).transaction_ts), true
            from repointed r
            on conflict (batch_id, grain, day) do update
                set refreshed_at = null, queued_at = now(),
                    by_delta = (q.refreshed_at is not null or q.by_delta)
        )
        select count(*) filter (where r.to_customer), count(*) filter (where r.to_product),
               warehouse.record_fact_change(p_batch_id, v_change_id,
                                            array(select ol.line from old_lines ol),
                                            array(select nl.line from new_lines nl))
        into v_customer_repointed, v_product_repointed, v_repoint_deltas
        from repointed r;
    end if;

    -- 2. the batch's new and changed items, every item of its changed transactions, and
    --    their order rows
    if v_bulk then
        -- initial load into an empty fact: truncate (a new file: with wal_level minimal
        -- the rows skip the WAL), drop its indexes and key, insert, rebuild them, analyze
        -- (etl.begin_bulk_load / end_bulk_load, as production's initial load). Same rows
        -- as the incremental path, without maintaining three indexes row by row. The order
        -- rows the same way when fact_order_status is empty too (the usual initial load).
        v_orders_empty := not exists (select 1 from warehouse.fact_order_status);
        v_bulk_tables := array['warehouse.fact_sales'::regclass]
                         || case when v_orders_empty
                                 then array['warehouse.fact_order_status'::regclass]
                                 else '{}'::regclass[] end;
        v_index_ddl := etl.begin_bulk_load(v_bulk_tables);

        insert into warehouse.fact_sales (
            item_id, transaction_id, date_key, customer_key, product_key,
            payment_method_key, transaction_ts, quantity, unit_price, discount,
            line_amount, line_cost, line_margin, source_batch_id, updated_at
        )
        select
            bl.item_id, bl.transaction_id, bl.date_key, bl.customer_key, bl.product_key,
            bl.payment_method_key, bl.transaction_ts, bl.quantity,
            bl.unit_price, bl.discount, bl.line_amount, bl.line_cost, bl.line_margin,
            p_batch_id, now()
        from warehouse.batch_sales_lines(p_batch_id) bl;
        get diagnostics v_inserted = row_count;

        if v_orders_empty then
            -- the batch's transactions read whole, by their source_batch_id: the rows
            -- production.batch_transactions finds through the batch's log of writes, which
            -- right after an initial merge may not be analyzed yet (a plan for a few rows
            -- then probes the transactions a million times)
            insert into warehouse.fact_order_status (
                transaction_id, status_code, source_batch_id, updated_at
            )
            select t.transaction_id, t.status_code, p_batch_id, now()
            from production.transactions t
            where t.source_batch_id = p_batch_id;
            get diagnostics v_orders_written = row_count;
        end if;

        call etl.end_bulk_load(v_bulk_tables, v_index_ddl);
        v_updated := 0;

        if not v_orders_empty then
            -- order rows already there (a fact emptied by hand, or earlier batches without
            -- items): the batch's transactions upserted, the 2b statement's write
            insert into warehouse.fact_order_status as os (
                transaction_id, status_code, source_batch_id, updated_at
            )
            select t.transaction_id, t.status_code, p_batch_id, now()
            from production.batch_transactions(p_batch_id) t
            on conflict (transaction_id) do update
                set status_code = excluded.status_code,
                    source_batch_id = excluded.source_batch_id,
                    updated_at = excluded.updated_at
                where os.status_code <> excluded.status_code;
            get diagnostics v_orders_written = row_count;
        end if;
    else
        -- 2a. status changes: the batch's transactions already in the fact whose order row
        --     holds another status and whose lines all agree with them on everything else
        --     (time, payment method, the customer version valid at that time, a known
        --     product), none of whose items the batch delivered. Their lines can only
        --     differ from production in the order's status (the items are unchanged, the
        --     dimension versions were re-pointed above), so only the order row is written.
        --     The lines are read once, through transaction_id: to qualify the order, and
        --     as the completed lines before (old status a sale) or after (new status a sale)
        --     of the orders whose sale-ness changes, for the aggregate deltas.
        v_change_id := nextval('warehouse.fact_change_seq');
        -- the batch's transactions read once, into an array whose size the planner then
        -- knows (the log's semi join is estimated at a twentieth of a status feed, which
        -- probed the customer versions once per order)
        v_batch_orders := production.batch_transaction_rows(p_batch_id);
        with batch_orders as materialized (
            select t.transaction_id, t.transaction_ts, t.status_code,
                   coalesce(dc.customer_key, -1) as customer_key,
                   coalesce(dpm.payment_method_key, -1) as payment_method_key
            from unnest(v_batch_orders) t
            left join warehouse.dim_customer dc
                on dc.customer_id = t.customer_id
               and dc.valid_from <= t.transaction_ts and t.transaction_ts < dc.valid_to
            left join warehouse.dim_payment_method dpm
                on dpm.payment_method_code = t.payment_method_code
            order by t.transaction_id
        ),
        batch_items as materialized (
            select i.item_id, i.transaction_id
            from production.transaction_items i
            where i.source_batch_id = p_batch_id
        ),
        status_lines as materialized (
            -- every line of the batch's orders whose order row holds another status (none
            -- of whose items the batch delivered: "not in" a few thousand batch items, a
            -- hashed subplan whatever the estimates of a batch's fresh source_batch_id
            -- say), with the order's statuses and whether all its lines agree with the
            -- transaction: each row carries what the statement needs, so no CTE is joined
            -- to another (their estimates are guesses: a nested loop over two of them is
            -- quadratic)
            select bo.transaction_id, s as line, bo.status_code, os.ctid as status_ctid,
                   os.status_code = any (v_sale_statuses) as was_sale,
                   bo.status_code = any (v_sale_statuses) as is_sale,
                   bool_and(s.transaction_ts = bo.transaction_ts
                            and s.customer_key = bo.customer_key
                            and s.payment_method_key = bo.payment_method_key
                            and s.product_key <> -1
                            and s.item_id not in (select bi.item_id from batch_items bi))
                       over per_order as order_agrees,
                   row_number() over per_order = 1 as first_line
            -- the orders in transaction_id order, which the joins keep: the window needs no
            -- sort of the 730,000 lines of a status feed (a CTE scan's rows have no known
            -- order; this sort of the materialized orders, already in order, is cheap)
            from (select b.* from batch_orders b order by b.transaction_id) bo
            join warehouse.fact_order_status os on os.transaction_id = bo.transaction_id
            join warehouse.fact_sales s on s.transaction_id = bo.transaction_id
            where os.status_code <> bo.status_code
              and bo.transaction_id not in (select bi.transaction_id from batch_items bi)
            window per_order as (partition by bo.transaction_id)
        ),
        statuses_written as (
            update warehouse.fact_order_status os
            set status_code = so.status_code,
                source_batch_id = p_batch_id,
                updated_at = now()
            from status_lines so
            where so.order_agrees and so.first_line
              and os.ctid = so.status_ctid  -- the row read above: no second probe
            returning os.transaction_id
        ),
        queued as (
            -- the queue upsert of steps 1 and 2b too: a CTE of each statement, fed by the
            -- rows it writes
            insert into warehouse.agg_refresh_queue as q (batch_id, grain, day, by_delta)
            select distinct p_batch_id, 'day', warehouse.utc_date((sl.line).transaction_ts),
                   true
            from status_lines sl
            where sl.order_agrees and sl.first_line  -- an order's lines share its time
            on conflict (batch_id, grain, day) do update
                set refreshed_at = null, queued_at = now(),
                    by_delta = (q.refreshed_at is not null or q.by_delta)
        )
        -- the completed lines before and after of the orders that start or stop counting,
        -- in order of record_fact_change's grouping (an order's lines share its time,
        -- customer and payment method), which then sorts them in one pass
        select (select count(*) from statuses_written),
               warehouse.record_fact_change(
                   p_batch_id, v_change_id,
                   array(select sl.line from status_lines sl
                         where sl.order_agrees and sl.was_sale and not sl.is_sale
                         order by sl.transaction_id, (sl.line).product_key),
                   array(select sl.line from status_lines sl
                         where sl.order_agrees and sl.is_sale and not sl.was_sale
                         order by sl.transaction_id, (sl.line).product_key)),
               array(select bo.transaction_id from batch_orders bo
                     except
                     select sl.transaction_id from status_lines sl
                     where sl.order_agrees and sl.first_line)
        into v_status_updated, v_status_deltas, v_full_orders;

        -- 2b. every other line of the batch (its items, all items of its other
        --     transactions) recomputed from production and the dimensions, and the order
        --     rows of those transactions and of the changed lines' orders
        v_change_id := nextval('warehouse.fact_change_seq');
        with changed_lines as materialized (
            select bl.*, f.item_id is not null as in_fact, f.transaction_ts as old_transaction_ts,
                   f.transaction_id as old_transaction_id, f.ctid as fact_ctid
            from warehouse.batch_sales_lines(p_batch_id, v_full_orders) bl
            left join warehouse.fact_sales f on f.item_id = bl.item_id
            where f.item_id is null
               -- the 12 line columns the batch check compares too (check_reconciliation.sql,
               -- batch_line_differences), inline in both so that each stays one join
               or (f.transaction_id, f.date_key, f.customer_key, f.product_key,
                   f.payment_method_key, f.transaction_ts, f.quantity,
                   f.unit_price, f.discount, f.line_amount, f.line_cost, f.line_margin)
                  is distinct from
                  (bl.transaction_id, bl.date_key, bl.customer_key, bl.product_key,
                   bl.payment_method_key, bl.transaction_ts, bl.quantity,
                   bl.unit_price, bl.discount, bl.line_amount, bl.line_cost, bl.line_margin)
        ),
        changed_orders as materialized (
            -- order rows to write: production's status where the fact's differs or is
            -- missing, for the batch's other transactions and every order the changed
            -- lines belong to, now or before (so that after the statement every order it
            -- touches holds production's status)
            select t.transaction_id, t.status_code
            from production.transactions t
            left join warehouse.fact_order_status os on os.transaction_id = t.transaction_id
            where t.transaction_id = any (array(
                      select o.transaction_id from unnest(v_full_orders) o(transaction_id)
                      union
                      select ch.transaction_id from changed_lines ch
                      union
                      select ch.old_transaction_id from changed_lines ch where ch.in_fact))
              and os.status_code is distinct from t.status_code
        ),
        order_lines as materialized (
            -- every line of the orders whose lines or status the statement changes (a
            -- moved line's old order too) as it is before the statement
            select f as line
            from warehouse.fact_sales f
            where not v_empty
              and f.transaction_id = any (array(
                  select ch.transaction_id from changed_lines ch
                  union
                  select ch.old_transaction_id from changed_lines ch where ch.in_fact
                  union
                  select co.transaction_id from changed_orders co))
        ),
        inserted as (
            insert into warehouse.fact_sales as f (
                item_id, transaction_id, date_key, customer_key, product_key,
                payment_method_key, transaction_ts, quantity, unit_price,
                discount, line_amount, line_cost, line_margin, source_batch_id, updated_at
            )
            select
                ch.item_id, ch.transaction_id, ch.date_key, ch.customer_key, ch.product_key,
                ch.payment_method_key, ch.transaction_ts, ch.quantity,
                ch.unit_price, ch.discount, ch.line_amount, ch.line_cost, ch.line_margin,
                p_batch_id, now()
            from changed_lines ch
            where not ch.in_fact
            returning f as line
        ),
        updated as (
            update warehouse.fact_sales f
            set transaction_id = ch.transaction_id,
                date_key = ch.date_key,
                customer_key = ch.customer_key,
                product_key = ch.product_key,
                payment_method_key = ch.payment_method_key,
                transaction_ts = ch.transaction_ts,
                quantity = ch.quantity,
                unit_price = ch.unit_price,
                discount = ch.discount,
                line_amount = ch.line_amount,
                line_cost = ch.line_cost,
                line_margin = ch.line_margin,
                source_batch_id = p_batch_id,
                updated_at = now()
            from changed_lines ch
            where ch.in_fact and f.ctid = ch.fact_ctid  -- the row read above: no second probe
            returning f as line
        ),
        orders_written as (
            insert into warehouse.fact_order_status as os (
                transaction_id, status_code, source_batch_id, updated_at
            )
            select co.transaction_id, co.status_code, p_batch_id, now()
            from changed_orders co
            on conflict (transaction_id) do update
                set status_code = excluded.status_code,
                    source_batch_id = excluded.source_batch_id,
                    updated_at = excluded.updated_at
            returning 1
        ),
        old_completed as (
            -- the completed lines before: of the orders whose row then held a sale status
            -- (read from the table in the statement's snapshot: CTEs are not joined to each
            -- other, their estimates are guesses)
            select ol.line
            from order_lines ol
            join warehouse.fact_order_status os on os.transaction_id = (ol.line).transaction_id
            where os.status_code = any (v_sale_statuses)
        ),
        new_completed as (
            -- ... and after: the batch's lines as written, the orders' other lines as they
            -- were (a line moved to another order counts in its new order only), of the
            -- orders whose status now is a sale: production's, which every order the
            -- statement touches holds after it (changed_orders)
            select nl.line
            from (
                select i.line from inserted i
                union all
                select u.line from updated u
                union all
                select ol.line from order_lines ol
                where not exists (select 1 from changed_lines ch
                                  where ch.item_id = (ol.line).item_id)
            ) nl
            join production.transactions t on t.transaction_id = (nl.line).transaction_id
            where t.status_code = any (v_sale_statuses)
        ),
        touched_days as (
            select warehouse.utc_date(ch.transaction_ts) as day from changed_lines ch
            union
            select warehouse.utc_date((ol.line).transaction_ts) from order_lines ol
        ),
        queued as (
            insert into warehouse.agg_refresh_queue as q (batch_id, grain, day, by_delta)
            select p_batch_id, 'day', td.day, true from touched_days td
            on conflict (batch_id, grain, day) do update
                set refreshed_at = null, queued_at = now(),
                    by_delta = (q.refreshed_at is not null or q.by_delta)
        )
        select (select count(*) from inserted), (select count(*) from updated),
               (select count(*) from orders_written),
               case when v_empty then 0
                    else warehouse.record_fact_change(
                             p_batch_id, v_change_id,
                             array(select oc.line from old_completed oc),
                             array(select nc.line from new_completed nc))
               end
        into v_inserted, v_updated, v_orders_written, v_line_deltas;
        v_orders_written := v_orders_written + v_status_updated;
        v_line_deltas := v_line_deltas + v_status_deltas;
    end if;

    -- into an empty fact (the initial load, or a fact truncated to be rebuilt): no deltas,
    -- the aggregates are recomputed instead, every day from the first to the last of the
    -- fact and of the aggregates (index probes; stale aggregate days are cleared too; a day
    -- without sales refreshes to nothing)
    if v_empty then
        select min(r.first_day), max(r.last_day)
        into v_first_day, v_last_day
        from (
            select warehouse.utc_date(min(f.transaction_ts)) as first_day,
                   warehouse.utc_date(max(f.transaction_ts)) as last_day
            from warehouse.fact_sales f
            union all
            select min(a.sales_date), max(a.sales_date) from warehouse.agg_daily_sales a
            union all
            select min(a.month), (max(a.month) + interval '1 month - 1 day')::date
            from warehouse.agg_product_monthly a
        ) r;
        insert into warehouse.agg_refresh_queue as q (batch_id, grain, day, by_delta)
        select p_batch_id, 'day', d::date, false
        from generate_series(v_first_day::timestamp, v_last_day::timestamp, interval '1 day') d
        on conflict (batch_id, grain, day) do update
            set refreshed_at = null, queued_at = now(), by_delta = false;
    end if;

    -- the aggregates reach facts through dim_date: it must hold every queued day
    perform warehouse.ensure_dim_date(min(q.day), max(q.day))
    from warehouse.agg_refresh_queue q
    where q.batch_id = p_batch_id and q.grain = 'day' and q.refreshed_at is null;

    raise notice 'load_fact_sales batch %: fact_sales % row(s) inserted, % updated, % '
                 're-pointed to a new customer version, % to a new product version; '
                 'fact_order_status % row(s) written (% status change(s) alone); % '
                 'aggregate delta row(s) recorded',
        p_batch_id, v_inserted, v_updated, v_customer_repointed, v_product_repointed,
        v_orders_written, v_status_updated, v_repoint_deltas + v_line_deltas;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'load_fact_sales',
            v_inserted + v_updated + v_customer_repointed + v_product_repointed
            + v_orders_written,
            clock_timestamp())
    on conflict (batch_id, step) do update
        set rows = excluded.rows, completed_at = excluded.completed_at;
end;
$$;

comment on procedure warehouse.load_fact_sales(bigint) is
    'Loads the batch''s new and changed items into fact_sales and its transactions'' '
    'statuses into fact_order_status, re-points facts to new dimension versions, and '
    'queues the days they touch';
