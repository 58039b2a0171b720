-- staging.validate_transactions(p_batch_id bigint)
--
-- Contract (DATA_CONTRACT.md, "transactions.csv", "Value rules, precisely", "Validation
-- rules"): validates every staged row of transactions.csv of the batch.
--   Inputs: staging.transactions (raw text) of the batch; etl.batch.load_ts (the range rule
--   of transaction_ts: not after the load time, not before 2000-01-01 UTC); the customers
--   accepted in the same batch (staging.validated_customers: staging.validate_customers
--   runs first) and production.customers ("known"); the lookup tables
--   production.payment_methods and production.transaction_statuses (the allowed codes).
--   Writes:
--   - the batch's partition of staging.validated_transactions: one row per staged row,
--     typed (staging.typed_transactions: ids bigint, transaction_ts timestamptz, payment
--     method and status normalised), rules = the rules it broke, null when accepted;
--   - etl.rejected_row: each rejected row with its rules, line, raw key and raw values;
--   - etl.batch_file.rows_accepted and etl.dq_result of the file.
--   Rules: missing_required (every column is required), invalid_integer (transaction_id,
--   customer_id), invalid_timestamp, out_of_range, invalid_payment_method, invalid_status
--   (after normalisation: trim, lower-case, runs of spaces, hyphens, underscores -> `_`),
--   unknown_customer (only for a well-formed customer_id), duplicate_key (every row of a
--   transaction_id but the last, alone).
-- Steps: (1) CREATE TABLE AS the batch's partition from staging.typed_transactions, in
--   parallel, and attach it; (2) duplicate_key; (3) the rules of every other row with a
--   problem. Each UPDATE returns the rows it rejected into etl.rejected_row (a
--   data-modifying CTE): no further pass over the partition for the quarantine.
-- Security definer: it creates, attaches and drops the batch's partition, which needs the
--   owner of the staging tables (the migrating role); callers need only EXECUTE (granted to
--   warehouse_etl, revoked from PUBLIC). Every identifier it builds is quoted (%I) and the
--   batch id is a bigint.
-- Settings (this call only): work_mem for the sorts and hashes of a whole batch; cheaper
--   parallel setup and tuples, so the planner gives the parsing (costly expressions it
--   estimates as cheap) to parallel workers; no hash aggregation, so duplicate keys are
--   found by a parallel sort instead of one serial hash table of every key. For steps 2-3
--   only, when allowed: session_replication_role = replica (the quarantine's foreign keys
--   hold by construction; see the comment before step 2), reset afterwards.
-- Safe to call twice: it first drops the batch's partition and deletes the file's rejects
--   other than ingestion's malformed_row, in the same transaction, then computes them again
--   from the same inputs.
create or replace procedure staging.validate_transactions(p_batch_id bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set work_mem = '256MB'
set enable_hashagg = off
set parallel_setup_cost = 100
set parallel_tuple_cost = 0.001
as $$
declare
    v_partition       text := format('validated_transactions_%s', p_batch_id);
    v_load_ts         timestamptz;
    v_payment_codes   text[];
    v_status_codes    text[];
    v_staged          bigint;
    v_duplicated_keys bigint[];
    v_last_lines      bigint[];
    v_duplicates      bigint;
    v_rejected        bigint;
    v_ruled           bigint;
    v_role_before     text := current_setting('session_replication_role');
begin
    select b.load_ts into strict v_load_ts from etl.batch b where b.batch_id = p_batch_id;
    v_payment_codes := array(select m.payment_method_code from production.payment_methods m);
    v_status_codes := array(select t.status_code from production.transaction_statuses t);

    call staging.clear_validation('transactions', p_batch_id);

    -- 1. every staged row, typed, with the facts the rules need: a parallel CREATE TABLE AS
    execute format('create unlogged table staging.%I as '
                   'select * from staging.typed_transactions($1, $2, $3)', v_partition)
        using p_batch_id, v_payment_codes, v_status_codes;
    get diagnostics v_staged = row_count;
    call staging.attach_validated_partition('transactions', p_batch_id);

    -- the quarantine's rows reference this batch (locked here once, as the foreign key's
    -- trigger would lock it for each row) and no resolution: when the owner may set
    -- session_replication_role and etl.rejected_row has no user trigger, its per-row
    -- foreign-key triggers are skipped for steps 2-3
    perform 1 from etl.batch b where b.batch_id = p_batch_id for key share;
    if found then
        perform etl.skip_fk_triggers(array['etl.rejected_row'::regclass]);
    end if;

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    --    (the keys found by a parallel, sort-based query; then the update, whose rows go to
    --    the quarantine with their raw values)
    select array_agg(d.transaction_id), array_agg(d.last_line)
    into v_duplicated_keys, v_last_lines
    from (
        select k.transaction_id, max(k.line_no) as last_line
        from staging.validated_transactions k
        where k.batch_id = p_batch_id and k.transaction_id is not null
        group by k.transaction_id
        having count(*) > 1
    ) d;
    with duplicates as (
        update staging.validated_transactions v
        set rules = array['duplicate_key']
        from unnest(v_duplicated_keys, v_last_lines) as duplicated (transaction_id, last_line)
        where v.batch_id = p_batch_id
          and v.transaction_id = duplicated.transaction_id
          and v.line_no < duplicated.last_line
        returning v.line_no, v.rules, v.raw_transaction_id, v.raw_customer_id,
                  v.raw_transaction_ts, v.raw_payment_method, v.raw_status
    )
    insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw)
    select
        p_batch_id, 'transactions.csv', d.line_no, d.raw_transaction_id, d.rules,
        jsonb_build_object(
            'transaction_id', d.raw_transaction_id, 'customer_id', d.raw_customer_id,
            'transaction_ts', d.raw_transaction_ts, 'payment_method', d.raw_payment_method,
            'status', d.raw_status)
    from duplicates d;
    get diagnostics v_duplicates = row_count;

    -- 3. every rule the other rows break (the WHERE finds them with cheap tests first; a row
    --    it takes that breaks nothing keeps rules null); the rejected ones to the quarantine
    with ruled as (
        update staging.validated_transactions v
        set rules = nullif(array_remove(array[
                case when not (v.transaction_id_given and v.customer_id_given
                               and v.transaction_ts_given and v.payment_method_given
                               and v.status_given)
                     then 'missing_required' end,
                case when (v.transaction_id_given and v.transaction_id is null)
                          or (v.customer_id_given and v.customer_id is null)
                     then 'invalid_integer' end,
                case when v.transaction_ts_given and v.transaction_ts is null
                     then 'invalid_timestamp' end,
                case when v.transaction_ts < timestamptz '2000-01-01 00:00:00+00'
                          or v.transaction_ts > v_load_ts
                     then 'out_of_range' end,
                case when v.payment_method_given
                          and not coalesce(v.payment_method_code = any (v_payment_codes), false)
                     then 'invalid_payment_method' end,
                case when v.status_given
                          and not coalesce(v.status_code = any (v_status_codes), false)
                     then 'invalid_status' end,
                case when v.customer_id is not null and not v.customer_known
                     then 'unknown_customer' end
            ], null), '{}')
        where v.batch_id = p_batch_id
          and v.rules is null
          and (not (v.transaction_id_given and v.customer_id_given and v.transaction_ts_given
                    and v.payment_method_given and v.status_given)
               or v.transaction_id is null or v.customer_id is null or v.transaction_ts is null
               or v.transaction_ts < timestamptz '2000-01-01 00:00:00+00'
               or v.transaction_ts > v_load_ts
               or not coalesce(v.payment_method_code = any (v_payment_codes), false)
               or not coalesce(v.status_code = any (v_status_codes), false)
               or not v.customer_known)
        returning v.line_no, v.rules, v.raw_transaction_id, v.raw_customer_id,
                  v.raw_transaction_ts, v.raw_payment_method, v.raw_status
    )
    insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw)
    select
        p_batch_id, 'transactions.csv', r.line_no, r.raw_transaction_id, r.rules,
        jsonb_build_object(
            'transaction_id', r.raw_transaction_id, 'customer_id', r.raw_customer_id,
            'transaction_ts', r.raw_transaction_ts, 'payment_method', r.raw_payment_method,
            'status', r.raw_status)
    from ruled r
    where r.rules is not null;
    get diagnostics v_ruled = row_count;
    v_rejected := v_duplicates + v_ruled;
    perform set_config('session_replication_role', v_role_before, true);

    call staging.record_file_result(p_batch_id, 'transactions.csv', v_staged, v_rejected,
                                    v_duplicates);
end
$$;

comment on procedure staging.validate_transactions(bigint) is
    'Validates the staged transactions.csv rows of a batch: typed rows, rejects, counts';
revoke all on procedure staging.validate_transactions(bigint) from public;
