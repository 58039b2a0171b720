-- staging.add_batch_partition(p_table text, p_batch_id bigint)
--
-- Contract: creates staging.<p_table>_<p_batch_id>, the partition of the raw staging table
--   staging.<p_table> (customers, products, transactions, transaction_items) that holds the
--   batch's rows, so that validation reads that batch alone (revision 0016). Ingestion calls
--   it in the batch's transaction, before the file's COPY: a rolled-back ingestion leaves no
--   partition. The partition is created apart and then attached, which locks the parent
--   only in SHARE UPDATE EXCLUSIVE mode (CREATE TABLE ... PARTITION OF would lock it in
--   ACCESS EXCLUSIVE mode until the ingestion commits, so a validation of another batch
--   would wait for it); attaching scans only the default partition, which ingestion never
--   writes. etl.delete_staged_rows drops it at the purge.
-- Safe to call twice: a partition that exists is kept.
-- Security definer (as the staging tables' owner): creating and attaching a partition needs
--   the owner; EXECUTE is granted to warehouse_etl and revoked from PUBLIC. p_table must be
--   a raw staging table partitioned by batch (else invalid_parameter_value); identifiers are quoted with %I and
--   the batch id is a bigint.
create or replace procedure staging.add_batch_partition(p_table text, p_batch_id bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_partition text := format('%s_%s', p_table, p_batch_id);
begin
    -- the raw tables are the staging tables partitioned by list (revision 0016): asked of
    -- the catalog rather than named again here
    if p_table is null or not exists (
        select 1 from pg_partitioned_table pt
        where pt.partrelid = to_regclass(format('staging.%I', p_table))
          and pt.partstrat = 'l'
          and p_table not like 'validated\_%') then
        raise exception 'staging.add_batch_partition: no staging table %', quote_nullable(p_table)
            using errcode = 'invalid_parameter_value';
    end if;
    if to_regclass(format('staging.%I', v_partition)) is not null then
        return;
    end if;
    execute format('create table staging.%I (like staging.%I including defaults '
                   'including constraints)', v_partition, p_table);
    execute format('alter table staging.%I attach partition staging.%I for values in (%s)',
                   p_table, v_partition, p_batch_id);
end
$$;

comment on procedure staging.add_batch_partition(text, bigint) is
    'Creates the partition of a raw staging table for one batch (called by ingestion)';
revoke all on procedure staging.add_batch_partition(text, bigint) from public;
