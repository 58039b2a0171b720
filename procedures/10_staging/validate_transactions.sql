-- staging.validate_transactions(p_batch_id bigint)
--
-- Contract (docs/data-contract.md, "transactions.csv", "Value rules, precisely", "Validation
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
-- Steps: (1) CREATE TABLE AS the batch's partition from staging.typed_transactions (typed
--   values and every rule but duplicate_key, computed by the parallel workers), and attach
--   it; (2) duplicate_key: an UPDATE of the duplicated rows only; (3) the rejected rows into
--   etl.rejected_row (staging.quarantine_rejects). No UPDATE of every row: the rules are
--   written with the row.
-- Security definer: it creates, attaches and drops the batch's partition, which needs the
--   owner of the staging tables (the migrating role); callers need only EXECUTE (granted to
--   warehouse_etl, revoked from PUBLIC). Every identifier it builds is quoted (%I) and the
--   batch id is a bigint.
-- Settings (this call only): work_mem for the sorts and hashes of a whole batch; cheaper
--   parallel setup and tuples, so the planner gives the parsing (costly expressions it
--   estimates as cheap) to parallel workers; no hash aggregation, so duplicate keys are
--   found by a parallel sort instead of one serial hash table of every key; no merge join,
--   so the customers are matched by hash joins (a merge join with production.customers
--   sorted every staged row in each worker, even with production empty: 0.4 s of the 1M
--   initial load). For steps 2-3 only, when allowed: session_replication_role = replica
--   (the quarantine's foreign keys hold by construction; see the comment before step 2),
--   reset afterwards.
-- Safe to call twice: it first drops the batch's partition and deletes the file's rejects
--   other than ingestion's malformed_row, in the same transaction, then computes them again
--   from the same inputs.
-- Apart from the other validate_<file> (steps shared as staging.* calls): the code lists.
create or replace procedure staging.validate_transactions(p_batch_id bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set work_mem = '256MB'
set enable_hashagg = off
set enable_mergejoin = off
set parallel_setup_cost = 100
set parallel_tuple_cost = 0.001
as $$
declare
    v_load_ts         timestamptz;
    v_payment_codes   text[];
    v_status_codes    text[];
    v_staged          bigint;
    v_duplicates      bigint;
    v_rejected        bigint;
    v_role_before     text := current_setting('session_replication_role');
begin
    select b.load_ts into strict v_load_ts from etl.batch b where b.batch_id = p_batch_id;
    v_payment_codes := array(select m.payment_method_code from production.payment_methods m);
    v_status_codes := array(select t.status_code from production.transaction_statuses t);

    call staging.clear_validation('transactions', p_batch_id);

    -- 1. every staged row, typed, with every rule but duplicate_key (a parallel CREATE
    --    TABLE AS)
    call staging.build_validated_partition(
        'transactions', p_batch_id,
        format('staging.typed_transactions(%s, %L::text[], %L::text[], %L::timestamptz)',
               p_batch_id, v_payment_codes, v_status_codes, v_load_ts),
        v_staged);

    -- the quarantine's rows reference this batch (locked here once, as the foreign key's
    -- trigger would lock it for each row) and no resolution: when the owner may set
    -- session_replication_role and etl.rejected_row has no user trigger, its per-row
    -- foreign-key triggers are skipped for steps 2-3
    perform 1 from etl.batch b where b.batch_id = p_batch_id for key share;
    if found then
        perform etl.skip_fk_triggers(array['etl.rejected_row'::regclass]);
    end if;

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    --    (the keys found by a parallel, sort-based query; then an update of those rows only)
    call staging.mark_duplicate_keys('transactions', p_batch_id, 'transaction_id',
                                     v_duplicates);

    -- 3. the quarantine: rejected rows with their rules and raw values
    call staging.quarantine_rejects('transactions', p_batch_id, 'transaction_id', v_rejected);
    perform set_config('session_replication_role', v_role_before, true);

    call staging.record_file_result(p_batch_id, 'transactions.csv', v_staged, v_rejected,
                                    v_duplicates);
end
$$;

comment on procedure staging.validate_transactions(bigint) is
    'Validates the staged transactions.csv rows of a batch: typed rows, rejects, counts';
revoke all on procedure staging.validate_transactions(bigint) from public;
