-- The hold (docs/data-contract.md, "Batch checks, holds and alerts"): the step after the checks
-- that stops the pipeline before a held batch is merged.
--
-- etl.stop_if_held(p_batch_id bigint)
--   Raises SQLSTATE WH001 (batch_held) with etl.hold_message as its message when the batch
--   is held, so the run stops there: the runner exits with its "held" code and
--   etl.process_pending() raises the same error. Otherwise records etl.batch_step (batch,
--   'hold', 0) and returns: a pending batch without errors, or a released one, goes on to
--   its merge. Writes nothing else; safe to call any number of times.
--   Raises no_data_found for an unknown batch.

create or replace procedure etl.stop_if_held(p_batch_id bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text;
begin
    select b.status into v_status from etl.batch b where b.batch_id = p_batch_id;
    if not found then
        raise exception 'etl.stop_if_held: batch % does not exist', p_batch_id
            using errcode = 'no_data_found';
    end if;
    if v_status = 'held' then
        raise exception '%', etl.hold_message(p_batch_id)
            using errcode = 'WH001',
                  hint = 'select * from etl.v_batch_status where status = ''held''';
    end if;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'hold', 0, now())
    on conflict (batch_id, step) do update
    set rows = excluded.rows, completed_at = excluded.completed_at;
end
$$;

comment on procedure etl.stop_if_held(bigint) is
    'Stops the run (SQLSTATE WH001) before the merge of a held batch; passes otherwise';
