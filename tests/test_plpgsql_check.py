"""Static check of every PL/pgSQL routine of the project with plpgsql_check.

plpgsql_check (Debian: postgresql-15-plpgsql-check; CI installs it) parses every statement
of every PL/pgSQL function and procedure in the project's schemas against the migrated
database: unknown tables or columns, wrong types, bad RAISE formats ... Any finding of level
'error' fails the test; warnings are not failures. Skipped, saying why, where the extension
is not installed. Trigger functions are checked against a table that fires them, with the
transition tables (REFERENCING ... TABLE AS) its trigger names.
"""

from __future__ import annotations

import psycopg2.extensions
import pytest

from tests.staging_data import fetch

PROJECT_SCHEMAS = ("staging", "etl", "production", "warehouse", "analytics")

ROUTINES_SQL = """
select p.oid::regprocedure::text,
       p.prorettype = 'trigger'::regtype,
       t.tgrelid::regclass::text, t.tgoldtable::text, t.tgnewtable::text
from pg_proc p
left join lateral (select * from pg_trigger t where t.tgfoid = p.oid
                   order by t.tgname limit 1) t on true
join pg_namespace n on n.oid = p.pronamespace
join pg_language l on l.oid = p.prolang
where l.lanname = 'plpgsql' and n.nspname = any(%s)
order by 1
"""

CHECK_SQL = """
select r.lineno, r.statement, r.sqlstate, r.message, r.detail, r.query
from plpgsql_check_function_tb(%s::regprocedure, coalesce(%s::regclass, 0),
                               fatal_errors => false, oldtable => %s, newtable => %s) r
where r.level = 'error'
"""


def test_every_plpgsql_routine_passes_plpgsql_check(
        conn: psycopg2.extensions.connection) -> None:
    if not fetch(conn, "select 1 from pg_available_extensions where name = 'plpgsql_check'"):
        pytest.skip("plpgsql_check is not installed on this server (Debian/Ubuntu: apt-get "
                    "install postgresql-15-plpgsql-check); CI installs it")
    with conn.cursor() as cur:
        cur.execute("create extension if not exists plpgsql_check")
    routines = fetch(conn, ROUTINES_SQL, (list(PROJECT_SCHEMAS),))
    assert len(routines) >= 8, routines
    problems = []
    for signature, is_trigger, table, old_table, new_table in routines:
        if is_trigger and table is None:
            continue  # a trigger function no trigger uses cannot be checked
        for lineno, statement, sqlstate, message, detail, query in fetch(
                conn, CHECK_SQL, (signature, table, old_table, new_table)):
            problems.append(f"{signature} line {lineno} ({statement}): {sqlstate} {message}"
                            + (f" [{detail}]" if detail else "")
                            + (f"\n    {query}" if query else ""))
    assert not problems, "plpgsql_check errors:\n" + "\n".join(problems)
