-- Erasure of a customer and the forgetting of later deliveries (docs/data-contract.md, "Personal
-- data"; docs/privacy.md).
--
-- etl.redact_emails(p_text text, p_emails text[]) returns text
--   p_text with every occurrence of each address of p_emails (lower-case), matched
--   case-insensitively, replaced by '[erased]'; p_text itself when none occurs. Pure.
--
-- etl.identifier_addresses(p_customer_ids bigint[], p_batch_id bigint) returns text[]
--   The e-mail addresses (trimmed, lower-case, holding an @) that staged, typed and
--   quarantined rows of those customer ids hold, in batch p_batch_id or (null) in all.
--
-- etl.strip_identifiers(p_customer_ids bigint[], p_batch_id bigint, p_emails text[])
--   returns table (relation text, rows bigint)
--   In batch p_batch_id or (null) in all batches: the rows of those customer ids in
--   staging.customers, staging.validated_customers and etl.rejected_row lose first_name,
--   last_name, email and phone (raw values and raw text too); the rows of other ids lose
--   an address of p_emails (typed rows only when rejected: an accepted row's address is its
--   customer's), and the raw text of a malformed record holding one is set null whole (it
--   holds the rest of the person's data next to it). Returns the rows changed per
--   statement; a second call changes none.
--
-- etl.forget_erased_identifiers(p_batch_id bigint) returns bigint
--   Called by production.merge_batch before it writes production: for the erased customer
--   ids (etl.erasure) that the batch delivers again (found in its typed rows and its
--   quarantined rows, not by a scan of staging), strip_identifiers on the batch, with the
--   addresses the batch delivered for them. Validation has run on the values as delivered
--   (rules as usual); the merge then writes the customer without identifiers, its other
--   attributes updated (SCD2 versions follow as usual), and no staged or quarantined row of
--   the batch keeps them. Returns the rows changed (0, at once, when no erased id is in the
--   batch).
--
-- etl.erase_customer(p_customer_id bigint, p_reference text)
--   Contract: in one transaction (the caller's CALL), set-based, one statement per table:
--   - every stored row whose key is p_customer_id loses its direct identifiers (first_name,
--     last_name, email, phone): staging.customers (raw text), staging.validated_customers
--     (typed and raw), the quarantine etl.rejected_row (the four raw values of customers.csv
--     rows, and the raw text), production.customers (the row stays, identifiers null) and
--     every warehouse.dim_customer version (valid_from, valid_to, is_current and keys stay;
--     attr_hash is computed again without them by warehouse.customer_attr_hash, so a later
--     delivery makes no version out of identifiers that are no longer stored);
--   - every other stored row holding one of the e-mail addresses the customer ever had
--     (found in all of the above) loses it: the e-mail of staged and typed rows of other
--     ids, the raw e-mail of their quarantined rows, the raw text of malformed records that
--     contain one (set null whole: such a record holds the rest of the person's data
--     next to it), and any text or json value of any other etl table (run errors, refusal
--     messages, alerts) where it is replaced by '[erased]';
--   - nothing else changes: facts, aggregates, the analytics views and the reconciliation
--     views read none of these columns;
--   - etl.erasure gets (customer_id, reference, erased_at, rows_changed, erased_by);
--     etl.v_erasures shows it. No identifier is written anywhere, nor printed: the notices
--     name tables and row counts only.
--   An address the customer had that another customer holds now in production is that
--   customer's and stays in its production row and dim_customer versions.
--   Raises no_data_found naming the id when no stored row has that key (and it was never
--   erased), invalid_parameter_value for a null id or an empty reference, and
--   lock_not_available while a pipeline run holds the pipeline lock (a run between its
--   validation and its merge would store the identifiers again). Changes nothing then.
--   Safe to call twice: a second call for an erased id changes no row (it says when and
--   under which reference the id was erased). Later deliveries of the id are stripped of
--   their identifiers by the merge (etl.forget_erased_identifiers). Rows of a batch not
--   yet merged lose them at once too: a row of the id that is not yet validated is then
--   rejected as missing_required.
--   Security definer (as the tables' owner): EXECUTE is revoked from PUBLIC and from
--   warehouse_etl; the owner and superusers may call it, and a DBA role that is granted
--   EXECUTE on it (docs/privacy.md). Every identifier it builds is quoted (%I).

create or replace function etl.redact_emails(p_text text, p_emails text[])
returns text
language sql
immutable
parallel safe
return case
    when p_text is null or coalesce(cardinality(p_emails), 0) = 0 then p_text
    else regexp_replace(
        p_text collate "und-x-icu",  -- case-insensitive as etl.email_value lower-cases
        (select string_agg(regexp_replace(e.address, '([^[:alnum:]])', '\\\1', 'g'), '|')
         from unnest(p_emails) as e (address)),
        '[erased]', 'gi')
end;

comment on function etl.redact_emails(text, text[]) is
    'The text with each of the e-mail addresses replaced by [erased] (case-insensitive)';

create or replace function etl.identifier_addresses(p_customer_ids bigint[], p_batch_id bigint)
returns text[]
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    with own_addresses as (
        select etl.email_value(s.email) as address
        from staging.customers s
        where etl.key_value(s.customer_id) = any (p_customer_ids)
          and (p_batch_id is null or s.batch_id = p_batch_id)
        union all
        select etl.email_value(v.raw_email)
        from staging.validated_customers v
        where (v.customer_id = any (p_customer_ids)
               or etl.key_value(v.raw_customer_id) = any (p_customer_ids))
          and (p_batch_id is null or v.batch_id = p_batch_id)
        union all
        select etl.email_value(r.raw ->> 'email')
        from etl.rejected_row r
        where r.file_name = 'customers.csv'
          and etl.key_value(r.record_key) = any (p_customer_ids)
          and (p_batch_id is null or r.batch_id = p_batch_id)
    )
    select coalesce(array_agg(distinct a.address), '{}')
    from own_addresses a
    where a.address like '%@%'
$$;

comment on function etl.identifier_addresses(bigint[], bigint) is
    'E-mail addresses that staged and quarantined rows of the customer ids hold (one batch, '
    'or all for null)';

create or replace function etl.strip_identifiers(
    p_customer_ids bigint[],
    p_batch_id bigint,
    p_emails text[]
)
returns table (relation text, rows bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rows bigint;
begin
    update staging.customers s
    set first_name = null, last_name = null, email = null, phone = null
    where etl.key_value(s.customer_id) = any (p_customer_ids)
      and (p_batch_id is null or s.batch_id = p_batch_id)
      and (s.first_name, s.last_name, s.email, s.phone) is distinct from
          (null::text, null::text, null::text, null::text);
    get diagnostics v_rows = row_count;
    return query select 'staging.customers', v_rows;

    update staging.customers s
    set email = null
    where etl.email_value(s.email) = any (p_emails)
      and (p_batch_id is null or s.batch_id = p_batch_id);
    get diagnostics v_rows = row_count;
    return query select 'staging.customers (address, other ids)', v_rows;

    update staging.validated_customers v
    set first_name = null, last_name = null, email = null, phone = null,
        raw_first_name = null, raw_last_name = null, raw_email = null, raw_phone = null
    where (v.customer_id = any (p_customer_ids)
           or etl.key_value(v.raw_customer_id) = any (p_customer_ids))
      and (p_batch_id is null or v.batch_id = p_batch_id)
      and (v.first_name, v.last_name, v.email, v.phone, v.raw_first_name, v.raw_last_name,
           v.raw_email, v.raw_phone) is distinct from
          (null::text, null::text, null::text, null::text, null::text, null::text,
           null::text, null::text);
    get diagnostics v_rows = row_count;
    return query select 'staging.validated_customers', v_rows;

    -- rows of other ids lose the address only when rejected: an accepted row's address is
    -- that customer's now
    update staging.validated_customers v
    set email = null, raw_email = null
    where v.rules is not null
      and (v.email = any (p_emails) or etl.email_value(v.raw_email) = any (p_emails))
      and (p_batch_id is null or v.batch_id = p_batch_id);
    get diagnostics v_rows = row_count;
    return query select 'staging.validated_customers (address, other ids)', v_rows;

    update etl.rejected_row r
    set raw = r.raw || jsonb_build_object('first_name', null, 'last_name', null,
                                          'email', null, 'phone', null),
        raw_text = null
    where r.file_name = 'customers.csv'
      and etl.key_value(r.record_key) = any (p_customer_ids)
      and (p_batch_id is null or r.batch_id = p_batch_id)
      and (r.raw_text is not null
           or r.raw ->> 'first_name' is not null or r.raw ->> 'last_name' is not null
           or r.raw ->> 'email' is not null or r.raw ->> 'phone' is not null);
    get diagnostics v_rows = row_count;
    return query select 'etl.rejected_row', v_rows;

    update etl.rejected_row r
    set raw = r.raw || jsonb_build_object('email', null)
    where r.file_name = 'customers.csv'
      and etl.email_value(r.raw ->> 'email') = any (p_emails)
      and (p_batch_id is null or r.batch_id = p_batch_id);
    get diagnostics v_rows = row_count;
    return query select 'etl.rejected_row (address, other ids)', v_rows;

    -- a malformed record holding an address holds the rest of the person's data next to it
    update etl.rejected_row r
    set raw_text = null
    where r.raw_text is not null
      and (p_batch_id is null or r.batch_id = p_batch_id)
      and exists (select 1 from unnest(p_emails) as e (address)
                  where strpos(lower(r.raw_text collate "und-x-icu"), e.address) > 0);
    get diagnostics v_rows = row_count;
    return query select 'etl.rejected_row (raw text holding an address)', v_rows;
end
$$;

comment on function etl.strip_identifiers(bigint[], bigint, text[]) is
    'Blanks the identifiers of the customer ids, and the addresses, in staging and the '
    'quarantine (one batch, or all for null); returns rows changed per table';

create or replace function etl.forget_erased_identifiers(p_batch_id bigint)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_customer_ids bigint[];
    v_rows         bigint;
begin
    if not exists (select 1 from etl.erasure) then
        return 0;  -- nobody was ever erased: the common case costs one lookup
    end if;
    -- the batch's typed rows (one partition) hold every staged row, its raw key included;
    -- its quarantined rows too (they outlive the typed rows, which a crash empties)
    select coalesce(array_agg(e.customer_id), '{}') into v_customer_ids
    from etl.erasure e
    where e.customer_id in (select v.customer_id
                            from staging.validated_customers v
                            where v.batch_id = p_batch_id
                            union
                            select etl.key_value(v.raw_customer_id)
                            from staging.validated_customers v
                            where v.batch_id = p_batch_id
                            union
                            select etl.key_value(r.record_key)
                            from etl.rejected_row r
                            where r.batch_id = p_batch_id and r.file_name = 'customers.csv');
    if cardinality(v_customer_ids) = 0 then
        return 0;
    end if;

    select coalesce(sum(s.rows), 0) into v_rows
    from etl.strip_identifiers(v_customer_ids, p_batch_id,
                               etl.identifier_addresses(v_customer_ids, p_batch_id)) s;
    raise notice 'forget_erased_identifiers: batch %: % erased customer id(s) delivered again: '
                 'their identifiers stored nowhere (% staged or quarantined row(s) blanked)',
        p_batch_id, cardinality(v_customer_ids), v_rows;
    return v_rows;
end
$$;

comment on function etl.forget_erased_identifiers(bigint) is
    'Blanks the identifiers a batch delivered for erased customer ids (called by the merge)';

create or replace procedure etl.erase_customer(p_customer_id bigint, p_reference text)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_erasure   record;
    v_emails    text[];
    v_rows      bigint;
    v_total     bigint := 0;
    v_counts    text[] := '{}';
    v_column    record;
begin
    if p_customer_id is null or p_reference is null or btrim(p_reference) = '' then
        raise exception 'etl.erase_customer: a customer id and a reference (the request''s '
                        'ticket, without personal data) are required, got % and %',
                        coalesce(p_customer_id::text, 'null'),
                        coalesce(quote_literal(p_reference), 'null')
            using errcode = 'invalid_parameter_value';
    end if;

    select e.* into v_erasure from etl.erasure e where e.customer_id = p_customer_id;
    if found then
        raise notice 'etl.erase_customer: customer % was erased at % (reference %): '
                     'nothing changed', p_customer_id, v_erasure.erased_at, v_erasure.reference;
        return;
    end if;

    if not pg_try_advisory_xact_lock(etl.pipeline_lock_key()) then
        raise exception 'etl.erase_customer: a pipeline run holds the pipeline lock; '
                        'customer % was not erased', p_customer_id
            using errcode = 'lock_not_available',
                  hint = 'Call it again when the run has ended (python -m runner status).';
    end if;

    v_emails := etl.identifier_addresses(array[p_customer_id], null)
                || array(select a.address
                         from (select c.email from production.customers c
                               where c.customer_id = p_customer_id
                               union
                               select d.email from warehouse.dim_customer d
                               where d.customer_id = p_customer_id) as a (address)
                         where a.address is not null);

    if not exists (select 1 from production.customers c where c.customer_id = p_customer_id)
       and not exists (select 1 from warehouse.dim_customer d
                       where d.customer_id = p_customer_id)
       and not exists (select 1 from staging.customers s
                       where etl.key_value(s.customer_id) = p_customer_id)
       and not exists (select 1 from staging.validated_customers v
                       where v.customer_id = p_customer_id
                          or etl.key_value(v.raw_customer_id) = p_customer_id)
       and not exists (select 1 from etl.rejected_row r
                       where r.file_name = 'customers.csv'
                         and etl.key_value(r.record_key) = p_customer_id) then
        raise exception 'etl.erase_customer: customer % is unknown: no stored row has that '
                        'customer id; nothing erased', p_customer_id
            using errcode = 'no_data_found';
    end if;

    -- staging and the quarantine, every batch
    select v_total + coalesce(sum(s.rows), 0),
           v_counts || coalesce(array_agg(format('%s %s', s.relation, s.rows)), '{}')
    into v_total, v_counts
    from etl.strip_identifiers(array[p_customer_id], null, v_emails) s;

    -- production keeps the row, its key and its other attributes
    update production.customers c
    set first_name = null, last_name = null, email = null, phone = null
    where c.customer_id = p_customer_id
      and (c.first_name, c.last_name, c.email, c.phone) is distinct from
          (null::text, null::text, null::text, null::text);
    get diagnostics v_rows = row_count;
    v_total := v_total + v_rows;
    v_counts := v_counts || format('production.customers %s', v_rows);

    -- every version keeps its validity; its hash no longer covers identifiers
    update warehouse.dim_customer d
    set first_name = null, last_name = null, email = null, phone = null,
        attr_hash = warehouse.customer_attr_hash(null, null, null, null, d.city, d.state,
                                                 d.country, d.signup_date)
    where d.customer_id = p_customer_id
      and ((d.first_name, d.last_name, d.email, d.phone) is distinct from
           (null::text, null::text, null::text, null::text)
           or d.attr_hash is distinct from
              warehouse.customer_attr_hash(null, null, null, null, d.city, d.state,
                                           d.country, d.signup_date));
    get diagnostics v_rows = row_count;
    v_total := v_total + v_rows;
    v_counts := v_counts || format('warehouse.dim_customer %s', v_rows);

    -- any other text or json value of the control plane (errors, messages, alerts)
    if cardinality(v_emails) > 0 then
        for v_column in
            select c.relname, a.attname, format_type(a.atttypid, null) as type_name
            from pg_class c
            join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where c.relnamespace = 'etl'::regnamespace
              and c.relkind in ('r', 'p')
              and not c.relispartition
              and c.relname <> 'erasure'
              and a.atttypid in ('text'::regtype, 'character varying'::regtype,
                                 'jsonb'::regtype, 'json'::regtype)
            order by c.relname, a.attnum
        loop
            execute format(
                'update etl.%1$I t set %2$I = etl.redact_emails(t.%2$I::text, $1)::%3$s '
                'where exists (select 1 from unnest($1) as e (address) '
                '              where strpos(lower(t.%2$I::text collate "und-x-icu"), e.address) > 0)',
                v_column.relname, v_column.attname, v_column.type_name)
            using v_emails;
            get diagnostics v_rows = row_count;
            if v_rows > 0 then
                v_total := v_total + v_rows;
                v_counts := v_counts || format('etl.%s.%s %s', v_column.relname,
                                               v_column.attname, v_rows);
            end if;
        end loop;
    end if;

    insert into etl.erasure (customer_id, reference, erased_at, rows_changed, erased_by)
    values (p_customer_id, btrim(p_reference), now(), v_total, session_user);

    raise notice 'etl.erase_customer: customer % erased (reference %): % row(s) changed: %',
        p_customer_id, btrim(p_reference), v_total, array_to_string(v_counts, ', ');
end
$$;

comment on procedure etl.erase_customer(bigint, text) is
    'Erases a customer''s identifiers from every layer (CALL etl.erase_customer(42, '
    '''TICKET-1'')); figures and history unchanged; recorded in etl.v_erasures';

revoke all on procedure etl.erase_customer(bigint, text) from public;
revoke all on procedure etl.erase_customer(bigint, text) from warehouse_etl;
