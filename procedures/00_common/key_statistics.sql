-- etl.set_key_statistics(p_tables regclass[] default null, p_analyze boolean default true)
--   (procedure)
--
-- The number of distinct values of the key columns that join a line to its order, an order
-- to its customer and a fact line to its dimensions, given to the planner from the table
-- the key refers to, instead of the estimate ANALYZE makes from its sample.
-- ANALYZE estimates a column's distinct values from 30,000 sampled rows; on a column whose
-- values come in runs (an order's lines stored together, a customer's orders over the
-- years) it finds a fraction of them: at 5M orders, 809,175 orders in
-- production.transaction_items (4.96M), 559,393 in fact_sales, 52,322 customer versions in
-- fact_sales (300,000), 57,065 customers in production.transactions, 7,252 products in
-- fact_sales (20,000). The planner then expects six to nine times the lines per order: the
-- 19,756 lines of a daily batch's 6,550 orders were estimated at 120,281, and the batch
-- check hashed all 300,000 customer versions (162 ms) where probing 6,550 of them costs a
-- few milliseconds.
-- For each key column of the table below whose table is in p_tables (every one when null):
-- n_distinct is set to the ratio (negative: it follows the table as it grows) of the rows of
-- the table the key refers to against the rows of the column's table, both as the last
-- ANALYZE counted them (pg_class.reltuples; a table never analyzed or empty is skipped),
-- and the column analyzed again when its setting moved by more than a tenth (not with
-- p_analyze false: the caller analyzes the tables next).
-- Called by etl.end_bulk_load after it rebuilt the indexes of an initial load (which counts
-- their tables' rows into reltuples) and before it analyzes the tables; a DBA calls it
-- without arguments after upgrading a warehouse loaded before (docs/operations.md).
-- Needs the tables' ownership (ALTER TABLE). Safe to call twice: the second call finds the
-- settings in place and changes nothing.
create or replace procedure etl.set_key_statistics(p_tables regclass[] default null,
                                                   p_analyze boolean default true)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_table record;
begin
    for v_table in
        with key_columns (key_table, key_column, referred_table) as (
            values
                ('production.transaction_items'::regclass, 'transaction_id',
                 'production.transactions'::regclass),
                ('production.transactions'::regclass, 'customer_id',
                 'production.customers'::regclass),
                ('warehouse.fact_sales'::regclass, 'transaction_id',
                 'warehouse.fact_order_status'::regclass),
                ('warehouse.fact_sales'::regclass, 'customer_key',
                 'warehouse.dim_customer'::regclass),
                ('warehouse.fact_sales'::regclass, 'product_key',
                 'warehouse.dim_product'::regclass)
        ),
        settings as (
            select k.key_table, k.key_column,
                   -greatest(round((least(1, r.reltuples / t.reltuples))::numeric, 6),
                             0.000001) as n_distinct,
                   (select substr(o, length('n_distinct=') + 1)::numeric
                    from pg_attribute a, unnest(a.attoptions) o
                    where a.attrelid = k.key_table and a.attname = k.key_column
                      and o like 'n_distinct=%') as current_setting
            from key_columns k
            join pg_class t on t.oid = k.key_table
            join pg_class r on r.oid = k.referred_table
            where (p_tables is null or k.key_table = any (p_tables))
              and t.reltuples > 0 and r.reltuples > 0
        )
        select s.key_table,
               string_agg(format('alter column %I set (n_distinct = %s)', s.key_column,
                                 s.n_distinct), ', ' order by s.key_column) as settings,
               string_agg(format('%I', s.key_column), ', ' order by s.key_column) as columns
        from settings s
        where s.current_setting is null
           or abs(s.n_distinct - s.current_setting) > 0.1 * abs(s.current_setting)
        group by s.key_table
        order by s.key_table::text
    loop
        execute format('alter table %s %s', v_table.key_table, v_table.settings);
        if p_analyze then
            execute format('analyze %s (%s)', v_table.key_table, v_table.columns);
        end if;
    end loop;
end
$$;

comment on procedure etl.set_key_statistics(regclass[], boolean) is
    'Sets n_distinct of the order, customer and product key columns from the rows of the '
    'tables they refer to (ANALYZE underestimates them), then analyzes those columns unless '
    'p_analyze is false';
