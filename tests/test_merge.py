"""production.merge_batch: typed upserts, lineage, later batches win, idempotence."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg2
import psycopg2.extensions
import pytest

from tests.staging_data import (
    call,
    create_batch,
    customer,
    fetch,
    item,
    product,
    run_batch,
    transaction,
)

Conn = psycopg2.extensions.connection

FIRST = {
    "customers.csv": [customer(1, first_name=" Ann ", email=" Ann@Example.COM", city="Old",
                               phone="", updated_at="2025-04-01T10:00:00+02:00")],
    "products.csv": [product(100, category=" Books ", unit_price="19.9", cost="7.5", brand=""),
                     product(101, category="Games")],
    "transactions.csv": [transaction(10, transaction_ts="2025-05-01T10:00:00-02:00",
                                     payment_method=" Credit Card ", status="COMPLETED")],
    "transaction_items.csv": [item(1000, quantity="3", unit_price="19.90", discount=""),
                              item(1001, product_id="101", discount="1.5")],
}


def production_state(conn: Conn) -> tuple:
    return tuple(
        fetch(conn, f"select * from production.{table} order by 1")
        for table in ("customers", "categories", "products", "transactions",
                      "transaction_items")
    )


def test_merge_writes_typed_trimmed_rows_with_lineage(conn: Conn) -> None:
    batch = create_batch(conn, FIRST)
    call(conn, "staging.validate_batch", batch)
    notices = call(conn, "production.merge_batch", batch)
    assert fetch(conn, "select customer_id, first_name, email, phone, city, signup_date, "
                       "source_updated_at, source_batch_id, delivered_batch_id, "
                       "created_at = updated_at from production.customers") == [
        (1, "Ann", "ann@example.com", None, "Old", date(2024, 1, 15),
         datetime(2025, 4, 1, 8, 0, tzinfo=UTC), batch, batch, True)]
    assert fetch(conn, "select p.product_id, p.product_name, c.category_name, p.brand, "
                       "p.unit_price, p.cost from production.products p "
                       "join production.categories c using (category_id) order by 1") == [
        (100, "Product 100", "Books", None, Decimal("19.90"), Decimal("7.50")),
        (101, "Product 101", "Games", "Acme", Decimal("19.90"), Decimal("7.50"))]
    assert fetch(conn, "select transaction_id, customer_id, transaction_ts, "
                       "payment_method_code, status_code, source_batch_id "
                       "from production.transactions") == [
        (10, 1, datetime(2025, 5, 1, 12, 0, tzinfo=UTC), "credit_card", "completed", batch)]
    assert fetch(conn, "select item_id, quantity, unit_price, discount, line_amount "
                       "from production.transaction_items order by 1") == [
        (1000, 3, Decimal("19.90"), Decimal("0.00"), Decimal("59.70")),
        (1001, 2, Decimal("19.90"), Decimal("1.50"), Decimal("38.30"))]
    assert fetch(conn, "select step, rows from etl.batch_step where batch_id = %s "
                       "and step = 'merge'", (batch,)) == [("merge", 6)]
    (name,) = fetch(conn, "select batch_name from etl.batch where batch_id = %s", (batch,))[0]
    assert (f"merge_batch: batch {batch} ({name}): production.transaction_items: "
            "2 inserted, 0 changed") in notices
    assert any("foreign keys proved by validation" in notice for notice in notices)
    assert fetch(conn, "select current_setting('session_replication_role')") == [("origin",)]


def test_later_batch_updates_changed_rows_only(conn: Conn) -> None:
    first = create_batch(conn, FIRST)
    run_batch(conn, first)
    product_101_updated = fetch(
        conn, "select updated_at from production.products where product_id = 101")
    second = create_batch(conn, {
        "customers.csv": [customer(1, first_name="Ann", email="ann@example.com", city="New",
                                   phone=None, updated_at="2025-04-01 08:00:00")],
        "products.csv": [product(100, category="Books", unit_price="21.00", cost="7.50",
                                 brand=None),
                         product(101, category="Games")],           # re-delivered, equal
        "transactions.csv": [transaction(10, transaction_ts="2025-05-01 12:00:00",
                                         payment_method="credit_card", status="refunded")],
        "transaction_items.csv": [item(1000, quantity="1", unit_price="19.90")],
    })
    run_batch(conn, second)
    assert fetch(conn, "select city, source_batch_id, delivered_batch_id, "
                       "updated_at > created_at from production.customers") == [
        ("New", second, second, True)]
    assert fetch(conn, "select product_id, unit_price, source_batch_id, delivered_batch_id "
                       "from production.products order by 1") == [
        (100, Decimal("21.00"), second, second), (101, Decimal("19.90"), first, second)]
    assert fetch(conn, "select updated_at from production.products where product_id = 101") \
        == product_101_updated
    assert fetch(conn, "select status_code, source_batch_id from production.transactions") == [
        ("refunded", second)]
    assert fetch(conn, "select item_id, quantity, source_batch_id from "
                       "production.transaction_items order by 1") == [
        (1000, 1, second), (1001, 2, first)]
    assert fetch(conn, "select count(*) from production.categories") == [(2,)]


def test_merge_twice_changes_nothing(conn: Conn) -> None:
    batch = create_batch(conn, FIRST)
    call(conn, "staging.validate_batch", batch)
    call(conn, "production.merge_batch", batch)
    state = production_state(conn)
    step = fetch(conn, "select rows, completed_at from etl.batch_step where step = 'merge'")
    notices = call(conn, "production.merge_batch", batch)
    assert production_state(conn) == state
    assert fetch(conn, "select rows, completed_at from etl.batch_step where step = 'merge'") \
        == step
    assert any("already merged" in notice for notice in notices)


def test_merging_an_older_batch_again_does_not_undo_a_later_one(conn: Conn) -> None:
    first = create_batch(conn, {"customers.csv": [customer(1, city="Old")]})
    run_batch(conn, first)
    second = create_batch(conn, {"customers.csv": [customer(1, city="New")]})
    run_batch(conn, second)
    call(conn, "production.merge_batch", first)
    call(conn, "staging.validate_batch", first)
    assert fetch(conn, "select city, source_batch_id from production.customers") == [
        ("New", second)]


def test_redelivered_equal_values_keep_updated_at_and_source_batch(conn: Conn) -> None:
    first = create_batch(conn, FIRST)
    run_batch(conn, first)
    state = fetch(conn, "select customer_id, updated_at, source_batch_id "
                        "from production.customers")
    second = create_batch(conn, {"customers.csv": FIRST["customers.csv"]})
    run_batch(conn, second)
    assert fetch(conn, "select customer_id, updated_at, source_batch_id "
                       "from production.customers") == state
    assert fetch(conn, "select delivered_batch_id from production.customers") == [(second,)]


def test_merge_needs_a_validated_batch(conn: Conn) -> None:
    batch = create_batch(conn, FIRST)
    with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState, match="not validated"):
        call(conn, "production.merge_batch", batch)
    with pytest.raises(psycopg2.errors.NoDataFound):
        call(conn, "production.merge_batch", 999)


def test_merge_validates_again_when_the_unlogged_rows_are_gone(conn: Conn) -> None:
    batch = create_batch(conn, FIRST)
    call(conn, "staging.validate_batch", batch)
    with conn.cursor() as cur:  # what a crash does to the UNLOGGED tables
        cur.execute("truncate staging.validated_customers, staging.validated_products, "
                    "staging.validated_transactions, staging.validated_transaction_items")
    notices = call(conn, "production.merge_batch", batch)
    assert any("validating it again" in notice for notice in notices)
    assert fetch(conn, "select count(*) from production.transaction_items") == [(2,)]


def test_foreign_keys_still_guard_production_outside_the_merge(conn: Conn) -> None:
    batch = create_batch(conn, FIRST)
    run_batch(conn, batch)
    with pytest.raises(psycopg2.errors.ForeignKeyViolation), conn.cursor() as cur:
        cur.execute("insert into production.transaction_items (item_id, transaction_id, "
                    "product_id, quantity, unit_price, source_batch_id, delivered_batch_id) "
                    "values (5, 999, 100, 1, 1, %s, %s)", (batch, batch))


def test_the_chain_runs_as_a_login_member_of_warehouse_etl(conn: Conn, db_url: str) -> None:
    role = f"etl_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"create role {role} login in role warehouse_etl")
    try:
        batch = create_batch(conn, FIRST)
        member = psycopg2.connect(db_url, user=role)
        member.autocommit = True
        try:
            call(member, "staging.validate_batch", batch)
            notices = call(member, "production.merge_batch", batch)
            call(member, "etl.reprocess_rejects", batch)
            assert fetch(member, "select current_user") == [(role,)]
        finally:
            member.close()
        assert any("foreign keys proved by validation" in notice for notice in notices)
        assert not any("bulk load" in notice for notice in notices)  # not the tables' owner
        assert fetch(conn, "select count(*) from production.transaction_items") == [(2,)]
    finally:
        with conn.cursor() as cur:
            cur.execute(f"drop owned by {role}")
            cur.execute(f"drop role {role}")


def test_merge_checks_foreign_keys_row_by_row_when_production_has_triggers(
        conn: Conn) -> None:
    with conn.cursor() as cur:
        cur.execute("create function production.noop() returns trigger language plpgsql "
                    "as $$ begin return new; end $$")
        cur.execute("create trigger noop before insert on production.customers "
                    "for each row execute function production.noop()")
    batch = create_batch(conn, FIRST)
    call(conn, "staging.validate_batch", batch)
    notices = call(conn, "production.merge_batch", batch)
    assert any("foreign keys checked row by row" in notice for notice in notices)
    assert fetch(conn, "select current_setting('session_replication_role')") == [("origin",)]
    assert fetch(conn, "select count(*) from production.transaction_items") == [(2,)]


# The business values of each production table, in column order: what its upsert writes and
# compares (not the key, the bookkeeping columns or line_amount, a generated column).
BUSINESS_VALUES = {
    "customers": ["first_name", "last_name", "email", "phone", "city", "state", "country",
                  "signup_date", "source_updated_at"],
    "products": ["product_name", "category_id", "brand", "unit_price", "cost",
                 "source_updated_at"],
    "transactions": ["customer_id", "transaction_ts", "payment_method_code", "status_code"],
    "transaction_items": ["transaction_id", "product_id", "quantity", "unit_price", "discount"],
}


def test_each_upsert_writes_and_compares_exactly_the_business_values(conn: Conn) -> None:
    keys = {"customers": "customer_id", "products": "product_id",
            "transactions": "transaction_id", "transaction_items": "item_id"}
    assert {table: fetch(conn, "select production.business_columns(%s::regclass, %s)",
                         (f"production.{table}", keys[table]))[0][0]
            for table in BUSINESS_VALUES} == BUSINESS_VALUES


def test_a_change_of_any_business_value_is_a_change(conn: Conn) -> None:
    stamp = "2025-01-01T00:00:00Z"
    first = create_batch(conn, {
        "customers.csv": [customer(1, updated_at=stamp)],
        "products.csv": [product(100, updated_at=stamp)],
        "transactions.csv": [transaction(10)],
        "transaction_items.csv": [item(1000)],
    })
    run_batch(conn, first)
    second = create_batch(conn, {
        "customers.csv": [customer(1, updated_at=stamp, phone="555-0199")],
        "products.csv": [product(100, updated_at=stamp, brand="Other")],
        "transactions.csv": [transaction(10, payment_method="paypal")],
        "transaction_items.csv": [item(1000, discount="1.00")],
    })
    run_batch(conn, second)
    assert [fetch(conn, f"select source_batch_id, updated_at > created_at "
                        f"from production.{table}") for table in BUSINESS_VALUES] == [
        [(second, True)]] * 4


def test_the_initial_merge_gives_the_planner_the_distinct_keys_of_its_join_columns(
        conn: Conn) -> None:
    batch = create_batch(conn, FIRST)  # 1 customer, 1 transaction of 2 items
    call(conn, "staging.validate_batch", batch)
    call(conn, "production.merge_batch", batch)  # empty tables: the bulk path
    # ANALYZE reads every row of tables this small: one order for two lines, one customer
    # for one transaction (etl.set_key_statistics, called by etl.end_bulk_load)
    assert fetch(conn, "select attrelid::regclass::text, attname, attoptions "
                       "from pg_attribute where attoptions is not null "
                       "and attrelid::regclass::text like 'production.%%' order by 1, 2") == [
        ("production.transaction_items", "transaction_id", ["n_distinct=-0.500000"]),
        ("production.transactions", "customer_id", ["n_distinct=-1.000000"])]
