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
--   Each names its table's accepted rows (a SELECT of the key, the business values and the
--   delivering batch_id) and hands them to the one upsert of the four:
-- production.upsert_rows(p_table text, p_key text, p_accepted text, p_batch_id bigint,
--   p_bulk boolean) returns table (inserted bigint, changed bigint)
--   The statement below, built for production.<p_table> (EXECUTE; identifiers quoted with
--   %I, the batch id a bigint, p_accepted the caller's fixed SELECT).
-- production.business_columns(p_table regclass, p_key text) returns text[]
--   The business values of a production table, in column order: every column but the key
--   p_key, the bookkeeping (created_at, updated_at, source_batch_id, delivered_batch_id)
--   and generated columns. What an upsert writes and compares: a
--   column added to a table is upserted and compared without another change here.
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
--   The comparison "business values differ" is built once, by upsert_rows, from
--   business_columns; the statement uses it in the three places that need it (updated_at,
--   source_batch_id, the WHERE). The WHERE tests the delivery first, so an increment's
--   conflicting row (a newer delivery) is compared by the SET's two CASEs only, a batch
--   merged again by the WHERE only. The form stays ON CONFLICT: a join with production
--   before an INSERT and an UPDATE (each row compared once by construction) made the
--   increments' merge about twice as slow, and a multi-column SET from a sub-SELECT is
--   planned with the comparison copied into each column and whole rows passed per row:
--   ON CONFLICT's one index probe per row is cheaper.
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
-- the per-table comparisons of an earlier version of this file, folded into upsert_rows
drop function if exists production.customer_values_differ(production.customers,
                                                           production.customers);
drop function if exists production.product_values_differ(production.products,
                                                          production.products);
drop function if exists production.transaction_values_differ(production.transactions,
                                                              production.transactions);
drop function if exists production.transaction_item_values_differ(
    production.transaction_items, production.transaction_items);

create or replace function production.business_columns(p_table regclass, p_key text)
returns text[]
language sql stable parallel safe
return array(
    select a.attname::text
    from pg_attribute a
    where a.attrelid = p_table
      and a.attnum > 0
      and not a.attisdropped
      and a.attgenerated = ''
      and a.attname not in (p_key, 'created_at', 'updated_at', 'source_batch_id',
                            'delivered_batch_id')
    order by a.attnum
);

comment on function production.business_columns(regclass, text) is
    'The business values of a production table (not the key, bookkeeping or generated '
    'columns): what its upsert writes and compares';

create or replace function production.upsert_rows(
    p_table text,
    p_key text,
    p_accepted text,
    p_batch_id bigint,
    p_bulk boolean
)
returns table (inserted bigint, changed bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_values  text[] := production.business_columns(format('production.%I', p_table),
                                                     p_key);
    v_columns text := (select string_agg(format('%I', c), ', ') from unnest(p_key || v_values) c);
    v_source  text := (select string_agg(format('a.%I', c), ', ')
                       from unnest(p_key || v_values) c);
    v_differ  text;
    v_set     text;
    v_rows    bigint;
begin
    if p_bulk then
        execute format('insert into production.%I (%s, source_batch_id, delivered_batch_id) '
                       'select %s, %s, a.batch_id from (%s) a',
                       p_table, v_columns, v_source, p_batch_id, p_accepted);
        get diagnostics v_rows = row_count;
        return query select v_rows, 0::bigint;
        return;
    end if;

    v_differ := format('((%s) is distinct from (%s))',
                       (select string_agg(format('d.%I', c), ', ') from unnest(v_values) c),
                       (select string_agg(format('excluded.%I', c), ', ')
                        from unnest(v_values) c));
    v_set := (select string_agg(format('%1$I = excluded.%1$I', c), ', ')
              from unnest(v_values) c);
    return query execute format(
        'with upserted as ( '
        '    insert into production.%1$I as d (%2$s, source_batch_id, delivered_batch_id) '
        '    select %3$s, %4$s, a.batch_id from (%5$s) a '
        '    on conflict (%6$I) do update '
        '    set %7$s, '
        '        updated_at = case when %8$s then now() else d.updated_at end, '
        '        source_batch_id = case when %8$s then excluded.source_batch_id '
        '                               else d.source_batch_id end, '
        '        delivered_batch_id = excluded.delivered_batch_id '
        '    where coalesce(d.delivered_batch_id, d.source_batch_id) '
        '          <= excluded.delivered_batch_id '
        '      and (d.delivered_batch_id is distinct from excluded.delivered_batch_id '
        '           or %8$s) '
        '    returning d.xmax = 0 as is_insert, d.source_batch_id = %4$s as is_change '
        ') '
        'select count(*) filter (where u.is_insert), '
        '       count(*) filter (where not u.is_insert and u.is_change) '
        'from upserted u',
        p_table, v_columns, v_source, p_batch_id, p_accepted, p_key, v_set, v_differ);
end
$$;

comment on function production.upsert_rows(text, text, text, bigint, boolean) is
    'The upsert of the four production tables: accepted rows in, rows inserted and changed out';

-- The four below stay apart in what they hold alone: the accepted rows of their table.
create or replace function production.upsert_customers(
    p_batch_id bigint,
    p_bulk boolean default false
)
returns table (inserted bigint, changed bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select * from production.upsert_rows('customers', 'customer_id', format(
        'select v.customer_id, v.first_name, v.last_name, v.email, v.phone, v.city, v.state, '
        '       v.country, v.signup_date, v.source_updated_at, v.batch_id '
        'from staging.validated_customers v '
        'where v.batch_id = %s and v.rules is null', p_batch_id), p_batch_id, p_bulk);
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
begin
    insert into production.categories (category_name)
    select distinct v.category
    from staging.validated_products v
    where v.batch_id = p_batch_id and v.rules is null
    on conflict (category_name) do nothing;

    return query
    select * from production.upsert_rows('products', 'product_id', format(
        'select v.product_id, v.product_name, cat.category_id, v.brand, v.unit_price, v.cost, '
        '       v.source_updated_at, v.batch_id '
        'from staging.validated_products v '
        'join production.categories cat on cat.category_name = v.category '
        'where v.batch_id = %s and v.rules is null', p_batch_id), p_batch_id, p_bulk);
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
begin
    return query
    select * from production.upsert_rows('transactions', 'transaction_id', format(
        'select v.transaction_id, v.customer_id, v.transaction_ts, v.payment_method_code, '
        '       v.status_code, v.batch_id '
        || case when p_resolved_orphans
                then 'from staging.resolved_transactions v where v.resolved_batch_id = %s'
                else 'from staging.validated_transactions v '
                     'where v.batch_id = %s and v.rules is null' end,
        p_batch_id), p_batch_id, p_bulk and not p_resolved_orphans);
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
begin
    return query
    select * from production.upsert_rows('transaction_items', 'item_id', format(
        'select v.item_id, v.transaction_id, v.product_id, v.quantity, v.unit_price, '
        || case when p_resolved_orphans
                then 'v.discount, v.batch_id from staging.resolved_transaction_items v '
                     'where v.resolved_batch_id = %s'
                else 'coalesce(v.discount, 0) as discount, v.batch_id '
                     'from staging.validated_transaction_items v '
                     'where v.batch_id = %s and v.rules is null' end,
        p_batch_id), p_batch_id, p_bulk and not p_resolved_orphans);
end
$$;

comment on function production.upsert_transaction_items(bigint, boolean, boolean) is
    'Upserts the items a batch accepted (or orphans it resolved); returns rows inserted and '
    'changed';
