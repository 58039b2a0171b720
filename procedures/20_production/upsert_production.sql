-- The upserts of production, one per table, shared by production.merge_batch (the rows a
-- batch's validation accepted) and etl.reprocess_rejects (orphans accepted late).
--
-- production.upsert_customers(p_batch_id bigint, p_bulk boolean default false)
--   returns table (inserted bigint, changed bigint)
-- production.upsert_products(p_batch_id bigint, p_bulk boolean default false)
--   returns table (inserted bigint, changed bigint)
--   Categories of the products are created first (production.categories, by name).
-- production.upsert_transactions(p_batch_id bigint, p_resolved_orphans boolean default false,
--   p_bulk boolean default false) returns table (inserted bigint, changed bigint)
-- production.upsert_transaction_items(p_batch_id bigint, p_resolved_orphans boolean
--   default false, p_bulk boolean default false) returns table (inserted bigint, changed bigint)
--
-- Contract:
--   Source: staging.validated_<file> rows of batch p_batch_id with rules null (what
--   validation accepted), or, with p_resolved_orphans, staging.resolved_<file> rows with
--   resolved_batch_id = p_batch_id (orphans etl.reprocess_rejects accepted while resolving
--   that batch; their batch_id is the batch that delivered them). Keys are unique in each
--   source (validation rejects duplicates; reprocessing keeps the newest delivery).
--   Each accepted row is compared once with its production row (the CTE `compared`); then
--   an INSERT of the new keys and an UPDATE of the rows to write, in one statement (no
--   MERGE: these tables may become Citus reference tables; one pipeline run at a time, so
--   no other writer inserts a key in between). A new key is inserted (created_at =
--   updated_at = now()). An existing key is updated only when the delivery is not older
--   than the one its values come from (delivered_batch_id <=; a row written by other means,
--   without one, counts as delivered by its source_batch_id), and then:
--   - business values differ (IS DISTINCT FROM, typed): every value, updated_at = now(),
--     source_batch_id = p_batch_id (the warehouse loaders follow it);
--   - values equal, delivery newer: only delivered_batch_id moves (updated_at and
--     source_batch_id stay: nothing changed for the warehouse);
--   - otherwise nothing is written.
--   Returns the rows inserted and the rows changed (business values).
--   p_bulk (production.merge_batch into a table it found empty: the initial load): a plain
--   INSERT of the same rows, without the ON CONFLICT arbiter (nothing can conflict in an
--   empty table, and keys are unique in the source): the speculative insertion of
--   ON CONFLICT costs a third of the load.
-- Safe to call twice: the second call finds every value equal and the same delivery, and
--   writes nothing (updated_at unchanged). (p_bulk is only for an empty table.)
-- Foreign keys: the caller decides whether their per-row triggers run (merge_batch skips
--   them for references validation proved); these functions write rows only.

drop function if exists production.upsert_customers(bigint);
drop function if exists production.upsert_products(bigint);
drop function if exists production.upsert_transactions(bigint, boolean);
drop function if exists production.upsert_transaction_items(bigint, boolean);

create or replace function production.upsert_customers(
    p_batch_id bigint,
    p_bulk boolean default false
)
returns table (inserted bigint, changed bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rows bigint;
begin
    if p_bulk then
        insert into production.customers (
            customer_id, first_name, last_name, email, phone, city, state, country,
            signup_date, source_updated_at, source_batch_id, delivered_batch_id
        )
        select
            v.customer_id, v.first_name, v.last_name, v.email, v.phone, v.city, v.state,
            v.country, v.signup_date, v.source_updated_at, p_batch_id, v.batch_id
        from staging.validated_customers v
        where v.batch_id = p_batch_id and v.rules is null;
        get diagnostics v_rows = row_count;
        return query select v_rows, 0::bigint;
        return;
    end if;

    return query
    with accepted_customers as (
        select
            v.customer_id, v.first_name, v.last_name, v.email, v.phone, v.city, v.state,
            v.country, v.signup_date, v.source_updated_at, v.batch_id
        from staging.validated_customers v
        where v.batch_id = p_batch_id and v.rules is null
    ),
    -- each accepted row against its production row, compared once: a new key, changed
    -- values, or equal values delivered again by a newer batch (an older delivery: nothing)
    compared as (
        select a.*, p.customer_id is null as is_new, d.values_differ
        from accepted_customers a
        left join production.customers p on p.customer_id = a.customer_id
        cross join lateral (
            select (
                p.first_name, p.last_name, p.email, p.phone, p.city, p.state, p.country,
                p.signup_date, p.source_updated_at)
                is distinct from
                (
                a.first_name, a.last_name, a.email, a.phone, a.city, a.state, a.country,
                a.signup_date, a.source_updated_at) as values_differ
        ) d
        where p.customer_id is null
           or (coalesce(p.delivered_batch_id, p.source_batch_id) <= a.batch_id
               and (d.values_differ or p.delivered_batch_id is distinct from a.batch_id))
    ),
    inserted as (
        insert into production.customers (
            customer_id, first_name, last_name, email, phone, city, state, country,
            signup_date, source_updated_at, source_batch_id, delivered_batch_id
        )
        select
            c.customer_id, c.first_name, c.last_name, c.email, c.phone, c.city, c.state,
            c.country, c.signup_date, c.source_updated_at, p_batch_id, c.batch_id
        from compared c
        where c.is_new
        returning 1
    ),
    updated as (
        update production.customers p
        set first_name = c.first_name,
            last_name = c.last_name,
            email = c.email,
            phone = c.phone,
            city = c.city,
            state = c.state,
            country = c.country,
            signup_date = c.signup_date,
            source_updated_at = c.source_updated_at,
            updated_at = case when c.values_differ then now() else p.updated_at end,
            source_batch_id = case when c.values_differ then p_batch_id
                                   else p.source_batch_id end,
            delivered_batch_id = c.batch_id
        from compared c
        where not c.is_new and p.customer_id = c.customer_id
        returning c.values_differ
    )
    select (select count(*) from inserted),
           (select count(*) from updated u where u.values_differ);
end
$$;

comment on function production.upsert_customers(bigint, boolean) is
    'Upserts the customers a batch accepted; returns rows inserted and changed';

create or replace function production.upsert_products(
    p_batch_id bigint,
    p_bulk boolean default false
)
returns table (inserted bigint, changed bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rows bigint;
begin
    insert into production.categories (category_name)
    select distinct v.category
    from staging.validated_products v
    where v.batch_id = p_batch_id and v.rules is null
    on conflict (category_name) do nothing;

    if p_bulk then
        insert into production.products (
            product_id, product_name, category_id, brand, unit_price, cost,
            source_updated_at, source_batch_id, delivered_batch_id
        )
        select
            v.product_id, v.product_name, cat.category_id, v.brand, v.unit_price, v.cost,
            v.source_updated_at, p_batch_id, v.batch_id
        from staging.validated_products v
        join production.categories cat on cat.category_name = v.category
        where v.batch_id = p_batch_id and v.rules is null;
        get diagnostics v_rows = row_count;
        return query select v_rows, 0::bigint;
        return;
    end if;

    return query
    with accepted_products as (
        select
            v.product_id, v.product_name, cat.category_id, v.brand, v.unit_price, v.cost,
            v.source_updated_at, v.batch_id
        from staging.validated_products v
        join production.categories cat on cat.category_name = v.category
        where v.batch_id = p_batch_id and v.rules is null
    ),
    -- each accepted row against its production row, compared once: a new key, changed
    -- values, or equal values delivered again by a newer batch (an older delivery: nothing)
    compared as (
        select a.*, p.product_id is null as is_new, d.values_differ
        from accepted_products a
        left join production.products p on p.product_id = a.product_id
        cross join lateral (
            select (
                p.product_name, p.category_id, p.brand, p.unit_price, p.cost,
                p.source_updated_at)
                is distinct from
                (
                a.product_name, a.category_id, a.brand, a.unit_price, a.cost,
                a.source_updated_at) as values_differ
        ) d
        where p.product_id is null
           or (coalesce(p.delivered_batch_id, p.source_batch_id) <= a.batch_id
               and (d.values_differ or p.delivered_batch_id is distinct from a.batch_id))
    ),
    inserted as (
        insert into production.products (
            product_id, product_name, category_id, brand, unit_price, cost,
            source_updated_at, source_batch_id, delivered_batch_id
        )
        select
            c.product_id, c.product_name, c.category_id, c.brand, c.unit_price, c.cost,
            c.source_updated_at, p_batch_id, c.batch_id
        from compared c
        where c.is_new
        returning 1
    ),
    updated as (
        update production.products p
        set product_name = c.product_name,
            category_id = c.category_id,
            brand = c.brand,
            unit_price = c.unit_price,
            cost = c.cost,
            source_updated_at = c.source_updated_at,
            updated_at = case when c.values_differ then now() else p.updated_at end,
            source_batch_id = case when c.values_differ then p_batch_id
                                   else p.source_batch_id end,
            delivered_batch_id = c.batch_id
        from compared c
        where not c.is_new and p.product_id = c.product_id
        returning c.values_differ
    )
    select (select count(*) from inserted),
           (select count(*) from updated u where u.values_differ);
end
$$;

comment on function production.upsert_products(bigint, boolean) is
    'Upserts the products (and new categories) a batch accepted; returns rows inserted and changed';

create or replace function production.upsert_transactions(
    p_batch_id bigint,
    p_resolved_orphans boolean default false,
    p_bulk boolean default false
)
returns table (inserted bigint, changed bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rows bigint;
begin
    if p_bulk and not p_resolved_orphans then
        insert into production.transactions (
            transaction_id, customer_id, transaction_ts, payment_method_code, status_code,
            source_batch_id, delivered_batch_id
        )
        select
            v.transaction_id, v.customer_id, v.transaction_ts, v.payment_method_code,
            v.status_code, p_batch_id, v.batch_id
        from staging.validated_transactions v
        where v.batch_id = p_batch_id and v.rules is null;
        get diagnostics v_rows = row_count;
        return query select v_rows, 0::bigint;
        return;
    end if;

    return query
    with accepted_transactions as (
        select
            v.transaction_id, v.customer_id, v.transaction_ts, v.payment_method_code,
            v.status_code, v.batch_id
        from staging.validated_transactions v
        where not p_resolved_orphans and v.batch_id = p_batch_id and v.rules is null
        union all
        select
            r.transaction_id, r.customer_id, r.transaction_ts, r.payment_method_code,
            r.status_code, r.batch_id
        from staging.resolved_transactions r
        where p_resolved_orphans and r.resolved_batch_id = p_batch_id
    ),
    -- each accepted row against its production row, compared once: a new key, changed
    -- values, or equal values delivered again by a newer batch (an older delivery: nothing)
    compared as (
        select a.*, p.transaction_id is null as is_new, d.values_differ
        from accepted_transactions a
        left join production.transactions p on p.transaction_id = a.transaction_id
        cross join lateral (
            select (
                p.customer_id, p.transaction_ts, p.payment_method_code, p.status_code)
                is distinct from
                (
                a.customer_id, a.transaction_ts, a.payment_method_code, a.status_code) as values_differ
        ) d
        where p.transaction_id is null
           or (coalesce(p.delivered_batch_id, p.source_batch_id) <= a.batch_id
               and (d.values_differ or p.delivered_batch_id is distinct from a.batch_id))
    ),
    inserted as (
        insert into production.transactions (
            transaction_id, customer_id, transaction_ts, payment_method_code, status_code,
            source_batch_id, delivered_batch_id
        )
        select
            c.transaction_id, c.customer_id, c.transaction_ts, c.payment_method_code,
            c.status_code, p_batch_id, c.batch_id
        from compared c
        where c.is_new
        returning 1
    ),
    updated as (
        update production.transactions p
        set customer_id = c.customer_id,
            transaction_ts = c.transaction_ts,
            payment_method_code = c.payment_method_code,
            status_code = c.status_code,
            updated_at = case when c.values_differ then now() else p.updated_at end,
            source_batch_id = case when c.values_differ then p_batch_id
                                   else p.source_batch_id end,
            delivered_batch_id = c.batch_id
        from compared c
        where not c.is_new and p.transaction_id = c.transaction_id
        returning c.values_differ
    )
    select (select count(*) from inserted),
           (select count(*) from updated u where u.values_differ);
end
$$;

comment on function production.upsert_transactions(bigint, boolean, boolean) is
    'Upserts the transactions a batch accepted (or orphans it resolved); returns rows '
    'inserted and changed';

create or replace function production.upsert_transaction_items(
    p_batch_id bigint,
    p_resolved_orphans boolean default false,
    p_bulk boolean default false
)
returns table (inserted bigint, changed bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rows bigint;
begin
    if p_bulk and not p_resolved_orphans then
        insert into production.transaction_items (
            item_id, transaction_id, product_id, quantity, unit_price, discount,
            source_batch_id, delivered_batch_id
        )
        select
            v.item_id, v.transaction_id, v.product_id, v.quantity, v.unit_price,
            coalesce(v.discount, 0), p_batch_id, v.batch_id
        from staging.validated_transaction_items v
        where v.batch_id = p_batch_id and v.rules is null;
        get diagnostics v_rows = row_count;
        return query select v_rows, 0::bigint;
        return;
    end if;

    return query
    with accepted_items as (
        select
            v.item_id, v.transaction_id, v.product_id, v.quantity, v.unit_price,
            coalesce(v.discount, 0) as discount, v.batch_id
        from staging.validated_transaction_items v
        where not p_resolved_orphans and v.batch_id = p_batch_id and v.rules is null
        union all
        select
            r.item_id, r.transaction_id, r.product_id, r.quantity, r.unit_price, r.discount,
            r.batch_id
        from staging.resolved_transaction_items r
        where p_resolved_orphans and r.resolved_batch_id = p_batch_id
    ),
    -- each accepted row against its production row, compared once: a new key, changed
    -- values, or equal values delivered again by a newer batch (an older delivery: nothing)
    compared as (
        select a.*, p.item_id is null as is_new, d.values_differ
        from accepted_items a
        left join production.transaction_items p on p.item_id = a.item_id
        cross join lateral (
            select (
                p.transaction_id, p.product_id, p.quantity, p.unit_price, p.discount)
                is distinct from
                (
                a.transaction_id, a.product_id, a.quantity, a.unit_price, a.discount) as values_differ
        ) d
        where p.item_id is null
           or (coalesce(p.delivered_batch_id, p.source_batch_id) <= a.batch_id
               and (d.values_differ or p.delivered_batch_id is distinct from a.batch_id))
    ),
    inserted as (
        insert into production.transaction_items (
            item_id, transaction_id, product_id, quantity, unit_price, discount,
            source_batch_id, delivered_batch_id
        )
        select
            c.item_id, c.transaction_id, c.product_id, c.quantity, c.unit_price, c.discount, p_batch_id, c.batch_id
        from compared c
        where c.is_new
        returning 1
    ),
    updated as (
        update production.transaction_items p
        set transaction_id = c.transaction_id,
            product_id = c.product_id,
            quantity = c.quantity,
            unit_price = c.unit_price,
            discount = c.discount,
            updated_at = case when c.values_differ then now() else p.updated_at end,
            source_batch_id = case when c.values_differ then p_batch_id
                                   else p.source_batch_id end,
            delivered_batch_id = c.batch_id
        from compared c
        where not c.is_new and p.item_id = c.item_id
        returning c.values_differ
    )
    select (select count(*) from inserted),
           (select count(*) from updated u where u.values_differ);
end
$$;

comment on function production.upsert_transaction_items(bigint, boolean, boolean) is
    'Upserts the items a batch accepted (or orphans it resolved); returns rows inserted and '
    'changed';
