"""docs/data-contract.md names only what exists: rule ids, objects and columns, read from the
catalogue of a migrated database.

The contract is the project's public interface, so everything it names is checked:
- every rule id in brackets (`[invalid_email]`) and every row of its rule table is a rule of
  ``etl.dq_rule``, and every rule of ``etl.dq_rule`` is in the rule table;
- every ``schema.object`` it names (views, tables, procedures) exists;
- every column it lists for an object (a table row ``| `etl.v_x` | `col`, `col` |`` or a
  parenthesis after the object, ``etl.t (`col`, ...)``) is a column of that object;
- every column of the four files' tables is a column of the staging table of that file.

Objects of sections being built right now are listed in ``NOT_YET_BUILT`` with the issue
that builds them; the test asserts they are still absent, so the list shrinks as they land
and cannot go stale.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from runner.config import PROJECT_ROOT

CONTRACT = PROJECT_ROOT / "docs" / "data-contract.md"
SCHEMAS = ("staging", "etl", "production", "warehouse", "analytics")

# Objects the contract names whose issue has not landed yet: name -> issue number.
NOT_YET_BUILT: dict[str, int] = {}

OBJECT = re.compile(r"\b(" + "|".join(SCHEMAS) + r")\.([a-z_][a-z0-9_]*)\b")
BACKTICKED = re.compile(r"`([a-z_][a-z0-9_]*)`")
RULE_REF = re.compile(r"\[([a-z_]+)\](?!\()")
TABLE_ROW_WITH_OBJECT = re.compile(r"^\|\s*`(?P<obj>[a-z_]+\.[a-z_][a-z0-9_]*)`\s*\|(?P<rest>.*)$")
OBJECT_WITH_COLUMNS = re.compile(r"`(?P<obj>[a-z_]+\.[a-z_][a-z0-9_]*)`\s*\((?P<cols>`[^)]*)\)")


def contract_text() -> str:
    return CONTRACT.read_text(encoding="utf-8")


def named_objects(text: str) -> set[str]:
    return {f"{m.group(1)}.{m.group(2)}" for m in OBJECT.finditer(text)}


def listed_columns(text: str) -> dict[str, set[str]]:
    """Columns the contract lists per object: table rows and parentheses after an object."""
    columns: dict[str, set[str]] = {}
    for line in text.splitlines():
        row = TABLE_ROW_WITH_OBJECT.match(line)
        if row:
            names = set(BACKTICKED.findall(row.group("rest")))
            if names:
                columns.setdefault(row.group("obj"), set()).update(names)
    for match in OBJECT_WITH_COLUMNS.finditer(text.replace("\n", " ")):
        names = BACKTICKED.findall(match.group("cols"))
        columns.setdefault(match.group("obj"), set()).update(names)
    return columns


def file_columns(text: str) -> dict[str, list[str]]:
    """The first column of each file's table, under its `### name.csv` heading."""
    files: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^### ([a-z_]+)\.csv$", line)
        if heading:
            current = heading.group(1)
            files[current] = []
        elif line.startswith("## "):
            current = None
        elif current and line.startswith("| ") and not line.startswith("| column"):
            files[current].append(line.split("|")[1].strip())
    return files


def rule_table(text: str) -> list[str]:
    section = text.split("## Rule ids", 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for m in re.finditer(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)]


def existing_objects(conn) -> set[str]:  # noqa: ANN001 - psycopg2 connection
    with conn.cursor() as cur:
        cur.execute(
            """
            select n.nspname || '.' || c.relname from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any(%(s)s) and c.relkind in ('r', 'v', 'm', 'p', 'f')
            union
            select n.nspname || '.' || p.proname from pg_proc p
            join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = any(%(s)s)
            """,
            {"s": list(SCHEMAS)},
        )
        return {name for (name,) in cur.fetchall()}


def columns_of(conn, name: str) -> set[str]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(
            "select attname from pg_attribute where attrelid = %s::regclass "
            "and attnum > 0 and not attisdropped",
            (name,),
        )
        return {a for (a,) in cur.fetchall()}


def test_contract_names_every_rule_of_etl_dq_rule_and_no_other(conn) -> None:  # noqa: ANN001
    text = contract_text()
    with conn.cursor() as cur:
        cur.execute("select rule from etl.dq_rule order by sort_order")
        rules = [r for (r,) in cur.fetchall()]
    assert rule_table(text) == rules, "docs/data-contract.md 'Rule ids' table vs etl.dq_rule"
    unknown = sorted(set(RULE_REF.findall(text)) - set(rules))
    assert unknown == [], f"docs/data-contract.md cites rule ids not in etl.dq_rule: {unknown}"


def test_every_object_the_contract_names_exists(conn) -> None:  # noqa: ANN001
    named = named_objects(contract_text())
    existing = existing_objects(conn)
    missing = sorted(named - existing - set(NOT_YET_BUILT))
    assert missing == [], f"docs/data-contract.md names objects that do not exist: {missing}"
    landed = sorted(set(NOT_YET_BUILT) & existing)
    assert landed == [], (
        f"{landed} exist now: remove them from NOT_YET_BUILT in {Path(__file__).name}"
    )
    unnamed = sorted(set(NOT_YET_BUILT) - named)
    assert unnamed == [], f"NOT_YET_BUILT lists objects the contract does not name: {unnamed}"


def test_every_column_the_contract_lists_exists(conn) -> None:  # noqa: ANN001
    listed = listed_columns(contract_text())
    assert {"analytics.v_daily_sales", "etl.v_freshness", "etl.v_dq_events"} <= set(listed)
    missing = {
        obj: sorted(cols - columns_of(conn, obj))
        for obj, cols in listed.items()
        if obj not in NOT_YET_BUILT and cols - columns_of(conn, obj)
    }
    assert missing == {}, f"docs/data-contract.md lists columns that do not exist: {missing}"


def test_every_file_column_is_a_staging_column(conn) -> None:  # noqa: ANN001
    files = file_columns(contract_text())
    assert sorted(files) == ["customers", "products", "transaction_items", "transactions"]
    missing = {
        name: sorted(set(cols) - columns_of(conn, f"staging.{name}"))
        for name, cols in files.items()
        if set(cols) - columns_of(conn, f"staging.{name}")
    }
    assert missing == {}, f"file columns of docs/data-contract.md not staged: {missing}"
    assert files["customers"][0] == "customer_id" and len(files["customers"]) == 10


@pytest.mark.parametrize("old_name", ["DATA_CONTRACT.md", "shared/DATA_CONTRACT"])
def test_nothing_in_the_repository_cites_the_contract_outside_it(old_name: str) -> None:
    found = subprocess.run(
        ["git", "grep", "-n", "-I", "-F", old_name, "--", ".", f":!{Path(__file__).name}",
         ":!tests/test_data_contract.py"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert found.stdout == "", (
        f"cite docs/data-contract.md instead of {old_name}:\n{found.stdout}"
    )
