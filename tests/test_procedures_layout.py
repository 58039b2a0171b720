"""Guards of procedures/: each routine is created in one place, no file drops what it creates,
and every routine has a caller (a pipeline step, another routine or view, the runner) or is
a DBA entry point documented in docs/operations.md.

The files are read as text (comments removed); the steps come from the migrated database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from runner.config import PROJECT_ROOT
from runner.routines import PROCEDURES_DIR
from tests.test_runner_stubs import fetch

KIND = r"(function|procedure|view)"
NAME = r"([a-z_]+\.[a-z_0-9]+)"
CREATE = re.compile(rf"\bcreate\s+(?:or\s+replace\s+)?{KIND}\s+{NAME}", re.IGNORECASE)
DROP = re.compile(rf"\bdrop\s+{KIND}\s+(?:if\s+exists\s+)?{NAME}", re.IGNORECASE)


@dataclass(frozen=True)
class Created:
    kind: str
    name: str  # schema.name, lower case
    path: str  # relative to procedures/


def code_of(path: Path) -> str:
    """A SQL file without its comments (headers document routines; they do not call them)."""
    return re.sub(r"--[^\n]*", "", path.read_text())


def sql_files() -> list[Path]:
    return sorted(PROCEDURES_DIR.rglob("*.sql"))


def created_objects() -> list[Created]:
    return [Created(m.group(1).lower(), m.group(2).lower(),
                    path.relative_to(PROCEDURES_DIR).as_posix())
            for path in sql_files() for m in CREATE.finditer(code_of(path))]


def test_each_routine_and_view_is_created_once_in_the_tree() -> None:
    seen: dict[str, list[str]] = {}
    for obj in created_objects():
        seen.setdefault(obj.name, []).append(obj.path)
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}


def test_no_file_drops_what_it_created() -> None:
    dropped_after_create = []
    for path in sql_files():
        code = code_of(path)
        created_at = {m.group(2).lower(): m.start() for m in CREATE.finditer(code)}
        for m in DROP.finditer(code):
            name = m.group(2).lower()
            if name in created_at and created_at[name] < m.start():
                dropped_after_create.append(f"{path.relative_to(PROCEDURES_DIR)}: {name}")
    assert dropped_after_create == []


def mentions(text: str, name: str, *, call: bool) -> bool:
    """``text`` names ``name`` (qualified), or calls it unqualified (a search_path routine)."""
    schema, short = name.split(".")
    qualified = re.search(rf"(?<![a-z_]){schema}\.{short}\b", text, re.IGNORECASE)
    unqualified = call and re.search(rf"(?<![a-z_.]){short}\s*\(", text, re.IGNORECASE)
    return bool(qualified or unqualified)


def without_own_statements(code: str, name: str) -> str:
    """The code without the statements that create, comment on or drop ``name``."""
    schema, short = name.split(".")
    target = rf"{schema}\.{short}\b"
    for pattern in (rf"\bcreate\s+(?:or\s+replace\s+)?{KIND}\s+{target}",
                    rf"\bcomment\s+on\s+{KIND}\s+{target}",
                    rf"\bdrop\s+{KIND}\s+(?:if\s+exists\s+)?{target}"):
        code = re.sub(pattern, "", code, flags=re.IGNORECASE)
    return code


def test_every_routine_is_called_or_documented_for_dbas(conn) -> None:  # noqa: ANN001
    steps = {row[0] for row in fetch(conn, "select procedure from etl.pipeline_step")}
    sql = {path: code_of(path) for path in sql_files()}
    runner = "\n".join(p.read_text() for p in sorted((PROJECT_ROOT / "runner").rglob("*.py"))
                       if ".venv" not in p.relative_to(PROJECT_ROOT).parts)  # Superset's install
    operations = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    orphans = []
    for obj in created_objects():
        is_routine = obj.kind != "view"
        called = (obj.name in steps
                  or any(mentions(without_own_statements(code, obj.name), obj.name,
                                  call=is_routine) for code in sql.values())
                  or mentions(runner, obj.name, call=False)
                  or re.search(rf"`{re.escape(obj.name)}[`(]", operations))
        if not called:
            orphans.append(f"{obj.path}: {obj.kind} {obj.name}")
    assert orphans == []


def test_the_orphan_rules_are_listed_only_by_etl_dq_rule() -> None:
    listed = [path.relative_to(PROCEDURES_DIR).as_posix() for path in sql_files()
              if re.search(r"array\[\s*'unknown_customer'", code_of(path))]
    assert listed == []


def test_open_orphans_are_found_through_the_partial_index(conn) -> None:  # noqa: ANN001
    # etl.reprocess_rejects passes etl.dq_rule's orphan rules as a value (custom plans): the
    # planner must prove the partial index's predicate from it
    ((orphan_rules,),) = fetch(conn, "select array_agg(rule order by sort_order) "
                                     "from etl.dq_rule where is_orphan")
    with conn.cursor() as cur:
        cur.execute("set enable_seqscan = off; set plan_cache_mode = force_custom_plan")
        cur.execute("prepare open_orphans(text[], bigint) as select r.reject_id "
                    "from etl.rejected_row r where r.file_name = 'transactions.csv' "
                    "and r.resolved_at is null and r.rules <@ $1 and r.batch_id <= $2")
        cur.execute("explain execute open_orphans(%s, 5)", (orphan_rules,))
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert orphan_rules == ["unknown_customer", "unknown_transaction", "unknown_product"]
    assert "using rejected_row_open_orphans_idx" in plan


def test_rules_are_listed_in_the_order_of_etl_dq_rule(conn) -> None:  # noqa: ANN001
    # each typed function builds a row's rules as array[case ... then '<rule>' end, ...]:
    # their order is etl.dq_rule.sort_order, the order of etl.rejected_row.rules
    order = dict(fetch(conn, "select rule, sort_order from etl.dq_rule"))
    arrays = re.findall(r"array_remove\(array\[(.*?)\], null\)",
                        code_of(PROCEDURES_DIR / "10_staging" / "typed_rows.sql"), re.S)
    listed = [re.findall(r"then '([a-z_]+)' end", body) for body in arrays]
    assert len(listed) == 4 and all(listed)
    assert [rules for rules in listed if rules != sorted(rules, key=order.__getitem__)] == []



def test_one_quarantine_step_and_one_upsert_statement() -> None:
    # the four validations quarantine through staging.quarantine_rejects, the four upserts
    # write through the one statement of production.upsert_rows
    quarantining = [path.name for path in sorted(PROCEDURES_DIR.glob("10_staging/*.sql"))
                    if re.search(r"insert\s+into\s+etl\.rejected_row", code_of(path))]
    upsert = code_of(PROCEDURES_DIR / "20_production" / "upsert_production.sql")
    assert quarantining == ["quarantine_rejects.sql"]
    assert len(re.findall(r"\bdo\s+update\b", upsert)) == 1


def test_the_procedures_that_copy_big_tables_read_them_from_their_first_page(conn) -> None:  # noqa: ANN001
    """A synchronized sequential scan starts where an earlier scan of the table stopped:
    the copies would then start mid-table and the fact leave date order at 5M orders
    (procedures/00_common/bulk_load.sql). Test tables are too small for PostgreSQL to
    synchronize their scans, so the setting itself is what is checked here; the bench
    records the fact's date order after the 5M initial load."""
    rows = fetch(conn, """
        select p.oid::regprocedure::text
        from pg_proc p
        where 'synchronize_seqscans=off' = any (p.proconfig)
        order by 1""")
    assert rows == [("production.merge_batch(bigint)",),
                    ("staging.build_validated_partition(text,bigint,text)",),
                    ("warehouse.load_fact_sales(bigint)",)]
