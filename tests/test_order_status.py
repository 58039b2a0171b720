"""An order's status stored once (revision 0019, warehouse.fact_order_status; issue 17).

The fact's lines no longer hold the status: each order has one row in fact_order_status,
which the lines join by transaction_id. A status feed writes those rows (and the aggregate
deltas of the orders whose sale-ness changes), never the lines; readers still see the status
on every line (analytics.v_sales).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from runner import migrate
from tests import test_warehouse
from tests.test_aggregate_deltas import (
    aggregates,
    assert_equal_to_a_recompute,
    pending_and_completed_orders,
)
from tests.test_warehouse import Shop

shop = test_warehouse.shop  # the fixture, shared


def three_orders(shop: Shop) -> int:
    """Batch 1, loaded: order 100 pending (items 1000, 1001), 101 completed (item 1002), 102
    completed (item 1003), and 103 completed without items."""
    b1 = shop.batch("2025-03-01 00:00+00")
    pending_and_completed_orders(shop, b1)
    shop.transaction(b1, 103, 2, "2025-02-13 12:00")
    shop.load(b1)
    return b1


def status_feed(shop: Shop) -> int:
    """Batch 2, loaded: 100 completed, 101 refunded, 102 cancelled (status alone)."""
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-10 12:00")
    shop.transaction(b2, 101, 2, "2025-02-11 12:00", status="refunded")
    shop.transaction(b2, 102, 1, "2025-02-12 12:00", status="cancelled")
    shop.load(b2)
    return b2


def line_versions(shop: Shop) -> list[tuple]:
    return shop.rows("select item_id, ctid::text, xmin::text, source_batch_id "
                     "from warehouse.fact_sales order by item_id")


def test_the_initial_load_writes_one_status_row_per_transaction(shop: Shop) -> None:
    b1 = three_orders(shop)
    assert shop.rows("select transaction_id, status_code, source_batch_id "
                     "from warehouse.fact_order_status order by 1") == [
        (100, "pending", b1), (101, "completed", b1), (102, "completed", b1),
        (103, "completed", b1)]
    assert shop.value("select count(*) from information_schema.columns "
                      "where table_schema = 'warehouse' and table_name = 'fact_sales' "
                      "and column_name = 'status_code'") == 0


def test_a_status_feed_writes_the_order_rows_and_leaves_the_fact_lines_in_place(
        shop: Shop) -> None:
    three_orders(shop)
    before = line_versions(shop)
    b2 = status_feed(shop)
    assert line_versions(shop) == before  # same row versions, same places, same batch
    assert shop.rows("select transaction_id, status_code, source_batch_id "
                     "from warehouse.fact_order_status order by 1") == [
        (100, "completed", b2), (101, "refunded", b2), (102, "cancelled", b2),
        (103, "completed", 1)]
    assert shop.value("select rows from etl.batch_step where batch_id = %s "
                      "and step = 'load_fact_sales'", (b2,)) == 3


def test_v_sales_shows_the_new_status_on_every_line_of_the_order(shop: Shop) -> None:
    three_orders(shop)
    status_feed(shop)
    assert shop.rows("select item_id, transaction_id, status from analytics.v_sales "
                     "order by item_id") == [
        (1000, 100, "completed"), (1001, 100, "completed"), (1002, 101, "refunded"),
        (1003, 102, "cancelled")]


def test_aggregates_after_a_status_feed_equal_a_full_recompute(shop: Shop) -> None:
    three_orders(shop)
    status_feed(shop)
    feb = date(2025, 2, 1)
    assert aggregates(shop) == {
        "daily": [(date(2025, 2, 10), 1, 3, Decimal("25.00"), Decimal("0.00"),
                   Decimal("16.00"))],
        "products": [(feb, 10, 1, 2, Decimal("20.00"), Decimal("12.00")),
                     (feb, 11, 1, 1, Decimal("5.00"), Decimal("4.00"))],
        "payments": [(feb, "credit_card", 1, Decimal("25.00"))],
        "customers": [(date(2025, 1, 1), 2, 0), (feb, 0, 1)],
        "activity": [(feb, 1, 1)],
    }
    # the days of the three orders whose status changed are queued (for the batch check)
    assert shop.rows("select day from warehouse.agg_refresh_queue where batch_id = 2 "
                     "and grain = 'day' order by 1") == [
        (date(2025, 2, 10),), (date(2025, 2, 11),), (date(2025, 2, 12),)]
    assert_equal_to_a_recompute(shop)


def test_a_status_change_with_a_new_line_writes_the_order_row_and_the_line(
        shop: Shop) -> None:
    three_orders(shop)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-10 12:00")  # completed, and a third line
    shop.item(b2, 1004, 100, 10, quantity=1)
    shop.load(b2)
    assert shop.rows("select item_id, source_batch_id from warehouse.fact_sales "
                     "where transaction_id = 100 order by 1") == [
        (1000, 1), (1001, 1), (1004, b2)]
    assert shop.rows("select status_code, source_batch_id from warehouse.fact_order_status "
                     "where transaction_id = 100") == [("completed", b2)]
    assert shop.rows("select orders, units, revenue from warehouse.agg_daily_sales "
                     "where sales_date = '2025-02-10'") == [(1, 4, Decimal("35.00"))]
    assert_equal_to_a_recompute(shop)


def test_downgrade_puts_the_status_back_on_every_line_and_upgrade_takes_it_off(
        shop: Shop, db_url: str) -> None:
    three_orders(shop)
    status_feed(shop)
    orders = shop.rows("select transaction_id, status_code from warehouse.fact_order_status "
                       "order by 1")
    shop.cur.connection.close()
    migrate.downgrade(db_url, "0018")
    with test_warehouse.psycopg2.connect(db_url) as connection, connection.cursor() as cur:
        cur.execute("select item_id, status_code from warehouse.fact_sales order by 1")
        assert cur.fetchall() == [(1000, "completed"), (1001, "completed"),
                                  (1002, "refunded"), (1003, "cancelled")]
        cur.execute("select attnotnull from pg_attribute where attrelid = "
                    "'warehouse.fact_sales'::regclass and attname = 'status_code'")
        assert cur.fetchall() == [(True,)]
        cur.execute("select to_regclass('warehouse.fact_order_status')")
        assert cur.fetchall() == [(None,)]
    connection.close()
    migrate.upgrade(db_url)
    with test_warehouse.psycopg2.connect(db_url) as connection, connection.cursor() as cur:
        cur.execute("select transaction_id, status_code from warehouse.fact_order_status "
                    "order by 1")
        assert cur.fetchall() == orders
        cur.execute("select item_id, status from analytics.v_sales order by 1")
        assert cur.fetchall() == [(1000, "completed"), (1001, "completed"),
                                  (1002, "refunded"), (1003, "cancelled")]
    connection.close()
