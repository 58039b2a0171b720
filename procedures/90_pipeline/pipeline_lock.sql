-- One pipeline run at a time: the advisory lock every run holds (the Python runner,
-- runner/pipeline.py, and etl.process_pending), who holds it, and the clean-up of runs
-- whose holder died.
--
-- etl.pipeline_lock_key() returns bigint
--   The key of the advisory lock that every pipeline run holds while it runs (the runner at
--   session level, etl.process_pending() at transaction level).
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
    'Key of the advisory lock held by the pipeline run (one run at a time)';

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
        returning s.run_id, s.step_run_id, s.step, s.batch_id
    ),
    last_failed_step as (
        select distinct on (f.run_id) f.run_id, f.step, f.batch_id
        from failed_steps f
        order by f.run_id, f.step_run_id desc
    )
    update etl.pipeline_run r
    set status = 'failed',
        ended_at = abandoned_runs.last_activity,
        error_step = coalesce(r.error_step, (
            select l.step from last_failed_step l where l.run_id = r.run_id)),
        error_batch_id = coalesce(r.error_batch_id, (
            select l.batch_id from last_failed_step l where l.run_id = r.run_id)),
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
