-- The staged rows of a batch, typed, with the facts the rules need: one function per file.
--
-- staging.typed_customers(p_batch_id bigint, p_load_ts timestamptz)
-- staging.typed_products(p_batch_id bigint, p_load_ts timestamptz)
-- staging.typed_transactions(p_batch_id bigint, p_payment_codes text[], p_status_codes text[],
--   p_load_ts timestamptz)
-- staging.typed_transaction_items(p_batch_id bigint, p_known_products bigint[])
--   return table: the columns of staging.validated_<file>, in its order: batch_id, line_no,
--   every value typed (etl.*_value parsers of contract_parsers.sql: trimmed; null when
--   missing or not well-formed), <column>_given for every value whose null could mean
--   either (etl.is_given), the reference facts (customer_known: the customer is in
--   production or accepted earlier in the batch; transaction_known: accepted earlier in
--   the batch (production is probed later, for the few rows not found here);
--   product_known: in p_known_products, production's and the batch's accepted products),
--   the raw values (raw_<column>, as staged: what the quarantine keeps) and rules.
--   Payment method and status codes are normalised (etl.code_value; p_*_codes: the lookup
--   tables' codes).
--   rules: every rule of the file that a row decides alone, null when the row breaks none;
--   the set-wide rules are the procedure's (duplicate_key for every file, email_conflict
--   for customers). For items, unknown_transaction means "not accepted in the batch": the
--   procedure removes it for the transactions it finds in production. The rules are listed
--   in etl.dq_rule's sort_order.
--
-- Why functions: staging.validate_<file> runs CREATE TABLE <the batch's partition> AS
-- SELECT * FROM staging.typed_<file>(...). The planner inlines these SQL functions (STABLE,
-- one SELECT, no SET clause), so the statement is planned as one query over staging, with
-- parallel workers doing the parsing and the rules (CREATE TABLE AS may run its query in
-- parallel, an INSERT ... SELECT or an UPDATE may not: computing the rules here instead of
-- in an UPDATE of the 3M-row partition saves that serial pass and a second version of
-- every rejected row). No OFFSET 0 fence: it would keep everything above it in the leader.
-- Each function parses each value once in the subquery `parsed` and the outer query reads
-- its columns (the join keys and the rules included): staging.parse_once() in
-- its select list keeps the planner from merging it into the outer query, which would
-- repeat every parser at each use of its column.
-- Reading only, they are safe to call any number of times.

-- Always true. Declared VOLATILE (and PARALLEL SAFE) for one effect: PostgreSQL does not
-- merge ("pull up") a subquery in FROM whose select list calls a volatile function, so the
-- expressions of that subquery are computed once per row and the outer query refers to
-- their results; merged, each use of a column would repeat its expression. The body is
-- inlined (no call per row), and parallel workers still run the subquery.
create or replace function staging.parse_once()
returns boolean
language sql volatile parallel safe
return true;

comment on function staging.parse_once() is
    'Always true; in a subquery''s select list it keeps the subquery from being merged into '
    'the outer query, so its parsed values are computed once per row';

drop function if exists staging.typed_customers(bigint);
drop function if exists staging.typed_customers(bigint, timestamptz);
drop function if exists staging.typed_products(bigint);
drop function if exists staging.typed_products(bigint, timestamptz);
drop function if exists staging.typed_transactions(bigint, text[], text[]);
drop function if exists staging.typed_transactions(bigint, text[], text[], timestamptz);
drop function if exists staging.typed_transaction_items(bigint, bigint[]);

