-- The contract's control views (docs/data-contract.md, "Control views"): operators, monitoring
-- and tests read them. Recreated on every apply.
--
-- etl.v_batch_reconciliation: per batch and file, rows in the file against rows accepted
--   (by validation, plus orphans resolved later) and rows now rejected (malformed included,
--   resolved orphans excluded). rows_staged and rows_malformed show ingestion's split.
-- etl.v_reject_summary: rows now rejected by batch, file and rule.
-- etl.v_freshness: age of the newest sale in the warehouse and of the last successful run.
drop view if exists etl.v_batch_reconciliation cascade;
drop view if exists etl.v_reject_summary cascade;
drop view if exists etl.v_freshness cascade;

create view etl.v_batch_reconciliation as
with rejects_per_file as (
    select
        r.batch_id,
        r.file_name,
        count(*) filter (where r.resolved_at is null) as rows_rejected,
        count(*) filter (
            where r.resolved_at is null
              and r.rules <@ array['unknown_customer', 'unknown_transaction', 'unknown_product']
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
