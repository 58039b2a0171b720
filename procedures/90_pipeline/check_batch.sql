-- The batch checks (docs/data-contract.md, "Batch checks, holds and alerts"): the step after
-- validation. Rules reject rows; checks judge a whole batch.
--
-- etl.check_batch(p_batch_id bigint)
--   Inputs: the batch's validation (etl.batch_file, etl.rejected_row), etl.dq_threshold, and
--   the files of earlier processed batches. Writes one etl.dq_event per check that fires:
--   - reject_ratio, per etl.dq_threshold row and file of the batch with at least one row:
--     rejected = rows of the file in etl.rejected_row of this batch (null rule: every one,
--     malformed, duplicates and orphans included; otherwise those that broke the rule);
--     error when rejected > error_ratio * rows_in_file, else warn when rejected >
--     warn_ratio * rows_in_file (compared exactly: a ratio equal to a threshold does not
--     fire; a null threshold never does). observed = the ratio, rounded to 6 decimals.
--   - volume (warn), per file of the batch: rows_in_file below a third, or above three
--     times, the median rows_in_file of the same file over the previous 10 processed
--     batches that held it, when there are at least 5 of them (compared exactly).
--   - schema_change (warn), per file of the batch: its set of header columns (trimmed,
--     lower-cased, extra columns included; order ignored) differs from that of the last
--     processed batch that held the file; the message names the columns added and removed.
--   Then: a batch with an error event that is still pending becomes 'held' (a released
--   batch stays released); each new event is queued in the alert outbox (etl.alert, key
--   event:<event_id>); etl.batch_step (batch, 'check', events of the batch).
--   Safe to call twice: an event is unique by batch, file, check and threshold row, so a
--   second call inserts nothing and queues nothing; the status is set to held only once.
--   Raises no_data_found for an unknown batch.

