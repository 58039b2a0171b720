"""etl.reprocess_rejects: orphans resolved when their parents arrive, superseded by later
deliveries, never resolved when a parent never arrives; conservation throughout."""

from __future__ import annotations

import psycopg2.extensions

from tests.staging_data import (
    call,
    create_batch,
    customer,
    fetch,
    item,
    product,
    rejects,
    run_batch,
    transaction,
)

Conn = psycopg2.extensions.connection


def reconciliation(conn: Conn, batch_id: int) -> list[tuple]:
    return fetch(conn, "select file_name, rows_in_file, rows_accepted, rows_rejected, "
                       "rows_pending, balanced from etl.v_batch_reconciliation "
                       "where batch_id = %s order by file_name", (batch_id,))


def orphan_batch(conn: Conn) -> int:
    """Batch 1: customer 1, product 100; transaction 20 of customer 2 (not yet known) with
    its items 200 and 201; item 202 of product 300 (not yet known)."""
    batch = create_batch(conn, {
        "customers.csv": [customer(1)],
        "products.csv": [product(100)],
        "transactions.csv": [transaction(10), transaction(20, customer_id="2",
                                                          status="pending")],
        "transaction_items.csv": [item(100, transaction_id="10"),
                                  item(200, transaction_id="20"),
                                  item(201, transaction_id="20", quantity="5"),
                                  item(202, transaction_id="10", product_id="300")],
    }, name="batch_0001")
    run_batch(conn, batch)
    return batch


def test_orphan_transaction_and_its_items_resolve_when_the_customer_arrives(
        conn: Conn) -> None:
    first = orphan_batch(conn)
    assert rejects(conn, first, "transactions.csv") == {3: ["unknown_customer"]}
    assert rejects(conn, first, "transaction_items.csv") == {
        3: ["unknown_transaction"], 4: ["unknown_transaction"], 5: ["unknown_product"]}
    assert reconciliation(conn, first)[2:] == [
        ("transaction_items.csv", 4, 1, 3, 3, True), ("transactions.csv", 2, 1, 1, 1, True)]

    second = create_batch(conn, {"customers.csv": [customer(2)]}, name="batch_0002")
    call(conn, "staging.validate_batch", second)
    call(conn, "production.merge_batch", second)
    notices = call(conn, "etl.reprocess_rejects", second)

    assert fetch(conn, "select file_name, line_no, resolution, resolved_batch_id "
                       "from etl.rejected_row where resolved_at is not null "
                       "order by file_name, line_no") == [
        ("transaction_items.csv", 3, "merged", second),
        ("transaction_items.csv", 4, "merged", second),
        ("transactions.csv", 3, "merged", second)]
    assert fetch(conn, "select transaction_id, customer_id, status_code, source_batch_id, "
                       "delivered_batch_id from production.transactions order by 1") == [
        (10, 1, "completed", first, first), (20, 2, "pending", second, first)]
    assert fetch(conn, "select item_id, quantity, source_batch_id, delivered_batch_id "
                       "from production.transaction_items order by 1") == [
        (100, 2, first, first), (200, 2, second, first), (201, 5, second, first)]
    assert reconciliation(conn, first)[2:] == [
        ("transaction_items.csv", 4, 3, 1, 1, True), ("transactions.csv", 2, 2, 0, 0, True)]
    assert fetch(conn, "select rule, rows from etl.v_reject_summary where batch_id = %s",
                 (first,)) == [("unknown_product", 1)]
    assert fetch(conn, "select rows from etl.batch_step where batch_id = %s "
                       "and step = 'reprocess_rejects'", (second,)) == [(3,)]
    assert any("transactions.csv: 1 merged (production: 1 inserted, 0 changed), "
               "0 superseded" in n for n in notices)
    assert fetch(conn, "select count(*) from staging.resolved_transactions") == [(0,)]


def test_an_orphan_whose_parent_never_arrives_stays_pending(conn: Conn) -> None:
    first = orphan_batch(conn)
    for n in (2, 3):
        run_batch(conn, create_batch(conn, {"customers.csv": [customer(10 + n)]}))
    assert fetch(conn, "select file_name, line_no from etl.rejected_row "
                       "where resolved_at is null order by 1, 2") == [
        ("transaction_items.csv", 3), ("transaction_items.csv", 4),
        ("transaction_items.csv", 5), ("transactions.csv", 3)]
    assert all(row[-1] for row in reconciliation(conn, first))


