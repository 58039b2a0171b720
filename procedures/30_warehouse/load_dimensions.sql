-- warehouse.load_dimensions(p_batch_id bigint)
--
-- Contract (docs/data-contract.md, "Warehouse"):
--   Inputs: production.customers / production.products rows whose source_batch_id is the
--   batch (new keys, changed keys, orphans resolved by it), production.payment_methods,
--   the dates of the batch's transactions and signups, etl.batch.load_ts of the batch.
--   Writes:
--   - warehouse.dim_customer, warehouse.dim_product as SCD type 2. Tracked attributes are
--     every column of the file but the key and updated_at, as typed production values;
--     attr_hash = md5 of their row text (customers: warehouse.customer_attr_hash, which
--     etl.erase_customer shares; an erased customer's identifiers are null in production,
--     so they make no version). A key's first version is valid from -infinity.
--     A row whose hash differs from the current version's closes it (valid_to = the new
--     valid_from, is_current false) and adds a version valid from its updated_at (the
--     batch's load time when empty), or one microsecond after the current version's start
--     when that is not later. An equal hash adds nothing.
--   - warehouse.dim_payment_method: one row per production payment method code.
--   - warehouse.dim_date: every day from the batch's earliest to latest transaction or
--     signup date (warehouse.ensure_dim_date); no fixed range.
--   - warehouse.agg_refresh_queue: the signup month of every new customer, and the old and
--     new months of every changed signup date, for refresh_batch_aggregates.
--   - warehouse.agg_category_best_sellers: recomputed for the months of every product whose
--     category changed (warehouse.refresh_best_sellers).
--   - etl.batch_step (batch_id, 'load_dimensions', versions added + days added).
--   Fact rows pointing at a closed version are re-pointed by warehouse.load_fact_sales.
-- Safe to call twice: the second call finds every batch row's hash equal to its current
-- version, every day present and every payment method equal, and writes nothing.
create or replace procedure warehouse.load_dimensions(p_batch_id bigint)
language plpgsql
set search_path = warehouse, pg_catalog
set plan_cache_mode = force_custom_plan
as $$
declare
    v_load_ts         timestamptz;
    v_customers       bigint;
    v_products        bigint;
    v_recategorized   bigint[];
    v_payment_methods bigint;
    v_days            integer;
    v_first_day       date;
    v_last_day        date;
begin
    select b.load_ts into v_load_ts from etl.batch b where b.batch_id = p_batch_id;
    if not found then
        raise exception 'load_dimensions: batch % does not exist', p_batch_id;
    end if;

    insert into warehouse.dim_payment_method (payment_method_code, display_name)
    select pm.payment_method_code, pm.display_name
    from production.payment_methods pm
    on conflict (payment_method_code) do update
        set display_name = excluded.display_name
        where dim_payment_method.display_name is distinct from excluded.display_name;
    get diagnostics v_payment_methods = row_count;

    -- the days read with parallel workers (EXECUTE: production.batch_transaction_rows),
    -- the calendar extended after (ensure_dim_date writes)
    execute $q$
        with batch_days as (
            select warehouse.utc_date(t.transaction_ts) as day
            from production.batch_transactions($1) t
            union all
            select c.signup_date
            from production.customers c
            where c.source_batch_id = $1
        )
        select min(day), max(day) from batch_days$q$
    into v_first_day, v_last_day using p_batch_id;
    v_days := warehouse.ensure_dim_date(v_first_day, v_last_day);

    with batch_customers as (
        select
            c.customer_id, c.first_name, c.last_name, c.email, c.phone, c.city, c.state,
            c.country, c.signup_date,
            warehouse.customer_attr_hash(c.first_name, c.last_name, c.email, c.phone,
                                         c.city, c.state, c.country, c.signup_date)
                as attr_hash,
            coalesce(c.source_updated_at, v_load_ts) as changed_at
        from production.customers c
        where c.source_batch_id = p_batch_id
    ),
    changed_customers as (
        select
            bc.*,
            cur.customer_key as current_key,
            cur.signup_date as current_signup_date,
            warehouse.scd2_valid_from(cur.valid_from, bc.changed_at) as valid_from
        from batch_customers bc
        left join warehouse.dim_customer cur
            on cur.customer_id = bc.customer_id and cur.is_current
        where cur.customer_key is null or cur.attr_hash is distinct from bc.attr_hash
    ),
    closed_versions as (
        update warehouse.dim_customer d
        set valid_to = cc.valid_from, is_current = false
        from changed_customers cc
        where d.customer_key = cc.current_key
        returning d.customer_id
    ),
    added_versions as (
        insert into warehouse.dim_customer (
            customer_id, first_name, last_name, email, phone, city, state, country,
            signup_date, attr_hash, valid_from, valid_to, is_current, source_batch_id
        )
        select
            cc.customer_id, cc.first_name, cc.last_name, cc.email, cc.phone, cc.city,
            cc.state, cc.country, cc.signup_date, cc.attr_hash, cc.valid_from, 'infinity',
            true, p_batch_id
        from changed_customers cc
        -- a changed key is inserted only after its current version is closed
        where cc.current_key is null
           or cc.customer_id in (select cv.customer_id from closed_versions cv)
        returning customer_id
    ),
    touched_signup_months as (
        -- a new customer's signup month; a changed signup date's old and new months
        select date_trunc('month', cc.signup_date::timestamp)::date as month
        from changed_customers cc
        where cc.current_key is null or cc.current_signup_date <> cc.signup_date
        union
        select date_trunc('month', cc.current_signup_date::timestamp)::date
        from changed_customers cc
        where cc.current_signup_date <> cc.signup_date
    ),
    queued as (
        insert into warehouse.agg_refresh_queue (batch_id, grain, day)
        select p_batch_id, 'signup_month', tsm.month from touched_signup_months tsm
        on conflict (batch_id, grain, day) do update
            set refreshed_at = null, queued_at = now()
    )
    select count(*) into v_customers from added_versions;

    -- The products' SCD2 block stays apart from the customers' above: other attributes and
    -- hash, and no signup month to queue; the version rule they share is scd2_valid_from.
    with batch_products as (
        select
            p.product_id, p.product_name, cat.category_name as category, p.brand,
            p.unit_price, p.cost,
            decode(md5(row(p.product_name, cat.category_name, p.brand, p.unit_price,
                           p.cost)::text), 'hex') as attr_hash,
            coalesce(p.source_updated_at, v_load_ts) as changed_at
        from production.products p
        join production.categories cat on cat.category_id = p.category_id
        where p.source_batch_id = p_batch_id
    ),
    changed_products as (
        select
            bp.*,
            cur.product_key as current_key,
            cur.category as current_category,
            warehouse.scd2_valid_from(cur.valid_from, bp.changed_at) as valid_from
        from batch_products bp
        left join warehouse.dim_product cur
            on cur.product_id = bp.product_id and cur.is_current
        where cur.product_key is null or cur.attr_hash is distinct from bp.attr_hash
    ),
    closed_versions as (
        update warehouse.dim_product d
        set valid_to = cp.valid_from, is_current = false
        from changed_products cp
        where d.product_key = cp.current_key
        returning d.product_id
    ),
    added_versions as (
        insert into warehouse.dim_product (
            product_id, product_name, category, brand, unit_price, cost, attr_hash,
            valid_from, valid_to, is_current, source_batch_id
        )
        select
            cp.product_id, cp.product_name, cp.category, cp.brand, cp.unit_price, cp.cost,
            cp.attr_hash, cp.valid_from, 'infinity', true, p_batch_id
        from changed_products cp
        where cp.current_key is null
           or cp.product_id in (select cv.product_id from closed_versions cv)
        returning product_id
    )
    select (select count(*) from added_versions),
           array(select cp.product_id from changed_products cp
                 where cp.current_key is not null
                   and cp.category is distinct from cp.current_category)
    into v_products, v_recategorized;
    -- a product in another category: the best sellers of its months (ranked within the
    -- current category) are ranked again
    if cardinality(v_recategorized) > 0 then
        perform warehouse.refresh_best_sellers(array(
            select distinct a.month from warehouse.agg_product_monthly a
            where a.product_id = any(v_recategorized)));
    end if;

    -- a large load (the initial one) makes the statistics useless for the fact load next;
    -- only the tables' owner may analyze them (autovacuum does it otherwise). The payment
    -- methods are a handful of rows, under autovacuum's threshold (50 changed rows) for
    -- ever: analyzed whenever one is written, or while the table has never been analyzed
    -- (reltuples -1: a warehouse loaded before this rule). Without statistics a payment
    -- method's lines were estimated at a thousandth of their number, and the category and
    -- payment-method views probed the products once per line (a quarter of one category
    -- and method at 5M orders: 0.52 s, 0.28 s with them).
    if pg_has_role((select c.relowner from pg_class c
                    where c.oid = 'warehouse.dim_customer'::regclass), 'USAGE') then
        if v_customers > 1000 then
            analyze warehouse.dim_customer;
        end if;
        if v_products > 1000 then
            analyze warehouse.dim_product;
        end if;
        if v_payment_methods > 0
           or (select c.reltuples from pg_class c
               where c.oid = 'warehouse.dim_payment_method'::regclass) < 0 then
            analyze warehouse.dim_payment_method;
        end if;
    end if;

    raise notice 'load_dimensions batch %: dim_customer % new version(s), dim_product % new '
                 'version(s), dim_payment_method % row(s) written, dim_date % day(s) added',
        p_batch_id, v_customers, v_products, v_payment_methods, v_days;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'load_dimensions', v_customers + v_products + v_payment_methods + v_days,
            clock_timestamp())
    on conflict (batch_id, step) do update
        set rows = excluded.rows, completed_at = excluded.completed_at;
end;
$$;

comment on procedure warehouse.load_dimensions(bigint) is
    'SCD2 customer and product versions, payment methods and calendar days of one batch';