create function staging.typed_customers(p_batch_id bigint, p_load_ts timestamptz)
returns table (
    batch_id bigint, line_no bigint, customer_id bigint, first_name text, last_name text,
    email text, phone text, city text, state text, country text, signup_date date,
    source_updated_at timestamptz, customer_id_given boolean, email_given boolean,
    signup_date_given boolean, updated_at_given boolean,
    raw_customer_id text, raw_first_name text, raw_last_name text, raw_email text,
    raw_phone text, raw_city text, raw_state text, raw_country text, raw_signup_date text,
    raw_updated_at text,
    rules text[]
)
language sql stable parallel safe
begin atomic
    select
        parsed.batch_id,
        parsed.line_no,
        parsed.customer_id,
        parsed.first_name,
        parsed.last_name,
        parsed.email,
        parsed.phone,
        parsed.city,
        parsed.state,
        parsed.country,
        parsed.signup_date,
        parsed.source_updated_at,
        parsed.customer_id_given,
        parsed.email_given,
        parsed.signup_date_given,
        parsed.updated_at_given,
        parsed.raw_customer_id,
        parsed.raw_first_name,
        parsed.raw_last_name,
        parsed.raw_email,
        parsed.raw_phone,
        parsed.raw_city,
        parsed.raw_state,
        parsed.raw_country,
        parsed.raw_signup_date,
        parsed.raw_updated_at,
        nullif(array_remove(array[
            case when not (parsed.customer_id_given and parsed.email_given
                           and parsed.signup_date_given)
                      or parsed.first_name is null or parsed.last_name is null
                      or parsed.country is null
                 then 'missing_required' end,
            case when parsed.customer_id_given and parsed.customer_id is null
                 then 'invalid_integer' end,
            case when parsed.email_given and parsed.email is null then 'invalid_email' end,
            case when parsed.signup_date_given and parsed.signup_date is null
                 then 'invalid_date' end,
            case when parsed.updated_at_given and parsed.source_updated_at is null
                 then 'invalid_timestamp' end,
            case when parsed.signup_date < date '2000-01-01'
                      or parsed.signup_date > (p_load_ts at time zone 'UTC')::date
                      or parsed.source_updated_at < timestamptz '2000-01-01 00:00:00+00'
                      or parsed.source_updated_at > p_load_ts
                 then 'out_of_range' end
        ], null), '{}')
    from (
        select
            s.batch_id,
            s.line_no,
            etl.key_value(s.customer_id) as customer_id,
            etl.clean_value(s.first_name) as first_name,
            etl.clean_value(s.last_name) as last_name,
            case when etl.is_email(etl.clean_value(s.email))
                 then etl.email_value(s.email) end as email,
            etl.clean_value(s.phone) as phone,
            etl.clean_value(s.city) as city,
            etl.clean_value(s.state) as state,
            etl.clean_value(s.country) as country,
            etl.date_value(s.signup_date) as signup_date,
            etl.timestamp_value(s.updated_at) as source_updated_at,
            etl.is_given(s.customer_id) as customer_id_given,
            etl.is_given(s.email) as email_given,
            etl.is_given(s.signup_date) as signup_date_given,
            etl.is_given(s.updated_at) as updated_at_given,
            s.customer_id as raw_customer_id,
            s.first_name as raw_first_name,
            s.last_name as raw_last_name,
            s.email as raw_email,
            s.phone as raw_phone,
            s.city as raw_city,
            s.state as raw_state,
            s.country as raw_country,
            s.signup_date as raw_signup_date,
            s.updated_at as raw_updated_at,
            staging.parse_once() as parsed_once
        from staging.customers s
        where s.batch_id = p_batch_id
    ) parsed;
end;

comment on function staging.typed_customers(bigint, timestamptz) is
    'Staged customers.csv rows of a batch, typed, with every rule but duplicate_key and '
    'email_conflict';

-- Apart from typed_customers (same shape): products.csv's own columns and rules.
create function staging.typed_products(p_batch_id bigint, p_load_ts timestamptz)
returns table (
    batch_id bigint, line_no bigint, product_id bigint, product_name text, category text,
    brand text, unit_price numeric, cost numeric, source_updated_at timestamptz,
    product_id_given boolean, unit_price_given boolean, cost_given boolean,
    updated_at_given boolean,
    raw_product_id text, raw_product_name text, raw_category text, raw_brand text,
    raw_unit_price text, raw_cost text, raw_updated_at text,
    rules text[]
)
language sql stable parallel safe
begin atomic
    select
        parsed.batch_id,
        parsed.line_no,
        parsed.product_id,
        parsed.product_name,
        parsed.category,
        parsed.brand,
        parsed.unit_price,
        parsed.cost,
        parsed.source_updated_at,
        parsed.product_id_given,
        parsed.unit_price_given,
        parsed.cost_given,
        parsed.updated_at_given,
        parsed.raw_product_id,
        parsed.raw_product_name,
        parsed.raw_category,
        parsed.raw_brand,
        parsed.raw_unit_price,
        parsed.raw_cost,
        parsed.raw_updated_at,
        nullif(array_remove(array[
            case when not (parsed.product_id_given and parsed.unit_price_given
                           and parsed.cost_given)
                      or parsed.product_name is null or parsed.category is null
                 then 'missing_required' end,
            case when parsed.product_id_given and parsed.product_id is null
                 then 'invalid_integer' end,
            case when parsed.updated_at_given and parsed.source_updated_at is null
                 then 'invalid_timestamp' end,
            case when parsed.source_updated_at < timestamptz '2000-01-01 00:00:00+00'
                      or parsed.source_updated_at > p_load_ts
                 then 'out_of_range' end,
            case when (parsed.unit_price_given and not coalesce(parsed.unit_price > 0, false))
                      or (parsed.cost_given and not coalesce(parsed.cost >= 0, false))
                 then 'invalid_amount' end
        ], null), '{}')
    from (
        select
            s.batch_id,
            s.line_no,
            etl.key_value(s.product_id) as product_id,
            etl.clean_value(s.product_name) as product_name,
            etl.clean_value(s.category) as category,
            etl.clean_value(s.brand) as brand,
            etl.money_value(s.unit_price) as unit_price,
            etl.money_value(s.cost) as cost,
            etl.timestamp_value(s.updated_at) as source_updated_at,
            etl.is_given(s.product_id) as product_id_given,
            etl.is_given(s.unit_price) as unit_price_given,
            etl.is_given(s.cost) as cost_given,
            etl.is_given(s.updated_at) as updated_at_given,
            s.product_id as raw_product_id,
            s.product_name as raw_product_name,
            s.category as raw_category,
            s.brand as raw_brand,
            s.unit_price as raw_unit_price,
            s.cost as raw_cost,
            s.updated_at as raw_updated_at,
            staging.parse_once() as parsed_once
        from staging.products s
        where s.batch_id = p_batch_id
    ) parsed;
