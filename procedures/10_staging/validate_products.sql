-- staging.validate_products(p_batch_id bigint)
--
-- Contract (DATA_CONTRACT.md, "products.csv", "Value rules, precisely", "Validation
-- rules"): validates every staged row of products.csv of the batch.
--   Inputs: staging.products (raw text) of the batch; etl.batch.load_ts (range rule of
--   updated_at: not after the load time, not before 2000-01-01 UTC).
--   Writes:
--   - staging.validated_products: one row per staged row, typed and trimmed (money
--     numeric(12,2), empty optional values null), rules = the rules it broke, null when
--     accepted;
--   - etl.rejected_row: each rejected row with its rules, line, raw key and raw values;
--   - etl.batch_file.rows_accepted and etl.dq_result of the file.
--   Rules: missing_required (product_id, product_name, category, unit_price, cost),
--   invalid_integer, invalid_amount (unit_price not money or not > 0, cost not money or
--   not >= 0), invalid_timestamp, out_of_range, duplicate_key (every row of a product_id
--   but the last, alone).
-- Safe to call twice: it first deletes the file's previous results for the batch (its
--   validated rows, its rejects other than ingestion's malformed_row) in the same
--   transaction, then computes them again from the same inputs.
create or replace procedure staging.validate_products(p_batch_id bigint)
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

    delete from staging.validated_products v where v.batch_id = p_batch_id;
    delete from etl.rejected_row r
    where r.batch_id = p_batch_id
      and r.file_name = 'products.csv'
      and not ('malformed_row' = any (r.rules));

    -- 1. every staged row, typed, with every rule but duplicate_key
    insert into staging.validated_products (
        batch_id, line_no, product_id, product_name, category, brand, unit_price, cost,
        source_updated_at, rules
    )
    with trimmed_values as (
        select
            s.line_no,
            etl.clean_value(s.product_id) as product_id_text,
            etl.clean_value(s.product_name) as product_name,
            etl.clean_value(s.category) as category,
            etl.clean_value(s.brand) as brand,
            etl.clean_value(s.unit_price) as unit_price_text,
            etl.clean_value(s.cost) as cost_text,
            etl.clean_value(s.updated_at) as updated_at_text
        from staging.products s
        where s.batch_id = p_batch_id
        offset 0
    ),
    typed_values as (
        select
            t.*,
            etl.parse_key(t.product_id_text) as product_id,
            etl.parse_money(t.unit_price_text) as unit_price,
            etl.parse_money(t.cost_text) as cost,
            etl.parse_timestamp(t.updated_at_text) as updated_at
        from trimmed_values t
        offset 0
    ),
    rule_checks as (
        select
            t.line_no, t.product_id, t.product_name, t.category, t.brand, t.unit_price,
            t.cost, t.updated_at,
            t.product_id_text is null or t.product_name is null or t.category is null
                or t.unit_price_text is null or t.cost_text is null as missing_required,
            t.product_id_text is not null and t.product_id is null as invalid_integer,
            (t.unit_price_text is not null and not coalesce(t.unit_price > 0, false))
                or (t.cost_text is not null and not coalesce(t.cost >= 0, false))
                as invalid_amount,
            t.updated_at_text is not null and t.updated_at is null as invalid_timestamp,
            coalesce(t.updated_at < timestamptz '2000-01-01 00:00:00+00'
                     or t.updated_at > v_load_ts, false) as out_of_range
        from typed_values t
    )
    select
        p_batch_id, c.line_no, c.product_id, c.product_name, c.category, c.brand,
        c.unit_price, c.cost, c.updated_at,
        case when c.missing_required or c.invalid_integer or c.invalid_amount
                  or c.invalid_timestamp or c.out_of_range
        then array_remove(array[
            case when c.missing_required then 'missing_required' end,
            case when c.invalid_integer then 'invalid_integer' end,
            case when c.invalid_timestamp then 'invalid_timestamp' end,
            case when c.out_of_range then 'out_of_range' end,
            case when c.invalid_amount then 'invalid_amount' end
        ], null)
        end
    from rule_checks c;
    get diagnostics v_staged = row_count;
    analyze staging.validated_products;

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    update staging.validated_products v
    set rules = array['duplicate_key']
    from (
        select d.product_id, max(d.line_no) as last_line
        from staging.validated_products d
        where d.batch_id = p_batch_id and d.product_id is not null
        group by d.product_id
        having count(*) > 1
    ) duplicated_keys
    where v.batch_id = p_batch_id
      and v.product_id = duplicated_keys.product_id
      and v.line_no < duplicated_keys.last_line;
    get diagnostics v_duplicates = row_count;

    -- 3. the quarantine: rejected rows with their raw values
    insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw)
    select
        p_batch_id, 'products.csv', v.line_no, s.product_id, v.rules,
        jsonb_build_object(
            'product_id', s.product_id, 'product_name', s.product_name,
            'category', s.category, 'brand', s.brand, 'unit_price', s.unit_price,
            'cost', s.cost, 'updated_at', s.updated_at)
    from staging.validated_products v
    join staging.products s on s.batch_id = v.batch_id and s.line_no = v.line_no
    where v.batch_id = p_batch_id and v.rules is not null;
    get diagnostics v_rejected = row_count;

    call staging.record_file_result(p_batch_id, 'products.csv', v_staged, v_rejected,
                                    v_duplicates);
end
$$;

comment on procedure staging.validate_products(bigint) is
    'Validates the staged products.csv rows of a batch: typed rows, rejects, counts';
