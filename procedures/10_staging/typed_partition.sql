-- The lifecycle of a batch's typed partition, shared by the four validate_<file> procedures.
--
-- staging.validated_<file> is partitioned by batch; each validation creates the batch's
-- partition as an UNLOGGED table with a parallel CREATE TABLE AS of the file's typed query
-- (staging.typed_<file>, typed_rows.sql), then attaches it.
--
-- staging.clear_validation(p_file, p_batch_id): forgets an earlier validation of the file
--   in the batch: its rejects (malformed rows excepted: ingestion wrote those) and its
--   partition. Makes a second validation leave what the first left.
-- staging.build_validated_partition(p_file, p_batch_id, p_typed_rows, rows out): creates
--   the partition staging.validated_<file>_<batch> as `select * from <p_typed_rows>` (the
--   file's typed function called with literal arguments, built by the caller with format()
--   and %s / %L), with hash joins only: a batch's staged rows have no statistics yet and are
--   estimated at one row, so a nested loop would join them once per staged row (over 13
--   minutes for a 150,000-row batch). Then attaches it to staging.validated_<file> and
--   analyzes it with a sample of 3,000 rows (default_statistics_target = 10, this call
--   only): enough for the plans of the validation and merge statements (null fraction of
--   rules, distinct keys), and a tenth of the default sample's cost (0.06 s instead of
--   0.6 s for 4.1M rows). Returns the rows typed.
-- p_file is the table stem (customers, products, transactions, transaction_items); the
-- names come from fixed identifiers, quoted with %I.
create or replace procedure staging.clear_validation(p_file text, p_batch_id bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_partition text := format('validated_%s_%s', p_file, p_batch_id);
begin
    delete from etl.rejected_row r
    where r.batch_id = p_batch_id
      and r.file_name = p_file || '.csv'
      and not ('malformed_row' = any (r.rules));
    if to_regclass(format('staging.%I', v_partition)) is not null then
        execute format('drop table staging.%I', v_partition);
    end if;
end;
$$;

comment on procedure staging.clear_validation(text, bigint) is
    'Forgets an earlier validation of a file in a batch: its rejects and typed partition';

create or replace procedure staging.build_validated_partition(
    p_file text, p_batch_id bigint, p_typed_rows text, rows out bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
set enable_nestloop = off
set default_statistics_target = 10
-- rows in the staged order (procedures/00_common/bulk_load.sql)
set synchronize_seqscans = off
as $$
declare
    v_partition text := format('validated_%s_%s', p_file, p_batch_id);
begin
    execute format('create unlogged table staging.%I as select * from %s',
                   v_partition, p_typed_rows);
    get diagnostics rows = row_count;
    execute format('alter table staging.%I attach partition staging.%I for values in (%s)',
                   'validated_' || p_file, v_partition, p_batch_id);
    execute format('analyze staging.%I', v_partition);
end;
$$;

comment on procedure staging.build_validated_partition(text, bigint, text) is
    'Creates (hash joins only), attaches and analyzes the typed partition of a file in a batch';

-- staging.attach_validated_partition was folded into build_validated_partition: dropped
-- where an earlier version of this file created it.
drop procedure if exists staging.attach_validated_partition(text, bigint);
