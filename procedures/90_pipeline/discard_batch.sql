-- etl.discard_batch(p_batch_id bigint)
--   Ends a hold by dropping the batch (docs/data-contract.md, "Hold"): its staged rows (the raw
--   file tables and its typed partitions) and its quarantined rows and data-quality results
--   are deleted, its files leave the ledger etl.batch_file (their hashes are forgotten, so
--   the same bytes load again under another name) and are remembered in
--   etl.discarded_file by batch name (a directory of that name with the same files is then
--   skipped at ingestion and reported as discarded), and its status becomes 'discarded'.
--   The next run goes on with the later batches. Its check events stay in etl.v_dq_events;
--   it leaves etl.v_batch_reconciliation and etl.v_reject_summary.
--   Fails, changing nothing, for a batch that is not held (the message names its status) or
--   does not exist. From psql: CALL etl.discard_batch(3);
--   Security definer (as the staging tables' owner, like staging.validate_batch): it drops
--   the batch's typed partitions. EXECUTE is revoked from PUBLIC.

create or replace procedure etl.discard_batch(p_batch_id bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name   text := etl.held_batch(p_batch_id, 'etl.discard_batch');
    v_table  record;
    v_rows   bigint;
    v_staged bigint;
    v_files  bigint;
begin
    -- the typed partitions, one per file (and the rejects of its validation)
    for v_table in
        select stem from unnest(array['customers', 'products', 'transactions',
                                      'transaction_items']) as stem
    loop
        call staging.clear_validation(v_table.stem, p_batch_id);
    end loop;

    -- the raw rows: every staging table with a batch_id column
    v_staged := etl.delete_staged_rows(array[p_batch_id], 'etl.discard_batch');

    delete from etl.rejected_row r where r.batch_id = p_batch_id;
    get diagnostics v_rows = row_count;
    delete from etl.dq_result d where d.batch_id = p_batch_id;

    insert into etl.discarded_file (batch_id, batch_name, file_name, sha256)
    select f.batch_id, v_name, f.file_name, f.sha256
    from etl.batch_file f
    where f.batch_id = p_batch_id
    on conflict (batch_id, file_name) do nothing;
    delete from etl.batch_file f where f.batch_id = p_batch_id;
    get diagnostics v_files = row_count;

    update etl.batch b set status = 'discarded' where b.batch_id = p_batch_id;
    raise notice 'etl.discard_batch: batch % (%) discarded: % staged row(s), % quarantined '
                 'row(s) deleted, % file hash(es) forgotten; a directory % with the same '
                 'files is skipped from now on, corrected files under that name load',
        p_batch_id, v_name, v_staged, v_rows, v_files, v_name;
end
$$;

comment on procedure etl.discard_batch(bigint) is
    'Ends a hold: deletes the batch''s staged and quarantined rows, forgets its file hashes';
revoke all on procedure etl.discard_batch(bigint) from public;
