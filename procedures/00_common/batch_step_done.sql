-- etl.batch_step_done(p_batch_id bigint, p_step text) returns boolean
--   Whether the batch has completed the step (its etl.batch_step row exists): how the steps
--   ask where a batch stands (validate_batch and merge_batch: "already merged?", merge_batch:
--   "validated?"). Reads only; SQL-standard body, inlined by the planner.
create or replace function etl.batch_step_done(p_batch_id bigint, p_step text)
returns boolean
language sql stable parallel safe
return exists (select 1 from etl.batch_step s
               where s.batch_id = p_batch_id and s.step = p_step);

comment on function etl.batch_step_done(bigint, text) is
    'Whether a batch has completed a step of the chain (its etl.batch_step row exists)';