end;

comment on function staging.typed_products(bigint, timestamptz) is
    'Staged products.csv rows of a batch, typed, with every rule but duplicate_key';

create function staging.typed_transactions(
    p_batch_id bigint,
    p_payment_codes text[],
    p_status_codes text[],
    p_load_ts timestamptz
)
returns table (
    batch_id bigint, line_no bigint, transaction_id bigint, customer_id bigint,
    transaction_ts timestamptz, payment_method_code text, status_code text,
    transaction_id_given boolean, customer_id_given boolean, transaction_ts_given boolean,
    payment_method_given boolean, status_given boolean, customer_known boolean,
    raw_transaction_id text, raw_customer_id text, raw_transaction_ts text,
    raw_payment_method text, raw_status text,
    rules text[]
)
language sql stable parallel safe
begin atomic
    select
        parsed.batch_id,
        parsed.line_no,
        parsed.transaction_id,
        parsed.customer_id,
        parsed.transaction_ts,
        parsed.payment_method_code,
        parsed.status_code,
        given.transaction_id,
        given.customer_id,
        given.transaction_ts,
        given.payment_method,
        given.status,
        batch_customers.customer_id is not null
            or production_customers.customer_id is not null,
        parsed.raw_transaction_id,
        parsed.raw_customer_id,
        parsed.raw_transaction_ts,
        parsed.raw_payment_method,
        parsed.raw_status,
        nullif(array_remove(array[
            case when not (given.transaction_id and given.customer_id
                           and given.transaction_ts and given.payment_method
                           and given.status)
                 then 'missing_required' end,
            case when (given.transaction_id and parsed.transaction_id is null)
                      or (given.customer_id and parsed.customer_id is null)
                 then 'invalid_integer' end,
            case when given.transaction_ts and parsed.transaction_ts is null
                 then 'invalid_timestamp' end,
            case when parsed.transaction_ts < timestamptz '2000-01-01 00:00:00+00'
                      or parsed.transaction_ts > p_load_ts
                 then 'out_of_range' end,
            case when given.payment_method
                      and not coalesce(parsed.payment_method_code = any (p_payment_codes),
                                       false)
                 then 'invalid_payment_method' end,
            case when given.status
                      and not coalesce(parsed.status_code = any (p_status_codes), false)
                 then 'invalid_status' end,
            case when parsed.customer_id is not null
                      and batch_customers.customer_id is null
                      and production_customers.customer_id is null
                 then 'unknown_customer' end
        ], null), '{}')
    from (
        select
            s.batch_id,
            s.line_no,
            etl.key_value(s.transaction_id) as transaction_id,
            etl.key_value(s.customer_id) as customer_id,
            etl.timestamp_value(s.transaction_ts) as transaction_ts,
            etl.code_value(s.payment_method, p_payment_codes) as payment_method_code,
            etl.code_value(s.status, p_status_codes) as status_code,
            s.transaction_id as raw_transaction_id,
            s.customer_id as raw_customer_id,
            s.transaction_ts as raw_transaction_ts,
            s.payment_method as raw_payment_method,
            s.status as raw_status,
            staging.parse_once() as parsed_once
        from staging.transactions s
        where s.batch_id = p_batch_id
    ) parsed
    cross join lateral (
        -- a parsed value implies a given one: is_given runs only for the few nulls
        select
            parsed.transaction_id is not null
                or etl.is_given(parsed.raw_transaction_id) as transaction_id,
            parsed.customer_id is not null
                or etl.is_given(parsed.raw_customer_id) as customer_id,
            parsed.transaction_ts is not null
                or etl.is_given(parsed.raw_transaction_ts) as transaction_ts,
            parsed.payment_method_code is not null
                or etl.is_given(parsed.raw_payment_method) as payment_method,
            parsed.status_code is not null or etl.is_given(parsed.raw_status) as status
    ) given
    left join staging.validated_customers batch_customers
        on batch_customers.batch_id = p_batch_id
       and batch_customers.rules is null
       and batch_customers.customer_id = parsed.customer_id
    left join production.customers production_customers
        on production_customers.customer_id = parsed.customer_id;
