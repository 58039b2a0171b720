"""Hardening (issue 18): sums that cannot overflow, migration bookkeeping kept to the
migration owner, and the new reasons a batch is refused.

- Aggregate sums as unbounded ``numeric``: the contract bounds one line (quantity 1 to 1000,
  unit price up to 9,999,999,999.99, so a line amount, cost or margin has at most 13 integer
  digits and fits the fact's numeric(18,2)), but not the number of lines of a day or month:
  1,001 lines at the bounds already overflow numeric(18,2). The sums keep 2 decimals (their
  addends have 2). The views built on these columns are dropped here and recreated from
  procedures/ by the same upgrade (every routine checksum is forgotten).
- ``etl.routine_checksum``: the pipeline role may read it but not write it (a role that can
  rewrite a checksum can make ``alembic upgrade`` skip a changed routine).
- ``etl.batch_refusal.problem``: cr_line_ends, symlink, not_regular_file, unreadable,
  file_changed and bad_batch_name join the reasons (runner/csvstream.py, runner/ingest.py);
  ``file_name`` is null for a problem of the batch directory itself.

Downgrade: the columns go back to numeric(18,2) (it fails, changing nothing, while a sum is
beyond that width), the pipeline role gets its write grants back, and the old reasons check
is restored as NOT VALID so refusals recorded meanwhile stay.

Revision ID: 0011
Revises: 0010
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SUM_COLUMNS = {
    "warehouse.agg_daily_sales": ("revenue", "discount", "margin"),
    "warehouse.agg_product_monthly": ("revenue", "margin"),
    "warehouse.agg_payment_method_monthly": ("revenue",),
    "warehouse.agg_delta": ("revenue", "discount", "margin"),
}
OLD_PROBLEMS = ("missing_header", "missing_column", "duplicate_column", "invalid_utf8",
                "nul_byte", "record_too_long")
NEW_PROBLEMS = ("cr_line_ends", "symlink", "not_regular_file", "unreadable", "file_changed",
                "bad_batch_name")

# Views and SQL-bodied routines that read the sum columns: ALTER TYPE refuses while they
# exist. They are routine objects of procedures/, recreated by this same upgrade.
_DROP_DEPENDENTS_SQL = """
do $$
declare
    v_statement text;
begin
    for v_statement in
        select distinct format('drop view if exists %s cascade', r.ev_class::regclass)
        from pg_depend d
        join pg_rewrite r on r.oid = d.objid
        where d.classid = 'pg_rewrite'::regclass
          and d.refobjid = any (array[{tables}]::regclass[])
          and r.ev_class <> d.refobjid
        union
        select format('drop routine if exists %s cascade', d.objid::regprocedure)
        from pg_depend d
        where d.classid = 'pg_proc'::regclass
          and d.refobjid = any (array[{tables}]::regclass[])
    loop
        execute v_statement;
    end loop;
end
$$
"""


def _retype(numeric_type: str) -> None:
    tables = ", ".join(f"'{table}'" for table in SUM_COLUMNS)
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(_DROP_DEPENDENTS_SQL.format(tables=tables))
    for table, columns in SUM_COLUMNS.items():
        changes = ", ".join(f"alter column {column} type {numeric_type}" for column in columns)
        op.execute(f"alter table {table} {changes}")


def _problems_check(problems: tuple[str, ...], *, not_valid: bool = False) -> None:
    listed = ", ".join(f"'{problem}'" for problem in problems)
    op.execute("alter table etl.batch_refusal drop constraint batch_refusal_problem_check")
    op.execute(f"alter table etl.batch_refusal add constraint batch_refusal_problem_check "
               f"check (problem in ({listed})){' not valid' if not_valid else ''}")


def upgrade() -> None:
    _retype("numeric")
    for table, columns in SUM_COLUMNS.items():
        for column in columns:
            op.execute(f"comment on column {table}.{column} is "
                       f"'{_sum_comment(table, column)} (numeric: no overflow at any volume)'")
    op.execute("revoke insert, update, delete, truncate on etl.routine_checksum "
               "from warehouse_etl")
    _problems_check(OLD_PROBLEMS + NEW_PROBLEMS)
    op.execute(
        "comment on column etl.batch_refusal.problem is 'missing_header, missing_column, "
        "duplicate_column, invalid_utf8, nul_byte (PostgreSQL text cannot hold 0x00), "
        "record_too_long (a record over the limit), cr_line_ends (old Mac line ends), "
        "symlink (a link in the landing), not_regular_file, unreadable (no permission), "
        "file_changed (the file changed while it was read) or bad_batch_name (not UTF-8, or a "
        "control character)'")
    op.execute("comment on column etl.batch_refusal.file_name is "
               "'The file refused (null: the batch directory itself)'")


def downgrade() -> None:
    _problems_check(OLD_PROBLEMS, not_valid=True)
    op.execute("grant insert, update, delete, truncate on etl.routine_checksum "
               "to warehouse_etl")
    _retype("numeric(18,2)")


def _sum_comment(table: str, column: str) -> str:
    if table == "warehouse.agg_delta":
        return {"revenue": "Their line amounts", "discount": "Their discounts",
                "margin": "Their margins"}[column]
    return {"revenue": "Sum of their line amounts", "discount": "Sum of their discounts",
            "margin": "Sum of their line margins"}[column]
