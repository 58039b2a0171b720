-- Aggregates kept by deltas (revision 0006).
--
-- warehouse.record_fact_change(p_batch_id, p_change_id, p_before warehouse.fact_sales[],
--                               p_after warehouse.fact_sales[]) returns bigint
--   Writes the deltas of one change of the fact: the completed lines of the orders it
--   touched as they were (p_before, sign -1) and as they are (p_after, sign +1), one row per
--   sign, order and product version (an order's lines of a product share its time, so one
--   version), with the fact's keys (apply_agg_delta resolves them after grouping).
--   Completed (docs/data-contract.md, "Business rules and metrics") is the order's status,
--   which the lines do not hold (warehouse.fact_order_status): the caller passes only the
--   lines of orders whose status, before or after the change, is a sale status
--   (production.transaction_statuses.is_sale). warehouse.load_fact_sales calls it from each
--   statement that changes fact lines or order statuses, with the lines it read in the
--   statement's snapshot and the rows its RETURNING gave. Returns the rows written.
--   Unchanged orders write pairs that cancel; calling it twice would count the change twice
--   (the caller calls it once per statement, in that statement).
-- warehouse.apply_agg_delta(p_skip_days date[], p_skip_months date[]) returns bigint
--   Adds every pending row of warehouse.agg_delta to agg_daily_sales,
--   agg_payment_method_monthly, agg_product_monthly, agg_customer_activity and the
--   active_customers of agg_customer_monthly, removes rows left with nothing to count, and
--   empties agg_delta by TRUNCATE (revision 0020: no dead rows, so no autovacuum for the
--   next batch's apply to wait for). The best sellers of the months whose product figures
--   changed are recomputed (warehouse.refresh_best_sellers). Orders count once per order
--   and sign (an order's rows of several products are one order); a customer becomes
--   active in a month when their completed orders there go from 0 to more, and stops when
--   they go back to 0.
--   The daily part of a delta dated in p_skip_days and the monthly parts of one in a month
--   of p_skip_months (first days) are dropped instead: the caller recomputes those from
--   the fact, which already holds the change (refresh_sales_aggregates).
--   Raises, and so leaves everything as it was, when an aggregate would go negative or keep
--   figures without orders: the aggregates were out of step with the fact (repair with
--   warehouse.refresh_aggregates over the dates named, which recomputes them and drops the
--   deltas inside its range).
--   Takes agg_delta in access exclusive mode (TRUNCATE needs it) so a concurrent fact load,
--   or a reader of the pending deltas, waits until the apply commits. The aggregate rows it
--   changes are read and written through their ctid in one statement, without locking the
--   tables (which would cancel their autovacuums at every batch): a row another transaction
--   changed in between is detected (fewer rows written than read) and raised as a
--   serialization failure, which the runner retries (warehouse.raise_if_out_of_step). Returns the
--   aggregate rows changed. Safe to call twice: the second call finds no delta.
-- Deltas are order-independent sums: deltas of several batches, or of two loads of one
-- batch, may be applied together (an order changed by two statements has two pairs whose
-- middle states cancel).

create or replace function warehouse.record_fact_change(
    p_batch_id bigint, p_change_id bigint, p_before warehouse.fact_sales[],
    p_after warehouse.fact_sales[])
returns bigint
-- PL/pgSQL for its row count: an SQL function counted the rows its INSERT returned (0.25 s
-- of a status feed's 720,000 at 5M)
language plpgsql
volatile
-- one or two lines per group: sorting the lines and grouping them costs a third of a hash
-- table of numeric sums (80 against 230 ms at 50,000 lines); lines passed in the grouping's
-- order (a status feed's: by order and product) are sorted in one pass
set enable_hashagg = off
as $$
declare
    v_rows bigint;
begin
    with lines as (
        select -1 as sign, b.* from unnest(p_before) b
        union all
        select 1, a.* from unnest(p_after) a
    )
    insert into warehouse.agg_delta (
        batch_id, change_id, sign, transaction_id, date_key, customer_key,
        payment_method_key, product_key, units, revenue, discount, margin
    )
    select p_batch_id, p_change_id, l.sign, l.transaction_id, l.date_key, l.customer_key,
           l.payment_method_key, l.product_key, sum(l.quantity), sum(l.line_amount),
           sum(l.discount), sum(l.line_margin)
    from lines l
    group by l.sign, l.transaction_id, l.date_key, l.customer_key, l.payment_method_key,
             l.product_key;
    get diagnostics v_rows = row_count;
    return v_rows;
end;
$$;

comment on function warehouse.record_fact_change(bigint, bigint, warehouse.fact_sales[],
                                                 warehouse.fact_sales[]) is
    'Writes the aggregate deltas of one change of fact_sales: the touched orders'' completed '
    'lines before (-1) and after (+1)';

-- warehouse.raise_if_out_of_step(p_broken text, p_moved text): the two failures of an
-- apply_agg_delta statement, raised (which rolls the statement back): aggregates the deltas
-- would leave negative or with figures but no order (p_broken), or rows another transaction
-- changed between the statement's read and its write (p_moved: a serialization failure,
-- retried by the runner).
create or replace procedure warehouse.raise_if_out_of_step(p_broken text, p_moved text)
language plpgsql
as $$
begin
    if p_broken is not null then
        raise exception 'apply_agg_delta: the aggregates are out of step with the fact (%); '
                        'repair with CALL warehouse.refresh_aggregates(first_day, last_day)',
            p_broken;
    end if;
    if p_moved is not null then
        raise exception using
            errcode = 'serialization_failure',
            message = format('apply_agg_delta: rows of %s were changed by another transaction '
                             'while the deltas were applied; nothing was written (run the '
                             'step again)', p_moved);
    end if;
end;
$$;

create or replace function warehouse.apply_agg_delta(
    p_skip_days date[] default '{}', p_skip_months date[] default '{}')
returns bigint
language plpgsql
set search_path = warehouse, pg_catalog
set work_mem = '256MB'
as $$
declare
    v_deltas    bigint;
    v_daily     bigint;
    v_payments  bigint;
    v_activity  bigint;
    v_customers bigint;
    v_products  bigint;
    v_best      bigint;
    v_product_months date[];
    v_broken    text;
    v_moved     text;
begin
    lock table warehouse.agg_delta in access exclusive mode;
    -- counted by the first statement, which reads them all (a count first took 0.27 s of
    -- a status feed's 720,000 rows at 5M)
    if not exists (select 1 from warehouse.agg_delta) then
        return 0;
    end if;

    -- day, payment method and customer figures count orders: one row per order, change
    -- and sign; natural keys looked up once the rows are grouped, as the recompute does
    with order_rows as (
        select
            ad.change_id, ad.sign, ad.transaction_id, ad.date_key, ad.customer_key,
            ad.payment_method_key, count(*) as delta_rows,
            sum(ad.units) as units, sum(ad.revenue) as revenue,
            sum(ad.discount) as discount, sum(ad.margin) as margin
        from warehouse.agg_delta ad
        group by ad.change_id, ad.sign, ad.transaction_id, ad.date_key, ad.customer_key,
                 ad.payment_method_key
    ),
    delta_orders as materialized (
        -- the payment method's code is looked up by payment_changes, after this: a join with
        -- the payment methods here made the planner expect a thirtieth of the rows (it
        -- knows no statistics of grouped keys) and probe the customers by index, 240,000
        -- times for a status feed, where one hash of them is a third of the time
        select
            o.sign, d.full_date as sales_date, d.month_start as month, dc.customer_id,
            o.payment_method_key, o.delta_rows, o.units, o.revenue, o.discount, o.margin
        from order_rows o
        join warehouse.dim_date d on d.date_key = o.date_key
        left join warehouse.dim_customer dc on dc.customer_key = o.customer_key
    ),
    daily_changes as (
        select o.sales_date, sum(o.sign) as orders, sum(o.sign * o.units) as units,
               sum(o.sign * o.revenue) as revenue, sum(o.sign * o.discount) as discount,
               sum(o.sign * o.margin) as margin
        from delta_orders o
        where not (o.sales_date = any(p_skip_days))
        group by o.sales_date
    ),
    daily_next as materialized (
        select dc.sales_date,
               coalesce(a.orders, 0) + dc.orders as orders,
               coalesce(a.units, 0) + dc.units as units,
               coalesce(a.revenue, 0) + dc.revenue as revenue,
               coalesce(a.discount, 0) + dc.discount as discount,
               coalesce(a.margin, 0) + dc.margin as margin,
               a.ctid as stored
        from daily_changes dc
        left join warehouse.agg_daily_sales a on a.sales_date = dc.sales_date
        where (dc.orders, dc.units, dc.revenue, dc.discount, dc.margin) <> (0, 0, 0, 0, 0)
    ),
    -- the rows read above written through their ctid (no second probe of the key), new
    -- rows inserted, emptied rows deleted. No table lock keeps other writers out (one would
    -- wait for, and cancel, every autovacuum of these tables): a row another transaction
    -- changed since the statement read it is not written through its old ctid, so each
    -- statement counts the rows it wrote against the rows it read (moved, below) and fails
    -- as a serialization failure, which the runner retries
    daily_written as (
        update warehouse.agg_daily_sales a
        set orders = dn.orders, units = dn.units, revenue = dn.revenue,
            discount = dn.discount, margin = dn.margin, refreshed_at = now()
        from daily_next dn
        where a.ctid = dn.stored and dn.orders > 0
        returning 1
    ),
    daily_inserted as (
        insert into warehouse.agg_daily_sales (
            sales_date, orders, units, revenue, discount, margin, refreshed_at
        )
        select dn.sales_date, dn.orders, dn.units, dn.revenue, dn.discount, dn.margin, now()
        from daily_next dn
        where dn.stored is null and dn.orders > 0
        returning 1
    ),
    daily_removed as (
        delete from warehouse.agg_daily_sales a
        using daily_next dn
        where a.ctid = dn.stored and dn.orders = 0
        returning 1
    ),
    payment_changes as (
        select o.month, dpm.payment_method_code, sum(o.sign) as orders,
               sum(o.sign * o.revenue) as revenue
        from delta_orders o
        join warehouse.dim_payment_method dpm on dpm.payment_method_key = o.payment_method_key
        where not (o.month = any(p_skip_months))
        group by o.month, dpm.payment_method_code
    ),
    payment_next as materialized (
        select pc.month, pc.payment_method_code,
               coalesce(a.orders, 0) + pc.orders as orders,
               coalesce(a.revenue, 0) + pc.revenue as revenue,
               a.ctid as stored
        from payment_changes pc
        left join warehouse.agg_payment_method_monthly a
            on a.month = pc.month and a.payment_method_code = pc.payment_method_code
        where (pc.orders, pc.revenue) <> (0, 0)
    ),
    payments_written as (
        update warehouse.agg_payment_method_monthly a
        set orders = pn.orders, revenue = pn.revenue, refreshed_at = now()
        from payment_next pn
        where a.ctid = pn.stored and pn.orders > 0
        returning 1
    ),
    payments_inserted as (
        insert into warehouse.agg_payment_method_monthly (
            month, payment_method_code, orders, revenue, refreshed_at
        )
        select pn.month, pn.payment_method_code, pn.orders, pn.revenue, now()
        from payment_next pn
        where pn.stored is null and pn.orders > 0
        returning 1
    ),
    payments_removed as (
        delete from warehouse.agg_payment_method_monthly a
        using payment_next pn
        where a.ctid = pn.stored and pn.orders = 0
        returning 1
    ),
    activity_next as materialized (
        select ac.month, ac.customer_id, coalesce(a.orders, 0) as orders_before,
               coalesce(a.orders, 0) + ac.orders as orders, a.ctid as stored
        from (
            select o.month, o.customer_id, sum(o.sign) as orders
            from delta_orders o
            where o.customer_id is not null and not (o.month = any(p_skip_months))
            group by o.month, o.customer_id
            having sum(o.sign) <> 0
        ) ac
        left join warehouse.agg_customer_activity a
            on a.month = ac.month and a.customer_id = ac.customer_id
    ),
    activity_written as (
        update warehouse.agg_customer_activity a
        set orders = an.orders
        from activity_next an
        where a.ctid = an.stored and an.orders > 0
        returning 1
    ),
    activity_inserted as (
        insert into warehouse.agg_customer_activity (month, customer_id, orders)
        select an.month, an.customer_id, an.orders
        from activity_next an
        where an.stored is null and an.orders > 0
        returning 1
    ),
    activity_removed as (
        delete from warehouse.agg_customer_activity a
        using activity_next an
        where a.ctid = an.stored and an.orders = 0
        returning 1
    ),
    active_changes as (
        select an.month,
               sum((an.orders > 0)::int - (an.orders_before > 0)::int) as customers
        from activity_next an
        group by an.month
        having sum((an.orders > 0)::int - (an.orders_before > 0)::int) <> 0
    ),
    customers_written as (
        insert into warehouse.agg_customer_monthly as a (
            month, new_customers, active_customers, refreshed_at
        )
        select ach.month, 0, ach.customers, now()
        from active_changes ach
        on conflict (month) do update
            set active_customers = a.active_customers + excluded.active_customers,
                refreshed_at = excluded.refreshed_at
        returning a.month, a.active_customers
    ),
    broken as (
        select format('agg_daily_sales %s: %s order(s), revenue %s', dn.sales_date,
                      dn.orders, dn.revenue) as problem
        from daily_next dn
        where dn.orders < 0
           or (dn.orders = 0 and (dn.units, dn.revenue, dn.discount, dn.margin) <> (0, 0, 0, 0))
        union all
        select format('agg_payment_method_monthly %s %s: %s order(s), revenue %s', pn.month,
                      pn.payment_method_code, pn.orders, pn.revenue)
        from payment_next pn
        where pn.orders < 0 or (pn.orders = 0 and pn.revenue <> 0)
        union all
        select format('agg_customer_activity %s customer %s: %s order(s)', an.month,
                      an.customer_id, an.orders)
        from activity_next an
        where an.orders < 0
        union all
        select format('agg_customer_monthly %s: %s active customer(s)', cw.month,
                      cw.active_customers)
        from customers_written cw
        where cw.active_customers < 0
    ),
    moved as (
        select m.aggregate
        from (values
            ('agg_daily_sales',
             (select count(*) from daily_written) + (select count(*) from daily_removed),
             (select count(*) from daily_next dn where dn.stored is not null)),
            ('agg_payment_method_monthly',
             (select count(*) from payments_written) + (select count(*) from payments_removed),
             (select count(*) from payment_next pn where pn.stored is not null)),
            ('agg_customer_activity',
             (select count(*) from activity_written) + (select count(*) from activity_removed),
             (select count(*) from activity_next an where an.stored is not null))
        ) m(aggregate, written, read)
        where m.written <> m.read
    )
    select (select sum(o.delta_rows) from delta_orders o),
           (select count(*) from daily_written) + (select count(*) from daily_inserted)
           + (select count(*) from daily_removed),
           (select count(*) from payments_written) + (select count(*) from payments_inserted)
           + (select count(*) from payments_removed),
           (select count(*) from activity_written) + (select count(*) from activity_inserted)
           + (select count(*) from activity_removed),
           (select count(*) from customers_written),
           (select string_agg(b.problem, '; ') from (select problem from broken limit 5) b),
           (select string_agg(m.aggregate, ', ') from moved m)
    into v_deltas, v_daily, v_payments, v_activity, v_customers, v_broken, v_moved;
    call warehouse.raise_if_out_of_step(v_broken, v_moved);

    -- products count an order once per product: the deltas are already at that grain (one
    -- row per change, sign, order and product)
    with product_changes as (
        -- the deltas' keys resolved before one grouping: a status feed's 770,000 rows are
        -- hashed once to their product-months (grouping by product version and day first
        -- hashed them twice)
        select d.month_start as month, coalesce(dp.product_id, -1) as product_id,
               sum(ad.sign) as orders, sum(ad.sign * ad.units) as units,
               sum(ad.sign * ad.revenue) as revenue, sum(ad.sign * ad.margin) as margin
        from warehouse.agg_delta ad
        join warehouse.dim_date d on d.date_key = ad.date_key
        join warehouse.dim_product dp on dp.product_key = ad.product_key
        where not (d.month_start = any(p_skip_months))
        group by d.month_start, coalesce(dp.product_id, -1)
    ),
    product_next as materialized (
        select pc.month, pc.product_id,
               coalesce(a.orders, 0) + pc.orders as orders,
               coalesce(a.units, 0) + pc.units as units,
               coalesce(a.revenue, 0) + pc.revenue as revenue,
               coalesce(a.margin, 0) + pc.margin as margin,
               a.ctid as stored
        from product_changes pc
        left join warehouse.agg_product_monthly a
            on a.month = pc.month and a.product_id = pc.product_id
        where (pc.orders, pc.units, pc.revenue, pc.margin) <> (0, 0, 0, 0)
    ),
    products_written as (
        -- the writes of daily_written, daily_inserted and daily_removed above, for another
        -- table, key and columns
        update warehouse.agg_product_monthly a
        set orders = pn.orders, units = pn.units, revenue = pn.revenue, margin = pn.margin,
            refreshed_at = now()
        from product_next pn
        where a.ctid = pn.stored and pn.orders > 0
        returning 1
    ),
    products_inserted as (
        insert into warehouse.agg_product_monthly (
            month, product_id, orders, units, revenue, margin, refreshed_at
        )
        select pn.month, pn.product_id, pn.orders, pn.units, pn.revenue, pn.margin, now()
        from product_next pn
        where pn.stored is null and pn.orders > 0
        returning 1
    ),
    products_removed as (
        delete from warehouse.agg_product_monthly a
        using product_next pn
        where a.ctid = pn.stored and pn.orders = 0
        returning 1
    ),
    broken as (
        select format('agg_product_monthly %s product %s: %s order(s), revenue %s', pn.month,
                      pn.product_id, pn.orders, pn.revenue) as problem
        from product_next pn
        where pn.orders < 0
           or (pn.orders = 0 and (pn.units, pn.revenue, pn.margin) <> (0, 0, 0))
    )
    select (select count(*) from products_written) + (select count(*) from products_inserted)
           + (select count(*) from products_removed),
           (select string_agg(b.problem, '; ') from (select problem from broken limit 5) b),
           array(select distinct pn.month from product_next pn),
           case when (select count(*) from products_written)
                     + (select count(*) from products_removed)
                     <> (select count(*) from product_next pn where pn.stored is not null)
                then 'agg_product_monthly' end
    into v_products, v_broken, v_product_months, v_moved;
    call warehouse.raise_if_out_of_step(v_broken, v_moved);
    v_best := warehouse.refresh_best_sellers(v_product_months);

    -- a month left with neither new nor active customers has nothing to count
    delete from warehouse.agg_customer_monthly a
    where a.new_customers = 0 and a.active_customers = 0;
    truncate warehouse.agg_delta;

    raise notice 'apply_agg_delta: % delta row(s) applied; rows changed: agg_daily_sales %, '
                 'agg_product_monthly %, agg_payment_method_monthly %, agg_customer_activity '
                 '%, agg_customer_monthly %, agg_category_best_sellers %',
        v_deltas, v_daily, v_products, v_payments, v_activity, v_customers, v_best;
    return v_daily + v_products + v_payments + v_activity + v_customers + v_best;
end;
$$;

comment on function warehouse.apply_agg_delta(date[], date[]) is
    'Adds the pending deltas of warehouse.agg_delta to the aggregates (but the days and '
    'months about to be recomputed) and deletes them';
