-- The staged rows of a batch, typed, with the facts the rules need: one function per file.
--
-- staging.typed_customers(p_batch_id bigint)
-- staging.typed_products(p_batch_id bigint)
-- staging.typed_transactions(p_batch_id bigint, p_payment_codes text[], p_status_codes text[])
-- staging.typed_transaction_items(p_batch_id bigint, p_known_products bigint[])
--   return table: the columns of staging.validated_<file>, in its order: batch_id, line_no,
--   every value typed (etl.*_value parsers of contract_parsers.sql: trimmed; null when
--   missing or not well-formed), <column>_given for every value whose null could mean
--   either (etl.is_given), the reference facts (customer_known: the customer is in
--   production or accepted earlier in the batch; transaction_known: accepted earlier in
--   the batch (production is probed later, for the few rows not found here);
--   product_known: in p_known_products, production's and the batch's accepted products),
--   the raw values (raw_<column>, as staged: what the quarantine keeps) and rules null
--   (validation fills them).
--   Payment method and status codes are normalised (etl.code_value; p_*_codes: the lookup
--   tables' codes), not yet checked.
--
-- Why functions: staging.validate_<file> runs CREATE TABLE <the batch's partition> AS
-- SELECT * FROM staging.typed_<file>(...). The planner inlines these SQL functions (STABLE,
-- one SELECT, no SET clause), so the statement is planned as one query over staging, with
-- parallel workers doing the parsing (CREATE TABLE AS may run its query in parallel, an
-- INSERT ... SELECT may not). The queries are flat on purpose: a subquery fence (OFFSET 0)
-- would keep everything above it in the leader.
-- Reading only, they are safe to call any number of times.

drop function if exists staging.typed_customers(bigint);
drop function if exists staging.typed_products(bigint);
drop function if exists staging.typed_transactions(bigint, text[], text[]);
drop function if exists staging.typed_transaction_items(bigint, bigint[]);

create function staging.typed_customers(p_batch_id bigint)
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
        s.batch_id,
        s.line_no,
        etl.key_value(s.customer_id),
        etl.clean_value(s.first_name),
        etl.clean_value(s.last_name),
        case when etl.is_email(etl.clean_value(s.email))
             then lower(etl.clean_value(s.email)) end,
        etl.clean_value(s.phone),
        etl.clean_value(s.city),
        etl.clean_value(s.state),
        etl.clean_value(s.country),
        etl.date_value(s.signup_date),
        etl.timestamp_value(s.updated_at),
        etl.is_given(s.customer_id),
        etl.is_given(s.email),
        etl.is_given(s.signup_date),
        etl.is_given(s.updated_at),
        s.customer_id,
        s.first_name,
        s.last_name,
        s.email,
        s.phone,
        s.city,
        s.state,
        s.country,
        s.signup_date,
        s.updated_at,
        null::text[]
    from staging.customers s
    where s.batch_id = p_batch_id;
end;

comment on function staging.typed_customers(bigint) is
    'Staged customers.csv rows of a batch, typed, with what each rule needs';

create function staging.typed_products(p_batch_id bigint)
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
        s.batch_id,
        s.line_no,
        etl.key_value(s.product_id),
        etl.clean_value(s.product_name),
        etl.clean_value(s.category),
        etl.clean_value(s.brand),
        etl.money_value(s.unit_price),
        etl.money_value(s.cost),
        etl.timestamp_value(s.updated_at),
        etl.is_given(s.product_id),
        etl.is_given(s.unit_price),
        etl.is_given(s.cost),
        etl.is_given(s.updated_at),
        s.product_id,
        s.product_name,
        s.category,
        s.brand,
        s.unit_price,
        s.cost,
        s.updated_at,
        null::text[]
    from staging.products s
    where s.batch_id = p_batch_id;
end;

comment on function staging.typed_products(bigint) is
    'Staged products.csv rows of a batch, typed, with what each rule needs';

create function staging.typed_transactions(
    p_batch_id bigint,
    p_payment_codes text[],
    p_status_codes text[]
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
        s.batch_id,
        s.line_no,
        etl.key_value(s.transaction_id),
        etl.key_value(s.customer_id),
        etl.timestamp_value(s.transaction_ts),
        etl.code_value(s.payment_method, p_payment_codes),
        etl.code_value(s.status, p_status_codes),
        etl.is_given(s.transaction_id),
        etl.is_given(s.customer_id),
        etl.is_given(s.transaction_ts),
        etl.is_given(s.payment_method),
        etl.is_given(s.status),
        batch_customers.customer_id is not null or production_customers.customer_id is not null,
        s.transaction_id,
        s.customer_id,
        s.transaction_ts,
        s.payment_method,
        s.status,
        null::text[]
    from staging.transactions s
    left join staging.validated_customers batch_customers
        on batch_customers.batch_id = p_batch_id
       and batch_customers.rules is null
       and batch_customers.customer_id = etl.key_value(s.customer_id)
    left join production.customers production_customers
        on production_customers.customer_id = etl.key_value(s.customer_id)
    where s.batch_id = p_batch_id;
end;

comment on function staging.typed_transactions(bigint, text[], text[]) is
    'Staged transactions.csv rows of a batch, typed, with what each rule needs';

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
        s.batch_id,
        s.line_no,
        etl.key_value(s.item_id),
        etl.key_value(s.transaction_id),
        etl.key_value(s.product_id),
        etl.count_value(s.quantity),
        etl.money_value(s.unit_price),
        etl.money_value(s.discount),
        etl.is_given(s.item_id),
        etl.is_given(s.transaction_id),
        etl.is_given(s.product_id),
        etl.is_given(s.quantity),
        etl.is_given(s.unit_price),
        etl.is_given(s.discount),
        batch_transactions.transaction_id is not null,
        coalesce(etl.key_value(s.product_id) = any (p_known_products), false),
        s.item_id,
        s.transaction_id,
        s.product_id,
        s.quantity,
        s.unit_price,
        s.discount,
        null::text[]
    from staging.transaction_items s
    left join staging.validated_transactions batch_transactions
        on batch_transactions.batch_id = p_batch_id
       and batch_transactions.rules is null
       and batch_transactions.transaction_id = etl.key_value(s.transaction_id)
    where s.batch_id = p_batch_id;
end;

comment on function staging.typed_transaction_items(bigint, bigint[]) is
    'Staged transaction_items.csv rows of a batch, typed, with what each rule needs';
