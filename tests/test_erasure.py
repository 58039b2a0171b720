"""Erasure of a customer (docs/data-contract.md, "Personal data"): etl.erase_customer leaves no
identifier of the customer in any stored row, changes no figure, and a later delivery of
the erased id stores none again.

The data: customer 5 with two SCD2 versions (two addresses) across batches, its orders in
both, a quarantined row of its own (invalid e-mail), a row of customer 9 rejected as
email_conflict against 5's address, and a malformed record holding 5's first address.
The proof is a whole ``pg_dump --data-only`` of the database, and every analytics view, the
two reconciliation views, the fact, the aggregates and the dimension's validity compared
whole before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest
from psycopg2 import sql

from runner.config import PROJECT_ROOT
from runner.exitcodes import EXIT_REFUSED
from runner.localdb import find_bindir
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

ERASED = {"first_name": "Erasmus", "last_name": "Forgetta", "phone": "+31 6 1234 5678"}
FIRST_ADDRESS = "erasmus.forgetta@example.org"
SECOND_ADDRESS = "e.forgetta@example.net"
INVALID_ADDRESS = "erasmus-at-example.org"
OTHER = {"first_name": "Ninette", "last_name": "Otherby"}
MALFORMED = f"5,Erasmus,Forgetta,{FIRST_ADDRESS.upper()},+31 6 1234 5678,Delft"
REFERENCE = "GDPR-2025-0042"


def load_history(conn: Conn) -> None:
    """Three batches through the whole chain (etl.process_pending)."""
    hold_no_batch(conn)  # er_0003 rejects both its customers
    create_batch(conn, {
        "customers.csv": [customer(5, **ERASED, email=FIRST_ADDRESS, city="Delft"),
                          customer(1, email="one@example.com")],
        "products.csv": [product(100)],
        "transactions.csv": [transaction(10, customer_id="5",
                                         transaction_ts="2025-04-01 10:00:00"),
                             transaction(11, customer_id="1")],
        "transaction_items.csv": [item(1000), item(1001, transaction_id="11")],
    }, malformed={"customers.csv": [(9, MALFORMED)]}, name="er_0001")
    create_batch(conn, {
        "customers.csv": [customer(5, **ERASED, email=f" {SECOND_ADDRESS.upper()} ",
                                   city="Leiden", updated_at="2025-04-15 00:00:00")],
        "transactions.csv": [transaction(12, customer_id="5",
                                         transaction_ts="2025-05-02 09:30:00")],
        "transaction_items.csv": [item(1002, transaction_id="12", quantity="3")],
    }, name="er_0002")
    create_batch(conn, {
        "customers.csv": [customer(5, **ERASED, email=INVALID_ADDRESS),
                          customer(9, **OTHER, email=SECOND_ADDRESS)],
    }, name="er_0003")
    call(conn, "etl.process_pending")


def dump(db_url: str) -> str:
    """pg_dump --data-only of the whole database, as text (without the random key of the
    \\restrict lines that pg_dump writes since 15.14)."""
    result = subprocess.run(
        [str(find_bindir() / "pg_dump"), "--data-only", "--no-owner", db_url],
        capture_output=True, text=True, check=True, timeout=120)
    return "".join(line for line in result.stdout.splitlines(keepends=True)
                   if not line.startswith(("\\restrict ", "\\unrestrict ")))


def figures(conn: Conn) -> dict[str, list[tuple]]:
    """Every analytics view, both reconciliation views, the fact, the aggregates and the
    customer dimension's versions (all but the identifiers), each whole and ordered."""
    relations = [f"analytics.{name}" for (name,) in fetch(conn, """
        select c.relname from pg_class c
        where c.relnamespace = 'analytics'::regnamespace and c.relkind in ('v', 'm')
        order by 1""")]
    relations += [f"warehouse.{name}" for (name,) in fetch(conn, """
        select c.relname from pg_class c
        where c.relnamespace = 'warehouse'::regnamespace and c.relkind = 'r'
          and (c.relname like 'agg%%' or c.relname like 'fact%%')
        order by 1""")]
    relations += ["etl.v_batch_reconciliation", "etl.v_reject_summary"]
    # every row, in an order of all its columns (relations have two columns or more)
    state = {name: sorted(fetch(conn, f"select * from {name}"), key=repr)
             for name in relations}
    state["warehouse.dim_customer"] = fetch(conn, """
        select customer_key, customer_id, city, state, country, signup_date, valid_from,
               valid_to, is_current, source_batch_id
        from warehouse.dim_customer order by customer_key""")
    return state


