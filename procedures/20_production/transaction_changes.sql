-- The transactions each batch wrote, for the warehouse loaders (revision 0018).
--
-- production.log_transaction_changes() (trigger function) and its two statement triggers on
--   production.transactions (after INSERT, after UPDATE, with the written rows as a
--   transition table): every row written with a source_batch_id gets (source_batch_id,
--   transaction_id) in staging.transaction_changes, except an update that left
--   source_batch_id behind a newer delivered_batch_id (only the delivery moved: nothing
--   changed for the warehouse, and its row was logged when source_batch_id was set). ENABLE
--   ALWAYS: they fire for every writer, under session_replication_role = replica too (the
--   merge's mode), so the log is complete whoever writes. One call per statement, one
--   set-based INSERT; a row logged twice (a hand update) is harmless to the readers.
--
-- production.batch_transactions(p_batch_id bigint) returns setof production.transactions
--   The transactions whose source_batch_id is the batch: those the batch wrote (the log,
--   read through its (batch_id, transaction_id) index) and that no later batch wrote since.
--   What `production.transactions where source_batch_id = p_batch_id` returns, without an
--   index on source_batch_id: that column changes with every update, and an indexed column
--   that changes makes an update non-HOT (a new entry in every index of the table). A SQL
--   function of one SELECT: the planner inlines it into the caller's query. Reading only.

create or replace function production.log_transaction_changes()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into staging.transaction_changes (batch_id, transaction_id)
    select w.source_batch_id, w.transaction_id
    from written w
    where w.source_batch_id >= coalesce(w.delivered_batch_id, w.source_batch_id);
    return null;
end
$$;

comment on function production.log_transaction_changes() is
    'Statement trigger: logs the transactions a statement wrote, by source_batch_id, in '
    'staging.transaction_changes';

create or replace trigger transactions_changes_inserted
    after insert on production.transactions
    referencing new table as written
    for each statement execute function production.log_transaction_changes();
create or replace trigger transactions_changes_updated
    after update on production.transactions
    referencing new table as written
    for each statement execute function production.log_transaction_changes();
alter table production.transactions enable always trigger transactions_changes_inserted;
alter table production.transactions enable always trigger transactions_changes_updated;

create or replace function production.batch_transactions(p_batch_id bigint)
returns setof production.transactions
language sql
stable
parallel safe
begin atomic
    select t.*
    from production.transactions t
    where t.source_batch_id = p_batch_id
      and t.transaction_id in (select c.transaction_id
                               from staging.transaction_changes c
                               where c.batch_id = p_batch_id);
end;

comment on function production.batch_transactions(bigint) is
    'The transactions whose source_batch_id is the batch, found through '
    'staging.transaction_changes (no index on source_batch_id: updates stay HOT)';

-- production.batch_transaction_rows(p_batch_id): the same rows as one array, for the
-- warehouse steps that read a batch's transactions whole into a variable (so that the
-- planner knows their number). Read by EXECUTE: PostgreSQL runs the query of a PL/pgSQL
-- assignment or SELECT INTO without parallel workers, and a dynamic EXECUTE ... INTO with
-- them; a status feed's 244,000 transactions come from a scan of every transaction (no index
-- on source_batch_id), 0.73-0.76 s alone and 0.47-0.48 s with two workers at 5M orders.
-- Heavy read-only statements of the steps use the same EXECUTE for the same reason.
create or replace function production.batch_transaction_rows(p_batch_id bigint)
returns production.transactions[]
language plpgsql
stable
set search_path = pg_catalog
as $$
declare
    v_rows production.transactions[];
begin
    execute 'select array(select t from production.batch_transactions($1) t)'
        into v_rows using p_batch_id;
    return v_rows;
end;
$$;

comment on function production.batch_transaction_rows(bigint) is
    'production.batch_transactions as one array, read with parallel workers';
