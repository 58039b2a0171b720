-- Validation of a batch: the step a DBA calls, and the bookkeeping every file shares.
--
-- staging.record_file_result(p_batch_id, p_file_name, p_staged, p_rejected, p_duplicates)
--   Called by each staging.validate_<file> at its end. Writes the file's counts:
--   etl.batch_file.rows_accepted = staged rows - rows rejected by validation (malformed rows
--   never reach staging), and etl.dq_result: one row per rule of the file (etl.dq_rule),
--   with the rows of the batch and file breaking it (0 included; malformed_row included).
--   RAISE NOTICE: rows in the file, accepted, rejected, the top rules. Files that are not in
--   the batch (no ledger row, nothing staged) get no row. Safe to call twice: it replaces
--   the file's counts.
--
-- staging.validate_batch(p_batch_id bigint)
--   Contract: evaluates every rule of docs/data-contract.md for every staged row of the batch,
--   files in dependency order (customers, products, transactions, items), so a transaction
--   may refer to a customer, and an item to a transaction or product, accepted earlier in
--   the same batch. Writes (through the four staging.validate_<file> procedures):
--   staging.validated_<file> (typed rows, rules null = accepted: what production.merge_batch
--   reads), etl.rejected_row (every rejected row with all its rules, line, raw key, raw
--   values), etl.batch_file.rows_accepted, etl.dq_result; then etl.batch_step
--   (batch_id, 'validate', rows validated). Before it, the partitions of staging.validated_*
--   of batches already merged are dropped.
--   A batch already merged is not validated again: its results stay as they were (the rules
--   compare with production *before* the batch, which its merge changed), so a call after
--   the merge changes nothing. To validate a merged batch again by hand, delete its
--   etl.batch_step rows 'validate' and 'merge' first (docs/operations.md).
--   Safe to call twice: each file's previous results are deleted and computed again from the
--   same inputs, in the caller's transaction (one CALL commits whole or not at all).
--   Raises no_data_found for an unknown batch.
--   Security definer (as the staging tables' owner): it drops the partitions of merged
--   batches; EXECUTE is granted to warehouse_etl and revoked from PUBLIC.

create or replace procedure staging.record_file_result(
    p_batch_id bigint,
    p_file_name text,
    p_staged bigint,
    p_rejected bigint,
    p_duplicates bigint
)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_in_ledger     boolean;
    v_rows_in_file  bigint;
    v_all_rejected  bigint;
    v_top_rules     text;
begin
    update etl.batch_file f
    set rows_accepted = p_staged - p_rejected
    where f.batch_id = p_batch_id and f.file_name = p_file_name
    returning true, f.rows_in_file into v_in_ledger, v_rows_in_file;
    if not coalesce(v_in_ledger, false) and p_staged = 0 then
        return;  -- the file is not part of the batch
    end if;

    delete from etl.dq_result d where d.batch_id = p_batch_id and d.file_name = p_file_name;
    with rule_counts as (
        select broken.rule, count(*) as rows
        from etl.rejected_row r
        cross join lateral unnest(r.rules) as broken (rule)
        where r.batch_id = p_batch_id and r.file_name = p_file_name
        group by broken.rule
    )
    insert into etl.dq_result (batch_id, file_name, rule, rows, checked_at)
    select p_batch_id, p_file_name, q.rule, coalesce(rule_counts.rows, 0), now()
    from etl.dq_rule q
    left join rule_counts on rule_counts.rule = q.rule
    where p_file_name = any (q.file_names);

    select count(*) into v_all_rejected
    from etl.rejected_row r
    where r.batch_id = p_batch_id and r.file_name = p_file_name;
    select string_agg(format('%s %s', top.rule, top.rows), ', '
                      order by top.rows desc, top.sort_order)
    into v_top_rules
    from (
        select d.rule, d.rows, q.sort_order
        from etl.dq_result d
        join etl.dq_rule q on q.rule = d.rule
        where d.batch_id = p_batch_id and d.file_name = p_file_name and d.rows > 0
        order by d.rows desc, q.sort_order
        limit 3
    ) top;

    raise notice 'validate_batch: batch %: %: % rows, % accepted, % rejected%',
        p_batch_id, p_file_name, coalesce(v_rows_in_file, p_staged),
        p_staged - p_rejected, v_all_rejected,
        case when v_top_rules is null then '' else ' (top rules: ' || v_top_rules || ')' end
        || case when p_duplicates > 0 then format('; %s rows duplicate_key', p_duplicates)
                else '' end;
end
$$;

comment on procedure staging.record_file_result(bigint, text, bigint, bigint, bigint) is
    'Writes a validated file''s rows_accepted and etl.dq_result, and prints its summary';

create or replace procedure staging.validate_batch(p_batch_id bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_batch_name text;
    v_partition  text;
    v_rows       bigint;
    v_accepted   bigint;
    v_rejected   bigint;
begin
    v_batch_name := etl.lock_batch(p_batch_id, 'validate_batch');

    if etl.batch_step_done(p_batch_id, 'merge') then
        raise notice 'validate_batch: batch % (%) is already merged: its validation is kept',
            p_batch_id, v_batch_name;
        return;
    end if;

    -- the typed rows of merged batches are no longer needed: drop their partitions
    for v_partition in
        select format('%I.%I', n.nspname, c.relname)
        from pg_inherits i
        join pg_class c on c.oid = i.inhrelid
        join pg_class parent on parent.oid = i.inhparent
        join pg_namespace n on n.oid = parent.relnamespace
        where n.nspname = 'staging'
          and parent.relname in ('validated_customers', 'validated_products',
                                 'validated_transactions', 'validated_transaction_items')
          and etl.batch_step_done(substring(c.relname from '_([0-9]+)$')::bigint, 'merge')
    loop
        execute 'drop table ' || v_partition;
    end loop;

    call staging.validate_customers(p_batch_id);
    call staging.validate_products(p_batch_id);
    call staging.validate_transactions(p_batch_id);
    call staging.validate_transaction_items(p_batch_id);

    select coalesce(sum(f.rows_in_file), 0)::bigint, coalesce(sum(f.rows_accepted), 0)::bigint
    into v_rows, v_accepted
    from etl.batch_file f
    where f.batch_id = p_batch_id;
    select count(*) into v_rejected from etl.rejected_row r where r.batch_id = p_batch_id;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'validate', v_accepted + v_rejected, now())
    on conflict (batch_id, step) do update
    set rows = excluded.rows, completed_at = excluded.completed_at;

    raise notice 'validate_batch: batch % (%): % rows, % accepted, % rejected',
        p_batch_id, v_batch_name, v_rows, v_accepted, v_rejected;
end
$$;

comment on procedure staging.validate_batch(bigint) is
    'Validates every staged row of a batch against the data contract (CALL '
    'staging.validate_batch(1)); rejects to etl.rejected_row, accepted rows typed for the merge';
revoke all on procedure staging.validate_batch(bigint) from public;
