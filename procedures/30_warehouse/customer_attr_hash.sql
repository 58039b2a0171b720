-- warehouse.customer_attr_hash(p_first_name text, p_last_name text, p_email text,
--                              p_phone text, p_city text, p_state text, p_country text,
--                              p_signup_date date) returns bytea
--
-- The SCD2 change detector of warehouse.dim_customer (docs/data-contract.md, "Warehouse"): md5
-- of the row text of the tracked attributes, typed as production holds them. Two writers
-- must agree on it byte for byte: warehouse.load_dimensions (a delivery whose hash equals
-- the current version's makes no version) and etl.erase_customer (an erased version's hash
-- is computed again without its identifiers, so a later delivery, whose identifiers are no
-- longer stored, hashes equal when nothing else changed and makes no version).
-- Pure: the planner inlines it (standard-SQL body, bound when created, no search_path).
-- stable only because to_char is.
create or replace function warehouse.customer_attr_hash(
    p_first_name text, p_last_name text, p_email text, p_phone text, p_city text,
    p_state text, p_country text, p_signup_date date
)
returns bytea
language sql
stable
parallel safe
return decode(md5(row(p_first_name, p_last_name, p_email, p_phone, p_city, p_state, p_country,
                      to_char(p_signup_date::timestamp, 'YYYY-MM-DD'))::text), 'hex');

comment on function warehouse.customer_attr_hash(text, text, text, text, text, text, text, date)
    is 'SCD2 change detector of dim_customer: md5 of the tracked attributes'' row text';
