-- staging.mark_duplicate_keys(p_file, p_batch_id, p_key, duplicates out): the rule
--   duplicate_key of docs/data-contract.md on the batch's partition
--   staging.validated_<file>_<batch>: every row of a key (column p_key) but the last
--   (highest line_no) gets rules = {duplicate_key}, alone, whatever it had; the last row
--   keeps its own. Null keys take no part. Returns the rows it marked.
--   The keys: a sort-based GROUP BY run by EXECUTE: PL/pgSQL runs a static SELECT INTO
--   without parallel workers (the plan has them, none is launched), EXECUTE ... INTO launches
--   them (3M items: 1.0 s against 1.7 s). The caller's settings apply (no hash aggregation:
--   a parallel sort). Then an UPDATE of those rows only.
--   Safe to call twice: the second call marks the same rows again.
--   p_file is the table stem (customers, products, transactions, transaction_items); the
--   names come from fixed identifiers, quoted with %I.
create or replace procedure staging.mark_duplicate_keys(
    p_file text,
    p_batch_id bigint,
    p_key text,
    duplicates out bigint
)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_partition  text := format('validated_%s_%s', p_file, p_batch_id);
    v_keys       bigint[];
    v_last_lines bigint[];
begin
    execute format('select array_agg(d.key), array_agg(d.last_line) '
                   'from (select k.%1$I as key, max(k.line_no) as last_line '
                   '      from staging.%2$I k '
                   '      where k.%1$I is not null '
                   '      group by k.%1$I '
                   '      having count(*) > 1) d', p_key, v_partition)
    into v_keys, v_last_lines;
    duplicates := 0;
    if v_keys is not null then
        execute format('update staging.%2$I v '
                       'set rules = array[''duplicate_key''] '
                       'from unnest($1, $2) as duplicated (key, last_line) '
                       'where v.%1$I = duplicated.key and v.line_no < duplicated.last_line',
                       p_key, v_partition)
        using v_keys, v_last_lines;
        get diagnostics duplicates = row_count;
    end if;
end;
$$;

comment on procedure staging.mark_duplicate_keys(text, bigint, text, bigint) is
    'Marks every row of a duplicated key but the last with duplicate_key in a batch''s '
    'typed partition; returns the rows marked';