def erase(conn: Conn, customer_id: int, reference: str = REFERENCE) -> list[str]:
    return call(conn, "etl.erase_customer", customer_id, reference)


def test_erasure_leaves_no_identifier_in_a_dump_and_changes_no_figure(
        conn: Conn, db_url: str) -> None:
    load_history(conn)
    assert fetch(conn, "select count(*) from warehouse.dim_customer where customer_id = 5"
                 ) == [(2,)]
    assert fetch(conn, "select file_name, rules from etl.rejected_row order by line_no, "
                       "batch_id") == [
        ("customers.csv", ["invalid_email"]), ("customers.csv", ["email_conflict"]),
        ("customers.csv", ["malformed_row"])]
    before_dump = dump(db_url)
    for value in (*ERASED.values(), FIRST_ADDRESS, SECOND_ADDRESS, INVALID_ADDRESS):
        assert value.lower() in before_dump.lower(), value  # the dump can show a leak
    before = figures(conn)

    notices = erase(conn, 5)

    after_dump = dump(db_url)
    for value in (*ERASED.values(), FIRST_ADDRESS, SECOND_ADDRESS, INVALID_ADDRESS):
        assert value.lower() not in after_dump.lower(), value
    for value in (*OTHER.values(), "one@example.com"):  # other people keep theirs
        assert value in after_dump
    assert figures(conn) == before
    assert fetch(conn, "select first_name, last_name, email, phone, city, country "
                       "from production.customers where customer_id = 5") == [
        (None, None, None, None, "Leiden", "US")]
    assert fetch(conn, "select raw ->> 'first_name', raw ->> 'email' from etl.rejected_row "
                       "where record_key = '9'") == [("Ninette", None)]
    # staged rows: 3 of 5, 1 of 9; the typed rows of the last batch (kept until the next
    # validation): 1 of 5, 1 of 9; quarantined: 5's, 9's, the malformed one; production;
    # 2 versions
    assert fetch(conn, "select customer_id, reference, rows_changed, erased_at <= now() "
                       "from etl.v_erasures") == [(5, REFERENCE, 12, True)]
    assert notices[-1].startswith(
        f"etl.erase_customer: customer 5 erased (reference {REFERENCE}): 12 row(s) changed")
    assert not any("@" in notice for notice in notices)

    # a second call changes nothing
    assert erase(conn, 5, "GDPR-2025-0043")[-1].endswith(
        f"(reference {REFERENCE}): nothing changed")
    assert dump(db_url) == after_dump


def test_an_unknown_customer_id_fails_naming_it_and_changes_nothing(
        conn: Conn, db_url: str) -> None:
    load_history(conn)
    before = dump(db_url)
    with pytest.raises(psycopg2.errors.NoDataFound, match="customer 424242 is unknown"):
        erase(conn, 424242)
    with pytest.raises(psycopg2.errors.InvalidParameterValue, match="reference"):
        erase(conn, 5, "  ")
    assert dump(db_url) == before


def test_readers_and_the_pipeline_role_may_not_erase(conn: Conn) -> None:
    load_history(conn)
    with conn.cursor() as cur:
        for role in ("warehouse_reader", "warehouse_etl"):
            cur.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("call etl.erase_customer(5, 'x')")
            cur.execute("reset role")
    assert fetch(conn, "select count(*) from etl.erasure") == [(0,)]


def test_erasure_waits_for_no_run_it_refuses_while_a_run_holds_the_lock(
        conn: Conn, db_url: str) -> None:
    load_history(conn)
    holder = psycopg2.connect(db_url)
    try:
        with holder.cursor() as cur:
            cur.execute("select pg_advisory_lock(etl.pipeline_lock_key())")
        with pytest.raises(psycopg2.errors.LockNotAvailable, match="customer 5 was not"):
            erase(conn, 5)
    finally:
        holder.close()
    assert fetch(conn, "select count(*) from production.customers where email is null"
                 ) == [(0,)]


