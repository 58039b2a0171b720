-- staging.validate_products(p_batch_id bigint)
--
-- Contract (docs/data-contract.md, "products.csv", "Value rules, precisely", "Validation
-- rules"): validates every staged row of products.csv of the batch.
--   Inputs: staging.products (raw text) of the batch; etl.batch.load_ts (range rule of
--   updated_at: not after the load time, not before 2000-01-01 UTC).
--   Writes:
--   - the batch's partition of staging.validated_products: one row per staged row, typed
--     and trimmed (staging.typed_products: money numeric, empty optional values null),
--     rules = the rules it broke, null when accepted;
--   - etl.rejected_row: each rejected row with its rules, line, raw key and raw values;
--   - etl.batch_file.rows_accepted and etl.dq_result of the file.
--   Rules: missing_required (product_id, product_name, category, unit_price, cost),
--   invalid_integer, invalid_amount (unit_price not money or not > 0, cost not money or
--   not >= 0), invalid_timestamp, out_of_range, duplicate_key (every row of a product_id
--   but the last, alone).
-- Steps: (1) CREATE TABLE AS the batch's partition from staging.typed_products (typed
--   values and every rule but duplicate_key, computed by the parallel workers), and attach
--   it; (2) duplicate_key: an UPDATE of the duplicated rows only; (3) the rejected rows into
--   etl.rejected_row (staging.quarantine_rejects). No UPDATE of every row: the rules
--   are written with the row, as for the other three files.
-- Security definer: it creates, attaches and drops the batch's partition, which needs the
--   owner of the staging tables (the migrating role); callers need only EXECUTE (granted to
--   warehouse_etl, revoked from PUBLIC). Every identifier it builds is quoted (%I) and the
--   batch id is a bigint.
-- Settings (this call only): work_mem for the sorts and hashes of a whole batch; cheaper
--   parallel setup and tuples, so the planner gives the parsing (costly expressions it
--   estimates as cheap) to parallel workers; no hash aggregation, so duplicate keys are
--   found by a parallel sort instead of one serial hash table of every key.
-- Safe to call twice: it first drops the batch's partition and deletes the file's rejects
--   other than ingestion's malformed_row, in the same transaction, then computes them again
--   from the same inputs.
-- Apart from the other validate_<file> (steps shared as staging.* calls): products' query.
create or replace procedure staging.validate_products(p_batch_id bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set work_mem = '256MB'
set enable_hashagg = off
set parallel_setup_cost = 100
set parallel_tuple_cost = 0.001
as $$
declare
    v_load_ts         timestamptz;
    v_staged          bigint;
    v_duplicates      bigint;
    v_rejected        bigint;
begin
    select b.load_ts into strict v_load_ts from etl.batch b where b.batch_id = p_batch_id;

    call staging.clear_validation('products', p_batch_id);

    -- 1. every staged row, typed, with the rules a row decides alone
    call staging.build_validated_partition(
        'products', p_batch_id,
        format('staging.typed_products(%s, %L::timestamptz)', p_batch_id, v_load_ts),
        v_staged);

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    --    (the keys found by a parallel, sort-based query; then an update of those rows only)
    call staging.mark_duplicate_keys('products', p_batch_id, 'product_id', v_duplicates);

    -- 3. the quarantine: rejected rows with their raw values
    call staging.quarantine_rejects('products', p_batch_id, 'product_id', v_rejected);

    call staging.record_file_result(p_batch_id, 'products.csv', v_staged, v_rejected,
                                    v_duplicates);
end
$$;

comment on procedure staging.validate_products(bigint) is
    'Validates the staged products.csv rows of a batch: typed rows, rejects, counts';
revoke all on procedure staging.validate_products(bigint) from public;
