-- Value parsers of docs/data-contract.md ("Columns", "Value rules, precisely"), shared by the
-- validation procedures (staging.validate_*) and etl.reprocess_rejects (which parses
-- orphans again from their raw values), so a value means the same thing everywhere.
--
-- Contract of every function here: input is one field (text, possibly null); output is the
-- typed value, or null when the field is empty or not well-formed. None of them raises: a
-- pattern gates every cast, so no row can make a set-based statement fail. Range rules
-- (quantity 1..1000, price > 0, dates after 2000-01-01 ...) are the callers'.
-- They are SQL-standard bodies (`return ...`): parsed once at creation, names bound then
-- (no search_path at run time, so none is pinned), IMMUTABLE (parse_timestamp: STABLE),
-- PARALLEL SAFE, and inlined by the planner into the calling statement (no call per row).
-- Reading nothing but their arguments, they give the same answer every time, in every
-- session time zone. Inlining substitutes the argument at each use, so callers pass a
-- column (computed once, e.g. in a subquery fenced with OFFSET 0), not an expression.
--
-- Speed: PostgreSQL's regex engine costs ~0.3 us a call for a pattern of one character
-- class and several us for a pattern with many positions, so the functions use short
-- one-class patterns, LIKE for fixed positions (nearly free: 3 ns a test against ~250 ns
-- for the simplest pattern), and integer arithmetic for ranges; measured against a pattern,
-- ltrim(value, '0123456789') = '' and translate() were slower, so patterns stay the gates.
-- The *_from_* functions are the common tails of the parsers: a caller that has already
-- proved a value's characters may call them directly, with the same result as through the
-- full parser.
-- The parsers look alike (a gated CASE each) and stay apart: each holds one value rule.

-- A field as the contract reads it: surrounding ASCII white space (space, tab, CR, LF)
-- trimmed; empty means missing (null).
create or replace function etl.clean_value(p_raw text)
returns text
language sql immutable parallel safe
return nullif(btrim(p_raw, E' \t\r\n'), '');

comment on function etl.clean_value(text) is
    'Trims ASCII white space (space, tab, CR, LF); empty becomes null (a missing value)';

-- An e-mail address as stored and compared: trimmed (etl.clean_value) and lower-cased with
-- the ICU root collation, so that the result does not depend on the server's lc_ctype (on a
-- cluster initialised with --no-locale, lower() leaves every non-ASCII letter as it is:
-- 'ÉMILE@BÜCHER.DE' would become 'Émile@bÜcher.de'). Every place that lower-cases an
-- address (validation, erasure) calls this one function.
create or replace function etl.email_value(p_raw text)
returns text
language sql immutable parallel safe
return lower(etl.clean_value(p_raw) collate "und-x-icu");

comment on function etl.email_value(text) is
    'An e-mail trimmed and lower-cased by ICU (the same on every server, whatever its lc_ctype)';

-- A key from a string of digits: 1 .. 9223372036854775807 (leading zeros allowed, 007 = 7);
-- null for zero or a larger value. Input: digits only.
create or replace function etl.key_from_digits(p_digits text)
returns bigint
language sql immutable parallel safe
return case
    when length(p_digits) <= 18 then nullif(p_digits::bigint, 0)
    when length(ltrim(p_digits, '0')) < 19 then nullif(p_digits::numeric, 0)::bigint
    when length(ltrim(p_digits, '0')) = 19
         and ltrim(p_digits, '0') collate "C" <= '9223372036854775807' then p_digits::bigint
end;

comment on function etl.key_from_digits(text) is
    'A string of digits as a key (1 .. 2^63-1); null for zero or beyond';

-- Keys (`^[0-9]+$` after trimming, not zero, not beyond 2^63-1), compared as integers.
-- Input: a cleaned value.
create or replace function etl.parse_key(p_value text)
returns bigint
language sql immutable parallel safe
return case when p_value ~ '^[0-9]+$' then etl.key_from_digits(p_value) end;

comment on function etl.parse_key(text) is
    'A key of the contract (digits, 1 .. 2^63-1) as bigint; null when missing or invalid';

-- A count from a string of digits; null above 999999999 (never a valid quantity).
-- Input: digits only.
create or replace function etl.count_from_digits(p_digits text)
returns integer
language sql immutable parallel safe
return case
    when length(p_digits) <= 9 then p_digits::integer
    when length(ltrim(p_digits, '0')) <= 9 then p_digits::numeric::integer
