"""Aggregates kept by deltas (revision 0006, procedures/30_warehouse/agg_delta.sql).

load_fact_sales records what each order it changes counted before (-1) and after (+1);
refresh_batch_aggregates adds that up. Each test changes orders in a way a line-level delta
would get wrong (an order counted twice, a customer active twice or never inactive) and
checks the figures and that a full recompute of the aggregates changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import date
from decimal import Decimal

import psycopg2
import pytest

from tests import test_warehouse
from tests.test_warehouse import Shop, daily
from tests.test_warehouse_views import BEST_SELLERS  # the view and its definition

shop = test_warehouse.shop  # the fixture, shared

AGGREGATE_QUERIES = {
    "daily": "select sales_date, orders, units, revenue, discount, margin "
             "from warehouse.agg_daily_sales order by 1",
    "products": "select month, product_id, orders, units, revenue, margin "
                "from warehouse.agg_product_monthly order by 1, 2",
    "payments": "select month, payment_method_code, orders, revenue "
                "from warehouse.agg_payment_method_monthly order by 1, 2",
    "customers": "select month, new_customers, active_customers "
                 "from warehouse.agg_customer_monthly order by 1",
    "activity": "select month, customer_id, orders from warehouse.agg_customer_activity "
                "order by 1, 2",
}
BEST_SELLER_KEYS = ("select month, product_id from warehouse.agg_category_best_sellers "
                    "order by 1, 2")


def aggregates(shop: Shop) -> dict[str, list[tuple]]:
    return {name: shop.rows(query) for name, query in AGGREGATE_QUERIES.items()}


# analytics.v_customer_activity (active customers of any whole months) and its definition
# over the fact: distinct completed orders per month and customer
CUSTOMER_ACTIVITY = "select month, customer_id, orders from analytics.v_customer_activity"
CUSTOMER_ACTIVITY_FROM_FACT = (
    "select sales_month, customer_id, count(distinct transaction_id) "
    "from warehouse.v_order_category_sales where customer_id is not null group by 1, 2")


def assert_equal_to_a_recompute(shop: Shop) -> None:
    """A full recompute of every aggregate over 2024-2026 finds nothing to change, and
    analytics.v_customer_activity and analytics.v_category_best_sellers equal their
    definitions."""
    before = aggregates(shop)
    best_sellers = shop.rows(BEST_SELLER_KEYS)
    assert_best_sellers_are_the_products_ranked_first(shop)
    shop.cur.execute("call warehouse.refresh_aggregates('2024-01-01', '2026-12-31')")
    assert aggregates(shop) == before
    assert shop.rows(BEST_SELLER_KEYS) == best_sellers
    assert sorted(shop.rows(CUSTOMER_ACTIVITY)) == sorted(
        shop.rows(CUSTOMER_ACTIVITY_FROM_FACT))


def assert_best_sellers_are_the_products_ranked_first(shop: Shop) -> None:
    assert shop.rows(BEST_SELLERS.format(view="v_category_best_sellers", where="")) == (
        shop.rows(BEST_SELLERS.format(view="v_product_performance",
                                      where="where revenue_rank_in_category = 1")))


def two_products(shop: Shop, batch: int) -> None:
    shop.customer(batch, 1)
    shop.customer(batch, 2, signup="2025-01-20")
    shop.product(batch, 10)  # price 10, cost 4
    shop.product(batch, 11, name="Kite", price="5.00", cost="1.00")


def pending_and_completed_orders(shop: Shop, batch: int) -> None:
    """Customers and products of two_products; order 100 pending on 2025-02-10 (item 1000:
    2 units of product 10, item 1001: 1 of product 11 at 5.00), 101 completed on 2025-02-11
    (item 1002: 1 of product 10), 102 completed on 2025-02-12 (item 1003: 1 of product 11)."""
    two_products(shop, batch)
    shop.transaction(batch, 100, 1, "2025-02-10 12:00", status="pending")
    shop.item(batch, 1000, 100, 10, quantity=2)
    shop.item(batch, 1001, 100, 11, quantity=1, price="5.00")
    shop.transaction(batch, 101, 2, "2025-02-11 12:00")
    shop.item(batch, 1002, 101, 10, quantity=1)
    shop.transaction(batch, 102, 1, "2025-02-12 12:00")
    shop.item(batch, 1003, 102, 11, quantity=1, price="5.00")


def first_order(shop: Shop) -> int:
    """Batch 1, loaded: customers 1 and 2, products 10 and 11, order 100 of customer 1 on
    2025-02-10 with item 1000 (2 units of product 10, revenue 20.00, margin 12.00)."""
    b1 = shop.batch("2025-03-01 00:00+00")
    two_products(shop, b1)
    shop.transaction(b1, 100, 1, "2025-02-10 12:00")
    shop.item(b1, 1000, 100, 10, quantity=2)
    shop.load(b1)
    return b1


def test_a_line_added_to_an_existing_order_counts_the_order_once(shop: Shop) -> None:
    first_order(shop)

    b2 = shop.batch("2025-03-02 00:00+00")
    shop.item(b2, 1001, 100, 10, quantity=1)
    shop.item(b2, 1002, 100, 11, quantity=1, price="5.00")
    shop.load(b2)

    feb = date(2025, 2, 1)
    assert aggregates(shop) == {
        "daily": [(date(2025, 2, 10), 1, 4, Decimal("35.00"), Decimal("0.00"),
                   Decimal("22.00"))],
        "products": [(feb, 10, 1, 3, Decimal("30.00"), Decimal("18.00")),
                     (feb, 11, 1, 1, Decimal("5.00"), Decimal("4.00"))],
        "payments": [(feb, "credit_card", 1, Decimal("35.00"))],
        "customers": [(date(2025, 1, 1), 2, 0), (feb, 0, 1)],
        "activity": [(feb, 1, 1)],
    }
    assert shop.value("select count(*) from warehouse.agg_delta") == 0
    assert_equal_to_a_recompute(shop)


def test_an_item_moved_to_another_order_moves_its_figures_and_both_orders_stay(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    two_products(shop, b1)
    shop.transaction(b1, 100, 1, "2025-02-10 12:00")
    shop.item(b1, 1000, 100, 10, quantity=2)
    shop.item(b1, 1001, 100, 11, quantity=1, price="5.00")
    shop.transaction(b1, 101, 2, "2025-03-05 09:00", payment="paypal")
    shop.item(b1, 1002, 101, 10, quantity=1)
    shop.load(b1)

    b2 = shop.batch("2025-03-10 00:00+00")
    shop.item(b2, 1001, 101, 11, quantity=1, price="5.00")  # now part of order 101
    shop.load(b2)

    feb, mar = date(2025, 2, 1), date(2025, 3, 1)
    assert aggregates(shop) == {
        "daily": [(date(2025, 2, 10), 1, 2, Decimal("20.00"), Decimal("0.00"),
                   Decimal("12.00")),
                  (date(2025, 3, 5), 1, 2, Decimal("15.00"), Decimal("0.00"),
                   Decimal("10.00"))],
        "products": [(feb, 10, 1, 2, Decimal("20.00"), Decimal("12.00")),
                     (mar, 10, 1, 1, Decimal("10.00"), Decimal("6.00")),
                     (mar, 11, 1, 1, Decimal("5.00"), Decimal("4.00"))],
        "payments": [(feb, "credit_card", 1, Decimal("20.00")),
                     (mar, "paypal", 1, Decimal("15.00"))],
        "customers": [(date(2025, 1, 1), 2, 0), (feb, 0, 1), (mar, 0, 1)],
        "activity": [(feb, 1, 1), (mar, 2, 1)],
    }
    assert_equal_to_a_recompute(shop)


def test_a_customer_stays_active_until_their_last_completed_order_of_the_month_goes(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    two_products(shop, b1)
    shop.transaction(b1, 100, 1, "2025-02-10 12:00")
    shop.item(b1, 1000, 100, 10)
    shop.transaction(b1, 101, 1, "2025-02-20 12:00")
    shop.item(b1, 1001, 101, 10)
    shop.load(b1)
    feb = date(2025, 2, 1)
    assert shop.rows("select month, customer_id, orders "
                     "from warehouse.agg_customer_activity") == [(feb, 1, 2)]

    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-10 12:00", status="refunded")
    shop.load(b2)
    assert aggregates(shop)["customers"] == [(date(2025, 1, 1), 2, 0), (feb, 0, 1)]
    assert aggregates(shop)["activity"] == [(feb, 1, 1)]
    assert shop.rows("select month, orders from warehouse.agg_product_monthly") == [(feb, 1)]

    b3 = shop.batch("2025-03-03 00:00+00")
    shop.transaction(b3, 101, 1, "2025-02-20 12:00", status="cancelled")
    shop.load(b3)
    assert aggregates(shop) == {
        "daily": [], "products": [], "payments": [],
        "customers": [(date(2025, 1, 1), 2, 0)],  # February has nothing left to count
        "activity": [],
    }
    assert_equal_to_a_recompute(shop)


def test_an_order_moved_to_another_customer_and_month_moves_the_activity(shop: Shop) -> None:
    b1 = shop.batch("2025-04-01 00:00+00")
    two_products(shop, b1)
    shop.transaction(b1, 100, 1, "2025-02-10 12:00")
    shop.item(b1, 1000, 100, 10)
    shop.load(b1)
    b2 = shop.batch("2025-04-02 00:00+00")
    shop.transaction(b2, 100, 2, "2025-03-10 12:00", payment="paypal")
    shop.load(b2)
    mar = date(2025, 3, 1)
    assert aggregates(shop)["activity"] == [(mar, 2, 1)]
    assert aggregates(shop)["customers"] == [(date(2025, 1, 1), 2, 0), (mar, 0, 1)]
    assert aggregates(shop)["payments"] == [(mar, "paypal", 1, Decimal("10.00"))]
    assert_equal_to_a_recompute(shop)


def test_active_customers_of_a_quarter_count_a_customer_once_over_its_months(
        shop: Shop) -> None:
    first_order(shop)  # customer 1 in February
    b2 = shop.batch("2025-04-01 00:00+00")
    shop.transaction(b2, 101, 1, "2025-03-05 09:00")
    shop.item(b2, 1001, 101, 11)
    shop.transaction(b2, 102, 2, "2025-03-06 09:00")
    shop.item(b2, 1002, 102, 10)
    shop.transaction(b2, 103, 2, "2025-03-07 09:00", status="pending")
    shop.item(b2, 1003, 103, 10)
    shop.load(b2)

    assert shop.rows(CUSTOMER_ACTIVITY + " order by 1, 2") == [
        (date(2025, 2, 1), 1, 1), (date(2025, 3, 1), 1, 1), (date(2025, 3, 1), 2, 1)]
    # two customers in the quarter, where the months' active customers add up to three
    assert shop.rows("select count(distinct customer_id) from analytics.v_customer_activity "
                     "where month between date '2025-01-01' and date '2025-03-01'") == [(2,)]
    assert shop.rows("select sum(active_customers) from analytics.v_customer_growth "
                     "where month between date '2025-01-01' and date '2025-03-01'") == [(3,)]
    assert_equal_to_a_recompute(shop)


def test_deltas_of_two_fact_loads_applied_together_equal_one_refresh_each(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    two_products(shop, b1)
    shop.transaction(b1, 100, 1, "2025-02-10 12:00", status="pending")
    shop.item(b1, 1000, 100, 10, quantity=3)
    shop.load(b1)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-10 12:00")  # completed
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    b3 = shop.batch("2025-03-03 00:00+00")
    shop.item(b3, 1000, 100, 10, quantity=1)
    shop.call("load_dimensions", b3)
    shop.call("load_fact_sales", b3)
    # b2: the pending order had no completed line before; b3: 3 units before, 1 after
    assert shop.rows("select batch_id, sign, units from warehouse.agg_delta "
                     "order by batch_id, sign") == [(b2, 1, 3), (b3, -1, 3), (b3, 1, 1)]

    shop.call("refresh_batch_aggregates", b3)  # applies b2's deltas too
    assert shop.value("select count(*) from warehouse.agg_delta") == 0
    # emptied by TRUNCATE (revision 0020): no page of dead rows left for an autovacuum that
    # the next batch's apply would wait for
    assert shop.value("select pg_relation_size('warehouse.agg_delta')") == 0
    shop.call("refresh_batch_aggregates", b2)  # nothing left
    assert daily(shop) == {date(2025, 2, 10): (1, 1, Decimal("10.00"), Decimal("0.00"),
                                              Decimal("6.00"))}
    shop.call("check_reconciliation", b2)
    shop.call("check_reconciliation", b3)
    assert_equal_to_a_recompute(shop)


def test_a_recompute_applies_pending_deltas_first_so_nothing_counts_twice(
        shop: Shop) -> None:
    first_order(shop)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 101, 2, "2025-02-10 15:00")
    shop.item(b2, 1001, 101, 10, quantity=1)
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    shop.cur.execute("call warehouse.refresh_aggregates('2025-02-01', '2025-02-28')")
    assert shop.value("select count(*) from warehouse.agg_delta") == 0
    shop.call("refresh_batch_aggregates", b2)
    assert daily(shop) == {date(2025, 2, 10): (2, 3, Decimal("30.00"), Decimal("0.00"),
                                              Decimal("18.00"))}
    assert aggregates(shop)["customers"] == [(date(2025, 1, 1), 2, 0),
                                             (date(2025, 2, 1), 0, 2)]


def test_aggregates_out_of_step_with_the_fact_are_refused_and_left_as_they_were(
        shop: Shop) -> None:
    first_order(shop)
    shop.cur.execute("delete from warehouse.agg_daily_sales")  # damage
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-10 12:00", status="refunded")
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    before = aggregates(shop)

    with pytest.raises(psycopg2.errors.RaiseException,
                       match=r"out of step with the fact \(agg_daily_sales 2025-02-10: "
                             r"-1 order\(s\), revenue -20.00\).*refresh_aggregates"):
        shop.call("refresh_batch_aggregates", b2)  # its own transaction: rolled back
    assert aggregates(shop) == before
    assert shop.value("select count(*) from warehouse.agg_delta") == 1

    # the repair: a recompute (which applies the pending delta first, then overwrites)
    shop.cur.execute("call warehouse.refresh_aggregates('2025-02-01', '2025-02-28')")
    assert aggregates(shop) == {"daily": [], "products": [], "payments": [],
                                "customers": [(date(2025, 1, 1), 2, 0)], "activity": []}
    shop.call("refresh_batch_aggregates", b2)
    shop.call("check_reconciliation", b2)


def test_an_order_changed_by_two_statements_of_a_load_counts_from_first_to_last_state(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    two_products(shop, b1)
    shop.transaction(b1, 100, 1, "2025-02-10 12:00")
    shop.item(b1, 1000, 100, 10, quantity=2)
    shop.item(b1, 1001, 100, 11, quantity=1, price="5.00")
    shop.load(b1)
    # one batch re-points the order's lines to new customer and product versions (back-dated)
    # and changes one of its lines: two statements change the order, each records it before
    # and after, and the middle state cancels out
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.customer(b2, 1, city="Paris", updated_at="2025-02-01 00:00+00")
    shop.product(b2, 10, cost="5.00", updated_at="2025-02-01 00:00+00")
    shop.item(b2, 1001, 100, 11, quantity=2, price="5.00")
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    assert shop.rows("select count(distinct ad.change_id), count(*) "
                     "from warehouse.agg_delta ad") == [(2, 8)]
    assert shop.rows("select p.product_id, sum(ad.sign * ad.units), "
                     "sum(ad.sign * ad.revenue), sum(ad.sign * ad.margin) "
                     "from warehouse.agg_delta ad "
                     "join warehouse.dim_product p on p.product_key = ad.product_key "
                     "group by 1 order by 1") == [
        (10, 0, Decimal("0.00"), Decimal("-2.00")),  # cost 4.00 -> 5.00 on 2 units
        (11, 1, Decimal("5.00"), Decimal("4.00")),  # one unit more
    ]
    shop.call("load_fact_sales", b2)  # again: nothing changes, nothing recorded
    assert shop.value("select count(*) from warehouse.agg_delta") == 8
    shop.call("refresh_batch_aggregates", b2)
    assert daily(shop) == {date(2025, 2, 10): (1, 4, Decimal("30.00"), Decimal("0.00"),
                                              Decimal("18.00"))}
    assert_equal_to_a_recompute(shop)


def test_a_fact_rebuilt_from_empty_recomputes_the_aggregates_instead_of_adding_to_them(
        shop: Shop) -> None:
    b1 = first_order(shop)
    b2 = shop.batch("2025-04-01 00:00+00")
    shop.transaction(b2, 101, 2, "2025-03-20 12:00")
    shop.item(b2, 1001, 101, 11, quantity=1, price="5.00")
    shop.load(b2)
    loaded = aggregates(shop)

    # the rebuild of docs/operations.md: empty the fact, load every batch again in order
    shop.cur.execute("truncate warehouse.fact_sales")
    for batch in (b1, b2):
        shop.call("load_fact_sales", batch)
        shop.call("refresh_batch_aggregates", batch)
    assert aggregates(shop) == loaded
    assert shop.value("select count(*) from warehouse.agg_delta") == 0
    # batch 1's load recomputed every day of the aggregates' months (February, and March of
    # batch 2's order), not only its own
    assert shop.rows("select min(day), max(day), bool_or(by_delta) "
                     "from warehouse.agg_refresh_queue where batch_id = %s and grain = 'day'",
                     (b1,)) == [(date(2025, 2, 1), date(2025, 3, 31), False)]
    shop.call("check_reconciliation", b2)


def test_a_batch_changes_only_the_aggregate_rows_of_the_orders_it_changed(shop: Shop) -> None:
    b1 = first_order(shop)
    shop.transaction(b1, 101, 2, "2025-02-11 12:00")
    shop.item(b1, 1001, 101, 11, quantity=1, price="5.00")
    shop.load(b1)
    # markers in the rows of order 101 (product 11, 2025-02-11): a recompute of February
    # would overwrite them, the deltas of a change to order 100 must not touch them
    shop.cur.execute("update warehouse.agg_product_monthly set units = 77 where product_id = 11")
    shop.cur.execute("update warehouse.agg_daily_sales set units = 77 "
                     "where sales_date = '2025-02-11'")
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-10 12:00", status="refunded")
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    shop.call("refresh_batch_aggregates", b2)
    feb = date(2025, 2, 1)
    assert aggregates(shop)["products"] == [(feb, 11, 1, 77, Decimal("5.00"), Decimal("4.00"))]
    assert aggregates(shop)["daily"] == [(date(2025, 2, 11), 1, 77, Decimal("5.00"),
                                          Decimal("0.00"), Decimal("4.00"))]
    assert aggregates(shop)["activity"] == [(feb, 2, 1)]


def test_the_aggregate_rows_read_are_written_by_their_ctid_not_by_a_conflict_probe(
        shop: Shop) -> None:
    """apply_agg_delta updates the stored rows its left join read through their ctid, inserts
    the new ones and deletes the emptied ones (session 9), where INSERT ... ON CONFLICT probed
    each key again and locked the row first: its statements' plans, logged by auto_explain
    at NOTICE level, update each of the four tables and hold no conflict arbiter; the
    figures are those of a recompute."""
    first_order(shop)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.item(b2, 1001, 100, 10, quantity=1)  # updates 2025-02-10 and product 10's month
    shop.transaction(b2, 101, 1, "2025-02-11 12:00")  # a second order of customer 1
    shop.item(b2, 1002, 101, 11, quantity=1, price="5.00")  # a new product-month row
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    conn = shop.cur.connection
    shop.cur.execute("load 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_nested_statements = on",
                    "log_level = notice"):
        shop.cur.execute(f"set auto_explain.{setting}")
    conn.notices = deque(maxlen=1000)
    shop.call("refresh_batch_aggregates", b2)
    shop.cur.execute("reset auto_explain.log_min_duration")
    applied = [n for n in conn.notices if "Update on agg_product_monthly" in n
               or "Update on agg_daily_sales" in n]
    assert len(applied) == 2  # the two statements of apply_agg_delta
    plans = "\n".join(applied)
    for table in ("agg_daily_sales", "agg_payment_method_monthly", "agg_customer_activity",
                  "agg_product_monthly"):
        assert f"Update on {table}" in plans
        assert f"Insert on {table}" in plans
        assert f"Delete on {table}" in plans
        assert f"Conflict Arbiter Indexes: {table}_pkey" not in plans
    # the month's active customers still add up by ON CONFLICT: a handful of rows
    assert "Conflict Arbiter Indexes: agg_customer_monthly_pkey" in plans

    feb = date(2025, 2, 1)
    assert aggregates(shop)["products"] == [
        (feb, 10, 1, 3, Decimal("30.00"), Decimal("18.00")),
        (feb, 11, 1, 1, Decimal("5.00"), Decimal("4.00"))]
    assert aggregates(shop)["activity"] == [(feb, 1, 2)]
    assert_equal_to_a_recompute(shop)


def test_an_aggregate_row_changed_while_the_deltas_are_applied_fails_for_a_retry(
        shop: Shop, db_url: str) -> None:
    """apply_agg_delta locks no aggregate table (a lock would wait for and cancel their
    autovacuums): a row another transaction rewrites between the statement's read and its
    write is not written through its old ctid, and the statement, finding fewer rows written
    than read, fails with a serialization failure (40001, retried by the runner), leaving
    the aggregates and the pending deltas as they were; the retry applies them."""
    first_order(shop)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.item(b2, 1001, 100, 10, quantity=1)  # changes 2025-02-10's row
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    before = aggregates(shop)
    other = psycopg2.connect(db_url)
    watcher = psycopg2.connect(db_url)
    watcher.autocommit = True
    failure: list[psycopg2.Error] = []

    def apply() -> None:
        try:
            shop.call("refresh_batch_aggregates", b2)
        except psycopg2.Error as error:
            failure.append(error)

    try:
        with other.cursor() as cur:  # a new version of the row, not committed yet
            cur.execute("update warehouse.agg_daily_sales set units = units "
                        "where sales_date = '2025-02-10'")
        applying = threading.Thread(target=apply)
        applying.start()
        with watcher.cursor() as cur:  # until the apply waits for that row
            for _ in range(200):
                cur.execute("select count(*) from pg_stat_activity "
                            "where wait_event_type = 'Lock' and query like '%%refresh_batch%%'")
                if cur.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the apply never waited for the row another transaction changed")
        other.commit()
        applying.join(30)
    finally:
        other.close()
        watcher.close()

    assert [error.pgcode for error in failure] == ["40001"]
    assert "rows of agg_daily_sales were changed by another transaction" in str(failure[0])
    assert aggregates(shop) == before
    assert shop.value("select count(*) from warehouse.agg_delta") == 2
    shop.call("refresh_batch_aggregates", b2)
    assert daily(shop)[date(2025, 2, 10)][:3] == (1, 3, Decimal("30.00"))
    assert_equal_to_a_recompute(shop)


def test_status_changes_alone_and_with_other_changes_of_their_orders_count_as_a_recompute(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    pending_and_completed_orders(shop, b1)
    shop.load(b1)

    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-10 12:00")  # completed: the status alone
    shop.transaction(b2, 101, 2, "2025-02-11 12:00", status="refunded")
    shop.item(b2, 1004, 101, 11, quantity=1, price="5.00")  # and a new line of the order
    shop.transaction(b2, 102, 1, "2025-03-01 12:00", status="refunded")  # and a new time
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)
    # the status change first (its own statement), then the lines recomputed from production
    assert shop.rows("select ad.sign, ad.transaction_id, p.product_id, ad.units "
                     "from warehouse.agg_delta ad "
                     "join warehouse.dim_product p on p.product_key = ad.product_key "
                     "order by ad.change_id, ad.transaction_id, p.product_id") == [
        (1, 100, 10, 2), (1, 100, 11, 1), (-1, 101, 10, 1), (-1, 102, 11, 1)]
    # statuses are written once per order; lines only where they changed
    assert shop.rows("select f.item_id, os.status_code, f.date_key, f.source_batch_id "
                     "from warehouse.fact_sales f "
                     "join warehouse.fact_order_status os using (transaction_id) "
                     "order by f.item_id") == [
        (1000, "completed", 20250210, b1), (1001, "completed", 20250210, b1),
        (1002, "refunded", 20250211, b1), (1003, "refunded", 20250301, b2),
        (1004, "refunded", 20250211, b2)]
    assert shop.rows("select transaction_id, status_code, source_batch_id "
                     "from warehouse.fact_order_status order by 1") == [
        (100, "completed", b2), (101, "refunded", b2), (102, "refunded", b2)]
    shop.call("refresh_batch_aggregates", b2)
    shop.call("check_reconciliation", b2)

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
    assert_equal_to_a_recompute(shop)


def test_the_delta_queue_is_left_to_its_truncate_not_to_autovacuum(shop: Shop) -> None:
    """Revision 0020: autovacuum is off for warehouse.agg_delta and its TOAST table (each
    apply truncates it), so an apply never waits deadlock_timeout for an autovacuum of it."""
    assert shop.rows(
        "select c.reloptions, t.reloptions from pg_class c "
        "join pg_class t on t.oid = c.reltoastrelid "
        "where c.oid = 'warehouse.agg_delta'::regclass") == [
        (["autovacuum_enabled=false"], ["autovacuum_enabled=false"])]
