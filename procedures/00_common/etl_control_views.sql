-- The contract's control views (docs/data-contract.md, "Control views"): operators, monitoring
-- and tests read them. Recreated on every apply.
--
-- etl.v_batch_reconciliation: per batch and file, rows in the file against rows accepted
--   (by validation, plus orphans resolved later) and rows now rejected (malformed included,
--   resolved orphans excluded). rows_staged and rows_malformed show ingestion's split.
-- etl.v_reject_summary: rows now rejected by batch, file and rule.
-- etl.v_freshness: age of the newest sale in the warehouse and of the last successful run.
-- etl.v_batch_status: every batch with its status in the contract's words (pending, held,
--   released, processed, discarded) and when it last changed.
-- etl.v_dq_events: the batch checks that fired (etl.dq_event), by batch name.
-- A discarded batch leaves etl.v_batch_reconciliation and etl.v_reject_summary on its own:
-- etl.discard_batch deletes its ledger rows and its quarantined rows.
drop view if exists etl.v_batch_reconciliation cascade;
drop view if exists etl.v_reject_summary cascade;
drop view if exists etl.v_freshness cascade;
drop view if exists etl.v_batch_status cascade;
drop view if exists etl.v_dq_events cascade;

create view etl.v_batch_reconciliation as
with rejects_per_file as (
    select
        r.batch_id,
        r.file_name,
        count(*) filter (where r.resolved_at is null) as rows_rejected,
        count(*) filter (
            where r.resolved_at is null
              and r.rules <@ (select array_agg(q.rule) from etl.dq_rule q where q.is_orphan)
        ) as rows_pending,
        count(*) filter (where r.resolved_at is not null) as rows_resolved
    from etl.rejected_row r
    group by r.batch_id, r.file_name
)
select
    b.batch_id,
    b.batch_name,
    f.file_name,
    f.rows_in_file,
    f.rows_staged,
    f.rows_malformed,
    coalesce(f.rows_accepted, 0) + coalesce(r.rows_resolved, 0) as rows_accepted,
    coalesce(r.rows_rejected, 0) as rows_rejected,
    coalesce(r.rows_pending, 0) as rows_pending,
    f.rows_accepted is not null
        and f.rows_in_file = coalesce(f.rows_accepted, 0) + coalesce(r.rows_resolved, 0)
                             + coalesce(r.rows_rejected, 0) as balanced
from etl.batch b
join etl.batch_file f on f.batch_id = b.batch_id
left join rejects_per_file r on r.batch_id = f.batch_id and r.file_name = f.file_name;

comment on view etl.v_batch_reconciliation is
    'Conservation per batch and file: rows_in_file = rows_accepted + rows_rejected';
comment on column etl.v_batch_reconciliation.batch_id is 'Batch id';
comment on column etl.v_batch_reconciliation.batch_name is 'Batch directory name';
comment on column etl.v_batch_reconciliation.file_name is 'File base name';
comment on column etl.v_batch_reconciliation.rows_in_file is 'Records in the file';
comment on column etl.v_batch_reconciliation.rows_staged is 'Records staged by ingestion';
comment on column etl.v_batch_reconciliation.rows_malformed is
    'Records with the wrong number of fields, rejected at ingestion';
comment on column etl.v_batch_reconciliation.rows_accepted is
    'Rows accepted by validation, plus orphans resolved by later batches';
comment on column etl.v_batch_reconciliation.rows_rejected is
    'Rows now rejected (malformed included, resolved orphans excluded)';
comment on column etl.v_batch_reconciliation.rows_pending is
    'Unresolved orphans (also counted in rows_rejected)';
comment on column etl.v_batch_reconciliation.balanced is
    'Validated, and rows_in_file = rows_accepted + rows_rejected';

create view etl.v_reject_summary as
select
    b.batch_id,
    b.batch_name,
    r.file_name,
    rule,
    count(*) as rows
