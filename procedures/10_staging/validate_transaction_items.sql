-- staging.validate_transaction_items(p_batch_id bigint)
--
-- Contract (DATA_CONTRACT.md, "transaction_items.csv", "Value rules, precisely",
-- "Validation rules"): validates every staged row of transaction_items.csv of the batch.
--   Inputs: staging.transaction_items (raw text) of the batch; the transactions and products
--   accepted earlier in the same batch (staging.validated_transactions / _products:
--   staging.validate_batch validates those files first); production.transactions and
--   production.products ("known" = in production or accepted in the batch).
--   Writes:
--   - the batch's partition of staging.validated_transaction_items: one row per staged row,
--     typed (staging.typed_transaction_items), rules = the rules it broke, null when
--     accepted (an empty discount stays null: it means 0);
--   - etl.rejected_row: each rejected row with its rules, line, raw key and raw values;
--   - etl.batch_file.rows_accepted and etl.dq_result of the file
--     (staging.record_file_result).
--   Rules: missing_required (item_id, transaction_id, product_id, quantity, unit_price),
--   invalid_integer (any of the three keys), invalid_quantity (not digits or not 1..1000),
--   invalid_amount (unit_price not money or < 0), invalid_discount (not money, < 0, or above
--   quantity * unit_price when both are valid), unknown_transaction and unknown_product
--   (only for well-formed ids), duplicate_key (every row of an item_id but the last, alone).
-- Steps: (1) CREATE TABLE AS the batch's partition from staging.typed_transaction_items, in
--   parallel, and attach it; (2) duplicate_key; (3) the rules of every other row with a
--   problem (production is probed for transactions the batch does not hold). Each UPDATE
--   returns the rows it rejected into etl.rejected_row (a data-modifying CTE), so the
--   quarantine costs no further pass over the 3M-row partition.
-- Security definer: it creates, attaches and drops the batch's partition, which needs the
--   owner of the staging tables (the migrating role); callers need only EXECUTE (granted to
--   warehouse_etl, revoked from PUBLIC). Every identifier it builds is quoted (%I) and the
--   batch id is a bigint.
-- Settings (this call only): work_mem for the sorts and hashes of a whole batch; cheaper
--   parallel setup and tuples, so the planner gives the parsing (costly expressions it
--   estimates as cheap) to parallel workers; no hash aggregation, so duplicate keys are
--   found by a parallel sort instead of one serial hash table of every key; no merge join,
--   so the batch's transactions are matched by a parallel hash join (the merge join sorted
--   every staged row in each worker: 12.3 s against 10.7 s for the typed partition).
--   For steps 2-3 only, when allowed: session_replication_role = replica (the quarantine's
--   foreign keys hold by construction; see the comment before step 2), reset afterwards.
-- Safe to call twice: it first drops the batch's partition and deletes the file's rejects
--   other than ingestion's malformed_row, in the same transaction, then computes them again
--   from the same inputs.
create or replace procedure staging.validate_transaction_items(p_batch_id bigint)
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
    v_partition       text := format('validated_transaction_items_%s', p_batch_id);
    v_known_products  bigint[];
    v_staged          bigint;
    v_duplicated_keys bigint[];
    v_last_lines      bigint[];
    v_duplicates      bigint;
    v_rejected        bigint;
    v_ruled           bigint;
    v_role_before     text := current_setting('session_replication_role');
