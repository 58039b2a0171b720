-- etl.delete_staged_rows(p_batch_ids bigint[], p_caller text) returns bigint
--
-- Deletes the staging rows of the given batches from every table in schema staging that has
-- a batch_id column (found in the catalog: the four raw file tables and any work table
-- validation keeps there, so a new staging table needs no edit here). A partition that
-- holds one of these batches alone (the raw tables' staging.<file>_<batch>, revision 0016,
-- and the typed staging.validated_<file>_<batch>) is dropped, which frees its space at once;
-- the rows left (a default partition, an unpartitioned table) are deleted through their
-- table, one set-based DELETE each, a handful.
-- RAISE NOTICE '<p_caller>: staging.<table>: <n> rows deleted' per table (partitions counted
-- under their table). Returns the rows deleted in all. Callers: etl.purge_staging (processed
-- batches) and etl.discard_batch (a held batch). Safe to call twice: the second call finds
-- no partition of those batches and deletes 0.
-- Security definer (as the staging tables' owner): dropping a partition needs the owner.
-- EXECUTE is revoked from PUBLIC (its callers are the two procedures, run by warehouse_etl or
-- a DBA). Identifiers come from the catalog, quoted with %I.

create or replace function etl.delete_staged_rows(p_batch_ids bigint[], p_caller text)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_table     record;
    v_partition record;
    v_rows      bigint;
    v_part_rows bigint;
    v_total     bigint := 0;
begin
    for v_table in
        select c.oid, c.relname
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid
        where n.nspname = 'staging'
          and c.relkind in ('r', 'p')
          and not c.relispartition
          and a.attname = 'batch_id'
          and not a.attisdropped
        order by c.relname
    loop
        v_rows := 0;
        -- the partitions of one batch each: counted, then dropped
        for v_partition in
            select p.relname
            from pg_inherits i
            join pg_class p on p.oid = i.inhrelid
            where i.inhparent = v_table.oid
              and substring(pg_get_expr(p.relpartbound, p.oid)
                            from '^FOR VALUES IN \(''?([0-9]+)''?\)$')::bigint
                  = any (p_batch_ids)
            order by p.relname
        loop
            execute format('select count(*) from staging.%I', v_partition.relname)
                into v_part_rows;
            execute format('drop table staging.%I', v_partition.relname);
            v_rows := v_rows + v_part_rows;
        end loop;
        execute format('delete from staging.%I where batch_id = any($1)', v_table.relname)
            using p_batch_ids;
        get diagnostics v_part_rows = row_count;
        v_rows := v_rows + v_part_rows;
        v_total := v_total + v_rows;
        raise notice '%: staging.%: % rows deleted', p_caller, v_table.relname, v_rows;
    end loop;
    return v_total;
end;
$$;

comment on function etl.delete_staged_rows(bigint[], text) is
    'Deletes the staging rows of the given batches from every staging table (dropping their '
    'partitions); returns the rows';
revoke all on function etl.delete_staged_rows(bigint[], text) from public;