end;

comment on function staging.typed_transactions(bigint, text[], text[], timestamptz) is
    'Staged transactions.csv rows of a batch, typed, with every rule but duplicate_key';

-- Apart from typed_transactions (same shape): the items' own columns, rules and parents.
create function staging.typed_transaction_items(p_batch_id bigint, p_known_products bigint[])
returns table (
    batch_id bigint, line_no bigint, item_id bigint, transaction_id bigint, product_id bigint,
    quantity integer, unit_price numeric, discount numeric, item_id_given boolean,
    transaction_id_given boolean, product_id_given boolean, quantity_given boolean,
    unit_price_given boolean, discount_given boolean, transaction_known boolean,
    product_known boolean,
    raw_item_id text, raw_transaction_id text, raw_product_id text, raw_quantity text,
    raw_unit_price text, raw_discount text,
    rules text[]
)
language sql stable parallel safe
begin atomic
    select
        parsed.batch_id,
        parsed.line_no,
        parsed.item_id,
        parsed.transaction_id,
        parsed.product_id,
        parsed.quantity,
        parsed.unit_price,
        parsed.discount,
        given.item_id,
        given.transaction_id,
        given.product_id,
        given.quantity,
        given.unit_price,
        given.discount,
        batch_transactions.transaction_id is not null,
        coalesce(parsed.product_id = any (p_known_products), false),
        parsed.raw_item_id,
        parsed.raw_transaction_id,
        parsed.raw_product_id,
        parsed.raw_quantity,
        parsed.raw_unit_price,
        parsed.raw_discount,
        nullif(array_remove(array[
            case when not (given.item_id and given.transaction_id
                           and given.product_id and given.quantity
                           and given.unit_price)
                 then 'missing_required' end,
            case when (given.item_id and parsed.item_id is null)
                      or (given.transaction_id and parsed.transaction_id is null)
                      or (given.product_id and parsed.product_id is null)
                 then 'invalid_integer' end,
            case when given.unit_price and not coalesce(parsed.unit_price >= 0, false)
                 then 'invalid_amount' end,
            case when given.quantity
                      and not coalesce(parsed.quantity between 1 and 1000, false)
                 then 'invalid_quantity' end,
            case when given.discount
                      and (parsed.discount is null or parsed.discount < 0
                           or (coalesce(parsed.quantity between 1 and 1000, false)
                               and coalesce(parsed.unit_price >= 0, false)
                               and parsed.discount > parsed.quantity * parsed.unit_price))
                 then 'invalid_discount' end,
            case when parsed.transaction_id is not null
                      and batch_transactions.transaction_id is null
                 then 'unknown_transaction' end,
            case when parsed.product_id is not null
                      and not coalesce(parsed.product_id = any (p_known_products), false)
                 then 'unknown_product' end
        ], null), '{}')
    from (
        select
            s.batch_id,
            s.line_no,
            etl.key_value(s.item_id) as item_id,
            etl.key_value(s.transaction_id) as transaction_id,
            etl.key_value(s.product_id) as product_id,
            etl.count_value(s.quantity) as quantity,
            etl.money_value(s.unit_price) as unit_price,
            etl.money_value(s.discount) as discount,
            s.item_id as raw_item_id,
            s.transaction_id as raw_transaction_id,
            s.product_id as raw_product_id,
            s.quantity as raw_quantity,
            s.unit_price as raw_unit_price,
            s.discount as raw_discount,
            staging.parse_once() as parsed_once
        from staging.transaction_items s
        where s.batch_id = p_batch_id
    ) parsed
    cross join lateral (
        -- a parsed value implies a given one: is_given runs only for the few nulls
        select
            parsed.item_id is not null or etl.is_given(parsed.raw_item_id) as item_id,
            parsed.transaction_id is not null
                or etl.is_given(parsed.raw_transaction_id) as transaction_id,
            parsed.product_id is not null or etl.is_given(parsed.raw_product_id) as product_id,
            parsed.quantity is not null or etl.is_given(parsed.raw_quantity) as quantity,
            parsed.unit_price is not null or etl.is_given(parsed.raw_unit_price) as unit_price,
            parsed.discount is not null or etl.is_given(parsed.raw_discount) as discount
    ) given
    left join staging.validated_transactions batch_transactions
        on batch_transactions.batch_id = p_batch_id
       and batch_transactions.rules is null
       and batch_transactions.transaction_id = parsed.transaction_id;
end;

comment on function staging.typed_transaction_items(bigint, bigint[]) is
    'Staged transaction_items.csv rows of a batch, typed, with every rule but duplicate_key '
    '(unknown_transaction: not accepted in the batch; production is probed by the caller)';
