-- staging.validate_customers(p_batch_id bigint)
--
-- Contract (DATA_CONTRACT.md, "customers.csv", "Value rules, precisely", "Validation
-- rules"): validates every staged row of customers.csv of the batch.
--   Inputs: staging.customers (raw text) of the batch; etl.batch.load_ts (range rules:
--   signup_date not after the load date, updated_at not after the load time, neither
--   before 2000-01-01, all in UTC); production.customers (e-mails owned before the batch).
--   Writes:
--   - staging.validated_customers: one row per staged row, typed and trimmed (e-mail
--     lower-cased, empty optional values null), rules = the rules it broke, null when
--     accepted;
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
-- Safe to call twice: it first deletes the file's previous results for the batch (its
--   validated rows, its rejects other than ingestion's malformed_row) in the same
--   transaction, then computes them again from the same inputs.
create or replace procedure staging.validate_customers(p_batch_id bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
set work_mem = '256MB'
as $$
declare
    v_load_ts    timestamptz;
    v_load_date  date;
    v_staged     bigint;
    v_duplicates bigint;
    v_conflicts  bigint;
    v_rejected   bigint;
begin
    select b.load_ts into strict v_load_ts from etl.batch b where b.batch_id = p_batch_id;
    v_load_date := (v_load_ts at time zone 'UTC')::date;

    delete from staging.validated_customers v where v.batch_id = p_batch_id;
    delete from etl.rejected_row r
    where r.batch_id = p_batch_id
      and r.file_name = 'customers.csv'
      and not ('malformed_row' = any (r.rules));

    -- 1. every staged row, typed, with every rule but duplicate_key and email_conflict
    insert into staging.validated_customers (
        batch_id, line_no, customer_id, first_name, last_name, email, phone, city, state,
        country, signup_date, source_updated_at, rules
    )
    with trimmed_values as (
        select
            s.line_no,
            etl.clean_value(s.customer_id) as customer_id_text,
            etl.clean_value(s.first_name) as first_name,
            etl.clean_value(s.last_name) as last_name,
            etl.clean_value(s.email) as email_text,
            etl.clean_value(s.phone) as phone,
            etl.clean_value(s.city) as city,
            etl.clean_value(s.state) as state,
            etl.clean_value(s.country) as country,
            etl.clean_value(s.signup_date) as signup_date_text,
            etl.clean_value(s.updated_at) as updated_at_text
        from staging.customers s
        where s.batch_id = p_batch_id
        offset 0
    ),
    typed_values as (
        select
            t.*,
            etl.parse_key(t.customer_id_text) as customer_id,
            etl.is_email(t.email_text) as email_ok,
            etl.parse_date(t.signup_date_text) as signup_date,
            etl.parse_timestamp(t.updated_at_text) as updated_at
        from trimmed_values t
        offset 0
    ),
    rule_checks as (
        select
            t.line_no, t.customer_id, t.first_name, t.last_name,
            case when t.email_ok then lower(t.email_text) end as email,
            t.phone, t.city, t.state, t.country, t.signup_date, t.updated_at,
            t.customer_id_text is null or t.first_name is null or t.last_name is null
                or t.email_text is null or t.country is null
                or t.signup_date_text is null as missing_required,
            t.customer_id_text is not null and t.customer_id is null as invalid_integer,
            t.email_text is not null and not t.email_ok as invalid_email,
            t.signup_date_text is not null and t.signup_date is null as invalid_date,
            t.updated_at_text is not null and t.updated_at is null as invalid_timestamp,
            coalesce(t.signup_date < date '2000-01-01' or t.signup_date > v_load_date, false)
                or coalesce(t.updated_at < timestamptz '2000-01-01 00:00:00+00'
                            or t.updated_at > v_load_ts, false) as out_of_range
        from typed_values t
    )
    select
        p_batch_id, c.line_no, c.customer_id, c.first_name, c.last_name, c.email, c.phone,
        c.city, c.state, c.country, c.signup_date, c.updated_at,
        case when c.missing_required or c.invalid_integer or c.invalid_email
                  or c.invalid_date or c.invalid_timestamp or c.out_of_range
        then array_remove(array[
            case when c.missing_required then 'missing_required' end,
            case when c.invalid_integer then 'invalid_integer' end,
            case when c.invalid_email then 'invalid_email' end,
            case when c.invalid_date then 'invalid_date' end,
            case when c.invalid_timestamp then 'invalid_timestamp' end,
            case when c.out_of_range then 'out_of_range' end
        ], null)
        end
    from rule_checks c;
    get diagnostics v_staged = row_count;
    analyze staging.validated_customers;

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    update staging.validated_customers v
    set rules = array['duplicate_key']
    from (
        select d.customer_id, max(d.line_no) as last_line
        from staging.validated_customers d
        where d.batch_id = p_batch_id and d.customer_id is not null
        group by d.customer_id
        having count(*) > 1
    ) duplicated_keys
    where v.batch_id = p_batch_id
      and v.customer_id = duplicated_keys.customer_id
      and v.line_no < duplicated_keys.last_line;
    get diagnostics v_duplicates = row_count;

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
    insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw)
    select
        p_batch_id, 'customers.csv', v.line_no, s.customer_id, v.rules,
        jsonb_build_object(
            'customer_id', s.customer_id, 'first_name', s.first_name,
            'last_name', s.last_name, 'email', s.email, 'phone', s.phone, 'city', s.city,
            'state', s.state, 'country', s.country, 'signup_date', s.signup_date,
            'updated_at', s.updated_at)
    from staging.validated_customers v
    join staging.customers s on s.batch_id = v.batch_id and s.line_no = v.line_no
    where v.batch_id = p_batch_id and v.rules is not null;
    get diagnostics v_rejected = row_count;

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
