-- etl.mark_batch_processed(p_batch_id bigint)
--   The chain's last step: etl.batch.status = 'processed', processed_at set once (a second
--   call keeps the first time, so it leaves the same state). Upserts its etl.batch_step row.
--   Raises no_data_found when the batch does not exist.

create or replace procedure etl.mark_batch_processed(p_batch_id bigint)
language plpgsql
set search_path = etl, pg_catalog
as $$
declare
    v_rows integer;
begin
    update etl.batch b
    set status = 'processed',
        processed_at = coalesce(b.processed_at, clock_timestamp())
    where b.batch_id = p_batch_id;
    get diagnostics v_rows = row_count;
    if v_rows = 0 then
        raise exception 'etl.mark_batch_processed: batch % does not exist', p_batch_id
            using errcode = 'no_data_found';
    end if;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'mark_processed', v_rows, now())
    on conflict (batch_id, step) do update
    set rows = excluded.rows, completed_at = excluded.completed_at;

    raise notice 'etl.mark_batch_processed: batch % processed', p_batch_id;
end
$$;

comment on procedure etl.mark_batch_processed(bigint) is
    'Last step of the chain: marks a batch processed (processed_at kept on a second call)';