end;

comment on function etl.count_from_digits(text) is
    'A string of digits as integer (up to 9 significant digits); null otherwise';

-- Counts (quantity): digits only; null otherwise. Input: a cleaned value.
create or replace function etl.parse_count(p_value text)
returns integer
language sql immutable parallel safe
return case when p_value ~ '^[0-9]+$' then etl.count_from_digits(p_value) end;

comment on function etl.parse_count(text) is
    'Digits as integer (up to 9 significant digits); null otherwise';

-- Money from a value already known to be `-?[0-9]+\.?[0-9]*`: checks 1 to 10 integer
-- digits and, after a dot, 1 or 2 decimals; numeric(12,2) (-0.00 is 0); null otherwise.
-- The value holds at most one dot, so LIKE (nearly free) places it: second or third from
-- the end (1 or 2 decimals), or none; the length then bounds the integer digits.
create or replace function etl.money_from_text(p_value text)
returns numeric
language sql immutable parallel safe
return case
    when case
             when p_value like '%._' then length(p_value) - (p_value like '-%')::integer <= 12
             when p_value like '%.__' then length(p_value) - (p_value like '-%')::integer <= 13
             when position('.' in p_value) = 0
                 then length(p_value) - (p_value like '-%')::integer <= 10
         end
    then p_value::numeric(12, 2)
end;

comment on function etl.money_from_text(text) is
    'A -?digits[.digits] value with 1-10 integer digits and 0-2 decimals as numeric; else null';

-- Money: `^-?[0-9]{1,10}(\.[0-9]{1,2})?$` as numeric(12,2) (-0.00 is 0); null otherwise.
-- One simple pattern (optional minus, digits, at most one dot, digits), then the lengths.
-- Input: a cleaned value.
create or replace function etl.parse_money(p_value text)
returns numeric
language sql immutable parallel safe
return case when p_value ~ '^-?[0-9]+\.?[0-9]*$' then etl.money_from_text(p_value) end;

comment on function etl.parse_money(text) is
    'Money of the contract (-?digits{1,10}, optional 1-2 decimals) as numeric; else null';

-- Days in a month of the (proleptic) Gregorian calendar.
create or replace function etl.days_in_month(p_year integer, p_month integer)
returns integer
language sql immutable parallel safe
return case
    when p_month = 2 then
        case when (p_year % 4 = 0 and p_year % 100 <> 0) or p_year % 400 = 0 then 29 else 28 end
    when p_month in (4, 6, 9, 11) then 30
    else 31
end;

comment on function etl.days_in_month(integer, integer) is
    'Number of days of a month (Gregorian calendar, leap years included)';

-- True when `YYYY-MM-DD` at the start of a value (digits already proved) names a real day:
-- year 0001 .. 9999 (there is no year 0), month 01 .. 12, day within the month.
create or replace function etl.is_calendar_day(p_value text)
returns boolean
language sql immutable parallel safe
return substr(p_value, 1, 4)::integer >= 1
    and substr(p_value, 6, 2)::integer between 1 and 12
    and substr(p_value, 9, 2)::integer between 1 and etl.days_in_month(
        substr(p_value, 1, 4)::integer, substr(p_value, 6, 2)::integer);

comment on function etl.is_calendar_day(text) is
    'True when the YYYY-MM-DD prefix (digits) names a real calendar day';

-- Dates: `YYYY-MM-DD` naming a real calendar day (2025-02-30 is not one); null otherwise.
-- Input: a cleaned value.
create or replace function etl.parse_date(p_value text)
returns date
language sql immutable parallel safe
return case
    when p_value like '____-__-__' and p_value ~ '^[0-9]+-[0-9]+-[0-9]+$' then
        case when etl.is_calendar_day(p_value) then
            make_date(substr(p_value, 1, 4)::integer, substr(p_value, 6, 2)::integer,
                      substr(p_value, 9, 2)::integer)
        end
end;

comment on function etl.parse_date(text) is
    'YYYY-MM-DD naming a real calendar day as date; null otherwise';

