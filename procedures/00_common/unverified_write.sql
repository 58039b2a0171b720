-- etl.log_unverified_write() (trigger function) and its statement triggers.
--
-- A batch's reconciliation (warehouse.check_reconciliation) compares with production only
-- the orders the batch changed. That is enough as long as nothing else writes the sales
-- tables: every other line of a day was balanced when its own batch was checked. These
-- statement triggers make "nothing else" checkable: a statement that writes
-- production.transactions, production.transaction_items, warehouse.fact_sales,
-- warehouse.fact_order_status (the orders' statuses) or warehouse.agg_daily_sales outside
-- the pipeline's procedures logs one row in
-- etl.unverified_write (table, operation, user, application, transaction). While that log
-- holds rows, batch reconciliations read every day they touched in full; a balanced full
-- check (warehouse.check_full_reconciliation) clears the rows it covered.
--
-- The pipeline's writing procedures (merge_batch, reprocess_rejects, load_fact_sales,
-- refresh_batch_aggregates, refresh_aggregates) carry `set warehouse.writer = '<name>'`
-- in their definition: the setting holds while they run and reverts when they return, so
-- a statement after them in the same transaction is logged again. Statement triggers
-- without transition tables: one call per statement, nothing per row.
create or replace function etl.log_unverified_write()
returns trigger
language plpgsql
security definer
set search_path = etl, pg_catalog
as $$
begin
    if coalesce(current_setting('warehouse.writer', true), '') = '' then
        insert into etl.unverified_write (table_name, operation, application_name)
        values (tg_table_schema || '.' || tg_table_name, tg_op,
                current_setting('application_name', true));
    end if;
    return null;
end;
$$;

comment on function etl.log_unverified_write() is
    'Statement trigger: logs a write of a sales table made outside the pipeline procedures';

create or replace trigger transactions_unverified_write
    after insert or update or delete or truncate on production.transactions
    for each statement execute function etl.log_unverified_write();
create or replace trigger transaction_items_unverified_write
    after insert or update or delete or truncate on production.transaction_items
    for each statement execute function etl.log_unverified_write();
create or replace trigger fact_sales_unverified_write
    after insert or update or delete or truncate on warehouse.fact_sales
    for each statement execute function etl.log_unverified_write();
create or replace trigger fact_order_status_unverified_write
    after insert or update or delete or truncate on warehouse.fact_order_status
    for each statement execute function etl.log_unverified_write();
create or replace trigger agg_daily_sales_unverified_write
    after insert or update or delete or truncate on warehouse.agg_daily_sales
    for each statement execute function etl.log_unverified_write();
