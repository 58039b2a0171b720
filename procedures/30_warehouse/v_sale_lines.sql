-- warehouse.v_sale_lines: the fact lines the metrics count, one row per fact row of a
-- completed order. The one definition of "completed" for the full recompute
-- (refresh_aggregates.sql) and the day check (check_reconciliation.sql, which must count
-- as the aggregates do): no order row of warehouse.fact_order_status with a status that is
-- not marked is_sale in production.transaction_statuses. Read as an anti join with the
-- orders of other statuses, which costs less than a join with every completed order (see
-- refresh_aggregates.sql's header); the two agree while every line's order has its row. A
-- plain view: the planner flattens it into the query that reads it, so the calendar's
-- filter and the anti join are planned together as if written inline.
-- Dropped and recreated on every apply (its column list follows fact_sales').
drop view if exists warehouse.v_sale_lines;

create view warehouse.v_sale_lines as
select f.*
from warehouse.fact_sales f
where not exists (
    select 1 from warehouse.fact_order_status os
    where os.transaction_id = f.transaction_id
      and os.status_code not in (select s.status_code
                                 from production.transaction_statuses s
                                 where s.is_sale));

comment on view warehouse.v_sale_lines is
    'Fact lines of completed orders (no order row with a status not marked is_sale): what '
    'the aggregates and the reconciliation count';
-- its columns are fact_sales' columns: their comments too
do $$
begin
    execute (
        select string_agg(format('comment on column warehouse.v_sale_lines.%I is %L',
                                 a.attname, col_description(a.attrelid, a.attnum)), '; ')
        from pg_attribute a
        where a.attrelid = 'warehouse.fact_sales'::regclass and a.attnum > 0
          and not a.attisdropped and col_description(a.attrelid, a.attnum) is not null);
end
$$;