-- Offset of a timestamp's tail (what follows `HH:MM:SS`, already proved well-formed) in
-- minutes east of UTC: `+HH:MM`, `-HH:MM`, `+HHMM`, `-HHMM` at its end; 0 for `Z` or none.
create or replace function etl.timestamp_offset_minutes(p_tail text)
returns integer
language sql immutable parallel safe
return case
    when p_tail like '%+__:__' or p_tail like '%-__:__' then
        (substr(right(p_tail, 6), 1, 1) || '1')::integer
        * (substr(right(p_tail, 6), 2, 2)::integer * 60 + substr(right(p_tail, 6), 5, 2)::integer)
    when p_tail like '%+____' or p_tail like '%-____' then
        (substr(right(p_tail, 5), 1, 1) || '1')::integer
        * (substr(right(p_tail, 5), 2, 2)::integer * 60 + substr(right(p_tail, 5), 4, 2)::integer)
    else 0
end;

comment on function etl.timestamp_offset_minutes(text) is
    'UTC offset in minutes at the end of a timestamp tail (+HH:MM, -HHMM ...); 0 for Z or none';

-- Microseconds of a timestamp's tail (already proved well-formed): the fraction `.d{1,6}`
-- at its start, padded to 6 digits; 0 when there is none.
create or replace function etl.timestamp_microseconds(p_tail text)
returns integer
language sql immutable parallel safe
return case
    when left(p_tail, 1) = '.' then
        rpad(substr(p_tail, 2,
                    length(p_tail) - 1 - case
                        when right(p_tail, 1) = 'Z' then 1
                        when p_tail like '%+__:__' or p_tail like '%-__:__' then 6
                        when p_tail like '%+____' or p_tail like '%-____' then 5
                        else 0
                    end),
             6, '0')::integer
    else 0
end;

comment on function etl.timestamp_microseconds(text) is
    'Microseconds of the fraction at the start of a timestamp tail; 0 when none';

-- Timestamps: `YYYY-MM-DD`, `T` or one space, `HH:MM:SS` (hours 00-23, seconds 00-59),
-- optionally `.` and 1 to 6 digits, optionally `Z` or an offset `+HH:MM`, `-HH:MM`, `+HHMM`,
-- `-HHMM` (hours 00-14, minutes 00-59); without an offset the time is UTC. Null for any
-- other form (`now`, `03/05/2025`, a bare date) or a day or time that does not exist.
-- Gating (nested CASE: a cast runs only on what the gates before it proved): LIKE fixes
-- the separators of the first 19 characters; one class pattern allows nothing but digits
-- and separators there, and counting the separators proves the 14 other positions are
-- digits; the tail after the seconds is accepted at once when empty or `Z`, otherwise by
-- one pattern. Ranges are compared as 2-digit text (byte order); only days 29-31 need the
-- month's length. The value: the first 19 characters cast to timestamp (a proved ISO form,
-- which DateStyle does not affect), fraction added, offset subtracted, then
-- `at time zone 'UTC'`: the session's time zone never enters. STABLE only because text to
-- timestamp casts are declared so. Input: a cleaned value.
create or replace function etl.parse_timestamp(p_value text)
returns timestamptz
language sql stable parallel safe
return case
    when length(p_value) between 19 and 32
         and left(p_value, 19) like '____-__-_____:__:__'
         and substr(p_value, 11, 1) in ('T', ' ')
         and left(p_value, 19) ~ '^[0-9T :-]+$'
         and length(replace(replace(replace(replace(
                 left(p_value, 19), '-', ''), ':', ''), 'T', ''), ' ', '')) = 14
         and (length(p_value) = 19
              or substr(p_value, 20) = 'Z'
              or substr(p_value, 20) ~ '^(\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-4]):?[0-5][0-9])?$')
    then case
        when left(p_value, 4) <> '0000'
             and substr(p_value, 6, 2) collate "C" between '01' and '12'
             and substr(p_value, 9, 2) collate "C" >= '01'
             and (substr(p_value, 9, 2) collate "C" <= '28'
                  or substr(p_value, 9, 2)::integer <= etl.days_in_month(
                         left(p_value, 4)::integer, substr(p_value, 6, 2)::integer))
             and substr(p_value, 12, 2) collate "C" <= '23'
             and substr(p_value, 15, 2) collate "C" <= '59'
             and substr(p_value, 18, 2) collate "C" <= '59'
        then case
            when length(p_value) = 19 then p_value::timestamp at time zone 'UTC'
            when substr(p_value, 20) = 'Z' then left(p_value, 19)::timestamp at time zone 'UTC'
            else (left(p_value, 19)::timestamp
                  + etl.timestamp_microseconds(substr(p_value, 20)) * interval '1 microsecond'
                  - etl.timestamp_offset_minutes(substr(p_value, 20)) * interval '1 minute'
                 ) at time zone 'UTC'
        end
    end