def test_runner_erase_command(conn: Conn, db_url: str) -> None:
    load_history(conn)
    env = {**os.environ, "DATABASE_URL": db_url}

    def erase_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "runner", "erase", *args], cwd=PROJECT_ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    first = erase_cli("5", "--reference", REFERENCE)
    assert first.returncode == 0, first.stderr
    assert f"customer 5 erased (reference {REFERENCE}): 12 row(s) changed" in first.stdout
    again = erase_cli("5", "--reference", REFERENCE)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    unknown = erase_cli("77", "--reference", REFERENCE)
    assert unknown.returncode == EXIT_REFUSED
    assert "customer 77 is unknown" in unknown.stderr


def test_a_later_delivery_of_an_erased_customer_stores_no_identifier(
        conn: Conn, db_url: str) -> None:
    load_history(conn)
    erase(conn, 5)
    redelivered = {"first_name": "Erasma", "last_name": "Forgettina", "phone": "+31 70 555"}
    create_batch(conn, {
        "customers.csv": [
            customer(5, **redelivered, email="erasma.new@example.org", city="Rotterdam",
                     updated_at="2025-05-10 00:00:00"),
            customer(12, first_name="Newton", last_name="Owner", email=SECOND_ADDRESS),
            customer(13, first_name="Conflicta", email="ERASMA.NEW@example.org")],
    }, malformed={"customers.csv": [(9, "5,Erasma,Forgettina,erasma.new@example.org")]},
        name="er_0004")
    create_batch(conn, {
        "customers.csv": [customer(5, **redelivered, email="erasma-invalid")],
    }, name="er_0005")
    create_batch(conn, {  # a name change only: no identifier is stored, so no version
        "customers.csv": [customer(5, first_name="Other", last_name="Name",
                                   email="other.name@example.org", city="Rotterdam",
                                   updated_at="2025-05-12 00:00:00")],
    }, name="er_0006")
    call(conn, "etl.process_pending")

    assert fetch(conn, "select batch_name, status from etl.batch order by batch_id")[-3:] == [
        ("er_0004", "processed"), ("er_0005", "processed"), ("er_0006", "processed")]
    text = dump(db_url).lower()
    for value in (*redelivered.values(), "erasma.new@example.org", "erasma-invalid",
                  "other.name@example.org", "Other,Name"):
        assert value.lower() not in text, value
    # validated as usual: 13 conflicts with 5's delivered address, 5's invalid row rejected
    assert fetch(conn, """
        select b.batch_name, r.record_key, r.rules from etl.rejected_row r
        join etl.batch b using (batch_id) where b.batch_name >= 'er_0004'
        order by 1, r.line_no""") == [
        ("er_0004", "13", ["email_conflict"]), ("er_0004", None, ["malformed_row"]),
        ("er_0005", "5", ["invalid_email"])]
    # the erased address is no longer known: customer 12 takes it without a conflict
    assert fetch(conn, "select customer_id from production.customers where email = %s",
                 (SECOND_ADDRESS,)) == [(12,)]
    # the other attributes update the customer and make a version, the name change none
    assert fetch(conn, "select first_name, email, phone, city from production.customers "
                       "where customer_id = 5") == [(None, None, None, "Rotterdam")]
    assert [(city, current) for city, current in fetch(conn, """
        select city, is_current from warehouse.dim_customer where customer_id = 5
        order by valid_from""")] == [("Delft", False), ("Leiden", False),
                                     ("Rotterdam", True)]
    assert fetch(conn, "select count(*) from warehouse.dim_customer "
                       "where customer_id = 5 and coalesce(first_name, last_name, email, "
                       "phone) is not null") == [(0,)]


@pytest.fixture
def etl_login(conn: Conn, db_url: str) -> Iterator[Conn]:
    with login_member(conn, db_url, "warehouse_etl") as login:
        yield login


def test_the_pipeline_role_forgets_an_erased_customer_delivered_again(
        conn: Conn, etl_login: Conn) -> None:
    load_history(conn)
    erase(conn, 5)
    create_batch(conn, {"customers.csv": [customer(5, first_name="Back", city="Utrecht")]},
                 name="er_0004")
    call(etl_login, "etl.process_pending")
    assert fetch(conn, "select first_name, city from production.customers "
                       "where customer_id = 5") == [(None, "Utrecht")]
    assert fetch(conn, "select count(*) from staging.customers where first_name = 'Back'"
                 ) == [(0,)]
