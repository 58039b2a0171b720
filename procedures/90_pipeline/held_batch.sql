-- Held batches: why one is held, and the check the two exits of a hold share.
--
-- etl.hold_message(p_batch_id bigint) returns text
--   Why a batch is held and what ends the hold, in one paragraph: the batch, then each error
--   event's message (file, rule, observed ratio, threshold), then the two calls. Null when
--   the batch is not held. Reads only.
--
-- etl.held_batch(p_batch_id bigint, p_caller text) returns text
--   For the two procedures that end a hold (etl.release_batch, etl.discard_batch): locks the
--   batch's row and returns its name when it is held. Raises no_data_found for an unknown
--   batch, and object_not_in_prerequisite_state naming the batch's status (as
--   etl.v_batch_status shows it) when it is not held, so the caller changes nothing.

create or replace function etl.held_batch(p_batch_id bigint, p_caller text)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name   text;
    v_status text;
begin
    select b.batch_name, b.status into v_name, v_status
    from etl.batch b
    where b.batch_id = p_batch_id
    for update;
    if not found then
        raise exception '%: batch % does not exist', p_caller, p_batch_id
            using errcode = 'no_data_found';
    end if;
    if v_status <> 'held' then
        raise exception '%: batch % (%) is %, not held: nothing changed',
            p_caller, p_batch_id, v_name, etl.batch_status_label(v_status)
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'held batches: select * from etl.v_batch_status where status = ''held''';
    end if;
    return v_name;
end
$$;

comment on function etl.held_batch(bigint, text) is
    'Locks a held batch and returns its name; raises, naming its status, when it is not held';

create or replace function etl.hold_message(p_batch_id bigint)
returns text
language sql
stable
set search_path = pg_catalog
as $$
    select format(
        'batch %s (%s) is held: %s. Nothing of it is merged and the pipeline stops before '
        'it; its rejects are in etl.rejected_row (see etl.v_dq_events and '
        'etl.v_reject_summary). End the hold with CALL etl.release_batch(%s); to merge it as '
        'validated, or CALL etl.discard_batch(%s); to drop it (corrected files can then be '
        'delivered again under the same name).',
        b.batch_id, b.batch_name,
        coalesce((select string_agg(e.message, '; ' order by e.event_id)
                  from etl.dq_event e
                  where e.batch_id = b.batch_id and e.severity = 'error'),
                 'held by hand'),
        b.batch_id, b.batch_id)
    from etl.batch b
    where b.batch_id = p_batch_id and b.status = 'held'
$$;

comment on function etl.hold_message(bigint) is
    'Why a batch is held (its error events) and the two calls that end the hold; null if not held';
