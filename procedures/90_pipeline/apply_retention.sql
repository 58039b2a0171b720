-- etl.apply_retention()
--
-- Contract: the pipeline's step apply_retention (etl.pipeline_step, once per run, after the
--   batches); DBAs may call it too. Reads the one row of etl.retention:
--   - staging_days not null: the staging rows of batches processed more than that many days
--     ago are deleted (etl.purge_staging, which never touches a batch not yet processed);
--   - reject_raw_days not null: the quarantined rows rejected more than that many days ago
--     that are final (every reject but the open orphans, whose raw values re-validation
--     still reads; resolved rows are no longer rejects and are left alone) lose their raw
--     values and raw text (set null, raw_purged_at = now()).
--   Null settings (the default) change nothing. Nothing else changes: the rejected rows
--   stay with their batch, file, line, key and rules, and the ledger keeps its counts, so
--   etl.v_batch_reconciliation and etl.v_reject_summary are identical before and after.
--   RAISE NOTICE: the settings and the rows deleted and blanked.
-- Safe to call twice: the second call finds nothing older left to delete or blank.
create or replace procedure etl.apply_retention()
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_policy  record;
    v_deleted bigint := 0;
    v_blanked bigint := 0;
begin
    select r.staging_days, r.reject_raw_days into v_policy from etl.retention r;

    if v_policy.staging_days is not null then
        call etl.purge_staging(make_interval(days => v_policy.staging_days), v_deleted);
    end if;

    if v_policy.reject_raw_days is not null then
        update etl.rejected_row r
        set raw = null, raw_text = null, raw_purged_at = now()
        where r.rejected_at < now() - make_interval(days => v_policy.reject_raw_days)
          and (r.raw is not null or r.raw_text is not null)
          and r.resolved_at is null
          and not r.rules <@ array(select q.rule from etl.dq_rule q where q.is_orphan);
        get diagnostics v_blanked = row_count;
    end if;

    raise notice 'apply_retention: staging rows of batches processed more than % day(s) ago: '
                 '% deleted; raw values of final rejects older than % day(s): % row(s) blanked',
        coalesce(v_policy.staging_days::text, '(kept: no setting)'), v_deleted,
        coalesce(v_policy.reject_raw_days::text, '(kept: no setting)'), v_blanked;
end
$$;

comment on procedure etl.apply_retention() is
    'Applies etl.retention: deletes old processed staging rows, blanks old final rejects'' '
    'raw values (the pipeline''s last step)';