begin
    call staging.clear_validation('transaction_items', p_batch_id);

    -- 1. every staged row, typed, with the facts the rules need: a parallel CREATE TABLE AS
    v_known_products := array(
        select p.product_id from production.products p
        union
        select v.product_id from staging.validated_products v
        where v.batch_id = p_batch_id and v.rules is null
    );
    execute format('create unlogged table staging.%I as '
                   'select * from staging.typed_transaction_items($1, $2)', v_partition)
        using p_batch_id, v_known_products;
    get diagnostics v_staged = row_count;
    call staging.attach_validated_partition('transaction_items', p_batch_id);

    -- the quarantine's rows reference this batch (locked here once, as the foreign key's
    -- trigger would lock it for each row) and no resolution: when the owner may set
    -- session_replication_role and etl.rejected_row has no user trigger, its per-row
    -- foreign-key triggers are skipped for steps 2-3 (~0.9 s per 230,000 rejects)
    perform 1 from etl.batch b where b.batch_id = p_batch_id for key share;
    if found then
        perform etl.skip_fk_triggers(array['etl.rejected_row'::regclass]);
    end if;

    -- 2. duplicates: every row of a key but the last is rejected for duplicate_key alone
    --    (the keys found by a parallel, sort-based query; then the update, whose rows go to
    --    the quarantine with their raw values)
    select array_agg(d.item_id), array_agg(d.last_line)
    into v_duplicated_keys, v_last_lines
    from (
        select k.item_id, max(k.line_no) as last_line
        from staging.validated_transaction_items k
        where k.batch_id = p_batch_id and k.item_id is not null
        group by k.item_id
        having count(*) > 1
    ) d;
    with duplicates as (
        update staging.validated_transaction_items v
        set rules = array['duplicate_key']
        from unnest(v_duplicated_keys, v_last_lines) as duplicated (item_id, last_line)
        where v.batch_id = p_batch_id
          and v.item_id = duplicated.item_id
          and v.line_no < duplicated.last_line
        returning v.line_no, v.rules, v.raw_item_id, v.raw_transaction_id, v.raw_product_id,
                  v.raw_quantity, v.raw_unit_price, v.raw_discount
    )
    insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw)
    select
        p_batch_id, 'transaction_items.csv', d.line_no, d.raw_item_id, d.rules,
        jsonb_build_object(
            'item_id', d.raw_item_id, 'transaction_id', d.raw_transaction_id,
            'product_id', d.raw_product_id, 'quantity', d.raw_quantity,
            'unit_price', d.raw_unit_price, 'discount', d.raw_discount)
    from duplicates d;
    get diagnostics v_duplicates = row_count;

    -- 3. every rule the other rows break (the WHERE finds them with cheap tests first; a row
    --    it takes that breaks nothing keeps rules null); the rejected ones to the quarantine
    with ruled as (
        update staging.validated_transaction_items v
        set rules = nullif(array_remove(array[
                case when not (v.item_id_given and v.transaction_id_given and v.product_id_given
                               and v.quantity_given and v.unit_price_given)
                     then 'missing_required' end,
                case when (v.item_id_given and v.item_id is null)
                          or (v.transaction_id_given and v.transaction_id is null)
                          or (v.product_id_given and v.product_id is null)
                     then 'invalid_integer' end,
                case when v.unit_price_given and not coalesce(v.unit_price >= 0, false)
                     then 'invalid_amount' end,
                case when v.quantity_given and not coalesce(v.quantity between 1 and 1000, false)
                     then 'invalid_quantity' end,
                case when v.discount_given
                          and (v.discount is null or v.discount < 0
                               or (coalesce(v.quantity between 1 and 1000, false)
                                   and coalesce(v.unit_price >= 0, false)
                                   and v.discount > v.quantity * v.unit_price))
                     then 'invalid_discount' end,
                case when v.transaction_id is not null and not v.transaction_known
                          and not exists (select 1 from production.transactions pt
                                          where pt.transaction_id = v.transaction_id)
                     then 'unknown_transaction' end,
                case when v.product_id is not null and not v.product_known
                     then 'unknown_product' end
            ], null), '{}')
        where v.batch_id = p_batch_id
          and v.rules is null
          and (not (v.item_id_given and v.transaction_id_given and v.product_id_given
                    and v.quantity_given and v.unit_price_given)
               or v.item_id is null or v.transaction_id is null or v.product_id is null
               or v.quantity is null or v.quantity not between 1 and 1000
               or v.unit_price is null or v.unit_price < 0
               or (v.discount_given
                   and (v.discount is null or v.discount < 0
                        or v.discount > v.quantity * v.unit_price))
               or not v.product_known
               or (not v.transaction_known
                   and not exists (select 1 from production.transactions pt
                                   where pt.transaction_id = v.transaction_id)))
        returning v.line_no, v.rules, v.raw_item_id, v.raw_transaction_id, v.raw_product_id,
                  v.raw_quantity, v.raw_unit_price, v.raw_discount
    )
    insert into etl.rejected_row (batch_id, file_name, line_no, record_key, rules, raw)
    select
        p_batch_id, 'transaction_items.csv', r.line_no, r.raw_item_id, r.rules,
        jsonb_build_object(
            'item_id', r.raw_item_id, 'transaction_id', r.raw_transaction_id,
            'product_id', r.raw_product_id, 'quantity', r.raw_quantity,
            'unit_price', r.raw_unit_price, 'discount', r.raw_discount)
    from ruled r
    where r.rules is not null;
    get diagnostics v_ruled = row_count;
    v_rejected := v_duplicates + v_ruled;
    perform set_config('session_replication_role', v_role_before, true);

    call staging.record_file_result(p_batch_id, 'transaction_items.csv', v_staged, v_rejected,
                                    v_duplicates);
end
$$;

comment on procedure staging.validate_transaction_items(bigint) is
    'Validates the staged transaction_items.csv rows of a batch: typed rows, rejects, counts';
revoke all on procedure staging.validate_transaction_items(bigint) from public;
