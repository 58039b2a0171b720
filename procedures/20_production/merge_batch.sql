-- production.merge_batch(p_batch_id bigint)
--
-- Contract: upserts the rows that staging.validate_batch accepted for the batch
--   (staging.validated_<file>, rules null) into the 3NF production tables, parents first:
--   customers, categories and products, transactions, transaction items (the upserts of
--   procedures/20_production/upsert_production.sql: typed values, created_at, updated_at
--   moved only by a real change, source_batch_id = this batch on every changed row,
--   delivered_batch_id; a later batch updates what an earlier one wrote, never the
--   reverse). Then upserts etl.batch_step (batch_id, 'merge', rows inserted + changed).
--   RAISE NOTICE per table: rows inserted and changed.
-- Erased customers (etl.erasure) that the batch delivers again: before anything is written,
--   etl.forget_erased_identifiers blanks their identifiers in the batch's typed rows, staged
--   rows and quarantined rows (and the addresses it delivered for them in other rows), so
--   production and the warehouse get the customer without them (docs/data-contract.md,
--   "Personal data").
-- Preconditions: the batch was validated (etl.batch_step 'validate'), else it raises
--   object_not_in_prerequisite_state. The typed rows live in UNLOGGED tables, which a
--   server crash empties: when they are gone although the batch accepted rows, the batch is
--   validated again first (same inputs, same production: same result).
-- Foreign keys: every reference of these rows was proved by validation (known = in
--   production, or accepted in this batch and merged here before its children; lookups
--   checked against production.payment_methods and production.transaction_statuses), so,
--   when the role may SET session_replication_role and no user trigger exists on
--   production, the per-row foreign-key triggers are skipped for this call (set_config
--   local to the transaction, reset before returning). That saves ~5 us a row and a check
--   (docs/performance.md); otherwise every foreign key is checked row by row.
--   The constraints stay declared, so any other writer is still checked.
-- Initial load: tables found empty (production.empty_tables) are TRUNCATEd in this
--   transaction (with wal_level = minimal their new rows then skip the WAL), loaded by a
--   plain INSERT without their secondary indexes, which are rebuilt and the tables analyzed
--   (procedures/20_production/empty_tables.sql, procedures/00_common/bulk_load.sql).
--   staging.transaction_changes, where the triggers of production.transactions log every
--   row (the loaders find the batch's transactions through it), is loaded the same way
--   when it is empty, and analyzed after the load in any case. Later batches take the
--   upsert path; the log is analyzed after one that logged more than 10,000 transactions
--   and more than 1 % of the log (a status feed), so the loaders' plans know its size.
-- Idempotent and atomic: one transaction; a second call for a batch already merged
--   (etl.batch_step 'merge') changes nothing and says so, so a later batch's updates are
--   never undone by merging an older batch again. Raises no_data_found for an unknown
--   batch.
create or replace procedure production.merge_batch(p_batch_id bigint)
language plpgsql
set warehouse.writer = 'merge_batch'
set search_path = pg_catalog, pg_temp
-- rows in the validated order (procedures/00_common/bulk_load.sql)
set synchronize_seqscans = off
as $$
declare
    v_batch_name   text;
    v_role_before  text := current_setting('session_replication_role');
    v_fk_checks    text := 'checked row by row';
    v_customers    record;
    v_products     record;
    v_transactions record;
    v_items        record;
    v_rows         bigint;
    v_bulk_tables  text[];
    v_bulk_relations regclass[];
    v_index_ddl    text[];
    v_log_loaded   boolean;
    v_log_owner    boolean;
begin
    v_batch_name := etl.lock_batch(p_batch_id, 'merge_batch');

    if etl.batch_step_done(p_batch_id, 'merge') then
        raise notice 'merge_batch: batch % (%) is already merged: nothing to do',
            p_batch_id, v_batch_name;
        return;
    end if;
    if not etl.batch_step_done(p_batch_id, 'validate') then
        raise exception 'merge_batch: batch % (%) is not validated', p_batch_id, v_batch_name
            using errcode = 'object_not_in_prerequisite_state',
                  hint = format('CALL staging.validate_batch(%s) first', p_batch_id);
    end if;

    -- the UNLOGGED typed rows are emptied by a crash: validate again when they are gone
    if exists (select 1 from etl.batch_file f
               where f.batch_id = p_batch_id and f.rows_accepted > 0)
       and not exists (select 1 from staging.validated_customers v
                       where v.batch_id = p_batch_id)
       and not exists (select 1 from staging.validated_products v
                       where v.batch_id = p_batch_id)
       and not exists (select 1 from staging.validated_transactions v
                       where v.batch_id = p_batch_id)
       and not exists (select 1 from staging.validated_transaction_items v
                       where v.batch_id = p_batch_id) then
        raise notice 'merge_batch: batch %: its validated rows are gone (server restart): '
                     'validating it again', p_batch_id;
        call staging.validate_batch(p_batch_id);
    end if;

    -- an erased customer delivered again: validated as usual, stored without identifiers
    perform etl.forget_erased_identifiers(p_batch_id);

    -- references proved by validation: skip the per-row foreign-key triggers when allowed
    if etl.skip_fk_triggers(array(select c.oid::regclass from pg_class c
                                  where c.relnamespace = 'production'::regnamespace
                                    and c.relkind in ('r', 'p'))) then
        v_fk_checks := 'proved by validation (per-row triggers skipped)';
    end if;

    -- the initial load: empty tables are truncated (no WAL with wal_level minimal) and
    -- loaded without secondary indexes, rebuilt at the end
    v_bulk_tables := production.empty_tables();
    v_bulk_relations := array(select format('production.%I', t)::regclass
                              from unnest(v_bulk_tables) as t);
    -- the triggers of production.transactions log each of its rows in
    -- staging.transaction_changes, which the loaders read next: loaded the same way when it
    -- is empty too (its index built once, then analyzed), else analyzed after the load
    v_log_owner := pg_has_role((select c.relowner from pg_class c
                                where c.oid = 'staging.transaction_changes'::regclass),
                               'USAGE');
    v_log_loaded := 'transactions' = any (v_bulk_tables) and v_log_owner;
    if v_log_loaded and not exists (select 1 from staging.transaction_changes) then
        v_bulk_relations := v_bulk_relations || 'staging.transaction_changes'::regclass;
    end if;
    v_index_ddl := etl.begin_bulk_load(v_bulk_relations);

    select * into v_customers
    from production.upsert_customers(p_batch_id, 'customers' = any (v_bulk_tables));
    select * into v_products
    from production.upsert_products(p_batch_id, 'products' = any (v_bulk_tables));
    select * into v_transactions
    from production.upsert_transactions(p_batch_id, false,
                                        'transactions' = any (v_bulk_tables));
    select * into v_items
    from production.upsert_transaction_items(p_batch_id, false,
                                             'transaction_items' = any (v_bulk_tables));

    call etl.end_bulk_load(v_bulk_relations, v_index_ddl);
    -- without statistics of the log the loaders' plans expect a few thousand rows and probe
    -- production.transactions once per logged row (a million times at 1M orders: 2.6 s of
    -- load_dimensions and 6 s of load_fact_sales); the log's owner only (autovacuum does
    -- it otherwise)
    if v_log_loaded
       and not 'staging.transaction_changes'::regclass = any (v_bulk_relations) then
        analyze staging.transaction_changes;
    end if;
    -- the same after an upsert that wrote a large batch (a status feed: 262k transactions
    -- at 5M orders, estimated at one row while the last statistics do not know its batch):
    -- more than 10,000 transactions and more than 1 % of the log; the log, and the
    -- transactions' source_batch_id that production.batch_transactions filters on
    if v_log_owner and not v_log_loaded
       and v_transactions.inserted + v_transactions.changed > greatest(
           10000, 0.01 * (select c.reltuples from pg_class c
                          where c.oid = 'staging.transaction_changes'::regclass)) then
        analyze staging.transaction_changes;
        analyze production.transactions (source_batch_id);
    end if;
    perform set_config('session_replication_role', v_role_before, true);

    v_rows := v_customers.inserted + v_customers.changed + v_products.inserted
              + v_products.changed + v_transactions.inserted + v_transactions.changed
              + v_items.inserted + v_items.changed;
    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'merge', v_rows, now())
    on conflict (batch_id, step) do update
    set rows = excluded.rows, completed_at = excluded.completed_at;

    raise notice 'merge_batch: batch % (%): production.customers: % inserted, % changed',
        p_batch_id, v_batch_name, v_customers.inserted, v_customers.changed;
    raise notice 'merge_batch: batch % (%): production.products: % inserted, % changed',
        p_batch_id, v_batch_name, v_products.inserted, v_products.changed;
    raise notice 'merge_batch: batch % (%): production.transactions: % inserted, % changed',
        p_batch_id, v_batch_name, v_transactions.inserted, v_transactions.changed;
    raise notice 'merge_batch: batch % (%): production.transaction_items: % inserted, % changed',
        p_batch_id, v_batch_name, v_items.inserted, v_items.changed;
    raise notice 'merge_batch: batch % (%): % rows written; foreign keys %',
        p_batch_id, v_batch_name, v_rows, v_fk_checks
        || case when cardinality(v_bulk_tables) > 0
             then format('; bulk load of the empty table(s) %s (indexes rebuilt)',
                         array_to_string(v_bulk_tables, ', '))
             else '' end;
end
$$;

comment on procedure production.merge_batch(bigint) is
    'Upserts the rows a batch''s validation accepted into production (CALL '
    'production.merge_batch(1)); a batch already merged is left alone';
