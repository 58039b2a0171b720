-- The whole chain of steps for DBAs, from psql. The Python runner (runner/pipeline.py) uses
-- the same lock (pipeline_lock.sql), the same history tables, and reads the same chain
-- (etl.pipeline_step) and retry policy (etl.retry_policy, etl.transient_sqlstate).
--
-- etl.process_pending()
--   For DBAs: CALL etl.process_pending(); runs the steps of etl.pipeline_step for every
--   batch not yet processed, in batch_id order (then the steps that run once a run, without
--   a batch), with a COMMIT after each step, recording the run in etl.pipeline_run
--   (trigger 'process_pending') and each step in etl.step_run exactly like the runner.
--   Steps recorded as succeeded for a batch (by an earlier run that stopped half-way) are
--   skipped; every step is safe to call again, so a step whose run died before recording
--   it is simply called again. The SQLSTATEs of etl.transient_sqlstate are retried as
--   etl.retry_policy says (attempts, backoff with full jitter, like the runner); any other
--   error stops the run, is recorded (with its alert, etl.queue_run_alert), and is raised
--   again with its SQLSTATE, naming the step and batch. A held batch stops it the same way
--   (SQLSTATE WH001 from the step 'hold', etl.stop_if_held: the message names the batch,
--   file, rule, ratio, threshold and the two calls that end the hold); pending, held and
--   released batches are taken in batch_id order, discarded ones never. Refuses to start (SQLSTATE 55P03) while
--   another run holds the lock, and (SQLSTATE 25001) when called inside a transaction
--   block, before taking anything. It holds the lock at transaction level, taken again
--   after each COMMIT, so no error can leave it behind. Takes no SET search_path clause, because a procedure with
--   one cannot COMMIT: every name in it is schema-qualified instead.
--   Ingestion is not part of it: load files with `python -m runner ingest DIR` first.

create or replace procedure etl.process_pending()
language plpgsql
as $$
declare
    v_policy etl.retry_policy;
    v_transient text[];
    v_run_id bigint;
    v_step record;
    v_step_run_id bigint;
    v_attempt integer;
    v_rows bigint;
    v_batches integer := 0;
    v_failed boolean := false;
    v_sqlstate text;
    v_message text;
    v_failed_step text;
    v_failed_batch bigint;
    v_failed_attempts integer;
    v_holder record;
