-- A batch's status, as the contract names it, and when it last changed.
--
-- etl.batch_status_label(p_status text) returns text
--   The contract's name of an etl.batch.status (docs/data-contract.md, etl.v_batch_status):
--   'ingested' is 'pending'; held, released, processed and discarded keep their names.
--
-- etl.note_batch_status_change() trigger batch_status_changed on etl.batch
--   Before an update that changes status: status_changed_at = clock_timestamp(). The one
--   place that keeps status_changed_at true, whoever changes the status (the steps,
--   etl.release_batch, etl.discard_batch, a DBA's UPDATE). Writes nothing else.

create or replace function etl.batch_status_label(p_status text)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog
as $$
    select case p_status when 'ingested' then 'pending' else p_status end
$$;

comment on function etl.batch_status_label(text) is
    'The contract''s name of a batch status: ingested is pending, the others keep theirs';

create or replace function etl.note_batch_status_change()
returns trigger
language plpgsql
set search_path = pg_catalog
as $$
begin
    new.status_changed_at := clock_timestamp();
    return new;
end
$$;

comment on function etl.note_batch_status_change() is
    'Trigger of etl.batch: a status change sets status_changed_at';

create or replace trigger batch_status_changed
    before update of status on etl.batch
    for each row
    when (new.status is distinct from old.status)
    execute function etl.note_batch_status_change();