from etl.rejected_row r
join etl.batch b on b.batch_id = r.batch_id
cross join lateral unnest(r.rules) as rule
where r.resolved_at is null
group by b.batch_id, b.batch_name, r.file_name, rule;

comment on view etl.v_reject_summary is
    'Rows now rejected per batch, file and rule (a row breaking two rules counts under both)';
comment on column etl.v_reject_summary.rule is 'Contract rule id';
comment on column etl.v_reject_summary.rows is 'Rows now rejected for this rule';

create view etl.v_freshness as
with newest_sale as (
    select max(transaction_ts) as newest_transaction_ts from warehouse.fact_sales
),
last_success as (
    select max(ended_at) as last_successful_run_at
    from etl.pipeline_run
    where status = 'succeeded'
)
select
    newest_sale.newest_transaction_ts,
    now() - newest_sale.newest_transaction_ts as newest_transaction_age,
    last_success.last_successful_run_at,
    now() - last_success.last_successful_run_at as last_successful_run_age
from newest_sale cross join last_success;

comment on view etl.v_freshness is 'How fresh the warehouse is, at the time of the query';
comment on column etl.v_freshness.newest_transaction_ts is 'Latest transaction time in fact_sales';
comment on column etl.v_freshness.newest_transaction_age is 'now() - newest_transaction_ts';
comment on column etl.v_freshness.last_successful_run_at is
    'End of the last pipeline run that ended without error';
comment on column etl.v_freshness.last_successful_run_age is 'now() - last_successful_run_at';

create view etl.v_batch_status as
select
    b.batch_id,
    b.batch_name,
    etl.batch_status_label(b.status) as status,
    b.load_ts as ingested_at,
    b.status_changed_at
from etl.batch b;

comment on view etl.v_batch_status is
    'Every batch and its status: pending, held, released, processed or discarded';
comment on column etl.v_batch_status.batch_id is
    'Batch id: the argument of etl.release_batch and etl.discard_batch';
comment on column etl.v_batch_status.batch_name is 'Batch directory name';
comment on column etl.v_batch_status.status is
    'pending (ingested, not yet processed), held (a check found an error), released, '
    'processed or discarded';
comment on column etl.v_batch_status.ingested_at is 'When the batch was ingested (load time)';
comment on column etl.v_batch_status.status_changed_at is 'When the status last changed';

create view etl.v_dq_events as
select
    e.event_id,
    e.created_at,
    b.batch_name,
    e.file_name,
    e.check_name as "check",
    e.rule,
    e.severity,
    e.observed,
    e.threshold,
    e.message
from etl.dq_event e
join etl.batch b on b.batch_id = e.batch_id;

comment on view etl.v_dq_events is
    'Batch checks that fired: reject ratio, volume and schema change, one row per event';
comment on column etl.v_dq_events.event_id is 'Event id, in recording order';
comment on column etl.v_dq_events.created_at is 'When the check recorded it';
comment on column etl.v_dq_events.batch_name is 'Batch directory name';
comment on column etl.v_dq_events.file_name is 'File base name';
comment on column etl.v_dq_events."check" is
    'reject_ratio, volume, schema_change or long_record (a record spanning more than 5 '
    'lines: a stray quote?)';
comment on column etl.v_dq_events.rule is 'reject_ratio only: the rule counted (null: any rule)';
comment on column etl.v_dq_events.severity is 'warn, or error (the batch is held)';
comment on column etl.v_dq_events.observed is
    'reject_ratio: rejected rows / rows in the file (6 decimals); volume: rows in the file; '
    'schema_change: columns added plus removed; long_record: lines of the longest record';
comment on column etl.v_dq_events.threshold is
    'reject_ratio: the ratio exceeded; volume: the bound crossed; schema_change: null; '
    'long_record: the lines a record may span unreported (5)';
comment on column etl.v_dq_events.message is 'What was found, naming batch, file and numbers';
