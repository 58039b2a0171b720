-- The alert outbox (etl.alert): what is to be said, once. Delivery to the channels of
-- WAREHOUSE_ALERT_URLS is the runner's (runner/alerts.py, through Apprise), once per
-- channel, retried on later runs. etl.check_batch queues its events itself.
--
-- etl.queue_alert(p_key, p_kind, p_severity, p_batch_id, p_title, p_body) returns boolean
--   Inserts the alert unless one with the same key exists (the key says what it is about,
--   once: freshness:<since>, ...). Returns true when it was queued now. Safe to call twice.
--
-- etl.queue_run_alert(p_run_id bigint) returns boolean
--   The alert of a failed run (key run:<run_id>), from etl.pipeline_run: kind 'hold' when
--   the batch it stopped at is held (the body is etl.hold_message), 'refusal' when it
--   failed at ingestion, 'run_failed' otherwise; the body says what failed and what to do.
--   Does nothing for a run that did not fail. Called by the runner and by
--   etl.process_pending() when a run fails. Safe to call twice.

create or replace function etl.queue_alert(
    p_key text, p_kind text, p_severity text, p_batch_id bigint, p_title text, p_body text)
returns boolean
language sql
set search_path = pg_catalog
as $$
    with queued as (
        insert into etl.alert (alert_key, kind, severity, batch_id, title, body)
        values (p_key, p_kind, p_severity, p_batch_id, p_title, p_body)
        on conflict (alert_key) do nothing
        returning 1
    )
    select exists (select 1 from queued)
$$;

comment on function etl.queue_alert(text, text, text, bigint, text, text) is
    'Queues an alert in etl.alert unless its key is there already; true when queued now';

create or replace function etl.queue_run_alert(p_run_id bigint)
returns boolean
language sql
set search_path = pg_catalog
as $$
    with failed_run as (
        select
            r.run_id, r.trigger, r.error_step, r.error_batch_id, r.error,
            b.batch_name, b.status as batch_status,
            etl.hold_message(b.batch_id) as hold_message
        from etl.pipeline_run r
        left join etl.batch b on b.batch_id = r.error_batch_id
        where r.run_id = p_run_id and r.status = 'failed'
    ),
    described as (
        select
            f.*,
            case when f.hold_message is not null then 'hold'
                 when f.error_step = 'ingest' then 'refusal'
                 else 'run_failed' end as kind
        from failed_run f
    )
    select etl.queue_alert(
        'run:' || d.run_id, d.kind, 'failure', d.error_batch_id,
        case d.kind
            when 'hold' then format('warehouse: batch %s (%s) held, run %s stopped',
                                    d.error_batch_id, d.batch_name, d.run_id)
            when 'refusal' then format('warehouse: a batch was refused, run %s failed',
                                       d.run_id)
            else format('warehouse: run %s failed at step %s', d.run_id, d.error_step)
        end,
        case d.kind
            when 'hold' then d.hold_message
            when 'refusal' then format('Run %s (%s) stopped at ingestion: %s The batches '
                                       'before it were processed; none after it was staged.',
                                       d.run_id, d.trigger,
                                       regexp_replace(d.error, '^step ingest: ', ''))
            else format('Run %s (%s) failed at step %s%s: %s. Fix the cause; the next run '
                        'resumes at this step (python -m runner status shows the history).',
                        d.run_id, d.trigger, coalesce(d.error_step, '(start)'),
                        coalesce(format(' of batch %s (%s)', d.error_batch_id, d.batch_name),
                                 ''),
                        coalesce(d.error, 'no message'))
        end)
    from described d
$$;

comment on function etl.queue_run_alert(bigint) is
    'Queues the alert of a failed run (hold, refusal or failure); true when queued now';
