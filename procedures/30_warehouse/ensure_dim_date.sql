-- warehouse.ensure_dim_date(p_from date, p_to date) returns integer
--
-- Contract: makes warehouse.dim_date hold one row for every calendar day from p_from to
-- p_to (inclusive); days already there are left alone. Returns the number of days added.
-- No fixed range anywhere: callers pass the dates their data touches (transaction dates,
-- signup dates), so data in any year loads. Null bounds add nothing.
-- Safe to call twice: a second call finds every day present and adds none.
create or replace function warehouse.ensure_dim_date(p_from date, p_to date)
returns integer
language plpgsql
set search_path = warehouse, pg_catalog
as $$
declare
    v_added integer;
begin
    if p_from is null or p_to is null or p_from > p_to then
        return 0;
    end if;

    with wanted_days as (
        select day::date as full_date
        from generate_series(p_from, p_to, interval '1 day') as day
    ),
    missing_days as (
        select wanted_days.full_date
        from wanted_days
        where not exists (
            select 1 from warehouse.dim_date d where d.full_date = wanted_days.full_date
        )
    )
    insert into warehouse.dim_date (
        date_key, full_date, day_of_week, day_name, day_of_month, iso_week, iso_year,
        month, month_name, month_start, quarter, year, is_weekend
    )
    select
        to_char(full_date, 'YYYYMMDD')::integer,
        full_date,
        extract(isodow from full_date)::smallint,
        to_char(full_date, 'FMDay'),
        extract(day from full_date)::smallint,
        extract(week from full_date)::smallint,
        extract(isoyear from full_date)::integer,
        extract(month from full_date)::smallint,
        to_char(full_date, 'FMMonth'),
        date_trunc('month', full_date)::date,
        extract(quarter from full_date)::smallint,
        extract(year from full_date)::integer,
        extract(isodow from full_date) in (6, 7)
    from missing_days
    on conflict (date_key) do nothing;

    get diagnostics v_added = row_count;
    return v_added;
end;
$$;

comment on function warehouse.ensure_dim_date(date, date) is
    'Adds the missing calendar days between two dates to dim_date; returns how many';
