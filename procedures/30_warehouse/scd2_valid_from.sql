-- warehouse.scd2_valid_from(p_current_valid_from timestamptz, p_changed_at timestamptz)
--   returns timestamptz
--   When a new version of an SCD2 dimension row starts (warehouse.load_dimensions, for
--   dim_customer and dim_product alike): a key's first version (no current version: null)
--   from -infinity; a change from its changed_at, or one microsecond after the current
--   version's start when changed_at is not later (versions never overlap or go back).
--   SQL-standard body, inlined by the planner.
create or replace function warehouse.scd2_valid_from(
    p_current_valid_from timestamptz,
    p_changed_at timestamptz
)
returns timestamptz
language sql stable parallel safe
return case
    when p_current_valid_from is null then '-infinity'::timestamptz
    when p_changed_at > p_current_valid_from then p_changed_at
    else p_current_valid_from + interval '1 microsecond'
end;

comment on function warehouse.scd2_valid_from(timestamptz, timestamptz) is
    'Start of a new SCD2 version: -infinity for a first version, else its change time, '
    'kept after the current version''s start';
