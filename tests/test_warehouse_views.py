"""Aggregates, the analytics views and reconciliation (issue 6).

Small production data written directly (see tests/test_warehouse.py for the helpers), the
real procedures, exact values.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg2
import pytest

from tests import test_warehouse
from tests.test_warehouse import Shop, one_sale

shop = test_warehouse.shop  # the fixture, shared

CONTRACT_VIEWS = {
    "v_daily_sales": ["sales_date", "orders", "units", "revenue", "discount", "margin",
                      "avg_order_value"],
    "v_monthly_sales": ["month", "orders", "units", "revenue", "discount", "margin",
                        "avg_order_value", "revenue_growth_pct"],
    "v_product_performance": ["month", "product_id", "product_name", "category", "brand",
                              "orders", "units", "revenue", "margin",
                              "revenue_rank_in_category"],
    "v_customer_growth": ["month", "new_customers", "cumulative_customers",
                          "active_customers"],
    "v_payment_methods": ["month", "payment_method", "orders", "revenue", "revenue_share"],
}


def d(text: str) -> date:
    return date.fromisoformat(text)


def money(text: str) -> Decimal:
    return Decimal(text)


def sale(shop: Shop, batch: int, transaction_id: int, at: str, lines: list[tuple], *,
         customer: int = 1, status: str = "completed", payment: str = "credit_card") -> None:
    """A transaction with lines (item_id, product_id, quantity, price[, discount])."""
    shop.transaction(batch, transaction_id, customer, at, status=status, payment=payment)
    for item_id, product_id, quantity, price, *discount in lines:
        shop.item(batch, item_id, transaction_id, product_id, quantity=quantity, price=price,
                  discount=discount[0] if discount else "0")


# -- the contract's views -------------------------------------------------------------------

def test_contract_views_have_exactly_the_contract_columns(shop: Shop) -> None:
    for view, columns in CONTRACT_VIEWS.items():
        assert [r[0] for r in shop.rows(
            "select column_name from information_schema.columns "
            "where table_schema = 'analytics' and table_name = %s order by ordinal_position",
            (view,))] == columns, view
    assert shop.value("select count(*) from information_schema.views "
                      "where table_schema = 'analytics' and table_name = 'v_sales'") == 1


def test_every_view_and_column_has_a_comment(shop: Shop) -> None:
    missing = shop.rows(
        """
        select c.relname, a.attname
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where n.nspname = 'analytics' and c.relkind = 'v'
          and (obj_description(c.oid, 'pg_class') is null
               or (a.attname is not null and col_description(c.oid, a.attnum) is null))
        """
    )
    assert missing == []
    assert shop.value("select count(*) from pg_views where schemaname = 'analytics'") >= 6


def test_warehouse_reader_can_select_every_view(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.load(b1)
    views = [r[0] for r in shop.rows(
        "select viewname from pg_views where schemaname = 'analytics' order by 1")]
    shop.cur.execute("set role warehouse_reader")
    try:
        for view in views:
            shop.cur.execute(f"select count(*) from analytics.{view}")
            assert shop.cur.fetchone()[0] >= 1, view
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            shop.cur.execute("select 1 from warehouse.fact_sales")
    finally:
        shop.cur.execute("reset role")
    assert set(CONTRACT_VIEWS) | {"v_sales"} <= set(views)


def test_average_order_value_is_per_order_not_per_line(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10)
    sale(shop, b1, 100, "2025-02-10 09:00",
         [(1000, 10, 1, "10.00"), (1001, 10, 1, "20.00"), (1002, 10, 1, "30.00")])
    sale(shop, b1, 101, "2025-02-10 10:00", [(1003, 10, 1, "10.00")])
    sale(shop, b1, 102, "2025-02-10 11:00", [(1004, 10, 1, "99.00")], status="cancelled")
    shop.transaction(b1, 103, 1, "2025-02-10 12:00")  # completed, no items: not an order
    shop.load(b1)
    # 70.00 over 2 orders (4 lines): 35.00, not 17.50
    assert shop.rows("select * from analytics.v_daily_sales") == [
        (d("2025-02-10"), 2, 4, money("70.00"), money("0.00"), money("54.00"),
         money("35.00"))]
    assert shop.rows("select orders, avg_order_value from analytics.v_monthly_sales") == [
        (2, money("35.00"))]


def test_average_order_value_is_rounded_to_two_decimals(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10)
    for number, price in enumerate(("10.00", "10.00", "10.01")):
        sale(shop, b1, 100 + number, "2025-02-10 09:00", [(1000 + number, 10, 1, price)])
    shop.load(b1)
    assert shop.value("select avg_order_value from analytics.v_daily_sales") == money("10.00")
    b2 = shop.batch("2025-03-02 00:00+00")
    sale(shop, b2, 103, "2025-02-10 09:00", [(1003, 10, 1, "10.01")])
    shop.load(b2)
    assert shop.value("select avg_order_value from analytics.v_daily_sales") == money("10.01")


def test_months_without_orders_are_zeros_in_monthly_sales_and_growth_follows(
        shop: Shop) -> None:
    b1 = shop.batch("2025-09-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10, cost="1.00")
    sale(shop, b1, 100, "2025-01-31 23:59:59", [(1000, 10, 2, "50.00", "5.00")])  # 95.00
    sale(shop, b1, 101, "2025-02-15 00:00", [(1001, 10, 1, "10.00")], status="pending")
    sale(shop, b1, 102, "2025-04-01 00:00", [(1002, 10, 1, "20.00")])
    sale(shop, b1, 103, "2025-05-10 00:00", [(1003, 10, 1, "30.00")])
    sale(shop, b1, 104, "2025-06-10 00:00", [(1004, 10, 1, "25.50")])
    shop.load(b1)
    assert shop.rows("select * from analytics.v_monthly_sales order by month") == [
        (d("2025-01-01"), 1, 2, money("95.00"), money("5.00"), money("93.00"),
         money("95.00"), None),
        (d("2025-02-01"), 0, 0, money("0.00"), money("0.00"), money("0.00"), None,
         money("-100.00")),
        (d("2025-03-01"), 0, 0, money("0.00"), money("0.00"), money("0.00"), None, None),
        (d("2025-04-01"), 1, 1, money("20.00"), money("0.00"), money("19.00"),
         money("20.00"), None),
        (d("2025-05-01"), 1, 1, money("30.00"), money("0.00"), money("29.00"),
         money("30.00"), money("50.00")),
        (d("2025-06-01"), 1, 1, money("25.50"), money("0.00"), money("24.50"),
         money("25.50"), money("-15.00")),
    ]


def test_revenue_growth_pct_is_rounded_to_two_decimals(shop: Shop) -> None:
    b1 = shop.batch("2025-09-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10)
    sale(shop, b1, 100, "2025-01-10 00:00", [(1000, 10, 1, "30.00")])
    sale(shop, b1, 101, "2025-02-10 00:00", [(1001, 10, 1, "40.00")])
    shop.load(b1)
    assert shop.rows("select revenue_growth_pct from analytics.v_monthly_sales "
                     "order by month") == [(None,), (money("33.33"),)]


def toys_and_a_bat(shop: Shop) -> int:
    """A batch with customer 1, three toys (Ball 10, Kite 11, Yoyo 12) and a Bat (13, Sport)."""
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10, name="Ball", category="Toys")
    shop.product(b1, 11, name="Kite", category="Toys")
    shop.product(b1, 12, name="Yoyo", category="Toys")
    shop.product(b1, 13, name="Bat", category="Sport")
    return b1


def test_product_ranks_use_rank_within_month_and_current_category(shop: Shop) -> None:
    b1 = toys_and_a_bat(shop)
    sale(shop, b1, 100, "2025-02-01 10:00", [(1000, 10, 1, "30.00"), (1001, 11, 1, "30.00")])
    sale(shop, b1, 101, "2025-02-02 10:00", [(1002, 12, 1, "10.00"), (1003, 13, 1, "5.00")])
    sale(shop, b1, 102, "2025-03-02 10:00", [(1004, 12, 1, "10.00")])
    shop.load(b1)
    assert shop.rows(
        "select month, product_id, product_name, category, orders, units, revenue, margin, "
        "revenue_rank_in_category from analytics.v_product_performance "
        "order by month, category, revenue_rank_in_category, product_id") == [
        (d("2025-02-01"), 13, "Bat", "Sport", 1, 1, money("5.00"), money("1.00"), 1),
        (d("2025-02-01"), 10, "Ball", "Toys", 1, 1, money("30.00"), money("26.00"), 1),
        (d("2025-02-01"), 11, "Kite", "Toys", 1, 1, money("30.00"), money("26.00"), 1),
        (d("2025-02-01"), 12, "Yoyo", "Toys", 1, 1, money("10.00"), money("6.00"), 3),
        (d("2025-03-01"), 12, "Yoyo", "Toys", 1, 1, money("10.00"), money("6.00"), 1),
    ]
    # the Yoyo moves to Sport and is renamed: every month shows the current version
    b2 = shop.batch("2025-03-05 00:00+00")
    shop.product(b2, 12, name="Pro yoyo", category="Sport")
    shop.load(b2)
    assert shop.rows(
        "select month, product_name, category, revenue_rank_in_category "
        "from analytics.v_product_performance where product_id in (12, 13) "
        "order by month, revenue_rank_in_category") == [
        (d("2025-02-01"), "Pro yoyo", "Sport", 1),
        (d("2025-02-01"), "Bat", "Sport", 2),
        (d("2025-03-01"), "Pro yoyo", "Sport", 1),
    ]


BEST_SELLERS = ("select month, category, product_id, product_name, brand, orders, units, "
                "revenue, margin from analytics.{view} {where} order by 1, 2, 3")


def test_category_best_sellers_are_the_products_ranked_first_ties_included(
        shop: Shop) -> None:
    b1 = toys_and_a_bat(shop)
    shop.product(b1, 14, name="Net", category="Sport")
    # February: Ball and Kite tie at the top of Toys; the Net's 30.00 equals the Toys' top
    # but not the Sport's (the Bat's 40.00); March: the Yoyo alone
    sale(shop, b1, 100, "2025-02-01 10:00", [(1000, 10, 1, "30.00"), (1001, 11, 1, "30.00")])
    sale(shop, b1, 101, "2025-02-02 10:00", [(1002, 12, 1, "10.00"), (1003, 13, 1, "40.00"),
                                             (1004, 14, 1, "30.00")])
    sale(shop, b1, 102, "2025-03-02 10:00", [(1005, 12, 2, "10.00")])
    shop.load(b1)
    best = [
        (d("2025-02-01"), "Sport", 13, "Bat", "Acme", 1, 1, money("40.00"), money("36.00")),
        (d("2025-02-01"), "Toys", 10, "Ball", "Acme", 1, 1, money("30.00"), money("26.00")),
        (d("2025-02-01"), "Toys", 11, "Kite", "Acme", 1, 1, money("30.00"), money("26.00")),
        (d("2025-03-01"), "Toys", 12, "Yoyo", "Acme", 1, 2, money("20.00"), money("12.00")),
    ]
    assert shop.rows(BEST_SELLERS.format(view="v_category_best_sellers", where="")) == best
    assert shop.rows(BEST_SELLERS.format(
        view="v_product_performance", where="where revenue_rank_in_category = 1")) == best
    assert shop.rows(BEST_SELLERS.format(
        view="v_category_best_sellers",
        where="where month = date '2025-02-01' and category = 'Toys'")) == best[1:3]
    # the Yoyo moves to Sport: below the Bat in February, Sport's best seller in March
    b2 = shop.batch("2025-03-05 00:00+00")
    shop.product(b2, 12, name="Yoyo", category="Sport")
    shop.load(b2)
    assert shop.rows("select month, category, product_id from "
                     "analytics.v_category_best_sellers order by 1, 2, 3") == [
        (d("2025-02-01"), "Sport", 13), (d("2025-02-01"), "Toys", 10),
        (d("2025-02-01"), "Toys", 11), (d("2025-03-01"), "Sport", 12)]


def test_stored_best_sellers_follow_refunds_ties_and_repairs(shop: Shop) -> None:
    b1 = toys_and_a_bat(shop)
    sale(shop, b1, 100, "2025-02-01 10:00", [(1000, 10, 1, "30.00")])
    sale(shop, b1, 101, "2025-02-02 10:00", [(1001, 11, 1, "20.00"), (1002, 13, 1, "5.00")])
    sale(shop, b1, 102, "2025-02-03 10:00", [(1003, 12, 1, "20.00")])
    shop.load(b1)
    stored = "select month, product_id from warehouse.agg_category_best_sellers order by 1, 2"
    assert shop.rows(stored) == [(d("2025-02-01"), 10), (d("2025-02-01"), 13)]
    # the Ball's order is refunded (a delta): Kite and Yoyo tie at the top of Toys
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-01 10:00", status="refunded")
    shop.load(b2)
    assert shop.rows(stored) == [(d("2025-02-01"), 11), (d("2025-02-01"), 12),
                                 (d("2025-02-01"), 13)]
    # a new order of the Kite breaks the tie
    b3 = shop.batch("2025-03-03 00:00+00")
    sale(shop, b3, 103, "2025-02-04 10:00", [(1004, 11, 1, "1.00")])
    shop.load(b3)
    ranked_first = BEST_SELLERS.format(view="v_product_performance",
                                       where="where revenue_rank_in_category = 1")
    assert shop.rows(BEST_SELLERS.format(view="v_category_best_sellers", where="")) == (
        shop.rows(ranked_first)) == [
        (d("2025-02-01"), "Sport", 13, "Bat", "Acme", 1, 1, money("5.00"), money("1.00")),
        (d("2025-02-01"), "Toys", 11, "Kite", "Acme", 2, 2, money("21.00"), money("13.00")),
    ]
    # keys damaged by hand are mended by a repair of the month
    shop.cur.execute("delete from warehouse.agg_category_best_sellers")
    shop.cur.execute("insert into warehouse.agg_category_best_sellers values "
                     "(date '2025-02-01', 12)")
    shop.cur.execute("call warehouse.refresh_aggregates('2025-02-01', '2025-02-28')")
    assert shop.rows(stored) == [(d("2025-02-01"), 11), (d("2025-02-01"), 13)]


def test_product_orders_count_transactions_not_lines(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10)
    sale(shop, b1, 100, "2025-02-01 10:00", [(1000, 10, 1, "10.00"), (1001, 10, 2, "10.00")])
    sale(shop, b1, 101, "2025-02-03 10:00", [(1002, 10, 1, "10.00")])
    shop.load(b1)
    assert shop.rows("select orders, units, revenue from analytics.v_product_performance"
                     ) == [(2, 4, money("40.00"))]


def test_customer_growth_counts_new_cumulative_and_active_customers(shop: Shop) -> None:
    b1 = shop.batch("2025-09-01 00:00+00")
    shop.customer(b1, 1, signup="2024-11-20")
    shop.customer(b1, 2, signup="2025-01-05")
    shop.customer(b1, 3, signup="2025-01-31")
    shop.customer(b1, 4, signup="2025-04-02")
    shop.product(b1, 10)
    sale(shop, b1, 100, "2025-01-10 10:00", [(1000, 10, 1, "10.00")], customer=1)
    sale(shop, b1, 101, "2025-01-11 10:00", [(1001, 10, 1, "10.00")], customer=1)
    sale(shop, b1, 102, "2025-01-12 10:00", [(1002, 10, 1, "10.00")], customer=2)
    sale(shop, b1, 103, "2025-01-13 10:00", [(1003, 10, 1, "10.00")], customer=3,
         status="pending")
    shop.transaction(b1, 104, 3, "2025-02-13 10:00")  # completed without items
    sale(shop, b1, 105, "2025-06-01 10:00", [(1005, 10, 1, "10.00")], customer=4)
    shop.load(b1)
    assert shop.rows("select * from analytics.v_customer_growth order by month") == [
        (d("2024-11-01"), 1, 1, 0),
        (d("2024-12-01"), 0, 1, 0),
        (d("2025-01-01"), 2, 3, 2),
        (d("2025-02-01"), 0, 3, 0),
        (d("2025-03-01"), 0, 3, 0),
        (d("2025-04-01"), 1, 4, 0),
        (d("2025-05-01"), 0, 4, 0),
        (d("2025-06-01"), 0, 4, 1),
    ]


def test_customer_version_change_does_not_double_count_an_active_customer(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1, at="2025-02-10 12:00")
    shop.load(b1)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.customer(b2, 1, city="Munich", updated_at="2025-02-15 00:00+00")
    sale(shop, b2, 101, "2025-02-20 12:00", [(1001, 10, 1, "10.00")])
    shop.load(b2)
    assert shop.value("select count(distinct customer_key) from warehouse.fact_sales") == 2
    assert shop.rows("select month, active_customers from analytics.v_customer_growth "
                     "where month = '2025-02-01'") == [(d("2025-02-01"), 1)]


def test_payment_method_shares_are_unrounded_and_null_when_month_revenue_is_zero(
        shop: Shop) -> None:
    b1 = shop.batch("2025-09-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10)
    sale(shop, b1, 100, "2025-01-10 10:00", [(1000, 10, 1, "10.00")], payment="paypal")
    sale(shop, b1, 101, "2025-01-11 10:00", [(1001, 10, 2, "10.00")], payment="gift_card")
    sale(shop, b1, 102, "2025-02-11 10:00", [(1002, 10, 1, "10.00", "10.00")],
         payment="paypal")  # an order whose revenue is 0
    shop.load(b1)
    rows = shop.rows("select * from analytics.v_payment_methods order by month, 2")
    assert [r[:4] for r in rows] == [
        (d("2025-01-01"), "gift_card", 1, money("20.00")),
        (d("2025-01-01"), "paypal", 1, money("10.00")),
        (d("2025-02-01"), "paypal", 1, money("0.00")),
    ]
    assert abs(rows[0][4] - Decimal(20) / Decimal(30)) < Decimal("1e-18")
    assert str(rows[1][4]).startswith("0.3333333333333333")  # not rounded
    assert rows[2][4] is None


# -- refreshes ------------------------------------------------------------------------------

def test_refresh_aggregates_backfills_a_range_to_the_same_rows(shop: Shop) -> None:
    b1 = shop.batch("2025-09-01 00:00+00")
    shop.customer(b1, 1, signup="2025-01-02")
    shop.customer(b1, 2, signup="2025-03-02")
    shop.product(b1, 10)
    sale(shop, b1, 100, "2025-01-10 10:00", [(1000, 10, 1, "10.00")])
    sale(shop, b1, 101, "2025-02-28 23:00", [(1001, 10, 3, "10.00")], customer=2,
         payment="paypal")
    sale(shop, b1, 102, "2025-03-01 01:00", [(1002, 10, 2, "10.00")])
    shop.load(b1)
    tables = ("agg_daily_sales", "agg_product_monthly", "agg_payment_method_monthly",
              "agg_customer_monthly")
    query = {t: f"select * from warehouse.{t} order by 1, 2" for t in tables}
    before = {t: [r[:-1] for r in shop.rows(q)] for t, q in query.items()}  # not refreshed_at
    shop.cur.execute("truncate " + ", ".join(f"warehouse.{t}" for t in tables))
    shop.cur.execute("call warehouse.refresh_aggregates('2025-02-15', '2025-03-01')")
    # the days of the range, and whole months overlapping it (February, March)
    assert [r[0] for r in shop.rows(query["agg_daily_sales"])] == [
        d("2025-02-28"), d("2025-03-01")]
    assert [r[0] for r in shop.rows(query["agg_customer_monthly"])] == [
        d("2025-02-01"), d("2025-03-01")]
    shop.cur.execute("call warehouse.refresh_aggregates('2025-01-01', '2025-01-31')")
    assert {t: [r[:-1] for r in shop.rows(q)] for t, q in query.items()} == before
    with pytest.raises(psycopg2.errors.RaiseException, match="need p_from <= p_to"):
        shop.cur.execute("call warehouse.refresh_aggregates('2025-02-01', '2025-01-01')")


def test_refresh_batch_aggregates_refreshes_only_the_queued_days_then_clears_them(
        shop: Shop) -> None:
    b1 = shop.batch("2025-09-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10)
    sale(shop, b1, 100, "2025-01-10 10:00", [(1000, 10, 1, "10.00")])
    sale(shop, b1, 101, "2025-05-10 10:00", [(1001, 10, 1, "10.00")])
    shop.load(b1)
    # a marker on a day the next batch does not touch must survive its refresh
    shop.cur.execute("update warehouse.agg_daily_sales set units = 77 "
                     "where sales_date = '2025-01-10'")
    b2 = shop.batch("2025-09-02 00:00+00")
    sale(shop, b2, 101, "2025-05-11 10:00", [(1001, 10, 1, "10.00")])
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    assert shop.rows("select grain, day, refreshed_at is null from warehouse.agg_refresh_queue "
                     "where batch_id = %s order by 2", (b2,)) == [
        ("day", d("2025-05-10"), True), ("day", d("2025-05-11"), True)]
    shop.call("refresh_batch_aggregates", b2)
    assert shop.rows("select sales_date, units from warehouse.agg_daily_sales order by 1") == [
        (d("2025-01-10"), 77), (d("2025-05-11"), 1)]
    assert shop.value("select count(*) from warehouse.agg_refresh_queue "
                      "where batch_id = %s and refreshed_at is null", (b2,)) == 0


def test_signup_months_of_new_and_changed_customers_are_refreshed(shop: Shop) -> None:
    b1 = shop.batch("2025-09-01 00:00+00")
    shop.customer(b1, 1, signup="2025-01-10")
    shop.load(b1)
    b2 = shop.batch("2025-09-02 00:00+00")
    shop.customer(b2, 1, signup="2025-03-10")  # corrected signup date
    shop.customer(b2, 2, signup="2025-04-10")
    shop.load(b2)
    assert shop.rows("select day from warehouse.agg_refresh_queue "
                     "where batch_id = %s and grain = 'signup_month' order by 1", (b2,)) == [
        (d("2025-01-01"),), (d("2025-03-01"),), (d("2025-04-01"),)]
    assert shop.rows("select month, new_customers, cumulative_customers "
                     "from analytics.v_customer_growth order by 1") == [
        (d("2025-03-01"), 1, 1), (d("2025-04-01"), 1, 2)]


# -- reconciliation -------------------------------------------------------------------------

def test_check_reconciliation_raises_naming_the_days_and_figures_that_differ(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1, at="2025-02-10 12:00")
    shop.load(b1)
    assert shop.rows("select * from warehouse.v_reconciliation") == []
    shop.cur.execute("update warehouse.fact_sales set line_amount = 19.00 where item_id = 1000")
    with pytest.raises(psycopg2.errors.RaiseException) as failure:
        shop.call("check_reconciliation", b1)
    message = str(failure.value)
    assert "check_reconciliation batch 1: 1 of 1 day(s) differ" in message
    assert "2025-02-10: revenue production 20.00 fact 19.00 aggregate 20.00" in message
    assert shop.rows("select sales_date, production_revenue, fact_revenue, aggregate_revenue "
                     "from warehouse.v_reconciliation") == [
        (d("2025-02-10"), money("20.00"), money("19.00"), money("20.00"))]


def test_reconciliation_catches_a_stale_aggregate(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1, at="2025-02-10 12:00")
    shop.call("load_dimensions", b1)
    shop.call("load_fact_sales", b1)
    with pytest.raises(psycopg2.errors.RaiseException, match="aggregate 0, units"):
        shop.call("check_reconciliation", b1)  # aggregates not refreshed yet
    shop.call("refresh_batch_aggregates", b1)
    shop.call("check_reconciliation", b1)


def test_reconciliation_of_a_batch_reads_only_its_days(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1, at="2025-02-10 12:00")
    shop.load(b1)
    shop.cur.execute("update warehouse.agg_daily_sales set revenue = 1")  # an old day broken
    b2 = shop.batch("2025-03-02 00:00+00")
    sale(shop, b2, 101, "2025-02-20 12:00", [(1001, 10, 1, "10.00")])
    shop.load(b2)  # its own day balances: no exception
    assert shop.rows("select step, rows from etl.batch_step where batch_id = %s "
                     "and step = 'check_reconciliation'", (b2,)) == [("check_reconciliation", 1)]
    assert [r[0] for r in shop.rows("select sales_date from warehouse.v_reconciliation")] == [
        d("2025-02-10")]
