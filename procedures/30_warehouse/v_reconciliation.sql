-- warehouse.v_reconciliation: every UTC day, over the whole history, whose completed
-- revenue, units, items or orders differ between production, fact_sales and
-- agg_daily_sales (warehouse.sales_reconciliation without a day list). No rows means the
-- warehouse reconciles. A diagnostic for operators: it reads every day, so it costs a pass
-- over the data; the pipeline checks only a batch's days (check_reconciliation).
-- Dropped and recreated on every apply.
drop view if exists warehouse.v_reconciliation;

create view warehouse.v_reconciliation as
select
    r.sales_date,
    r.production_revenue,
    r.fact_revenue,
    r.aggregate_revenue,
    r.production_units,
    r.fact_units,
    r.aggregate_units,
    r.production_items,
    r.fact_items,
    r.production_orders,
    r.fact_orders,
    r.aggregate_orders
from warehouse.sales_reconciliation() r
where not r.balanced;

comment on view warehouse.v_reconciliation is
    'Days whose completed sales differ between production, fact_sales and agg_daily_sales';
comment on column warehouse.v_reconciliation.sales_date is 'UTC day';
comment on column warehouse.v_reconciliation.production_revenue is
    'Completed revenue of the day in production';
comment on column warehouse.v_reconciliation.fact_revenue is
    'Completed revenue of the day in fact_sales';
comment on column warehouse.v_reconciliation.aggregate_revenue is
    'Revenue of the day in agg_daily_sales';
comment on column warehouse.v_reconciliation.production_units is
    'Completed units of the day in production';
comment on column warehouse.v_reconciliation.fact_units is 'Completed units in fact_sales';
comment on column warehouse.v_reconciliation.aggregate_units is 'Units in agg_daily_sales';
comment on column warehouse.v_reconciliation.production_items is
    'Completed items (order lines) of the day in production';
comment on column warehouse.v_reconciliation.fact_items is 'Completed fact rows of the day';
comment on column warehouse.v_reconciliation.production_orders is
    'Completed transactions with items in production';
comment on column warehouse.v_reconciliation.fact_orders is
    'Distinct completed transactions in fact_sales';
comment on column warehouse.v_reconciliation.aggregate_orders is 'Orders in agg_daily_sales';