create or replace procedure etl.check_batch(p_batch_id bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_batch_name text;
    v_status     text;
    v_ratio      integer;
    v_volume     integer;
    v_schema     integer;
    v_events     integer;
begin
    v_batch_name := etl.lock_batch(p_batch_id, 'etl.check_batch');
    select b.status into v_status from etl.batch b where b.batch_id = p_batch_id;

    -- reject ratio: each threshold row against each non-empty file of the batch
    with batch_files as (
        select f.file_name, f.rows_in_file
        from etl.batch_file f
        where f.batch_id = p_batch_id and f.rows_in_file > 0
    ),
    batch_rejects as (
        select r.file_name, r.rules
        from etl.rejected_row r
        where r.batch_id = p_batch_id
    ),
    rejected_any as (
        select r.file_name, count(*) as rejected
        from batch_rejects r
        group by r.file_name
    ),
    rejected_by_rule as (
        select r.file_name, broken.rule, count(*) as rejected
        from batch_rejects r
        cross join lateral unnest(r.rules) as broken (rule)
        group by r.file_name, broken.rule
    ),
    measured as (
        select
            t.threshold_id, t.rule, t.warn_ratio, t.error_ratio, f.file_name, f.rows_in_file,
            coalesce(case when t.rule is null then a.rejected else br.rejected end, 0)
                as rejected
        from etl.dq_threshold t
        join batch_files f on t.file_name is null or t.file_name = f.file_name
        left join rejected_any a on a.file_name = f.file_name
        left join rejected_by_rule br on br.file_name = f.file_name and br.rule = t.rule
    ),
    judged as (
        select
            m.*,
            case when m.rejected > m.error_ratio * m.rows_in_file then 'error'
                 when m.rejected > m.warn_ratio * m.rows_in_file then 'warn'
            end as severity
        from measured m
    ),
    fired as (
        select
            j.*,
            case j.severity when 'error' then j.error_ratio else j.warn_ratio end as threshold
        from judged j
        where j.severity is not null
    ),
    inserted as (
        insert into etl.dq_event (batch_id, file_name, check_name, threshold_id, rule,
                                  severity, observed, threshold, message)
        select
            p_batch_id, f.file_name, 'reject_ratio', f.threshold_id, f.rule, f.severity,
            round(f.rejected::numeric / f.rows_in_file, 6), f.threshold,
            format('batch %s (%s): %s: %s of %s rows rejected %s (ratio %s), above the %s '
                   'threshold %s',
                   p_batch_id, v_batch_name, f.file_name, f.rejected, f.rows_in_file,
                   coalesce('for rule ' || f.rule, 'for any rule'),
                   round(f.rejected::numeric / f.rows_in_file, 4),
                   case f.severity when 'error' then 'error' else 'warning' end, f.threshold)
        from fired f
        order by f.file_name, f.threshold_id
        on conflict do nothing
        returning 1
    )
    select count(*) into v_ratio from inserted;

    -- Apart from the check above (alike in their insert of events): another rule, message.
    -- volume: against the median of the file's previous 10 processed batches (at least 5)
    with batch_files as (
        select f.file_name, f.rows_in_file
        from etl.batch_file f
        where f.batch_id = p_batch_id
    ),
    history as (
        select
            f.file_name, f.rows_in_file,
            row_number() over (partition by f.file_name order by f.batch_id desc) as recency
        from etl.batch_file f
        join etl.batch b on b.batch_id = f.batch_id
        where b.status = 'processed'
          and b.batch_id < p_batch_id
          and f.file_name in (select bf.file_name from batch_files bf)
    ),
    recent as (
        select
            h.file_name, h.rows_in_file,
            row_number() over (partition by h.file_name order by h.rows_in_file) as position,
            count(*) over (partition by h.file_name) as batches
        from history h
        where h.recency <= 10
    ),
    medians as (
        select r.file_name, avg(r.rows_in_file) as median, max(r.batches) as batches
        from recent r
        where r.batches >= 5
          and r.position in ((r.batches + 1) / 2, (r.batches + 2) / 2)
        group by r.file_name
    ),
    fired as (
        select
            f.file_name, f.rows_in_file, m.median, m.batches,
            case when 3 * f.rows_in_file < m.median then 'below a third of'
                 else 'above three times' end as direction,
            trim_scale(case when 3 * f.rows_in_file < m.median then round(m.median / 3, 4)
                            else 3 * m.median end) as bound
        from batch_files f
        join medians m on m.file_name = f.file_name
        where 3 * f.rows_in_file < m.median or f.rows_in_file > 3 * m.median
    ),
    inserted as (
        insert into etl.dq_event (batch_id, file_name, check_name, threshold_id, rule,
                                  severity, observed, threshold, message)
        select
            p_batch_id, f.file_name, 'volume', null, null, 'warn', f.rows_in_file, f.bound,
            format('batch %s (%s): %s: %s rows, %s the median %s of the previous %s '
                   'processed batches holding it',
                   p_batch_id, v_batch_name, f.file_name, f.rows_in_file, f.direction,
                   trim_scale(f.median), f.batches)
        from fired f
        order by f.file_name
        on conflict do nothing
        returning 1
    )
    select count(*) into v_volume from inserted;

    -- Apart from the checks above (alike in their insert of events): another rule, message.
    -- schema change: against the last processed batch that held the file
    with batch_files as (
        select f.file_name, f.header
        from etl.batch_file f
        where f.batch_id = p_batch_id
    ),
    previous as (
        select distinct on (f.file_name) f.file_name, f.header, b.batch_id, b.batch_name
        from etl.batch_file f
        join etl.batch b on b.batch_id = f.batch_id
        where b.status = 'processed'
          and b.batch_id < p_batch_id
          and f.file_name in (select bf.file_name from batch_files bf)
        order by f.file_name, b.batch_id desc
    ),
    compared as (
        select
            f.file_name, p.batch_id as previous_id, p.batch_name as previous_name,
            array(select lower(trim(c)) from unnest(f.header) c
                  except select lower(trim(c)) from unnest(p.header) c
                  order by 1) as added,
            array(select lower(trim(c)) from unnest(p.header) c
                  except select lower(trim(c)) from unnest(f.header) c
                  order by 1) as removed
        from batch_files f
        join previous p on p.file_name = f.file_name
    ),
    inserted as (
        insert into etl.dq_event (batch_id, file_name, check_name, threshold_id, rule,
                                  severity, observed, threshold, message)
        select
            p_batch_id, c.file_name, 'schema_change', null, null, 'warn',
            cardinality(c.added) + cardinality(c.removed), null,
            format('batch %s (%s): %s: header columns changed since batch %s (%s): '
                   'added %s; removed %s',
                   p_batch_id, v_batch_name, c.file_name, c.previous_id, c.previous_name,
                   coalesce(nullif(array_to_string(c.added, ', '), ''), 'none'),
                   coalesce(nullif(array_to_string(c.removed, ', '), ''), 'none'))
        from compared c
        where cardinality(c.added) + cardinality(c.removed) > 0
        order by c.file_name
        on conflict do nothing
        returning 1
    )
    select count(*) into v_schema from inserted;

    if v_status = 'ingested' and exists (
        select 1 from etl.dq_event e where e.batch_id = p_batch_id and e.severity = 'error'
    ) then
        update etl.batch b set status = 'held' where b.batch_id = p_batch_id;
        v_status := 'held';
    end if;

    insert into etl.alert (alert_key, kind, severity, batch_id, title, body)
    select
        'event:' || e.event_id, 'dq_event',
        case e.severity when 'error' then 'failure' else 'warning' end,
        p_batch_id,
        format('warehouse: %s %s in batch %s (%s), %s',
               case e.severity when 'error' then 'error' else 'warning' end,
               e.check_name, p_batch_id, v_batch_name, e.file_name),
        e.message || '. ' || case
            when e.severity = 'error' then format(
                'The batch is held: nothing of it is merged and the pipeline stops before '
                'it. Inspect etl.v_dq_events and etl.v_reject_summary for batch %s, then '
                'CALL etl.release_batch(%s); to merge it as validated, or CALL '
                'etl.discard_batch(%s); to drop it and deliver corrected files.',
                p_batch_id, p_batch_id, p_batch_id)
            else format(
                'The batch goes on; look at etl.v_dq_events and etl.v_reject_summary for '
                'batch %s and tell the source if it is wrong.', p_batch_id)
        end
    from etl.dq_event e
    where e.batch_id = p_batch_id
    order by e.event_id
    on conflict (alert_key) do nothing;

    select count(*) into v_events from etl.dq_event e where e.batch_id = p_batch_id;
    insert into etl.batch_step (batch_id, step, rows, completed_at)
    values (p_batch_id, 'check', v_events, now())
    on conflict (batch_id, step) do update
    set rows = excluded.rows, completed_at = excluded.completed_at;

    raise notice 'etl.check_batch: batch % (%): % new event(s) (reject_ratio %, volume %, '
                 'schema_change %), status %',
        p_batch_id, v_batch_name, v_ratio + v_volume + v_schema, v_ratio, v_volume,
        v_schema, etl.batch_status_label(v_status);
end
$$;

comment on procedure etl.check_batch(bigint) is
    'Batch checks after validation (reject ratio, volume, schema change): events, hold, '
    'alerts; CALL etl.check_batch(1)';
