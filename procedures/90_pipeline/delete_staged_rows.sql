-- etl.delete_staged_rows(p_batch_ids bigint[], p_caller text) returns bigint
--
-- Deletes the staging rows of the given batches from every table in schema staging that has
-- a batch_id column (found in the catalog: the four raw file tables and any work table
-- validation keeps there, so a new staging table needs no edit here); partitioned tables
-- are deleted from through their parent. One set-based DELETE per table, a handful.
-- RAISE NOTICE '<p_caller>: staging.<table>: <n> rows deleted' per table. Returns the rows
-- deleted in all. Callers: etl.purge_staging (processed batches) and etl.discard_batch (a
-- held batch). Safe to call twice: the second call deletes 0.

create or replace function etl.delete_staged_rows(p_batch_ids bigint[], p_caller text)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_table record;
    v_rows  bigint;
    v_total bigint := 0;
begin
    for v_table in
        select c.relname
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
        execute format('delete from staging.%I where batch_id = any($1)', v_table.relname)
            using p_batch_ids;
        get diagnostics v_rows = row_count;
        v_total := v_total + v_rows;
        raise notice '%: staging.%: % rows deleted', p_caller, v_table.relname, v_rows;
    end loop;
    return v_total;
end;
$$;

comment on function etl.delete_staged_rows(bigint[], text) is
    'Deletes the staging rows of the given batches from every staging table; returns the rows';