begin
    -- COMMIT is impossible inside a transaction block: say so before anything is taken. The
    -- first statement of a transaction starts it (its timestamps are equal); a CALL after
    -- BEGIN (or after other statements of the same transaction) comes later.
    if pg_catalog.transaction_timestamp() <> pg_catalog.statement_timestamp() then
        raise exception 'etl.process_pending: called inside a transaction block; it commits '
                        'after every step, so it must be called on its own'
            using errcode = 'active_sql_transaction',
                  hint = 'ROLLBACK, then CALL etl.process_pending(); outside BEGIN ... COMMIT '
                         '(psql: with AUTOCOMMIT on, its default)';
    end if;
    -- A transaction-level lock, taken again after every COMMIT: whatever error ends the
    -- procedure, its rollback releases the lock (a session lock would outlive the error
    -- and block every run until the session ends).
    if not pg_catalog.pg_try_advisory_xact_lock(etl.pipeline_lock_key()) then
        select h.* into v_holder from etl.pipeline_lock_holder() h limit 1;
        raise exception 'etl.process_pending: another pipeline run holds the lock '
                        '(server pid %, run %, host %, pid %, started %)',
                        v_holder.backend_pid, v_holder.run_id, v_holder.hostname,
                        v_holder.pid, v_holder.started_at
            using errcode = 'lock_not_available';
    end if;

    select p.* into strict v_policy from etl.retry_policy p;
    select pg_catalog.array_agg(t.sqlstate) into v_transient from etl.transient_sqlstate t;

    perform etl.fail_abandoned_runs();
    insert into etl.pipeline_run (trigger, hostname, pid, backend_pid)
    values ('process_pending', coalesce(pg_catalog.host(pg_catalog.inet_client_addr()),
                                        'local socket'),
            pg_catalog.pg_backend_pid(), pg_catalog.pg_backend_pid())
    returning run_id into v_run_id;
    commit;

    -- The plan: each pending batch through the per-batch steps it has not yet succeeded in,
    -- then the once-a-run steps. Read once: the loop COMMITs, so its rows are kept at start.
    <<steps>>
    for v_step in
        with pending as (
            select b.batch_id, b.batch_name
            from etl.batch b
            where b.status in ('ingested', 'held', 'released')
        ),
        batch_steps as (
            select 1 as phase, pending.batch_id, pending.batch_name, s.step_order, s.step,
                   s.procedure, true as per_batch,
                   s.step_order = max(s.step_order) over () as closes_batch
            from etl.pipeline_step s
            cross join pending
            where s.per_batch
        )
        select *
        from batch_steps
        where not exists (
            select 1
            from etl.step_run done
            where done.batch_id = batch_steps.batch_id
              and done.step = batch_steps.step
              and done.status = 'succeeded'
        )
        union all
        select 2, null, null, s.step_order, s.step, s.procedure, false, false
        from etl.pipeline_step s
        where not s.per_batch
        order by 1, 2, 4
    loop
        if not pg_catalog.pg_try_advisory_xact_lock(etl.pipeline_lock_key()) then
            -- another run took the lock in the instant after our last COMMIT
            update etl.pipeline_run
            set status = 'failed', ended_at = pg_catalog.clock_timestamp(),
                error = 'lost the pipeline lock to another run between two steps'
            where run_id = v_run_id and status = 'running';
            commit;
            raise exception 'etl.process_pending: run % lost the pipeline lock to another run '
                            'between two steps; it stops, and the next run resumes', v_run_id
                using errcode = 'lock_not_available';
        end if;
        v_attempt := 0;
        <<attempts>>
        loop
            v_attempt := v_attempt + 1;
            begin
                insert into etl.step_run (run_id, step, batch_id, attempts)
                values (v_run_id, v_step.step, v_step.batch_id, v_attempt)
                returning step_run_id into v_step_run_id;

                if v_step.per_batch then
                    execute pg_catalog.format('call %s($1)', v_step.procedure)
                        using v_step.batch_id;
                else
                    execute pg_catalog.format('call %s()', v_step.procedure);
                end if;

                select sum(bs.rows) into v_rows
                from etl.batch_step bs
                where bs.batch_id = v_step.batch_id and bs.completed_at >= now();

                update etl.step_run
                set status = 'succeeded', ended_at = pg_catalog.clock_timestamp(),
                    rows = v_rows
                where step_run_id = v_step_run_id;
                exit attempts;
            exception when others then
                get stacked diagnostics v_sqlstate = returned_sqlstate,
                                        v_message = message_text;
                if v_sqlstate = any (v_transient) and v_attempt < v_policy.attempts then
                    raise warning 'etl.process_pending: step % of batch % attempt %: '
                                  'SQLSTATE %: %; retrying',
                                  v_step.step, v_step.batch_id, v_attempt,
                                  v_sqlstate, v_message;
                    -- full jitter under an exponential cap, as runner/retry.py
                    perform pg_catalog.pg_sleep(pg_catalog.random() * least(
                        v_policy.max_delay_s, v_policy.base_delay_s * 2 ^ (v_attempt - 1)));
                else
                    v_failed := true;
                    v_failed_step := v_step.step;
                    v_failed_batch := v_step.batch_id;
                    v_failed_attempts := v_attempt;
                    exit attempts;
                end if;
            end;
        end loop attempts;
        exit steps when v_failed;
        if v_step.closes_batch then
            v_batches := v_batches + 1;
            update etl.pipeline_run set batches_processed = v_batches
            where run_id = v_run_id;
        end if;
        commit;
        raise notice 'etl.process_pending: run %, batch % (%), step % done: % rows',
                     v_run_id, v_step.batch_id, v_step.batch_name, v_step.step,
                     coalesce(v_rows::text, 'unreported');
    end loop steps;

    if v_failed then
        rollback;
        insert into etl.step_run (run_id, step, batch_id, ended_at, status, attempts,
                                  sqlstate, error)
        values (v_run_id, v_failed_step, v_failed_batch, pg_catalog.clock_timestamp(),
                'failed', v_failed_attempts, v_sqlstate, v_message);
        update etl.pipeline_run
        set status = 'failed', ended_at = pg_catalog.clock_timestamp(),
            error_step = v_failed_step, error_batch_id = v_failed_batch,
            error = pg_catalog.format('SQLSTATE %s: %s', v_sqlstate, v_message)
        where run_id = v_run_id;
        perform etl.queue_run_alert(v_run_id);
        commit;
        raise exception 'etl.process_pending: run % failed at step % of batch %: %',
                        v_run_id, v_failed_step, v_failed_batch, v_message
            using errcode = v_sqlstate;
    end if;

    update etl.pipeline_run
    set status = 'succeeded', ended_at = pg_catalog.clock_timestamp()
    where run_id = v_run_id;
    commit;
    raise notice 'etl.process_pending: run % succeeded, % batch(es) processed',
                 v_run_id, v_batches;
end
$$;

comment on procedure etl.process_pending() is
    'Runs every pending batch through the steps, COMMIT after each; one run at a time';
