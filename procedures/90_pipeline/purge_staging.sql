-- etl.purge_staging(p_older_than interval default '7 days', inout p_rows_deleted bigint)
--
-- Contract: deletes the staging rows of batches that were processed (etl.batch.status =
-- 'processed') more than p_older_than ago, measured from now(). "Staging rows" are the rows
-- of every table in schema staging that has a batch_id column: the four raw file tables and
-- any work table validation keeps there, so a new staging table is purged without editing
-- this file. Batches not yet processed are never touched, so a purge may run while the
-- pipeline runs. Nothing outside staging changes: the ledger (etl.batch, etl.batch_file),
-- the quarantine (etl.rejected_row keeps the raw values of every rejected row, which is
-- what orphan reprocessing reads) and the reconciliation views keep their numbers.
-- Writes: deletes only. RAISE NOTICE per table with the rows deleted, then a total naming
-- the batches; p_rows_deleted returns the total (CALL etl.purge_staging() prints it).
-- Raises invalid_parameter_value for a null or negative interval.
-- Safe to call twice: the second call finds no rows left for those batches and deletes 0.
-- Deleted space is reused after (auto)vacuum; run VACUUM staging.<table> to hurry it.
create or replace procedure etl.purge_staging(
    p_older_than interval default '7 days',
    inout p_rows_deleted bigint default null
)
language plpgsql
set search_path = etl, staging, pg_catalog
as $$
declare
    v_batch_ids bigint[];
begin
    if p_older_than is null or p_older_than < interval '0' then
        raise exception 'etl.purge_staging: p_older_than must be an interval >= 0, not %',
            coalesce(p_older_than::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;

    select coalesce(array_agg(b.batch_id order by b.batch_id), '{}')
    into v_batch_ids
    from etl.batch b
    where b.status = 'processed'
      and b.processed_at < now() - p_older_than;

    p_rows_deleted := 0;
    if cardinality(v_batch_ids) = 0 then
        raise notice 'purge_staging: no batch processed more than % ago; nothing deleted',
            p_older_than;
        return;
    end if;

    -- one set-based delete per staging table (a handful), found in the catalog
    p_rows_deleted := etl.delete_staged_rows(v_batch_ids, 'purge_staging');

    raise notice 'purge_staging: % rows deleted for % processed batch(es) (ids % to %)',
        p_rows_deleted, cardinality(v_batch_ids), v_batch_ids[1],
        v_batch_ids[cardinality(v_batch_ids)];
end;
$$;

comment on procedure etl.purge_staging(interval, bigint) is
    'Deletes staging rows of batches processed more than p_older_than ago (default 7 days)';
