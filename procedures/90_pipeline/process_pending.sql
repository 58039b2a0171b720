-- The pipeline's control routines: one run at a time, run history, and the whole chain of
-- steps for DBAs. The Python runner (runner/pipeline.py) uses the same lock, the same
-- history tables, and reads the same chain (etl.pipeline_step) and retry policy
-- (etl.retry_policy, etl.transient_sqlstate).
--
-- etl.pipeline_lock_key() returns bigint
--   The key of the session advisory lock that every pipeline run holds while it runs.
--
-- etl.pipeline_lock_holder() returns table
--   Who holds that lock now (no row: nobody): server pid, the run it is executing, host,
--   OS pid and start of that run. Reads pg_locks and pg_stat_activity; writes nothing.
--
-- etl.fail_abandoned_runs() returns integer
--   For the holder of the lock only (it raises otherwise). Holding the lock proves that no
--   other run is alive, so every run still 'running' was abandoned (its process was killed,
--   or its connection lost): marks those runs and their running steps failed, with an error
--   saying so, ended at their last recorded activity. Returns the runs marked. A second call
--   finds none.
--
-- etl.mark_batch_processed(p_batch_id bigint)
--   The chain's last step: etl.batch.status = 'processed', processed_at set once (a second
--   call keeps the first time, so it leaves the same state). Upserts its etl.batch_step row.
--   Raises no_data_found when the batch does not exist.
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
--   error stops the run, is recorded, and is raised again
--   with its SQLSTATE, naming the step and batch. Refuses to start (SQLSTATE 55P03) while
--   another run holds the lock. Takes no SET search_path clause, because a procedure with
--   one cannot COMMIT: every name in it is schema-qualified instead.
--   Ingestion is not part of it: load files with `python -m runner ingest DIR` first.

create or replace function etl.pipeline_lock_key()
returns bigint
language sql
immutable
parallel safe
set search_path = pg_catalog
as $$
    select 720300002::bigint
$$;

comment on function etl.pipeline_lock_key() is
    'Key of the session advisory lock held by the pipeline run (one run at a time)';

create or replace function etl.pipeline_lock_holder()
returns table (
    backend_pid integer,
    run_id bigint,
    hostname text,
    pid integer,
    started_at timestamptz,
    trigger text,
    application_name text,
    client_addr text
)
language sql
stable
set search_path = etl, pg_catalog
as $$
    with lock_holders as (
        select l.pid
        from pg_locks l
        where l.locktype = 'advisory'
          and l.granted
          and l.database = (select d.oid from pg_database d where d.datname = current_database())
          and l.classid = (etl.pipeline_lock_key() >> 32)::oid
          and l.objid = (etl.pipeline_lock_key() & 4294967295)::oid
          and l.objsubid = 1
    )
    select
        lock_holders.pid,
        run.run_id,
        coalesce(run.hostname, host(activity.client_addr), 'local socket'),
        run.pid,
        coalesce(run.started_at, activity.backend_start),
        run.trigger,
        activity.application_name::text,
        host(activity.client_addr)
    from lock_holders
    left join pg_stat_activity activity on activity.pid = lock_holders.pid
    left join lateral (
        select r.run_id, r.hostname, r.pid, r.started_at, r.trigger
        from etl.pipeline_run r
        where r.backend_pid = lock_holders.pid and r.status = 'running'
        order by r.run_id desc
        limit 1
    ) run on true
$$;

comment on function etl.pipeline_lock_holder() is
    'Who holds the pipeline lock now: server pid, run id, host, OS pid, run start (no row: free)';

create or replace function etl.fail_abandoned_runs()
returns integer
language plpgsql
set search_path = etl, pg_catalog
as $$
declare
    v_runs integer;
begin
    if not exists (
        select 1 from etl.pipeline_lock_holder() h where h.backend_pid = pg_backend_pid()
    ) then
        raise exception 'etl.fail_abandoned_runs: this session does not hold the pipeline lock'
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'select pg_try_advisory_lock(etl.pipeline_lock_key()) first';
    end if;

    with abandoned_runs as (
        select r.run_id,
               greatest(r.started_at, max(s.started_at), max(s.ended_at)) as last_activity
        from etl.pipeline_run r
        left join etl.step_run s on s.run_id = r.run_id
        where r.status = 'running'
        group by r.run_id, r.started_at
    ),
    failed_steps as (
        update etl.step_run s
        set status = 'failed',
            ended_at = greatest(s.started_at, abandoned_runs.last_activity),
            error = 'abandoned: the run stopped during this step without recording its end'
        from abandoned_runs
        where s.run_id = abandoned_runs.run_id and s.status = 'running'
        returning s.run_id
    )
    update etl.pipeline_run r
    set status = 'failed',
        ended_at = abandoned_runs.last_activity,
        error = format(
            'abandoned: the run ended without recording its end (its process was killed or '
            'its connection lost; %s running step(s) marked failed); found at %s by the next '
            'run, which took the free pipeline lock',
            (select count(*) from failed_steps f where f.run_id = r.run_id),
            to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'))
    from abandoned_runs
    where r.run_id = abandoned_runs.run_id;
    get diagnostics v_runs = row_count;

    if v_runs > 0 then
        raise warning 'etl.fail_abandoned_runs: % abandoned run(s) marked failed', v_runs;
    end if;
    return v_runs;
end
$$;

comment on function etl.fail_abandoned_runs() is
    'For the lock holder: marks runs left running by a killed process as failed; returns how many';

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
    if not pg_catalog.pg_try_advisory_lock(etl.pipeline_lock_key()) then
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
            where b.status <> 'processed'
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
        commit;
        perform pg_catalog.pg_advisory_unlock(etl.pipeline_lock_key());
        raise exception 'etl.process_pending: run % failed at step % of batch %: %',
                        v_run_id, v_failed_step, v_failed_batch, v_message
            using errcode = v_sqlstate;
    end if;

    update etl.pipeline_run
    set status = 'succeeded', ended_at = pg_catalog.clock_timestamp()
    where run_id = v_run_id;
    commit;
    perform pg_catalog.pg_advisory_unlock(etl.pipeline_lock_key());
    raise notice 'etl.process_pending: run % succeeded, % batch(es) processed',
                 v_run_id, v_batches;
end
$$;

comment on procedure etl.process_pending() is
    'Runs every pending batch through the steps, COMMIT after each; one run at a time';