end;

comment on function etl.parse_timestamp(text) is
    'Contract timestamp (ISO form, optional fraction and offset; no offset = UTC) as '
    'timestamptz; null otherwise';

-- Payment method and status codes: lower-case, every run of spaces, hyphens and
-- underscores becomes one `_` ("Credit Card", "credit-card", "credit__card" ->
-- credit_card). The regex runs only for values holding a space, a hyphen or `__`.
-- Input: a cleaned (trimmed) value.
create or replace function etl.normalise_code(p_value text)
returns text
language sql immutable parallel safe
return case
    when position(' ' in p_value) = 0 and position('-' in p_value) = 0
         and position('__' in p_value) = 0 then lower(p_value)
    else regexp_replace(lower(p_value), '[ _-]+', '_', 'g')
end;

comment on function etl.normalise_code(text) is
    'Normalised code: lower-case, runs of spaces, hyphens, underscores become one _';

-- E-mail: `^[^@\s]+@[^@\s]+\.[^@\s]+$` (\s: ASCII white space). Input: a cleaned value.
create or replace function etl.is_email(p_value text)
returns boolean
language sql immutable parallel safe
return p_value ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$';

comment on function etl.is_email(text) is
    'True when the value matches ^[^@\s]+@[^@\s]+\.[^@\s]+$';

-- Typed values of raw fields (what staging holds: values as delivered, untrimmed). Clean
-- values take one parse; a padded value fails that parse quickly (LIKE, length, pattern) and
-- is parsed again trimmed. Null: missing or not well-formed (etl.is_given tells which).

-- True when a raw field holds a value (anything but ASCII white space). A first character
-- that is not white space decides at once (ascii(): no copy); only the others are trimmed.
create or replace function etl.is_given(p_raw text)
returns boolean
language sql immutable parallel safe
return coalesce(p_raw <> '' and (ascii(p_raw) not in (9, 10, 13, 32)
                                 or btrim(p_raw, E' \t\r\n') <> ''), false);

comment on function etl.is_given(text) is
    'True when a raw field is not empty after trimming ASCII white space';

create or replace function etl.key_value(p_raw text)
returns bigint
language sql immutable parallel safe
return coalesce(etl.parse_key(p_raw), etl.parse_key(etl.clean_value(p_raw)));

comment on function etl.key_value(text) is 'A raw key field as bigint (etl.parse_key, trimmed)';

create or replace function etl.count_value(p_raw text)
returns integer
language sql immutable parallel safe
return coalesce(etl.parse_count(p_raw), etl.parse_count(etl.clean_value(p_raw)));

comment on function etl.count_value(text) is
    'A raw count field as integer (etl.parse_count, trimmed)';

create or replace function etl.money_value(p_raw text)
returns numeric
language sql immutable parallel safe
return coalesce(etl.parse_money(p_raw), etl.parse_money(etl.clean_value(p_raw)));

comment on function etl.money_value(text) is
    'A raw money field as numeric (etl.parse_money, trimmed)';

create or replace function etl.date_value(p_raw text)
returns date
language sql immutable parallel safe
return coalesce(etl.parse_date(p_raw), etl.parse_date(etl.clean_value(p_raw)));

comment on function etl.date_value(text) is 'A raw date field as date (etl.parse_date, trimmed)';

create or replace function etl.timestamp_value(p_raw text)
returns timestamptz
language sql stable parallel safe
return coalesce(etl.parse_timestamp(p_raw), etl.parse_timestamp(etl.clean_value(p_raw)));

comment on function etl.timestamp_value(text) is
    'A raw timestamp field as timestamptz (etl.parse_timestamp, trimmed)';

-- A raw payment method or status as its normalised code; p_codes (the lookup table's codes)
-- short-cuts values already written as a code.
create or replace function etl.code_value(p_raw text, p_codes text[])
returns text
language sql immutable parallel safe
return case
    when p_raw = any (p_codes) then p_raw
    else etl.normalise_code(etl.clean_value(p_raw))
end;

comment on function etl.code_value(text, text[]) is
    'A raw payment method or status, trimmed and normalised (etl.normalise_code)';
