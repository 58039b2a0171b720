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
--   Writes one production row per key with INSERT ... ON CONFLICT DO UPDATE (no MERGE: these
--   tables may become Citus reference tables). A new key is inserted (created_at =
--   updated_at = now()). An existing key is updated only when the delivery is not older
--   than the one its values come from (delivered_batch_id <=; a row written by other means,
--   without one, counts as delivered by its source_batch_id), and then:
--   - business values differ (IS DISTINCT FROM, typed): every value, updated_at = now(),
--     source_batch_id = p_batch_id (the warehouse loaders follow it);
--   - values equal, delivery newer: only delivered_batch_id moves (updated_at and
--     source_batch_id stay: nothing changed for the warehouse);
--   - otherwise nothing is written.
--   Returns the rows inserted and the rows changed (business values).
--   "Business values differ" is written once per table, in a function its upsert calls in
--   the three places that need it (updated_at, source_batch_id, the WHERE):
--   production.<row>_values_differ(a, b production.<table>) returns boolean, the row
--   comparison of the table's business values (every column but the key and the
--   bookkeeping: created_at, updated_at, source_batch_id, delivered_batch_id). SQL-standard
--   bodies, inlined by the planner: called with the row in production and EXCLUDED, each
--   call plans as the comparison of the columns themselves (no function call, no row built).
--   The WHERE tests the delivery first, so an increment's conflicting row (a newer delivery)
--   is compared by the SET's two CASEs only, a batch merged again by the WHERE only. The
--   form stays ON CONFLICT: a join with production before an INSERT and an UPDATE (each row
--   compared once by construction) made the increments' merge about twice as slow, and a
--   multi-column SET from a sub-SELECT is planned with the comparison copied into each
--   column and whole rows passed per row: ON CONFLICT's one index probe per row is cheaper.
--   p_bulk (production.merge_batch into a table it found empty: the initial load): a plain
--   INSERT of the same rows, without the ON CONFLICT arbiter (nothing can conflict in an
--   empty table, and keys are unique in the source): the speculative insertion of
--   ON CONFLICT costs a third of the load.
-- Safe to call twice: the second call finds every value equal and the same delivery, and
--   writes nothing (updated_at unchanged). (p_bulk is only for an empty table.)
-- Foreign keys: the caller decides whether their per-row triggers run (merge_batch skips
--   them for references validation proved); these functions write rows only.

create or replace function production.customer_values_differ(
    a production.customers,
    b production.customers
)
returns boolean
language sql immutable parallel safe
return (a.first_name, a.last_name, a.email, a.phone, a.city, a.state, a.country,
        a.signup_date, a.source_updated_at)
       is distinct from
       (b.first_name, b.last_name, b.email, b.phone, b.city, b.state, b.country,
        b.signup_date, b.source_updated_at);

comment on function production.customer_values_differ(production.customers,
                                                        production.customers) is
    'Whether two customers rows differ in their business values (the upsert''s comparison)';

create or replace function production.product_values_differ(
    a production.products,
    b production.products
)
returns boolean
language sql immutable parallel safe
return (a.product_name, a.category_id, a.brand, a.unit_price, a.cost, a.source_updated_at)
       is distinct from
       (b.product_name, b.category_id, b.brand, b.unit_price, b.cost, b.source_updated_at);

comment on function production.product_values_differ(production.products,
                                                       production.products) is
    'Whether two products rows differ in their business values (the upsert''s comparison)';

create or replace function production.transaction_values_differ(
    a production.transactions,
    b production.transactions
)
returns boolean
language sql immutable parallel safe
return (a.customer_id, a.transaction_ts, a.payment_method_code, a.status_code)
       is distinct from
       (b.customer_id, b.transaction_ts, b.payment_method_code, b.status_code);

comment on function production.transaction_values_differ(production.transactions,
                                                           production.transactions) is
    'Whether two transactions rows differ in their business values (the upsert''s comparison)';

create or replace function production.transaction_item_values_differ(
    a production.transaction_items,
    b production.transaction_items
)
returns boolean
language sql immutable parallel safe
return (a.transaction_id, a.product_id, a.quantity, a.unit_price, a.discount)
       is distinct from
       (b.transaction_id, b.product_id, b.quantity, b.unit_price, b.discount);

