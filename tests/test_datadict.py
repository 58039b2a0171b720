"""The data dictionary: generated from the catalog, and docs/data-dictionary.md kept equal to
what a freshly migrated database generates."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys

from runner import datadict
from runner.config import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "data-dictionary.md"


def test_data_dictionary_file_is_up_to_date_with_the_migrated_schema(conn) -> None:  # noqa: ANN001
    generated = datadict.render(conn)
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if current != generated:
        diff = "".join(list(difflib.unified_diff(
            current.splitlines(keepends=True), generated.splitlines(keepends=True),
            "docs/data-dictionary.md", "generated from the migrated schema"))[:60])
        raise AssertionError(
            "docs/data-dictionary.md is out of date with the schema. Regenerate it from a "
            f"freshly migrated database: `{datadict.REGENERATE}` (with DATABASE_URL pointing "
            f"at it, or the embedded cluster after `python -m runner migrate`).\n{diff}"
        )


def test_every_analytics_and_warehouse_column_is_listed_with_its_type(conn) -> None:  # noqa: ANN001
    text = datadict.render(conn)
    with conn.cursor() as cur:
        cur.execute("""
            select c.table_schema, c.table_name, c.column_name,
                   format_type(a.atttypid, a.atttypmod)
            from information_schema.columns c
            join pg_attribute a
              on a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
             and a.attname = c.column_name
            where c.table_schema in ('analytics', 'warehouse')
        """)
        columns = cur.fetchall()
    assert len(columns) > 100
    sections = text.split("\n### ")
    for schema, table, column, type_ in columns:
        (section,) = [s for s in sections if s.startswith(f"{schema}.{table} (")]
        assert f"| `{column}`" in section and f" | {type_} |" in section, (schema, table, column)


def test_views_and_tables_are_told_apart_and_primary_keys_marked(conn) -> None:  # noqa: ANN001
    text = datadict.render(conn)
    assert "### analytics.v_daily_sales (view)" in text
    assert "### warehouse.fact_sales (table)" in text
    assert "| `item_id` (PK) | bigint | not null |" in text
    assert "| `sales_date` | date |" in text


def test_comments_become_one_line_cells_with_pipes_escaped(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("create table warehouse.zz_note (a integer primary key, b text)")
        cur.execute("comment on table warehouse.zz_note is 'first line\nsecond | part'")
        cur.execute("comment on column warehouse.zz_note.b is 'x | y\n  z'")
    text = datadict.render(conn)
    assert "### warehouse.zz_note (table)\n\nfirst line second \\| part\n" in text
    assert "| `b` | text | null | x \\| y z |" in text
    assert "| `a` (PK) | integer | not null |  |" in text
    assert "[zz_note](#warehousezz_note-table)" in text


def test_only_the_asked_schemas_are_documented(conn) -> None:  # noqa: ANN001
    text = datadict.render(conn, ("analytics",))
    assert "## Schema analytics" in text
    assert "warehouse.fact_sales" not in text
    assert "staging." not in text and "production." not in text


def test_datadict_command_writes_the_markdown(db_url: str, conn, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "dd.md"
    done = subprocess.run(
        [sys.executable, "-m", "runner", "datadict", "--out", str(out)], cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": db_url}, capture_output=True, text=True, check=True,
    )
    assert f"data dictionary written: {out}" in done.stdout
    assert out.read_text(encoding="utf-8") == datadict.render(conn)
