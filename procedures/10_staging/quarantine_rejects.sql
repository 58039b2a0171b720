-- staging.quarantine_rejects(p_file, p_batch_id, p_key, rejected out): the quarantine step
--   of the four validate_<file> procedures. Every row of the batch's typed partition with
--   rules (null: accepted) goes to etl.rejected_row: file_name <p_file>.csv, its line, its
--   raw key (raw_<p_key>, as staged), its rules, and raw = a JSON object of every raw value
--   as staged, keyed by the file's column name: the raw_<column> columns of
--   staging.validated_<p_file> (typed_rows.sql), so the file's columns are listed once, by
--   its typed function. Returns the rows it quarantined.
--   The caller decides whether the quarantine's per-row foreign-key triggers run (the
--   transactions and items validations skip them: every row references the batch, locked).
--   Not safe to call twice alone: staging.clear_validation deletes the file's rejects first.
--   p_file is the table stem (customers, products, transactions, transaction_items); the
--   names come from fixed identifiers, quoted with %I and %L.
create or replace procedure staging.quarantine_rejects(
    p_file text,
    p_batch_id bigint,
    p_key text,
    rejected out bigint
)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_raw_values text;
begin
    select string_agg(format('%L, v.%I', substr(a.attname, length('raw_') + 1), a.attname),
                      ', ' order by a.attnum)
    into strict v_raw_values
    from pg_attribute a
    where a.attrelid = format('staging.%I', 'validated_' || p_file)::regclass
      and a.attnum > 0
      and not a.attisdropped
      and a.attname like 'raw\_%';

    execute format(
        'insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw) '
        'select %1$s, %2$L, v.line_no, v.%3$I, v.rules, jsonb_build_object(%4$s) '
        'from staging.%5$I v '
        'where v.batch_id = %1$s and v.rules is not null',
        p_batch_id, p_file || '.csv', 'raw_' || p_key, v_raw_values, 'validated_' || p_file);
    get diagnostics rejected = row_count;
end;
$$;

comment on procedure staging.quarantine_rejects(text, bigint, text) is
    'Copies the rejected rows of a file''s typed partition, with their raw values, into '
    'etl.rejected_row';