comment on function production.transaction_item_values_differ(production.transaction_items,
                                                                production.transaction_items) is
    'Whether two transaction_items rows differ in their business values (the upsert''s '
    'comparison)';

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
    upserted as (
        insert into production.customers as c (
            customer_id, first_name, last_name, email, phone, city, state, country,
            signup_date, source_updated_at, source_batch_id, delivered_batch_id
        )
        select
            a.customer_id, a.first_name, a.last_name, a.email, a.phone, a.city, a.state,
            a.country, a.signup_date, a.source_updated_at, p_batch_id, a.batch_id
        from accepted_customers a
        on conflict (customer_id) do update
        set first_name = excluded.first_name,
            last_name = excluded.last_name,
            email = excluded.email,
            phone = excluded.phone,
            city = excluded.city,
            state = excluded.state,
            country = excluded.country,
            signup_date = excluded.signup_date,
            source_updated_at = excluded.source_updated_at,
            updated_at = case when production.customer_values_differ(c, excluded)
                then now() else c.updated_at end,
            source_batch_id = case when production.customer_values_differ(c, excluded)
                then excluded.source_batch_id else c.source_batch_id end,
            delivered_batch_id = excluded.delivered_batch_id
        where coalesce(c.delivered_batch_id, c.source_batch_id)
              <= excluded.delivered_batch_id
          and (c.delivered_batch_id is distinct from excluded.delivered_batch_id
               or production.customer_values_differ(c, excluded))
        returning c.xmax = 0 as is_insert, c.source_batch_id = p_batch_id as is_change
    )
    select count(*) filter (where u.is_insert),
           count(*) filter (where not u.is_insert and u.is_change)
    from upserted u;
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
    upserted as (
        insert into production.products as p (
            product_id, product_name, category_id, brand, unit_price, cost,
            source_updated_at, source_batch_id, delivered_batch_id
        )
        select
            a.product_id, a.product_name, a.category_id, a.brand, a.unit_price, a.cost,
            a.source_updated_at, p_batch_id, a.batch_id
        from accepted_products a
        on conflict (product_id) do update
        set product_name = excluded.product_name,
            category_id = excluded.category_id,
            brand = excluded.brand,
            unit_price = excluded.unit_price,
            cost = excluded.cost,
            source_updated_at = excluded.source_updated_at,
            updated_at = case when production.product_values_differ(p, excluded)
                then now() else p.updated_at end,
            source_batch_id = case when production.product_values_differ(p, excluded)
                then excluded.source_batch_id else p.source_batch_id end,
            delivered_batch_id = excluded.delivered_batch_id
        where coalesce(p.delivered_batch_id, p.source_batch_id)
              <= excluded.delivered_batch_id
          and (p.delivered_batch_id is distinct from excluded.delivered_batch_id
               or production.product_values_differ(p, excluded))
        returning p.xmax = 0 as is_insert, p.source_batch_id = p_batch_id as is_change
    )
    select count(*) filter (where u.is_insert),
           count(*) filter (where not u.is_insert and u.is_change)
    from upserted u;
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
    upserted as (
        insert into production.transactions as t (
            transaction_id, customer_id, transaction_ts, payment_method_code, status_code,
            source_batch_id, delivered_batch_id
        )
        select
            a.transaction_id, a.customer_id, a.transaction_ts, a.payment_method_code,
            a.status_code, p_batch_id, a.batch_id
        from accepted_transactions a
        on conflict (transaction_id) do update
        set customer_id = excluded.customer_id,
            transaction_ts = excluded.transaction_ts,
            payment_method_code = excluded.payment_method_code,
            status_code = excluded.status_code,
            updated_at = case when production.transaction_values_differ(t, excluded)
                then now() else t.updated_at end,
            source_batch_id = case when production.transaction_values_differ(t, excluded)
                then excluded.source_batch_id else t.source_batch_id end,
            delivered_batch_id = excluded.delivered_batch_id
        where coalesce(t.delivered_batch_id, t.source_batch_id)
              <= excluded.delivered_batch_id
          and (t.delivered_batch_id is distinct from excluded.delivered_batch_id
               or production.transaction_values_differ(t, excluded))
        returning t.xmax = 0 as is_insert, t.source_batch_id = p_batch_id as is_change
    )
    select count(*) filter (where u.is_insert),
           count(*) filter (where not u.is_insert and u.is_change)
    from upserted u;
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
    upserted as (
        insert into production.transaction_items as i (
            item_id, transaction_id, product_id, quantity, unit_price, discount,
            source_batch_id, delivered_batch_id
        )
        select
            a.item_id, a.transaction_id, a.product_id, a.quantity, a.unit_price, a.discount,
            p_batch_id, a.batch_id
        from accepted_items a
        on conflict (item_id) do update
        set transaction_id = excluded.transaction_id,
            product_id = excluded.product_id,
            quantity = excluded.quantity,
            unit_price = excluded.unit_price,
            discount = excluded.discount,
            updated_at = case when production.transaction_item_values_differ(i, excluded)
                then now() else i.updated_at end,
            source_batch_id = case when production.transaction_item_values_differ(i, excluded)
                then excluded.source_batch_id else i.source_batch_id end,
            delivered_batch_id = excluded.delivered_batch_id
        where coalesce(i.delivered_batch_id, i.source_batch_id)
              <= excluded.delivered_batch_id
          and (i.delivered_batch_id is distinct from excluded.delivered_batch_id
               or production.transaction_item_values_differ(i, excluded))
        returning i.xmax = 0 as is_insert, i.source_batch_id = p_batch_id as is_change
    )
    select count(*) filter (where u.is_insert),
           count(*) filter (where not u.is_insert and u.is_change)
    from upserted u;
end
$$;

comment on function production.upsert_transaction_items(bigint, boolean, boolean) is
    'Upserts the items a batch accepted (or orphans it resolved); returns rows inserted and '
    'changed';
