"""staging.transaction_changes and production.batch_transactions (revision 0018): the
transactions each batch wrote, logged by the triggers of production.transactions for every
writer, so the loaders find them without an index on source_batch_id."""

from __future__ import annotations

import psycopg2.extensions

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
    "customers.csv": [customer(1)],
    "products.csv": [product(100)],
    "transactions.csv": [transaction(10, status="pending"), transaction(11, status="pending"),
                         transaction(12, status="pending")],
    "transaction_items.csv": [item(1000, transaction_id="10"), item(1001, transaction_id="11"),
                              item(1002, transaction_id="12")],
}


def batch_transactions(conn: Conn, batch: int) -> list[tuple]:
    return fetch(conn, "select transaction_id, status_code "
                       "from production.batch_transactions(%s) order by 1", (batch,))


def test_the_batch_transactions_are_those_it_inserted_or_changed_and_no_later_one_did(
        conn: Conn) -> None:
    first = create_batch(conn, FIRST)
    run_batch(conn, first)
    second = create_batch(conn, {"transactions.csv": [
        transaction(10, status="completed"),   # changed
        transaction(11, status="pending"),     # delivered again, equal: only the delivery
        transaction(13, status="pending"),     # new
    ]})
    run_batch(conn, second)
    assert batch_transactions(conn, first) == [(11, "pending"), (12, "pending")]
    assert batch_transactions(conn, second) == [(10, "completed"), (13, "pending")]
    assert fetch(conn, "select batch_id, transaction_id from staging.transaction_changes "
                       "order by 1, 2") == [
        (first, 10), (first, 11), (first, 12), (second, 10), (second, 13)]
    # the same rows as the column says
    for batch in (first, second):
        assert batch_transactions(conn, batch) == fetch(
            conn, "select transaction_id, status_code from production.transactions "
                  "where source_batch_id = %s order by 1", (batch,))


def test_a_write_outside_the_pipeline_is_logged_too_even_in_replica_mode(conn: Conn) -> None:
    first = create_batch(conn, FIRST)
    run_batch(conn, first)
    second = create_batch(conn, {"customers.csv": [customer(2)]})
    with conn.cursor() as cur:
        cur.execute("set session_replication_role = replica")
        cur.execute("update production.transactions set status_code = 'refunded', "
                    "source_batch_id = %s, delivered_batch_id = %s where transaction_id = 12",
                    (second, second))
        cur.execute("reset session_replication_role")
    assert batch_transactions(conn, second) == [(12, "refunded")]
    assert batch_transactions(conn, first) == [(10, "pending"), (11, "pending")]


def test_the_merge_still_skips_the_foreign_key_triggers_beside_the_log_triggers(
        conn: Conn) -> None:
    batch = create_batch(conn, FIRST)
    call(conn, "staging.validate_batch", batch)
    notices = call(conn, "production.merge_batch", batch)
    assert any("foreign keys proved by validation (per-row triggers skipped)" in notice
               for notice in notices), notices


def test_a_batch_transactions_are_read_through_the_log_index(conn: Conn) -> None:
    with conn.cursor() as cur:
        cur.execute("set enable_seqscan = off")
        cur.execute("explain (costs off) select * from production.batch_transactions(7)")
        plan = "\n".join(line for (line,) in cur.fetchall())
        cur.execute("reset enable_seqscan")
    assert "Index Scan on transaction_changes_batch_idx" in plan, plan
    assert "Index Scan using transactions_pkey on transactions" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_the_items_of_other_batches_are_read_through_the_batch_index(conn: Conn) -> None:
    """warehouse.batch_sales_lines' items of the batch's transactions that other batches
    delivered: after an initial load every item is the batch's, and a plan that can only
    scan the items table to find none read 3M items for nothing at 1M orders."""
    first = create_batch(conn, FIRST)
    run_batch(conn, first)
    with conn.cursor() as cur:
        # the batch as an initial load leaves it: 20,000 items, all of it, analyzed
        cur.execute("""
            insert into production.transactions (transaction_id, customer_id, transaction_ts,
                                                  payment_method_code, status_code,
                                                  source_batch_id)
            select n, 1, timestamptz '2024-03-01 12:00+00', 'paypal', 'completed', %(b)s
            from generate_series(100000, 104999) n;
            insert into production.transaction_items (item_id, transaction_id, product_id,
                                                       quantity, unit_price, source_batch_id)
            select 200000 + n, 100000 + n / 4, 100, 1, 9.99, %(b)s
            from generate_series(0, 19999) n;
            analyze production.transactions, production.transaction_items""", {"b": first})
        cur.execute("explain (costs off) select * from warehouse.batch_sales_lines(%s)",
                    (first,))
        plan = "\n".join(line for (line,) in cur.fetchall())
    # the batch's own items read whole; the others looked up in source_batch_id's index
    assert plan.count("Seq Scan on transaction_items") == 1, plan
    assert "Bitmap Index Scan on transaction_items_source_batch_idx" in plan, plan
    assert f"Index Cond: (source_batch_id > '{first}'::bigint)" in plan, plan


