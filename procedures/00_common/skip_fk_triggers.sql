-- etl.skip_fk_triggers(p_tables regclass[]) returns boolean
--
-- Contract: for the rest of the current transaction, skips the per-row foreign-key
-- triggers (session_replication_role = replica, set locally) when the current role may set
-- that parameter and none of p_tables has a user trigger (which replica mode would
-- silence too), the statement triggers of etl.log_unverified_write aside: they log writes
-- made outside the pipeline's procedures, and the callers are those procedures. Triggers
-- enabled ALWAYS do not count: replica mode does not silence them. Returns
-- true when it did, false when the triggers stay on.
-- Callers use it only for rows whose references they have proved set-based (validation's
-- rejects, the merge of validated rows); the constraints stay declared for every other
-- writer. The caller restores the previous value with set_config(..., true) when done.
-- Safe to call twice: it only sets a transaction-local parameter.
create or replace function etl.skip_fk_triggers(p_tables regclass[])
returns boolean
language plpgsql
set search_path = pg_catalog
as $$
begin
    if not has_parameter_privilege('session_replication_role', 'SET')
       or exists (select 1 from pg_trigger tg
                  where tg.tgrelid = any (p_tables) and not tg.tgisinternal
                    and tg.tgenabled <> 'A'
                    and tg.tgfoid is distinct from
                        to_regprocedure('etl.log_unverified_write()')) then
        return false;
    end if;
    perform set_config('session_replication_role', 'replica', true);
    return true;
end;
$$;

comment on function etl.skip_fk_triggers(regclass[]) is
    'Skips per-row FK triggers for this transaction when allowed and no user trigger exists';
