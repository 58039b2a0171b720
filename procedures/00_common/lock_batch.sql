-- etl.lock_batch(p_batch_id bigint, p_caller text) returns text
--   The batch's name, with its etl.batch row locked (FOR NO KEY UPDATE) until the caller's
--   transaction ends, so that two steps of one batch never run at once. Raises
--   no_data_found, naming the caller ('<caller>: batch <id> does not exist'), when the
--   batch does not exist. Shared by the steps that start this way (validate_batch,
--   check_batch, merge_batch, reprocess_rejects).
create or replace function etl.lock_batch(p_batch_id bigint, p_caller text)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_batch_name text;
begin
    select b.batch_name into v_batch_name
    from etl.batch b
    where b.batch_id = p_batch_id
    for no key update;
    if not found then
        raise exception '%: batch % does not exist', p_caller, p_batch_id
            using errcode = 'no_data_found';
    end if;
    return v_batch_name;
end
$$;

comment on function etl.lock_batch(bigint, text) is
    'Locks a batch''s row for the caller''s transaction and returns its name; '
    'no_data_found when it does not exist';
