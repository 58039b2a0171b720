"""BI readers reach no direct identifier of a customer by any path (docs/data-contract.md,
"Personal data").

The paths are taken from the catalogue, not from a list: as a login member of
warehouse_reader, every relation of every schema (tables, views, materialized views,
sequences, pg_catalog's statistics views and information_schema included) is read whole or,
when the whole is refused, column by column, and every routine of every non-system schema is
called (NULL arguments); nothing it returns may hold a name, e-mail or phone of the data.
The same scan as the owner finds them, so the test can fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from tests.roles import login_member
from tests.staging_data import (
    call,
    create_batch,
    customer,
    fetch,
    hold_no_batch,
    item,
    product,
    transaction,
)

Conn = psycopg2.extensions.connection

# Identifiers nobody else has, so a hit anywhere is a leak.
PERSON = {"first_name": "Zephyrine", "last_name": "Quillfeather",
          "email": "zq.private@example.org", "phone": "+44 7700 900123"}
MOVED = {"first_name": "Zephyrina", "email": "zq.moved@example.org"}
REJECTED = {"first_name": "Bartholomeus", "last_name": "Winterbottom",
            "email": "not-an-address", "phone": "+1 202 555 0187"}
MALFORMED = "77,Malformina,Strangeways,ms.malformed@example.org,555 0199"
IDENTIFIERS = (*PERSON.values(), *MOVED.values(), REJECTED["first_name"],
               REJECTED["last_name"], REJECTED["phone"], "Malformina", "Strangeways",
               "ms.malformed@example.org")

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def load_personal_data(conn: Conn) -> None:
    """Two batches through the whole chain: a customer with two versions, a rejected row
    and a malformed row holding identifiers; then statistics of every table."""
    hold_no_batch(conn)  # pd_0001 rejects 2 of its 3 customers
    create_batch(conn, {
        "customers.csv": [customer(1, **PERSON), customer(2, **REJECTED)],
        "products.csv": [product(100)],
        "transactions.csv": [transaction(10, customer_id="1")],
        "transaction_items.csv": [item(1000)],
    }, malformed={"customers.csv": [(9, MALFORMED)]}, name="pd_0001")
    create_batch(conn, {"customers.csv": [customer(1, **{**PERSON, **MOVED},
                                                   updated_at="2025-05-20 00:00:00")]},
                 name="pd_0002")
    call(conn, "etl.process_pending")
    with conn.cursor() as cur:
        cur.execute("analyze")


@pytest.fixture
def reader(conn: Conn, db_url: str) -> Iterator[Conn]:
    """A login member of warehouse_reader, as a BI tool would connect."""
    with login_member(conn, db_url, "warehouse_reader") as login:
        yield login


def _try(conn: Conn, query: sql.Composable) -> list[tuple] | None:
    """Rows of a query, or None when the server refuses it."""
    with conn.cursor() as cur:
        try:
            cur.execute(query)
        except psycopg2.Error:
            return None
        return cur.fetchall() if cur.description else []


def readable_text(conn: Conn) -> tuple[str, list[str]]:
    """Everything the login can read from every relation of every schema, as one text, and
    the relations (or columns) it could read."""
    with conn.cursor() as cur:
        cur.execute("set statement_timeout = '20s'")
        cur.execute(
            """
            select n.nspname, c.relname, array_agg(a.attname::text order by a.attnum)
            from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
              and n.nspname <> 'pg_toast'
            group by n.nspname, c.relname
            order by 1, 2
            """
        )
        relations = cur.fetchall()
    chunks: list[str] = []
    read: list[str] = []
    for schema, name, columns in relations:
        relation = sql.Identifier(schema, name)
        rows = _try(conn, sql.SQL("select * from {}").format(relation))
        if rows is not None:
            read.append(f"{schema}.{name}")
            chunks.append(repr(rows))
            continue
        for column in columns:
            rows = _try(conn, sql.SQL("select {} from {}").format(sql.Identifier(column),
                                                                  relation))
            if rows is not None:
                read.append(f"{schema}.{name}.{column}")
                chunks.append(repr(rows))
    return "\n".join(chunks).lower(), read


def routine_results(conn: Conn) -> tuple[str, list[str]]:
    """Every routine of every non-system schema called with NULL arguments; the results as
    one text and the routines the login could execute."""
    routines = fetch(conn, """
        select p.oid::regprocedure::text, p.prokind::text, n.nspname, p.proname, p.pronargs
        from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace
        where n.nspname <> all (%s)
          and p.prokind in ('f', 'p')
          and p.prorettype <> 'trigger'::regtype
          and p.prorettype <> 'event_trigger'::regtype
        order by 1
        """, (list(SYSTEM_SCHEMAS),))
    chunks: list[str] = []
    executed: list[str] = []
    for signature, kind, schema, name, nargs in routines:
        arguments = sql.SQL(", ").join([sql.SQL("null")] * nargs)
        routine = sql.Identifier(schema, name)
        query = (sql.SQL("call {}({})") if kind == "p" else sql.SQL("select * from {}({})")
                 ).format(routine, arguments)
        rows = _try(conn, query)
        if rows is not None:
            executed.append(signature)
            chunks.append(repr(rows))
    return "\n".join(chunks).lower(), executed


def leaked(text: str) -> list[str]:
    return [value for value in IDENTIFIERS if value.lower() in text]


def test_a_reader_login_reaches_no_identifier_by_any_path(conn: Conn, reader: Conn) -> None:
    load_personal_data(conn)

    owner_text, _ = readable_text(conn)
    assert leaked(owner_text) == list(IDENTIFIERS)  # the data is there, the scan finds it

    text, read = readable_text(reader)
    assert leaked(text) == []
    # what the login reads in the project's schemas: the analytics views, nothing else
    project = sorted({r.rsplit(".", r.count(".") - 1)[0] for r in read
                      if r.split(".")[0] in ("staging", "etl", "production", "warehouse",
                                             "analytics")})
    assert project == sorted(f"analytics.{v}" for (v,) in fetch(conn, """
        select c.relname from pg_class c
        where c.relnamespace = 'analytics'::regnamespace and c.relkind in ('v', 'm')"""))
    assert "analytics.v_sales" in project
    # pg_stats of the tables it cannot read shows it nothing of them
    assert fetch(reader, "select count(*) from pg_stats where schemaname <> 'pg_catalog' "
                         "and schemaname <> 'information_schema'") == [(0,)]
    assert fetch(conn, "select count(*) from pg_stats where schemaname = 'production' "
                       "and tablename = 'customers' and attname = 'email'") == [(1,)]

    results, executed = routine_results(reader)
    assert leaked(results) == []
    assert [r for r in executed if r.split(".")[0] in ("staging", "etl", "production",
                                                       "warehouse", "analytics")] == []


def test_no_project_routine_is_executable_by_public_and_none_is_a_security_definer_for_it(
        conn: Conn) -> None:
    assert fetch(conn, """
        select p.oid::regprocedure::text
        from pg_proc p
        where p.pronamespace::regnamespace::text in
              ('staging', 'etl', 'production', 'warehouse', 'analytics')
          and (has_function_privilege('warehouse_reader', p.oid, 'execute')
               or (p.prosecdef and has_function_privilege('public', p.oid, 'execute')))
        order by 1""") == []
    # routines created later by the migrating role are not executable by PUBLIC either
    with conn.cursor() as cur:
        cur.execute("create function analytics.f_probe() returns int language sql "
                    "as 'select 1'")
    assert fetch(conn, "select has_function_privilege('warehouse_reader', "
                       "'analytics.f_probe()', 'execute')") == [(False,)]


def test_v_sales_keeps_the_customer_id_and_attributes_but_no_identifier(conn: Conn) -> None:
    load_personal_data(conn)
    assert fetch(conn, """
        select column_name from information_schema.columns
        where table_schema = 'analytics' and table_name = 'v_sales'
          and column_name like any (array['customer%%', 'city', 'state', 'country',
                                          'signup_date', 'first_name', 'last_name',
                                          'email', 'phone'])
        order by ordinal_position""") == [
        ("customer_id",), ("city",), ("state",), ("country",), ("signup_date",),
        ("customer_key",)]
    assert fetch(conn, "select customer_id, city, country from analytics.v_sales") == [
        (1, "Springfield", "US")]


def test_every_identifier_column_is_commented_as_personal_data(conn: Conn) -> None:
    uncommented = fetch(conn, """
        select format('%%s.%%s.%%s', n.nspname, c.relname, a.attname)
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('staging', 'etl', 'production', 'warehouse', 'analytics')
          and c.relkind in ('r', 'p', 'v', 'm')
          and not c.relispartition
          and a.attnum > 0 and not a.attisdropped
          and regexp_replace(a.attname, '^raw_', '') in
              ('first_name', 'last_name', 'email', 'phone')
          and coalesce(col_description(c.oid, a.attnum), '') not like 'Personal data%%'
        order by 1""")
    assert uncommented == []
    assert fetch(conn, """
        select count(*) from pg_attribute a
        where a.attrelid = 'warehouse.dim_customer'::regclass
          and col_description(a.attrelid, a.attnum) like 'Personal data%%'""") == [(4,)]
