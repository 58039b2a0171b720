"""Sales by day, category and payment method stored as aggregates (revision 0023).

analytics.v_daily_category_sales and analytics.v_daily_payment_sales read
warehouse.agg_daily_category_sales and warehouse.agg_daily_payment_sales, kept by the
aggregate deltas, the recompute and the dimension step (a product moved to another
category). Each test changes orders in a way a per-line or per-product delta would get
wrong (an order counted once per category, categories merged by a move) and checks exact
figures, and that both views equal their definition over the completed orders
(warehouse.v_order_category_sales) and that a recompute changes nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg2
import pytest

from tests import test_warehouse
from tests.test_warehouse import Shop
from tests.test_warehouse_views import sale, toys_and_a_bat

shop = test_warehouse.shop  # the fixture, shared

CATEGORY_GRID = ("select sales_date, category, payment_method, orders, units, revenue, "
                 "discount, margin, avg_order_value from analytics.v_daily_category_sales "
                 "order by 1, 2, 3")
# the views' definitions before revision 0023: the completed orders, one row per order and
# category, grouped
CATEGORY_GRID_DEFINITION = (
    "select sales_date, category, payment_method, count(*), sum(units), sum(revenue), "
    "sum(discount), sum(margin), round(sum(revenue) / count(*), 2) "
    "from warehouse.v_order_category_sales group by 1, 2, 3 order by 1, 2, 3")
PAYMENT_GRID = ("select sales_date, payment_method, orders, units, revenue, discount, "
                "margin, avg_order_value from analytics.v_daily_payment_sales order by 1, 2")
PAYMENT_GRID_DEFINITION = (
    "select sales_date, payment_method, count(distinct transaction_id), sum(units), "
    "sum(revenue), sum(discount), sum(margin), "
    "round(sum(revenue) / count(distinct transaction_id), 2) "
    "from warehouse.v_order_category_sales group by 1, 2 order by 1, 2")
STORED = {
    "categories": "select sales_date, category, payment_method_code, orders, units, revenue, "
                  "discount, margin from warehouse.agg_daily_category_sales order by 1, 2, 3",
    "payments": "select sales_date, payment_method_code, orders, units, revenue, discount, "
                "margin from warehouse.agg_daily_payment_sales order by 1, 2",
}


def d(text: str) -> date:
    return date.fromisoformat(text)


def money(text: str) -> Decimal:
    return Decimal(text)


def assert_grids_are_their_definition(shop: Shop) -> None:
    """Both views equal their definition over the fact, and a recompute of every day
    changes no stored row."""
    assert shop.rows(CATEGORY_GRID) == shop.rows(CATEGORY_GRID_DEFINITION)
    assert shop.rows(PAYMENT_GRID) == shop.rows(PAYMENT_GRID_DEFINITION)
    stored = {name: shop.rows(sql) for name, sql in STORED.items()}
    shop.cur.execute("call warehouse.refresh_aggregates('2024-01-01', '2026-12-31')")
    assert {name: shop.rows(sql) for name, sql in STORED.items()} == stored


def test_an_order_counts_once_per_category_and_once_per_payment_method(shop: Shop) -> None:
    b1 = toys_and_a_bat(shop)
    # order 100: two toys and a bat, paid by card; 101: a toy by paypal, the same day
    sale(shop, b1, 100, "2025-02-01 10:00", [(1000, 10, 1, "30.00"), (1001, 11, 2, "5.00"),
                                             (1002, 13, 1, "40.00", "4.00")])
    sale(shop, b1, 101, "2025-02-01 11:00", [(1003, 12, 1, "10.00")], payment="paypal")
    shop.load(b1)
    assert shop.rows(CATEGORY_GRID) == [
        (d("2025-02-01"), "Sport", "credit_card", 1, 1, money("36.00"), money("4.00"),
         money("32.00"), money("36.00")),
        (d("2025-02-01"), "Toys", "credit_card", 1, 3, money("40.00"), money("0.00"),
         money("28.00"), money("40.00")),
        (d("2025-02-01"), "Toys", "paypal", 1, 1, money("10.00"), money("0.00"),
         money("6.00"), money("10.00")),
    ]
    assert shop.rows(PAYMENT_GRID) == [
        (d("2025-02-01"), "credit_card", 1, 4, money("76.00"), money("4.00"), money("60.00"),
         money("76.00")),
        (d("2025-02-01"), "paypal", 1, 1, money("10.00"), money("0.00"), money("6.00"),
         money("10.00")),
    ]
    assert_grids_are_their_definition(shop)


def test_status_changes_move_orders_in_and_out_by_deltas(shop: Shop) -> None:
    b1 = toys_and_a_bat(shop)
    sale(shop, b1, 100, "2025-02-01 10:00", [(1000, 10, 1, "30.00"), (1001, 13, 1, "40.00")])
    sale(shop, b1, 101, "2025-02-01 11:00", [(1002, 11, 1, "20.00")], status="pending")
    shop.load(b1)
    # 100 refunded, 101 completed: Sport's row goes, Toys' holds 101 alone
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-01 10:00", status="refunded")
    shop.transaction(b2, 101, 1, "2025-02-01 11:00", status="completed")
    shop.load(b2)
    assert shop.rows(CATEGORY_GRID) == [
        (d("2025-02-01"), "Toys", "credit_card", 1, 1, money("20.00"), money("0.00"),
         money("16.00"), money("20.00")),
    ]
    assert shop.rows(PAYMENT_GRID) == [
        (d("2025-02-01"), "credit_card", 1, 1, money("20.00"), money("0.00"), money("16.00"),
         money("20.00")),
    ]
    assert shop.value("select count(*) from warehouse.agg_delta") == 0
    assert_grids_are_their_definition(shop)


def test_a_product_moved_to_another_category_moves_its_history_and_merges_orders(
        shop: Shop) -> None:
    b1 = toys_and_a_bat(shop)
    sale(shop, b1, 100, "2025-02-01 10:00", [(1000, 10, 1, "30.00"), (1001, 13, 1, "40.00")])
    sale(shop, b1, 101, "2025-02-03 10:00", [(1002, 13, 2, "40.00")])
    shop.load(b1)
    # the Bat becomes a toy: order 100 is one Toys order (it was one of each), 101 moves
    b2 = shop.batch("2025-03-05 00:00+00")
    shop.product(b2, 13, name="Bat", category="Toys")
    shop.load(b2)
    assert shop.rows(CATEGORY_GRID) == [
        (d("2025-02-01"), "Toys", "credit_card", 1, 2, money("70.00"), money("0.00"),
         money("62.00"), money("70.00")),
        (d("2025-02-03"), "Toys", "credit_card", 1, 2, money("80.00"), money("0.00"),
         money("72.00"), money("80.00")),
    ]
    assert_grids_are_their_definition(shop)
    # and out again into a new category: the order splits again
    b3 = shop.batch("2025-03-06 00:00+00")
    shop.product(b3, 13, name="Bat", category="Cricket")
    shop.load(b3)
    assert shop.rows("select sales_date, category, orders from "
                     "analytics.v_daily_category_sales order by 1, 2") == [
        (d("2025-02-01"), "Cricket", 1), (d("2025-02-01"), "Toys", 1),
        (d("2025-02-03"), "Cricket", 1)]
    assert_grids_are_their_definition(shop)


def test_stored_rows_out_of_step_are_refused_and_a_repair_mends_them(shop: Shop) -> None:
    """Stored rows damaged by hand: a delta that would take one below zero fails the
    step, which changes nothing; refresh_aggregates recomputes the day."""
    b1 = toys_and_a_bat(shop)
    sale(shop, b1, 100, "2025-02-01 10:00", [(1000, 10, 1, "30.00"), (1001, 13, 1, "40.00")])
    shop.load(b1)
    shop.cur.execute("delete from warehouse.agg_daily_category_sales where category = 'Sport'")
    shop.cur.execute("update warehouse.agg_daily_payment_sales set orders = 7")
    # a refund would take Sport's missing row below zero: the step fails, nothing changes
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-01 10:00", status="refunded")
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    with pytest.raises(psycopg2.errors.RaiseException,
                       match=r"out of step with the fact \(agg_daily_category_sales "
                             r"2025-02-01 Sport credit_card: -1 order\(s\)"):
        shop.call("refresh_batch_aggregates", b2)  # its own transaction: rolled back
    assert shop.rows("select category, orders from warehouse.agg_daily_category_sales") == [
        ("Toys", 1)]
    assert shop.rows("select orders from warehouse.agg_daily_payment_sales") == [(7,)]
    # the repair recomputes the day, then the batch's deltas (already in it) are dropped
    shop.cur.execute("call warehouse.refresh_aggregates('2025-02-01', '2025-02-01')")
    assert shop.rows(CATEGORY_GRID) == []
    assert shop.rows(PAYMENT_GRID) == []
    shop.call("refresh_batch_aggregates", b2)
    assert_grids_are_their_definition(shop)
