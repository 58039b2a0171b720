-- etl.reprocess_rejects(p_batch_id bigint default null)
--
-- Contract (docs/data-contract.md, "Validation rules", orphans): re-validates the quarantined
--   orphans, rows whose only rules are orphan rules (etl.dq_rule.is_orphan:
--   unknown_customer, unknown_transaction and unknown_product), still unresolved and from
--   batches up to p_batch_id (default: the newest merged batch, the one whose merge just
--   made parents known). In rounds, until a round resolves nothing (a handful: an orphan
--   transaction resolved in a round frees its orphan items in the same round, the batch's
--   own orphans included):
--   1. transactions.csv orphans, then transaction_items.csv orphans, parsed again from their
--      raw values (the parsers of validation: procedures/00_common/contract_parsers.sql);
--   2. an orphan whose key production already holds from a later delivery
--      (delivered_batch_id > its batch) is resolved 'superseded', never merged: the later
--      batch wins; so is one whose key has a resolvable orphan from a later batch;
--   3. an orphan whose parents are now all in production (customer; transaction and
--      product) is accepted: added to staging.resolved_<file> with resolved_batch_id =
--      p_batch_id, upserted into production (production.upsert_transactions /
--      upsert_transaction_items: source_batch_id = p_batch_id, so that batch's warehouse
--      loads pick the rows up; delivered_batch_id = the orphan's own batch), and resolved
--      'merged'; its staging copy is then deleted.
--   Resolved rows get resolved_batch_id = p_batch_id, resolved_at = now(), resolution.
--   Other orphans stay. Other rejects are never touched. Then upserts etl.batch_step
--   (p_batch_id, 'reprocess_rejects', orphans resolved by that batch so far).
--   RAISE NOTICE per round and file: merged, superseded; then the total.
-- Safe to call twice: resolved orphans are no longer open, so a second call finds nothing
--   that the first could resolve and writes nothing new; one CALL is one transaction.
-- Foreign keys are checked row by row here (orphans are few).
create or replace procedure etl.reprocess_rejects(p_batch_id bigint default null)
language plpgsql
set warehouse.writer = 'reprocess_rejects'
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_custom_plan
as $$
declare
    v_orphan_rules text[];
    c_max_rounds constant integer := 100;
    v_batch_id   bigint := p_batch_id;
    v_batch_name text;
    v_round      integer := 0;
    v_merged     bigint;
    v_superseded bigint;
    v_resolved   bigint;
    v_total      bigint := 0;
    v_inserted   bigint;
    v_changed    bigint;
begin
    -- the orphan rules, in etl.dq_rule's order: as a value in every (custom) plan, so that
    -- the partial index rejected_row_open_orphans_idx, whose predicate lists them, serves
    select array_agg(q.rule order by q.sort_order) into v_orphan_rules
    from etl.dq_rule q
    where q.is_orphan;

    if v_batch_id is null then
        select max(s.batch_id) into v_batch_id from etl.batch_step s where s.step = 'merge';
        if v_batch_id is null then
            raise notice 'reprocess_rejects: no batch is merged yet: nothing to reprocess';
            return;
        end if;
    end if;
    v_batch_name := etl.lock_batch(v_batch_id, 'reprocess_rejects');

    loop
        v_round := v_round + 1;
        v_resolved := 0;

        -- transactions.csv orphans: parent = the customer
        with open_orphans as (
            select
                r.reject_id, r.batch_id, r.line_no,
                etl.clean_value(r.raw ->> 'transaction_id') as transaction_id_text,
                etl.clean_value(r.raw ->> 'customer_id') as customer_id_text,
                etl.clean_value(r.raw ->> 'transaction_ts') as transaction_ts_text,
                etl.clean_value(r.raw ->> 'payment_method') as payment_method_text,
                etl.clean_value(r.raw ->> 'status') as status_text
            from etl.rejected_row r
            where r.file_name = 'transactions.csv'
              and r.resolved_at is null
              and r.rules <@ v_orphan_rules
              and r.batch_id <= v_batch_id
            offset 0
        ),
        typed_orphans as (
            select
                o.reject_id, o.batch_id, o.line_no,
                etl.parse_key(o.transaction_id_text) as transaction_id,
                etl.parse_key(o.customer_id_text) as customer_id,
                etl.parse_timestamp(o.transaction_ts_text) as transaction_ts,
                etl.normalise_code(o.payment_method_text) as payment_method_code,
                etl.normalise_code(o.status_text) as status_code
            from open_orphans o
            offset 0
        ),
        checked_orphans as (
            select
                t.*,
                exists (select 1 from production.transactions p
                        where p.transaction_id = t.transaction_id
                          and coalesce(p.delivered_batch_id, p.source_batch_id) > t.batch_id)
                    as newer_delivery,
                exists (select 1 from production.customers c
                        where c.customer_id = t.customer_id) as parents_known
            from typed_orphans t
        ),
        decided as (
            select
                c.*,
                case
                    when c.newer_delivery then 'superseded'
                    when not c.parents_known then null
                    when c.batch_id = max(c.batch_id)
                                      filter (where c.parents_known and not c.newer_delivery)
                                      over (partition by c.transaction_id) then 'merged'
                    else 'superseded'
                end as resolution
            from checked_orphans c
        ),
        accepted as (
            insert into staging.resolved_transactions (
                batch_id, line_no, transaction_id, customer_id, transaction_ts,
                payment_method_code, status_code, resolved_batch_id
            )
            select
                d.batch_id, d.line_no, d.transaction_id, d.customer_id, d.transaction_ts,
                d.payment_method_code, d.status_code, v_batch_id
            from decided d
            where d.resolution = 'merged'
        ),
        resolved as (
            update etl.rejected_row r
            set resolved_batch_id = v_batch_id, resolved_at = now(), resolution = d.resolution
            from decided d
            where r.reject_id = d.reject_id and d.resolution is not null
            returning r.resolution
        )
        select count(*) filter (where resolved.resolution = 'merged'),
               count(*) filter (where resolved.resolution = 'superseded')
        into v_merged, v_superseded
        from resolved;

        v_inserted := 0;
        v_changed := 0;
        if v_merged > 0 then
            select u.inserted, u.changed into v_inserted, v_changed
            from production.upsert_transactions(v_batch_id, true) u;
            delete from staging.resolved_transactions r where r.resolved_batch_id = v_batch_id;
        end if;
        if v_merged + v_superseded > 0 then
            raise notice 'reprocess_rejects: batch % (%): round %: transactions.csv: % merged '
                         '(production: % inserted, % changed), % superseded', v_batch_id,
                         v_batch_name, v_round, v_merged, v_inserted, v_changed, v_superseded;
        end if;
        v_resolved := v_resolved + v_merged + v_superseded;

        -- Apart from the block above: items.csv's columns, parsers, parents (two) and tables.
        -- transaction_items.csv orphans: parents = the transaction and the product
        with open_orphans as (
            select
                r.reject_id, r.batch_id, r.line_no,
                etl.clean_value(r.raw ->> 'item_id') as item_id_text,
                etl.clean_value(r.raw ->> 'transaction_id') as transaction_id_text,
                etl.clean_value(r.raw ->> 'product_id') as product_id_text,
                etl.clean_value(r.raw ->> 'quantity') as quantity_text,
                etl.clean_value(r.raw ->> 'unit_price') as unit_price_text,
                etl.clean_value(r.raw ->> 'discount') as discount_text
            from etl.rejected_row r
            where r.file_name = 'transaction_items.csv'
              and r.resolved_at is null
              and r.rules <@ v_orphan_rules
              and r.batch_id <= v_batch_id
            offset 0
        ),
        typed_orphans as (
            select
                o.reject_id, o.batch_id, o.line_no,
                etl.parse_key(o.item_id_text) as item_id,
                etl.parse_key(o.transaction_id_text) as transaction_id,
                etl.parse_key(o.product_id_text) as product_id,
                etl.parse_count(o.quantity_text) as quantity,
                etl.parse_money(o.unit_price_text) as unit_price,
                coalesce(etl.parse_money(o.discount_text), 0) as discount
            from open_orphans o
            offset 0
        ),
        checked_orphans as (
            select
                t.*,
                exists (select 1 from production.transaction_items p
                        where p.item_id = t.item_id
                          and coalesce(p.delivered_batch_id, p.source_batch_id) > t.batch_id)
                    as newer_delivery,
                exists (select 1 from production.transactions pt
                        where pt.transaction_id = t.transaction_id)
                    and exists (select 1 from production.products pp
                                where pp.product_id = t.product_id) as parents_known
            from typed_orphans t
        ),
        decided as (
            select
                c.*,
                case
                    when c.newer_delivery then 'superseded'
                    when not c.parents_known then null
                    when c.batch_id = max(c.batch_id)
                                      filter (where c.parents_known and not c.newer_delivery)
                                      over (partition by c.item_id) then 'merged'
                    else 'superseded'
                end as resolution
            from checked_orphans c
        ),
        accepted as (
            insert into staging.resolved_transaction_items (
                batch_id, line_no, item_id, transaction_id, product_id, quantity, unit_price,
                discount, resolved_batch_id
            )
            select
                d.batch_id, d.line_no, d.item_id, d.transaction_id, d.product_id, d.quantity,
                d.unit_price, d.discount, v_batch_id
            from decided d
            where d.resolution = 'merged'
        ),
        resolved as (
            update etl.rejected_row r
            set resolved_batch_id = v_batch_id, resolved_at = now(), resolution = d.resolution
            from decided d
            where r.reject_id = d.reject_id and d.resolution is not null
            returning r.resolution
        )
        select count(*) filter (where resolved.resolution = 'merged'),
               count(*) filter (where resolved.resolution = 'superseded')
        into v_merged, v_superseded
        from resolved;

        v_inserted := 0;
        v_changed := 0;
        if v_merged > 0 then
            select u.inserted, u.changed into v_inserted, v_changed
            from production.upsert_transaction_items(v_batch_id, true) u;
            delete from staging.resolved_transaction_items r
            where r.resolved_batch_id = v_batch_id;
        end if;
        if v_merged + v_superseded > 0 then
            raise notice 'reprocess_rejects: batch % (%): round %: transaction_items.csv: '
                         '% merged (production: % inserted, % changed), % superseded',
                         v_batch_id, v_batch_name, v_round, v_merged, v_inserted, v_changed,
                         v_superseded;
        end if;
        v_resolved := v_resolved + v_merged + v_superseded;

        v_total := v_total + v_resolved;
        exit when v_resolved = 0;
        if v_round >= c_max_rounds then
            raise exception 'reprocess_rejects: batch %: still resolving after % rounds',
                v_batch_id, v_round;
        end if;
    end loop;

    insert into etl.batch_step (batch_id, step, rows, completed_at)
    select v_batch_id, 'reprocess_rejects', count(*), now()
    from etl.rejected_row r
    where r.resolved_batch_id = v_batch_id
    on conflict (batch_id, step) do update
    set rows = excluded.rows, completed_at = excluded.completed_at;

    raise notice 'reprocess_rejects: batch % (%): % orphans resolved in % round(s); % still '
                 'waiting', v_batch_id, v_batch_name, v_total, v_round,
                 (select count(*) from etl.rejected_row r
                  where r.resolved_at is null
                    and r.rules <@ v_orphan_rules);
end
$$;

comment on procedure etl.reprocess_rejects(bigint) is
    'Re-validates quarantined orphans against production, merges those whose parents are '
    'known, marks them resolved (CALL etl.reprocess_rejects(); default: newest merged batch)';
