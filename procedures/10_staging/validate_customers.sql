-- staging.validate_customers(p_batch_id bigint)
--
-- Contract (docs/data-contract.md, "customers.csv", "Value rules, precisely", "Validation
-- rules"): validates every staged row of customers.csv of the batch.
--   Inputs: staging.customers (raw text) of the batch; etl.batch.load_ts (range rules:
--   signup_date not after the load date, updated_at not after the load time, neither
--   before 2000-01-01, all in UTC); production.customers (e-mails owned before the batch).
--   Writes:
--   - the batch's partition of staging.validated_customers: one row per staged row, typed
--     and trimmed (staging.typed_customers: e-mail lower-cased, empty optional values
--     null), rules = the rules it broke, null when accepted;
--   - etl.rejected_row: each rejected row with its rules, line, raw key and raw values;
--   - etl.batch_file.rows_accepted and etl.dq_result of the file.
--   Rules: missing_required (customer_id, first_name, last_name, email, country,
--   signup_date), invalid_integer, invalid_email, invalid_date, invalid_timestamp,
--   out_of_range, duplicate_key (every row of a customer_id but the last, alone), and
--   email_conflict: for every row but those duplicates, with a well-formed e-mail, when the
--   lower-cased e-mail belongs to a different customer id in production (before the batch),
--   or to a different customer id on an earlier line of the batch whose row is accepted.
--   Rows rejected for other reasons claim no e-mail, so the first claim of an e-mail is the
--   lowest line among the rows that break nothing and do not clash with production.
-- Steps: (1) CREATE TABLE AS the batch's partition from staging.typed_customers (typed
--   values and every rule but duplicate_key and email_conflict, computed by the parallel
--   workers), and attach it; (2) duplicate_key: an UPDATE of the duplicated rows only;
--   (3) email_conflict: an UPDATE of the conflicting rows only; (4) the rejected rows into
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
-- Apart from the other validate_<file> (steps shared as staging.* calls): email_conflict.
create or replace procedure staging.validate_customers(p_batch_id bigint)
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
    v_conflicts       bigint;
    v_rejected        bigint;
begin
    select b.load_ts into strict v_load_ts from etl.batch b where b.batch_id = p_batch_id;

    call staging.clear_validation('customers', p_batch_id);

    -- 1. every staged row, typed, with the rules a row decides alone
    call staging.build_validated_partition(
        'customers', p_batch_id,
        format('staging.typed_customers(%s, %L::timestamptz)', p_batch_id, v_load_ts),
        v_staged);

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    --    (the keys found by a parallel, sort-based query; then an update of those rows only)
    call staging.mark_duplicate_keys('customers', p_batch_id, 'customer_id', v_duplicates);

    -- 3. e-mail conflicts, against production before the batch and earlier accepted lines
    --    (joins, not OR-ed EXISTS: each set is computed once)
    with email_rows as materialized (
        select v.line_no, v.customer_id, v.email, v.rules
        from staging.validated_customers v
        where v.batch_id = p_batch_id
          and v.email is not null
          and v.rules is distinct from array['duplicate_key']
    ),
    production_conflicts as materialized (
        select distinct e.line_no
        from email_rows e
        join production.customers pc on pc.email = e.email
        where pc.customer_id is distinct from e.customer_id
    ),
    first_claims as (
        select e.email, min(e.line_no) as first_line
        from email_rows e
        left join production_conflicts pc on pc.line_no = e.line_no
        where e.rules is null and pc.line_no is null
        group by e.email
    ),
    conflicting_rows as (
        select pc.line_no from production_conflicts pc
        union
        select e.line_no
        from email_rows e
        join first_claims f on f.email = e.email and f.first_line < e.line_no
    )
    update staging.validated_customers v
    set rules = coalesce(v.rules, '{}') || array['email_conflict']
    from conflicting_rows c
    where v.batch_id = p_batch_id and v.line_no = c.line_no;
    get diagnostics v_conflicts = row_count;

    -- 4. the quarantine: rejected rows with their raw values
    call staging.quarantine_rejects('customers', p_batch_id, 'customer_id', v_rejected);

    if v_conflicts > 0 then
        raise notice 'validate_customers: batch %: customers.csv: % rows with email_conflict',
            p_batch_id, v_conflicts;
    end if;
    call staging.record_file_result(p_batch_id, 'customers.csv', v_staged, v_rejected,
                                    v_duplicates);
end
$$;

comment on procedure staging.validate_customers(bigint) is
    'Validates the staged customers.csv rows of a batch: typed rows, rejects, counts';
revoke all on procedure staging.validate_customers(bigint) from public;
