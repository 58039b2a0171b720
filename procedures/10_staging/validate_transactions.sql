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
--   - staging.validated_transactions: one row per staged row, typed (ids bigint,
--     transaction_ts timestamptz, payment_method_code and status_code normalised), rules =
--     the rules it broke, null when accepted;
--   - etl.rejected_row: each rejected row with its rules, line, raw key and raw values;
--   - etl.batch_file.rows_accepted and etl.dq_result of the file.
--   Rules: missing_required (every column is required), invalid_integer (transaction_id,
--   customer_id), invalid_timestamp, out_of_range, invalid_payment_method, invalid_status
--   (after normalisation: trim, lower-case, runs of spaces, hyphens, underscores -> `_`),
--   unknown_customer (only for a well-formed customer_id), duplicate_key (every row of a
--   transaction_id but the last, alone).
-- Safe to call twice: it first deletes the file's previous results for the batch (its
--   validated rows, its rejects other than ingestion's malformed_row) in the same
--   transaction, then computes them again from the same inputs.
create or replace procedure staging.validate_transactions(p_batch_id bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
set work_mem = '256MB'
as $$
declare
    v_load_ts    timestamptz;
    v_staged     bigint;
    v_duplicates bigint;
    v_rejected   bigint;
begin
    select b.load_ts into strict v_load_ts from etl.batch b where b.batch_id = p_batch_id;

    delete from staging.validated_transactions v where v.batch_id = p_batch_id;
    delete from etl.rejected_row r
    where r.batch_id = p_batch_id
      and r.file_name = 'transactions.csv'
      and not ('malformed_row' = any (r.rules));

    -- 1. every staged row, typed, with every rule but duplicate_key
    insert into staging.validated_transactions (
        batch_id, line_no, transaction_id, customer_id, transaction_ts, payment_method_code,
        status_code, rules
    )
    with trimmed_values as (
        select
            s.line_no,
            etl.clean_value(s.transaction_id) as transaction_id_text,
            etl.clean_value(s.customer_id) as customer_id_text,
            etl.clean_value(s.transaction_ts) as transaction_ts_text,
            etl.clean_value(s.payment_method) as payment_method_text,
            etl.clean_value(s.status) as status_text
        from staging.transactions s
        where s.batch_id = p_batch_id
        offset 0
    ),
    typed_values as (
        select
            t.line_no, t.transaction_id_text, t.customer_id_text, t.transaction_ts_text,
            t.payment_method_text, t.status_text,
            etl.parse_key(t.transaction_id_text) as transaction_id,
            etl.parse_key(t.customer_id_text) as customer_id,
            etl.parse_timestamp(t.transaction_ts_text) as transaction_ts,
            etl.normalise_code(t.payment_method_text) as payment_method_code,
            etl.normalise_code(t.status_text) as status_code
        from trimmed_values t
        offset 0
    ),
    known_customers as (
        select c.customer_id from production.customers c
        union
        select v.customer_id
        from staging.validated_customers v
        where v.batch_id = p_batch_id and v.rules is null
    ),
    rule_checks as (
        select
            t.line_no, t.transaction_id, t.customer_id, t.transaction_ts,
            t.payment_method_code, t.status_code,
            t.transaction_id_text is null or t.customer_id_text is null
                or t.transaction_ts_text is null or t.payment_method_text is null
                or t.status_text is null as missing_required,
            (t.transaction_id_text is not null and t.transaction_id is null)
                or (t.customer_id_text is not null and t.customer_id is null)
                as invalid_integer,
            t.transaction_ts_text is not null and t.transaction_ts is null
                as invalid_timestamp,
            t.transaction_ts < timestamptz '2000-01-01 00:00:00+00'
                or t.transaction_ts > v_load_ts as out_of_range,
            t.payment_method_text is not null and pm.payment_method_code is null
                as invalid_payment_method,
            t.status_text is not null and ts.status_code is null as invalid_status,
            t.customer_id is not null and kc.customer_id is null as unknown_customer
        from typed_values t
        left join production.payment_methods pm
            on pm.payment_method_code = t.payment_method_code
        left join production.transaction_statuses ts on ts.status_code = t.status_code
        left join known_customers kc on kc.customer_id = t.customer_id
    )
    select
        p_batch_id, c.line_no, c.transaction_id, c.customer_id, c.transaction_ts,
        c.payment_method_code, c.status_code,
        case when c.missing_required or c.invalid_integer or c.invalid_timestamp
                  or coalesce(c.out_of_range, false) or c.invalid_payment_method
                  or c.invalid_status or c.unknown_customer
        then array_remove(array[
            case when c.missing_required then 'missing_required' end,
            case when c.invalid_integer then 'invalid_integer' end,
            case when c.invalid_timestamp then 'invalid_timestamp' end,
            case when c.out_of_range then 'out_of_range' end,
            case when c.invalid_payment_method then 'invalid_payment_method' end,
            case when c.invalid_status then 'invalid_status' end,
            case when c.unknown_customer then 'unknown_customer' end
        ], null)
        end
    from rule_checks c;
    get diagnostics v_staged = row_count;
    analyze staging.validated_transactions;

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    update staging.validated_transactions v
    set rules = array['duplicate_key']
    from (
        select d.transaction_id, max(d.line_no) as last_line
        from staging.validated_transactions d
        where d.batch_id = p_batch_id and d.transaction_id is not null
        group by d.transaction_id
        having count(*) > 1
    ) duplicated_keys
    where v.batch_id = p_batch_id
      and v.transaction_id = duplicated_keys.transaction_id
      and v.line_no < duplicated_keys.last_line;
    get diagnostics v_duplicates = row_count;

    -- 3. the quarantine: rejected rows with their raw values
    insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw)
    select
        p_batch_id, 'transactions.csv', v.line_no, s.transaction_id, v.rules,
        jsonb_build_object(
            'transaction_id', s.transaction_id, 'customer_id', s.customer_id,
            'transaction_ts', s.transaction_ts, 'payment_method', s.payment_method,
            'status', s.status)
    from staging.validated_transactions v
    join staging.transactions s on s.batch_id = v.batch_id and s.line_no = v.line_no
    where v.batch_id = p_batch_id and v.rules is not null;
    get diagnostics v_rejected = row_count;

    call staging.record_file_result(p_batch_id, 'transactions.csv', v_staged, v_rejected,
                                    v_duplicates);
end
$$;

comment on procedure staging.validate_transactions(bigint) is
    'Validates the staged transactions.csv rows of a batch: typed rows, rejects, counts';
