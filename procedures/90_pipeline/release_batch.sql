-- etl.release_batch(p_batch_id bigint)
--   Ends a hold by accepting the batch as validated (docs/data-contract.md, "Hold"): its status
--   becomes 'released', and the next run merges it and goes on with the later batches (its
--   validation and check events stay as they are; the checks are not run again).
--   Fails, changing nothing, for a batch that is not held (the message names its status) or
--   does not exist. From psql: CALL etl.release_batch(3);

create or replace procedure etl.release_batch(p_batch_id bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name text := etl.held_batch(p_batch_id, 'etl.release_batch');
begin
    update etl.batch b set status = 'released' where b.batch_id = p_batch_id;
    raise notice 'etl.release_batch: batch % (%) released: the next run merges it as '
                 'validated, then goes on with the later batches', p_batch_id, v_name;
end
$$;

comment on procedure etl.release_batch(bigint) is
    'Ends a hold: the batch is accepted as validated and merged by the next run';
