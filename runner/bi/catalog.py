"""The analytics views as the catalogue describes them: the columns of a view with their
types and COMMENTs, and the view's own COMMENT. The Superset bundle and the Power BI and
Tableau files are generated from it."""

from __future__ import annotations

from typing import Any

SCHEMA = "analytics"
COLUMNS_SQL = """
select a.attname, format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum)
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""
VIEW_SQL = """
select obj_description(c.oid, 'pg_class')
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %s and c.relname = %s
"""


def view_columns(conn: Any, view: str) -> list[tuple[str, str, str | None]]:  # noqa: ANN401
    """(name, type, comment) of each column of ``analytics.<view>``, in order."""
    with conn.cursor() as cur:
        cur.execute(COLUMNS_SQL, (SCHEMA, view))
        columns = cur.fetchall()
    if not columns:
        raise LookupError(f"view {SCHEMA}.{view} not found: run `python -m runner migrate`")
    return columns


def view_comment(conn: Any, view: str) -> str | None:  # noqa: ANN401
    with conn.cursor() as cur:
        cur.execute(VIEW_SQL, (SCHEMA, view))
        row = cur.fetchone()
    return row[0] if row else None