def test_orphans_of_the_same_batch_resolve_through_an_orphan_transaction(conn: Conn) -> None:
    first = orphan_batch(conn)  # transaction 20 waits for customer 2
    second = create_batch(conn, {
        "customers.csv": [customer(2)],
        "products.csv": [product(300)],
        "transaction_items.csv": [item(203, transaction_id="20")],  # orphan on validation
    })
    run_batch(conn, second)
    assert fetch(conn, "select batch_id, file_name, line_no, resolution from etl.rejected_row "
                       "where resolved_batch_id = %s order by 1, 2, 3", (second,)) == [
        (first, "transaction_items.csv", 3, "merged"),
        (first, "transaction_items.csv", 4, "merged"),
        (first, "transaction_items.csv", 5, "merged"),
        (first, "transactions.csv", 3, "merged"),
        (second, "transaction_items.csv", 2, "merged")]
    assert fetch(conn, "select count(*) from production.transaction_items") == [(5,)]
    assert all(row[-1] for row in reconciliation(conn, second))


def test_an_orphan_superseded_by_a_later_delivery_is_not_merged(conn: Conn) -> None:
    first = orphan_batch(conn)  # transaction 20 of customer 2, pending
    second = create_batch(conn, {
        "customers.csv": [customer(2)],
        "transactions.csv": [transaction(20, customer_id="1", status="cancelled")],
    })
    run_batch(conn, second)
    assert fetch(conn, "select customer_id, status_code, source_batch_id, delivered_batch_id "
                       "from production.transactions where transaction_id = 20") == [
        (1, "cancelled", second, second)]
    assert fetch(conn, "select file_name, line_no, resolution from etl.rejected_row "
                       "where batch_id = %s and resolved_at is not null order by 1, 2",
                 (first,)) == [
        ("transaction_items.csv", 3, "merged"), ("transaction_items.csv", 4, "merged"),
        ("transactions.csv", 3, "superseded")]


def test_the_newest_of_two_resolvable_orphans_wins(conn: Conn) -> None:
    first = orphan_batch(conn)  # transaction 20 of customer 2, pending
    second = create_batch(conn, {"transactions.csv": [
        transaction(20, customer_id="2", status="refunded")]})
    run_batch(conn, second)     # still waiting: customer 2 unknown
    third = create_batch(conn, {"customers.csv": [customer(2)]})
    run_batch(conn, third)
    assert fetch(conn, "select batch_id, resolution from etl.rejected_row "
                       "where file_name = 'transactions.csv' order by 1") == [
        (first, "superseded"), (second, "merged")]
    assert fetch(conn, "select status_code, source_batch_id, delivered_batch_id "
                       "from production.transactions where transaction_id = 20") == [
        ("refunded", third, second)]


def test_an_orphan_with_another_rule_is_final(conn: Conn) -> None:
    first = create_batch(conn, {"transactions.csv": [
        transaction(30, customer_id="5", status="shipped")]})
    run_batch(conn, first)
    run_batch(conn, create_batch(conn, {"customers.csv": [customer(5)]}))
    assert rejects(conn, first) == {2: ["invalid_status", "unknown_customer"]}


def test_reprocess_twice_changes_nothing_and_defaults_to_the_newest_merged_batch(
        conn: Conn) -> None:
    orphan_batch(conn)
    second = create_batch(conn, {"customers.csv": [customer(2)]})
    call(conn, "staging.validate_batch", second)
    call(conn, "production.merge_batch", second)
    with conn.cursor() as cur:
        cur.execute("call etl.reprocess_rejects()")
    state = (fetch(conn, "select reject_id, resolved_batch_id, resolved_at, resolution "
                         "from etl.rejected_row order by 1"),
             fetch(conn, "select * from production.transactions order by 1"),
             fetch(conn, "select * from production.transaction_items order by 1"),
             fetch(conn, "select rows from etl.batch_step where step = 'reprocess_rejects'"))
    call(conn, "etl.reprocess_rejects", second)
    assert [row[1] for row in state[0]] == [second, second, second, None]
    assert (fetch(conn, "select reject_id, resolved_batch_id, resolved_at, resolution "
                        "from etl.rejected_row order by 1"),
            fetch(conn, "select * from production.transactions order by 1"),
            fetch(conn, "select * from production.transaction_items order by 1"),
            fetch(conn, "select rows from etl.batch_step where step = 'reprocess_rejects'")) \
        == state


def test_reprocess_takes_only_orphans_of_batches_up_to_the_given_one(conn: Conn) -> None:
    first = create_batch(conn, {"customers.csv": [customer(1)]})
    run_batch(conn, first)
    second = create_batch(conn, {"transactions.csv": [transaction(40, customer_id="7")]})
    call(conn, "staging.validate_batch", second)
    call(conn, "production.merge_batch", second)
    with conn.cursor() as cur:  # customer 7 appears in production by another way
        cur.execute("insert into production.customers (customer_id, first_name, last_name, "
                    "email, country, signup_date, source_batch_id, delivered_batch_id) "
                    "values (7, 'A', 'B', 'c7@example.com', 'US', '2024-01-01', %s, %s)",
                    (first, first))
    call(conn, "etl.reprocess_rejects", first)
    assert rejects(conn, second) == {2: ["unknown_customer"]}
    call(conn, "etl.reprocess_rejects", second)
    assert rejects(conn, second) == {}
