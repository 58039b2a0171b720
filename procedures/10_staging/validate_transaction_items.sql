-- staging.validate_transaction_items(p_batch_id bigint)
--
-- Contract (DATA_CONTRACT.md, "transaction_items.csv", "Value rules, precisely",
-- "Validation rules"): validates every staged row of transaction_items.csv of the batch.
--   Inputs: staging.transaction_items (raw text) of the batch; the transactions and
--   products accepted in the same batch (staging.validated_transactions and
--   validated_products: staging.validate_batch validates those files first),
--   production.transactions and production.products ("known" = in production or accepted
--   in the batch; production transactions are probed by key only for ids the batch does
--   not hold).
--   Writes:
--   - staging.validated_transaction_items: one row per staged row, typed (trimmed; item_id,
--     transaction_id, product_id as bigint, quantity integer, money numeric(12,2), an empty
--     discount as 0), rules = the rules it broke, null when accepted;
--   - etl.rejected_row: each rejected row with its rules, line, raw key and raw values;
--   - etl.batch_file.rows_accepted of the file (via staging.record_file_result).
--   Rules: missing_required (item_id, transaction_id, product_id, quantity, unit_price),
--   invalid_integer (any of the three keys), invalid_quantity (not digits or not 1..1000),
--   invalid_amount (unit_price not money or < 0), invalid_discount (not money, < 0, or above
--   quantity * unit_price when both are valid), unknown_transaction, unknown_product (only
--   for well-formed ids), duplicate_key (every row of an item_id but the last, alone).
-- Speed: one pass over the staged rows. A row whose six values hold nothing but digits and
--   dots (checked with one pattern on the row) is already trimmed, and each of its values
--   needs only positions and lengths (etl.key_from_digits, etl.money_from_text: the same
--   functions the full parsers end in); other rows go through the full parsers.
-- Safe to call twice: it first deletes the file's previous results for the batch (its
--   validated rows, its rejects other than ingestion's malformed_row) in the same
--   transaction, then computes them again from the same inputs.
create or replace procedure staging.validate_transaction_items(p_batch_id bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
set work_mem = '256MB'
as $$
declare
    v_staged     bigint;
    v_duplicates bigint;
    v_rejected   bigint;
begin
    delete from staging.validated_transaction_items v where v.batch_id = p_batch_id;
    delete from etl.rejected_row r
    where r.batch_id = p_batch_id
      and r.file_name = 'transaction_items.csv'
      and not ('malformed_row' = any (r.rules));

    -- 1. every staged row, typed, with every rule but duplicate_key
    insert into staging.validated_transaction_items (
        batch_id, line_no, item_id, transaction_id, product_id, quantity, unit_price,
        discount, rules
    )
    with staged_rows as (
        select
            s.line_no, s.item_id, s.transaction_id, s.product_id, s.quantity, s.unit_price,
            s.discount,
            concat(s.item_id, '|', s.transaction_id, '|', s.product_id, '|', s.quantity, '|',
                   s.unit_price, '|', s.discount) as row_text
        from staging.transaction_items s
        where s.batch_id = p_batch_id
        offset 0
    ),
    cleaned_values as (
        -- plain: the row holds only digits, dots and its five separators
        select
            r.line_no,
            r.row_text ~ '^[0-9.|]+$'
                and length(r.row_text) - length(replace(r.row_text, '|', '')) = 5 as plain,
            r.item_id, r.transaction_id, r.product_id, r.quantity, r.unit_price, r.discount
        from staged_rows r
        offset 0
    ),
    trimmed_values as (
        select
            c.line_no,
            c.plain,
            case when c.plain then nullif(c.item_id, '') else etl.clean_value(c.item_id) end
                as item_id_text,
            case when c.plain then nullif(c.transaction_id, '')
                 else etl.clean_value(c.transaction_id) end as transaction_id_text,
            case when c.plain then nullif(c.product_id, '')
                 else etl.clean_value(c.product_id) end as product_id_text,
            case when c.plain then nullif(c.quantity, '')
                 else etl.clean_value(c.quantity) end as quantity_text,
            case when c.plain then nullif(c.unit_price, '')
                 else etl.clean_value(c.unit_price) end as unit_price_text,
            case when c.plain then nullif(c.discount, '')
                 else etl.clean_value(c.discount) end as discount_text
        from cleaned_values c
        offset 0
    ),
    typed_values as (
        select
            t.line_no, t.item_id_text, t.transaction_id_text, t.product_id_text,
            t.quantity_text, t.unit_price_text, t.discount_text,
            case when not t.plain then etl.parse_key(t.item_id_text)
                 when position('.' in t.item_id_text) = 0
                 then etl.key_from_digits(t.item_id_text) end as item_id,
            case when not t.plain then etl.parse_key(t.transaction_id_text)
                 when position('.' in t.transaction_id_text) = 0
                 then etl.key_from_digits(t.transaction_id_text) end as transaction_id,
            case when not t.plain then etl.parse_key(t.product_id_text)
                 when position('.' in t.product_id_text) = 0
                 then etl.key_from_digits(t.product_id_text) end as product_id,
            case when not t.plain then etl.parse_count(t.quantity_text)
                 when position('.' in t.quantity_text) = 0
                 then etl.count_from_digits(t.quantity_text) end as quantity,
            case when not t.plain then etl.parse_money(t.unit_price_text)
                 when left(t.unit_price_text, 1) <> '.'
                      and position('.' in substr(t.unit_price_text,
                                                 position('.' in t.unit_price_text) + 1)) = 0
                 then etl.money_from_text(t.unit_price_text) end as unit_price,
            case when not t.plain then etl.parse_money(t.discount_text)
                 when left(t.discount_text, 1) <> '.'
                      and position('.' in substr(t.discount_text,
                                                 position('.' in t.discount_text) + 1)) = 0
                 then etl.money_from_text(t.discount_text) end as discount
        from trimmed_values t
        offset 0
    ),
    batch_transactions as (
        -- accepted in this batch; production is probed only for ids not found here
        select v.transaction_id
        from staging.validated_transactions v
        where v.batch_id = p_batch_id and v.rules is null and v.resolved_batch_id is null
    ),
    known_products as (
        select p.product_id from production.products p
        union
        select v.product_id
        from staging.validated_products v
        where v.batch_id = p_batch_id and v.rules is null
    ),
    rule_checks as (
        select
            t.line_no, t.item_id, t.transaction_id, t.product_id, t.quantity, t.unit_price,
            case when t.discount_text is null then 0 else t.discount end as discount,
            t.item_id_text is null or t.transaction_id_text is null
                or t.product_id_text is null or t.quantity_text is null
                or t.unit_price_text is null as missing_required,
            (t.item_id_text is not null and t.item_id is null)
                or (t.transaction_id_text is not null and t.transaction_id is null)
                or (t.product_id_text is not null and t.product_id is null) as invalid_integer,
            t.quantity_text is not null
                and not coalesce(t.quantity between 1 and 1000, false) as invalid_quantity,
            t.unit_price_text is not null
                and not coalesce(t.unit_price >= 0, false) as invalid_amount,
            t.discount_text is not null
                and (t.discount is null
                     or t.discount < 0
                     or (coalesce(t.quantity between 1 and 1000, false)
                         and coalesce(t.unit_price >= 0, false)
                         and t.discount > t.quantity * t.unit_price)) as invalid_discount,
            t.transaction_id is not null
                and bt.transaction_id is null
                and not exists (select 1 from production.transactions pt
                                where pt.transaction_id = t.transaction_id)
                as unknown_transaction,
            t.product_id is not null and kp.product_id is null as unknown_product
        from typed_values t
        left join batch_transactions bt on bt.transaction_id = t.transaction_id
        left join known_products kp on kp.product_id = t.product_id
    )
    select
        p_batch_id, c.line_no, c.item_id, c.transaction_id, c.product_id, c.quantity,
        c.unit_price, c.discount,
        case when c.missing_required or c.invalid_integer or c.invalid_quantity
                  or c.invalid_amount or c.invalid_discount or c.unknown_transaction
                  or c.unknown_product
        then array_remove(array[
            case when c.missing_required then 'missing_required' end,
            case when c.invalid_integer then 'invalid_integer' end,
            case when c.invalid_amount then 'invalid_amount' end,
            case when c.invalid_quantity then 'invalid_quantity' end,
            case when c.invalid_discount then 'invalid_discount' end,
            case when c.unknown_transaction then 'unknown_transaction' end,
            case when c.unknown_product then 'unknown_product' end
        ], null)
        end
    from rule_checks c;
    get diagnostics v_staged = row_count;
    analyze staging.validated_transaction_items;

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    update staging.validated_transaction_items v
    set rules = array['duplicate_key']
    from (
        select d.item_id, max(d.line_no) as last_line
        from staging.validated_transaction_items d
        where d.batch_id = p_batch_id and d.item_id is not null
        group by d.item_id
        having count(*) > 1
    ) duplicated_keys
    where v.batch_id = p_batch_id
      and v.item_id = duplicated_keys.item_id
      and v.line_no < duplicated_keys.last_line;
    get diagnostics v_duplicates = row_count;

    -- 3. the quarantine: rejected rows with their raw values
    insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw)
    select
        p_batch_id, 'transaction_items.csv', v.line_no, s.item_id, v.rules,
        jsonb_build_object(
            'item_id', s.item_id, 'transaction_id', s.transaction_id,
            'product_id', s.product_id, 'quantity', s.quantity, 'unit_price', s.unit_price,
            'discount', s.discount)
    from staging.validated_transaction_items v
    join staging.transaction_items s on s.batch_id = v.batch_id and s.line_no = v.line_no
    where v.batch_id = p_batch_id and v.rules is not null;
    get diagnostics v_rejected = row_count;

    call staging.record_file_result(p_batch_id, 'transaction_items.csv', v_staged, v_rejected,
                                    v_duplicates);
end
$$;

comment on procedure staging.validate_transaction_items(bigint) is
    'Validates the staged transaction_items.csv rows of a batch: typed rows, rejects, counts';
