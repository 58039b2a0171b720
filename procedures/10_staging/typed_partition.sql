-- The lifecycle of a batch's typed rows, shared by the four validate_<file> procedures.
--
-- staging.validated_<file> is partitioned by batch; each validation creates the batch's
-- partition as an UNLOGGED table with a parallel CREATE TABLE AS (in the validate_<file>
-- procedure: the typed query is the file's own), then attaches it.
--
-- staging.clear_validation(p_file, p_batch_id): forgets an earlier validation of the file
--   in the batch: its rejects (malformed rows excepted: ingestion wrote those) and its
--   partition. Makes a second validation leave what the first left.
-- staging.attach_validated_partition(p_file, p_batch_id): attaches the freshly created
--   partition staging.validated_<file>_<batch> to staging.validated_<file> and analyzes it.
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

create or replace procedure staging.attach_validated_partition(p_file text, p_batch_id bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_partition text := format('validated_%s_%s', p_file, p_batch_id);
begin
    execute format('alter table staging.%I attach partition staging.%I for values in (%s)',
                   'validated_' || p_file, v_partition, p_batch_id);
    execute format('analyze staging.%I', v_partition);
end;
$$;

comment on procedure staging.attach_validated_partition(text, bigint) is
    'Attaches and analyzes the typed partition a validation created for a batch';
