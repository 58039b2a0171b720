-- Calendar helpers of the warehouse: the UTC date of an instant, and the yyyymmdd date key.
--
-- warehouse.utc_date(timestamptz) returns date
--   The calendar date of the instant in UTC, whatever the session's time zone
--   (docs/data-contract.md: dates of transactions are the UTC dates of transaction_ts).
-- warehouse.date_key(date) returns integer
--   yyyymmdd, the key of warehouse.dim_date; null for null.
-- warehouse.day_start(date) returns timestamptz
--   The instant the UTC day begins (midnight UTC), for range predicates on timestamps.
--
-- Pure SQL expressions inlined by the planner; recreating them is harmless. date_key is
-- declared stable only because to_char is (its locale-dependent patterns); 'YYYYMMDD' is
-- not, and to_char is several times faster than date_part arithmetic on millions of rows.
-- search_path: standard-SQL bodies (RETURN ...) are parsed and bound when created, so no
-- search_path applies at run time; a SET clause would only stop the planner inlining them.
create or replace function warehouse.utc_date(p_ts timestamptz)
returns date
language sql
immutable
parallel safe
return (p_ts at time zone 'UTC')::date;

create or replace function warehouse.date_key(p_date date)
returns integer
language sql
stable
parallel safe
return to_char(p_date::timestamp, 'YYYYMMDD')::integer;

create or replace function warehouse.day_start(p_date date)
returns timestamptz
language sql
immutable
parallel safe
return p_date::timestamp at time zone 'UTC';

comment on function warehouse.utc_date(timestamptz) is
    'UTC calendar date of an instant, independent of the session time zone';
comment on function warehouse.date_key(date) is 'yyyymmdd key of warehouse.dim_date';
comment on function warehouse.day_start(date) is 'Instant at which the UTC day begins';