def log_statistics(conn: Conn) -> list[tuple]:
    return fetch(conn, "select reltuples::bigint from pg_class "
                       "where oid = 'staging.transaction_changes'::regclass")


def test_the_initial_load_analyzes_the_log_it_filled_and_a_later_merge_does_not(
        conn: Conn) -> None:
    assert log_statistics(conn) == [(-1,)]  # never analyzed
    first = create_batch(conn, FIRST)
    call(conn, "staging.validate_batch", first)
    call(conn, "production.merge_batch", first)  # loads the empty tables (and log) whole
    assert log_statistics(conn) == [(3,)]
    assert fetch(conn, "select indexdef from pg_indexes "
                       "where tablename = 'transaction_changes'") == [(
        "CREATE INDEX transaction_changes_batch_idx ON staging.transaction_changes "
        "USING btree (batch_id, transaction_id)",)]
    second = create_batch(conn, {"transactions.csv": [transaction(13, status="pending")]})
    call(conn, "staging.validate_batch", second)
    call(conn, "production.merge_batch", second)  # the upsert path: no ANALYZE
    assert log_statistics(conn) == [(3,)]
    assert fetch(conn, "select count(*) from staging.transaction_changes") == [(4,)]


def test_a_log_holding_rows_is_kept_and_analyzed_when_production_is_loaded_whole(
        conn: Conn) -> None:
    earlier = create_batch(conn, {"customers.csv": [customer(7)]})
    with conn.cursor() as cur:  # a log row left by a batch whose transactions are gone
        cur.execute("insert into staging.transaction_changes (batch_id, transaction_id) "
                    "values (%s, 99)", (earlier,))
    first = create_batch(conn, FIRST)
    call(conn, "staging.validate_batch", first)
    call(conn, "production.merge_batch", first)
    assert fetch(conn, "select batch_id, transaction_id from staging.transaction_changes "
                       "order by 1, 2") == [(earlier, 99), (first, 10), (first, 11),
                                            (first, 12)]
    assert log_statistics(conn) == [(4,)]


def test_a_merge_that_logged_a_large_batch_analyzes_the_log_and_a_small_one_does_not(
        conn: Conn) -> None:
    first = create_batch(conn, FIRST)
    call(conn, "staging.validate_batch", first)
    call(conn, "production.merge_batch", first)
    assert log_statistics(conn) == [(3,)]
    # a feed: 10,001 transactions logged, over 10,000 and over 1 % of the log
    feed = create_batch(conn, {"transactions.csv": [
        transaction(n, status="pending") for n in range(100, 10101)]})
    call(conn, "staging.validate_batch", feed)
    call(conn, "production.merge_batch", feed)
    assert log_statistics(conn) == [(10004,)]
    # its batch is now known to the planner: the estimate is the batch's size
    plan = fetch(conn, "explain select * from production.batch_transactions(%s)", (feed,))
    assert "rows=10001" in plan[0][0] or any("rows=10001" in line for (line,) in plan), plan
    # 10,000 transactions are not enough: the statistics stay as they were
    daily = create_batch(conn, {"transactions.csv": [
        transaction(n, status="completed") for n in range(100, 10100)]})
    call(conn, "staging.validate_batch", daily)
    call(conn, "production.merge_batch", daily)
    assert log_statistics(conn) == [(10004,)]
    assert fetch(conn, "select count(*) from staging.transaction_changes") == [(20004,)]
