-- Loading an empty table the bulk way, shared by production.merge_batch (the initial load of
-- production) and warehouse.load_fact_sales (the initial load of the fact).
--
-- etl.begin_bulk_load(p_tables regclass[]) returns text[]
--   For tables the caller found empty and owns: TRUNCATE them (one statement; they are
--   empty, so nothing is lost), which gives them new files in this transaction, so that
--   with wal_level = minimal their rows are not written to the WAL (the files are synced at
--   commit instead); and drops their secondary indexes (those that back no constraint)
--   and their primary keys and unique constraints that no foreign key references (e.g.
--   transaction_items' primary key, customers' unique e-mail; a referenced key stays, as
--   its foreign keys need it). Returns the statements that etl.end_bulk_load runs after
--   the load (CREATE INDEX, ALTER TABLE ... ADD CONSTRAINT): building an index once from
--   sorted rows, in parallel, costs a fraction of maintaining it row by row (the 3M-row
--   transaction_items: 6.2 s with its primary key maintained, 3.9 s + 0.6 s without). The
--   loaded keys must be unique in their source; were they not, ADD CONSTRAINT raises and
--   the caller's transaction rolls back.
--
-- etl.end_bulk_load(p_tables regclass[], p_index_ddl text[])
--   Recreates the dropped indexes and constraints (which counts the tables' rows into
--   pg_class.reltuples), gives the planner the distinct values of their order, customer and
--   product keys from those counts (etl.set_key_statistics,
--   procedures/00_common/key_statistics.sql) and ANALYZEs the tables.
--
-- All of it runs in the caller's transaction: a failure leaves the tables as they were.
-- Calling them twice: the second begin finds no secondary index or unreferenced key to drop
-- on tables that are still empty, and end recreates only what begin returned.
--
-- Rows keep the order of what they are copied from: the procedures that copy big tables
-- into others (staging.build_validated_partition, production.merge_batch,
-- warehouse.load_fact_sales) run with synchronize_seqscans off. With it on, a sequential
-- scan of a table larger than a quarter of shared_buffers starts where an earlier scan of
-- it last reported its position (shared memory, kept after that scan ended): at 5M
-- orders the initial load's fact insert read production.transaction_items from 95 % of
-- the table, wrapped around, and wrote the last five weeks first. The fact was then out of
-- date order (date_key correlation 0.72 instead of 1.00) and the planner took the
-- category questions of docs/bi.md through the product index over the whole history
-- (7.4 s instead of 0.35 s; docs/performance.md, session 11).
create or replace function etl.begin_bulk_load(p_tables regclass[])
returns text[]
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_index record;
    v_index_ddl text[] := '{}'::text[];
begin
    if cardinality(p_tables) = 0 then
        return v_index_ddl;
    end if;
    execute 'truncate ' || (select string_agg(t::text, ', ') from unnest(p_tables) as t);
    -- keys no foreign key references: dropped now, added again after the load
    for v_index in
        select k.conrelid::regclass as table_name, k.conname,
               format('alter table %s add constraint %I %s', k.conrelid::regclass, k.conname,
                      pg_get_constraintdef(k.oid)) as ddl
        from pg_constraint k
        where k.conrelid = any (p_tables)
          and k.contype in ('p', 'u')
          and not exists (select 1 from pg_constraint f
                          where f.contype = 'f' and f.conindid = k.conindid)
        order by 1, 2
    loop
        execute format('alter table %s drop constraint %I', v_index.table_name,
                       v_index.conname);
        v_index_ddl := v_index_ddl || v_index.ddl;
    end loop;
    for v_index in
        select i.indexrelid::regclass as index_name, pg_get_indexdef(i.indexrelid) as ddl
        from pg_index i
        where i.indrelid = any (p_tables)
          and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid)
        order by 1
    loop
        execute format('drop index %s', v_index.index_name);
        v_index_ddl := v_index_ddl || v_index.ddl;
    end loop;
    return v_index_ddl;
end
$$;

comment on function etl.begin_bulk_load(regclass[]) is
    'Truncates empty tables (no WAL for their load) and drops their secondary indexes and '
    'unreferenced keys; returns the DDL to recreate them';

create or replace procedure etl.end_bulk_load(p_tables regclass[], p_index_ddl text[])
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ddl text;
    v_table regclass;
begin
    foreach v_ddl in array coalesce(p_index_ddl, '{}')
    loop
        execute v_ddl;
    end loop;
    -- before the ANALYZE below, which then reads the settings (no second sample)
    call etl.set_key_statistics(p_tables, false);
    foreach v_table in array coalesce(p_tables, '{}')
    loop
        execute format('analyze %s', v_table);
    end loop;
end
$$;

comment on procedure etl.end_bulk_load(regclass[], text[]) is
    'Recreates the indexes and keys etl.begin_bulk_load dropped, analyzes the tables and '
    'sets the distinct values of their key columns (etl.set_key_statistics)';
