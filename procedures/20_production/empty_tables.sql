-- The initial load of production: tables found empty are loaded the bulk way.
--
-- production.empty_tables() returns text[]
--   Names of the production tables the merge loads (customers, products, transactions,
--   transaction_items) that hold no row, when the current role owns all four (none
--   otherwise). The set is closed under foreign keys: a table whose parent is empty is
--   empty too, so TRUNCATE never needs a table outside it.
--
-- The loading itself: etl.begin_bulk_load and etl.end_bulk_load
--   (procedures/00_common/bulk_load.sql), shared with the fact's initial load.

create or replace function production.empty_tables()
returns text[]
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    c_tables constant text[] := array['customers', 'products', 'transactions',
                                      'transaction_items'];
    v_table text;
    v_empty boolean;
    v_tables text[] := '{}'::text[];
begin
    -- all or none owned: TRUNCATE of a parent needs its (empty) children in the statement
    if exists (select 1 from unnest(c_tables) as t
               join pg_class c on c.oid = format('production.%I', t)::regclass
               where not pg_has_role(c.relowner, 'USAGE')) then
        return v_tables;
    end if;
    foreach v_table in array c_tables
    loop
        execute format('select not exists (select 1 from production.%I)', v_table)
            into v_empty;
        if v_empty then
            v_tables := v_tables || v_table;
        end if;
    end loop;
    return v_tables;
end
$$;

comment on function production.empty_tables() is
    'Production tables the merge loads that are empty and owned by the current role';

-- production.begin_bulk_load and production.end_bulk_load became etl.begin_bulk_load and
-- etl.end_bulk_load: dropped where an earlier version of this file created them.
drop function if exists production.begin_bulk_load(text[]);
drop procedure if exists production.end_bulk_load(text[], text[]);
