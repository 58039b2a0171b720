"""Warehouse loaders: SCD2 dimensions and the item-grain fact (issue 6).

Each test writes the smallest production data that shows a rule straight into
production.* (with etl.batch rows, as the merge would leave them), runs the real warehouse
procedures on a real database and asserts exact values. The helpers here are shared with
tests/test_warehouse_views.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg2
import psycopg2.extensions
import pytest

WAREHOUSE_STEPS = (
    "load_dimensions", "load_fact_sales", "refresh_batch_aggregates", "check_reconciliation",
)
INFINITY = datetime.max.replace(tzinfo=UTC)  # psycopg2 reads 'infinity' as datetime.max


def ts(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM[:SS[.ffffff]]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Shop:
    """Writes production rows as production.merge_batch would, and runs the warehouse."""

    cur: psycopg2.extensions.cursor

    def batch(self, load_ts: str) -> int:
        self.cur.execute(
            "insert into etl.batch (batch_name, source_path, load_ts) "
            "values ('batch_' || (select count(*) + 1 from etl.batch), '/test', %s) "
            "returning batch_id",
            (load_ts,),
        )
        return self.cur.fetchone()[0]

    def customer(self, batch: int, customer_id: int, *, city: str = "Berlin",
                 signup: str = "2025-01-15", updated_at: str | None = None,
                 email: str | None = None, first_name: str = "Ada",
                 last_name: str = "Lovelace", country: str = "DE") -> None:
        self.cur.execute(
            """
            insert into production.customers (
                customer_id, first_name, last_name, email, city, country, signup_date,
                source_updated_at, source_batch_id)
            values (%(id)s, %(first)s, %(last)s, %(email)s, %(city)s, %(country)s,
                    %(signup)s, %(updated)s, %(batch)s)
            on conflict (customer_id) do update set
                first_name = excluded.first_name, last_name = excluded.last_name,
                email = excluded.email, city = excluded.city, country = excluded.country,
                signup_date = excluded.signup_date,
                source_updated_at = excluded.source_updated_at,
                source_batch_id = excluded.source_batch_id, updated_at = now()
            """,
            {"id": customer_id, "first": first_name, "last": last_name,
             "email": email or f"c{customer_id}@example.com", "city": city,
             "country": country, "signup": signup, "updated": updated_at, "batch": batch},
        )

    def product(self, batch: int, product_id: int, *, name: str = "Ball",
                category: str = "Toys", brand: str | None = "Acme", price: str = "10.00",
                cost: str = "4.00", updated_at: str | None = None) -> None:
        self.cur.execute(
            "insert into production.categories (category_name) values (%s) "
            "on conflict (category_name) do nothing",
            (category,),
        )
        self.cur.execute(
            """
            insert into production.products (
                product_id, product_name, category_id, brand, unit_price, cost,
                source_updated_at, source_batch_id)
            select %(id)s, %(name)s, c.category_id, %(brand)s, %(price)s, %(cost)s,
                   %(updated)s, %(batch)s
            from production.categories c where c.category_name = %(category)s
            on conflict (product_id) do update set
                product_name = excluded.product_name, category_id = excluded.category_id,
                brand = excluded.brand, unit_price = excluded.unit_price,
                cost = excluded.cost, source_updated_at = excluded.source_updated_at,
                source_batch_id = excluded.source_batch_id, updated_at = now()
            """,
            {"id": product_id, "name": name, "category": category, "brand": brand,
             "price": price, "cost": cost, "updated": updated_at, "batch": batch},
        )

    def transaction(self, batch: int, transaction_id: int, customer_id: int, at: str, *,
                    status: str = "completed", payment: str = "credit_card") -> None:
        self.cur.execute(
            """
            insert into production.transactions (
                transaction_id, customer_id, transaction_ts, payment_method_code,
                status_code, source_batch_id)
            values (%s, %s, %s, %s, %s, %s)
            on conflict (transaction_id) do update set
                customer_id = excluded.customer_id,
                transaction_ts = excluded.transaction_ts,
                payment_method_code = excluded.payment_method_code,
                status_code = excluded.status_code,
                source_batch_id = excluded.source_batch_id, updated_at = now()
            """,
            (transaction_id, customer_id, at, payment, status, batch),
        )

    def item(self, batch: int, item_id: int, transaction_id: int, product_id: int, *,
             quantity: int = 1, price: str = "10.00", discount: str = "0") -> None:
        self.cur.execute(
            """
            insert into production.transaction_items (
                item_id, transaction_id, product_id, quantity, unit_price, discount,
                source_batch_id)
            values (%s, %s, %s, %s, %s, %s, %s)
            on conflict (item_id) do update set
                transaction_id = excluded.transaction_id, product_id = excluded.product_id,
                quantity = excluded.quantity, unit_price = excluded.unit_price,
                discount = excluded.discount, source_batch_id = excluded.source_batch_id,
                updated_at = now()
            """,
            (item_id, transaction_id, product_id, quantity, price, discount, batch),
        )

    def call(self, step: str, batch: int) -> None:
        self.cur.execute(f"call warehouse.{step}(%s)", (batch,))

    def load(self, batch: int) -> None:
        """The warehouse part of the pipeline for one batch, in the runner's order."""
        for step in WAREHOUSE_STEPS:
            self.call(step, batch)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        self.cur.execute(sql, params)
        return self.cur.fetchall()

    def value(self, sql: str, params: tuple = ()):  # noqa: ANN201 - any scalar
        (row,) = self.rows(sql, params)
        return row[0]

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every warehouse table's rows, in key order (to compare states)."""
        tables = {
            "dim_customer": "customer_key", "dim_product": "product_key",
            "dim_date": "date_key", "dim_payment_method": "payment_method_key",
            "fact_sales": "item_id", "fact_order_status": "transaction_id",
            "agg_daily_sales": "sales_date",
            "agg_product_monthly": "month, product_id",
            "agg_payment_method_monthly": "month, payment_method_code",
            "agg_customer_monthly": "month", "agg_refresh_queue": "batch_id, grain, day",
            "agg_customer_activity": "month, customer_id",
            "agg_delta": "change_id, sign, transaction_id, product_key",
            "agg_category_best_sellers": "month, product_id",
        }
        return {
            table: self.rows(f"select * from warehouse.{table} order by {key}")
            for table, key in tables.items()
        }


@pytest.fixture
def shop(conn) -> Shop:  # noqa: ANN001 - the conftest's psycopg2 connection
    with conn.cursor() as cur:
        yield Shop(cur)


def fact(shop: Shop, item_id: int) -> dict:
    shop.cur.execute(
        "select f.*, os.status_code, c.customer_id, c.city, p.product_id, "
        "p.cost as version_cost "
        "from warehouse.fact_sales f "
        "join warehouse.fact_order_status os on os.transaction_id = f.transaction_id "
        "join warehouse.dim_customer c on c.customer_key = f.customer_key "
        "join warehouse.dim_product p on p.product_key = f.product_key "
        "where f.item_id = %s",
        (item_id,),
    )
    names = [d.name for d in shop.cur.description]
    return dict(zip(names, shop.cur.fetchone(), strict=True))


def daily(shop: Shop) -> dict[date, tuple]:
    return {
        r[0]: r[1:]
        for r in shop.rows(
            "select sales_date, orders, units, revenue, discount, margin "
            "from warehouse.agg_daily_sales order by 1"
        )
    }


def one_sale(shop: Shop, batch: int, *, at: str = "2025-02-10 12:00") -> None:
    """Customer 1, product 10 (price 10, cost 4), transaction 100 with one item of 2 units."""
    shop.customer(batch, 1)
    shop.product(batch, 10)
    shop.transaction(batch, 100, 1, at)
    shop.item(batch, 1000, 100, 10, quantity=2)


# -- dimensions -----------------------------------------------------------------------------

def test_first_versions_are_valid_from_minus_infinity_to_infinity(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.load(b1)
    assert shop.rows(
        "select customer_id, city, valid_from = '-infinity', valid_to, is_current, "
        "source_batch_id from warehouse.dim_customer where customer_id is not null"
    ) == [(1, "Berlin", True, INFINITY, True, b1)]
    assert shop.rows(
        "select product_id, product_name, category, brand, unit_price, cost, "
        "valid_from = '-infinity', is_current from warehouse.dim_product "
        "where product_id is not null"
    ) == [(10, "Ball", "Toys", "Acme", Decimal("10.00"), Decimal("4.00"), True, True)]


def test_moved_customer_has_two_versions_and_older_sales_stay_on_the_old_one(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1, at="2025-02-10 12:00")
    shop.load(b1)
    b2 = shop.batch("2025-04-01 00:00+00")
    shop.customer(b2, 1, city="Munich", updated_at="2025-03-15 08:00+00")
    shop.transaction(b2, 101, 1, "2025-03-20 09:00")
    shop.item(b2, 1001, 101, 10)
    shop.load(b2)

    versions = shop.rows(
        "select customer_key, city, valid_from, valid_to, is_current "
        "from warehouse.dim_customer where customer_id = 1 order by valid_from"
    )
    assert [(v[1], v[3], v[4]) for v in versions] == [
        ("Berlin", ts("2025-03-15 08:00"), False),
        ("Munich", INFINITY, True),
    ]
    assert versions[1][2] == ts("2025-03-15 08:00")
    assert fact(shop, 1000)["customer_key"] == versions[0][0]
    assert fact(shop, 1000)["city"] == "Berlin"
    assert fact(shop, 1001)["customer_key"] == versions[1][0]
    assert fact(shop, 1001)["city"] == "Munich"


def test_change_without_updated_at_starts_at_the_batch_load_time(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.load(b1)
    b2 = shop.batch("2025-04-01 06:30+00")
    shop.product(b2, 10, price="12.00")
    shop.load(b2)
    assert shop.rows(
        "select unit_price, valid_from from warehouse.dim_product "
        "where product_id = 10 and is_current"
    ) == [(Decimal("12.00"), ts("2025-04-01 06:30"))]


def test_change_not_after_the_current_start_begins_one_microsecond_after_it(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.load(b1)
    b2 = shop.batch("2025-04-01 00:00+00")
    shop.customer(b2, 1, city="Munich", updated_at="2025-03-15 08:00+00")
    shop.load(b2)
    b3 = shop.batch("2025-05-01 00:00+00")
    shop.customer(b3, 1, city="Hamburg", updated_at="2025-03-10 00:00+00")  # earlier
    shop.load(b3)
    b4 = shop.batch("2025-06-01 00:00+00")
    shop.customer(b4, 1, city="Bremen", updated_at="2025-03-15 08:00:00.000001+00")  # equal
    shop.load(b4)

    assert shop.rows(
        "select city, valid_from, valid_to from warehouse.dim_customer "
        "where customer_id = 1 order by valid_from"
    ) == [
        ("Berlin", datetime.min.replace(tzinfo=UTC), ts("2025-03-15 08:00")),
        ("Munich", ts("2025-03-15 08:00"), ts("2025-03-15 08:00:00.000001")),
        ("Hamburg", ts("2025-03-15 08:00:00.000001"), ts("2025-03-15 08:00:00.000002")),
        ("Bremen", ts("2025-03-15 08:00:00.000002"), INFINITY),
    ]


def test_equal_tracked_attributes_make_no_new_version(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.load(b1)
    b2 = shop.batch("2025-04-01 00:00+00")
    # the same values again, delivered as 10.0 / 4 with a new updated_at: no change
    shop.product(b2, 10, price="10.0", cost="4", updated_at="2025-03-20 00:00+00")
    shop.customer(b2, 1, updated_at="2025-03-20 00:00+00")
    shop.load(b2)
    assert shop.value("select count(*) from warehouse.dim_product where product_id = 10") == 1
    assert shop.value("select count(*) from warehouse.dim_customer where customer_id = 1") == 1


def test_every_tracked_attribute_makes_a_new_version(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.load(b1)
    changes = [
        {"name": "Big ball"}, {"category": "Sport"}, {"brand": None}, {"price": "11.00"},
        {"cost": "4.01"},
    ]
    for number, change in enumerate(changes, start=2):
        batch = shop.batch(f"2025-0{number + 2}-01 00:00+00")
        shop.product(batch, 10, **{**{"name": "Ball", "category": "Toys", "brand": "Acme",
                                      "price": "10.00", "cost": "4.00"}, **change})
        shop.load(batch)
    assert shop.value("select count(*) from warehouse.dim_product where product_id = 10") == 6
    customer_changes = [{"first_name": "Ida"}, {"last_name": "Byron"}, {"email": "a@b.org"},
                        {"city": "Rome"}, {"country": "IT"}, {"signup": "2025-01-16"}]
    for number, change in enumerate(customer_changes, start=1):
        batch = shop.batch(f"2026-0{number}-01 00:00+00")
        shop.customer(batch, 1, **change)
        shop.load(batch)
    assert shop.value("select count(*) from warehouse.dim_customer where customer_id = 1") == 7


def test_payment_methods_and_unknown_members_exist(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.call("load_dimensions", b1)
    codes = [r[0] for r in shop.rows(
        "select payment_method_code from warehouse.dim_payment_method "
        "where payment_method_key <> -1 order by 1")]
    assert codes == ["bank_transfer", "cash_on_delivery", "credit_card", "debit_card",
                     "gift_card", "paypal"]
    for table, key in (("dim_customer", "customer_key"), ("dim_product", "product_key"),
                       ("dim_payment_method", "payment_method_key"), ("dim_date", "date_key")):
        assert shop.value(f"select count(*) from warehouse.{table} where {key} = -1") == 1


def test_written_payment_methods_are_analyzed_for_the_planner(shop: Shop) -> None:
    # seven rows stay under autovacuum's analyze threshold for ever: without statistics
    # the planner takes a method's share of the lines for a thousandth
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.call("load_dimensions", b1)
    assert shop.value("select reltuples from pg_class "
                      "where oid = 'warehouse.dim_payment_method'::regclass") == 7
    assert shop.rows("select attname, n_distinct from pg_stats where schemaname = "
                     "'warehouse' and tablename = 'dim_payment_method' "
                     "and attname = 'payment_method_key'") == [("payment_method_key", -1)]


def test_payment_methods_never_analyzed_are_analyzed_by_the_next_batch(shop: Shop) -> None:
    # a warehouse loaded before the rule: the methods are there, never analyzed
    shop.cur.execute("insert into warehouse.dim_payment_method "
                     "(payment_method_code, display_name) "
                     "select payment_method_code, display_name from production.payment_methods")
    assert shop.value("select reltuples from pg_class "
                      "where oid = 'warehouse.dim_payment_method'::regclass") == -1
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.call("load_dimensions", b1)  # writes no payment method
    assert shop.value("select reltuples from pg_class "
                      "where oid = 'warehouse.dim_payment_method'::regclass") == 7


def test_dim_date_covers_transaction_and_signup_dates_in_any_year(shop: Shop) -> None:
    b1 = shop.batch("2031-12-31 00:00+00")
    shop.customer(b1, 1, signup="2031-01-30")
    shop.product(b1, 10)
    shop.transaction(b1, 100, 1, "2031-02-02 23:59:59")
    shop.item(b1, 1000, 100, 10)
    shop.load(b1)
    assert shop.rows(
        "select min(full_date), max(full_date), count(*) from warehouse.dim_date "
        "where date_key <> -1"
    ) == [(date(2031, 1, 30), date(2031, 2, 2), 4)]
    assert fact(shop, 1000)["date_key"] == 20310202
    assert shop.rows("select sales_date, revenue from analytics.v_daily_sales") == [
        (date(2031, 2, 2), Decimal("10.00"))
    ]


# -- the fact -------------------------------------------------------------------------------

def test_fact_row_holds_keys_measures_and_utc_date(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10, cost="4.25")
    shop.transaction(b1, 100, 1, "2025-02-10 23:30:00-05:00", payment="paypal")
    shop.item(b1, 1000, 100, 10, quantity=3, price="9.99", discount="1.50")
    shop.load(b1)
    row = fact(shop, 1000)
    assert {k: row[k] for k in (
        "transaction_id", "date_key", "status_code", "transaction_ts", "quantity",
        "unit_price", "discount", "line_amount", "line_cost", "line_margin",
        "source_batch_id")} == {
        "transaction_id": 100, "date_key": 20250211, "status_code": "completed",
        "transaction_ts": ts("2025-02-11 04:30"), "quantity": 3,
        "unit_price": Decimal("9.99"), "discount": Decimal("1.50"),
        "line_amount": Decimal("28.47"), "line_cost": Decimal("12.75"),
        "line_margin": Decimal("15.72"), "source_batch_id": b1,
    }
    assert shop.value(
        "select payment_method_code from warehouse.dim_payment_method "
        "where payment_method_key = %s", (row["payment_method_key"],)) == "paypal"


def test_utc_dates_do_not_depend_on_the_session_time_zone(shop: Shop) -> None:
    shop.cur.execute("set timezone = 'Pacific/Kiritimati'")  # UTC+14
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1, at="2025-02-10 23:30+00")
    shop.customer(b1, 1, signup="2025-01-31")
    shop.load(b1)
    assert fact(shop, 1000)["date_key"] == 20250210
    assert list(daily(shop)) == [date(2025, 2, 10)]
    assert shop.rows("select month, new_customers, active_customers "
                     "from warehouse.agg_customer_monthly order by 1") == [
        (date(2025, 1, 1), 1, 0), (date(2025, 2, 1), 0, 1)]
    shop.cur.execute("set timezone = 'America/Los_Angeles'")
    assert shop.rows("select sales_date from analytics.v_daily_sales") == [(date(2025, 2, 10),)]
    assert shop.rows("select month from analytics.v_monthly_sales") == [(date(2025, 2, 1),)]
    assert shop.rows("select sales_date from analytics.v_sales") == [(date(2025, 2, 10),)]


def test_backdated_price_change_repoints_later_facts_and_changes_their_margin(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10, cost="4.00")
    shop.transaction(b1, 100, 1, "2025-02-10 12:00")
    shop.item(b1, 1000, 100, 10, quantity=2)
    shop.transaction(b1, 101, 1, "2025-02-20 12:00")
    shop.item(b1, 1001, 101, 10, quantity=2)
    shop.load(b1)
    assert daily(shop)[date(2025, 2, 20)][4] == Decimal("12.00")  # 20 - 2 * 4

    b2 = shop.batch("2025-03-02 00:00+00")
    shop.product(b2, 10, cost="6.00", updated_at="2025-02-15 00:00+00")
    shop.load(b2)

    before, after = fact(shop, 1000), fact(shop, 1001)
    assert (before["version_cost"], before["line_cost"], before["line_margin"]) == (
        Decimal("4.00"), Decimal("8.00"), Decimal("12.00"))
    assert (after["version_cost"], after["line_cost"], after["line_margin"]) == (
        Decimal("6.00"), Decimal("12.00"), Decimal("8.00"))
    assert after["source_batch_id"] == b2 and before["source_batch_id"] == b1
    assert daily(shop)[date(2025, 2, 10)][4] == Decimal("12.00")
    assert daily(shop)[date(2025, 2, 20)][4] == Decimal("8.00")
    assert shop.rows(
        "select day from warehouse.agg_refresh_queue where batch_id = %s and grain = 'day'",
        (b2,)) == [(date(2025, 2, 20),)]
    assert shop.rows("select month, margin from warehouse.agg_product_monthly") == [
        (date(2025, 2, 1), Decimal("20.00"))]


def test_status_change_from_pending_to_completed_moves_revenue_in_and_refund_removes_it(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10)
    shop.transaction(b1, 100, 1, "2025-02-10 12:00", status="pending")
    shop.item(b1, 1000, 100, 10, quantity=2)
    shop.item(b1, 1001, 100, 10, quantity=1)
    shop.load(b1)
    assert daily(shop) == {}
    assert fact(shop, 1000)["status_code"] == "pending"

    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-02-10 12:00", status="completed")
    shop.load(b2)
    assert daily(shop) == {date(2025, 2, 10): (1, 3, Decimal("30.00"), Decimal("0.00"),
                                              Decimal("18.00"))}
    assert {fact(shop, 1000)["status_code"], fact(shop, 1001)["status_code"]} == {"completed"}

    b3 = shop.batch("2025-03-03 00:00+00")
    shop.transaction(b3, 100, 1, "2025-02-10 12:00", status="refunded")
    shop.load(b3)
    assert daily(shop) == {}
    assert shop.rows("select * from warehouse.agg_product_monthly") == []
    assert shop.rows("select month, new_customers, active_customers "
                     "from warehouse.agg_customer_monthly") == [(date(2025, 1, 1), 1, 0)]
    assert shop.value("select count(*) from warehouse.fact_sales f "
                      "join warehouse.fact_order_status os using (transaction_id) "
                      "where os.status_code = 'refunded'") == 2


def test_transaction_time_change_moves_revenue_between_days_and_refreshes_both(
        shop: Shop) -> None:
    b1 = shop.batch("2025-04-01 00:00+00")
    one_sale(shop, b1, at="2025-02-10 12:00")
    shop.load(b1)
    assert list(daily(shop)) == [date(2025, 2, 10)]
    b2 = shop.batch("2025-04-02 00:00+00")
    shop.transaction(b2, 100, 1, "2025-03-05 08:00")
    shop.load(b2)
    assert daily(shop) == {date(2025, 3, 5): (1, 2, Decimal("20.00"), Decimal("0.00"),
                                             Decimal("12.00"))}
    assert shop.rows(
        "select day from warehouse.agg_refresh_queue where batch_id = %s order by 1", (b2,)
    ) == [(date(2025, 2, 10),), (date(2025, 3, 5),)]
    assert shop.rows("select month, revenue from warehouse.agg_product_monthly") == [
        (date(2025, 3, 1), Decimal("20.00"))]
    assert fact(shop, 1000)["date_key"] == 20250305


def test_changed_item_and_reassigned_transaction_update_the_fact(shop: Shop) -> None:
    b1 = shop.batch("2025-04-01 00:00+00")
    one_sale(shop, b1)
    shop.customer(b1, 2, city="Paris")
    shop.product(b1, 11, cost="1.00")
    shop.load(b1)
    b2 = shop.batch("2025-04-02 00:00+00")
    shop.item(b2, 1000, 100, 11, quantity=5, price="3.00", discount="0.50")
    shop.transaction(b2, 100, 2, "2025-02-10 12:00", payment="gift_card")
    shop.load(b2)
    row = fact(shop, 1000)
    assert (row["customer_id"], row["city"], row["product_id"], row["quantity"],
            row["line_amount"], row["line_cost"], row["line_margin"]) == (
        2, "Paris", 11, 5, Decimal("14.50"), Decimal("5.00"), Decimal("9.50"))
    assert shop.rows("select product_id, revenue from warehouse.agg_product_monthly") == [
        (11, Decimal("14.50"))]
    assert shop.rows("select payment_method_code from warehouse.agg_payment_method_monthly"
                     ) == [("gift_card",)]


def test_every_fact_key_is_set_even_without_dimension_rows(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.call("load_fact_sales", b1)  # dimensions never loaded: unknown members
    row = fact(shop, 1000)
    assert (row["customer_key"], row["product_key"], row["line_cost"]) == (
        -1, -1, Decimal("0.00"))
    assert shop.value(
        "select count(*) from warehouse.fact_sales where customer_key is null "
        "or product_key is null or payment_method_key is null or date_key is null") == 0
    assert shop.rows("select customer_id, product_id from analytics.v_sales") == [(None, None)]


def test_no_fact_key_is_null_or_unknown_after_a_normal_load(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.transaction(b1, 101, 1, "2000-01-01 00:00", payment="cash_on_delivery")
    shop.item(b1, 1001, 101, 10)
    shop.load(b1)
    assert shop.value(
        "select count(*) from warehouse.fact_sales where -1 in "
        "(customer_key, product_key, payment_method_key, date_key)") == 0


def test_every_step_run_twice_changes_nothing(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.transaction(b1, 101, 1, "2025-02-20 12:00", status="pending")
    shop.item(b1, 1001, 101, 10)
    shop.load(b1)
    b2 = shop.batch("2025-04-01 00:00+00")
    shop.customer(b2, 1, city="Munich", updated_at="2025-02-15 00:00+00")
    shop.product(b2, 10, cost="5.00", updated_at="2025-02-12 00:00+00")
    shop.transaction(b2, 101, 1, "2025-02-21 12:00", status="completed")
    shop.customer(b2, 2, signup="2025-03-03")
    for step in WAREHOUSE_STEPS:
        shop.call(step, b2)
        once = shop.snapshot()
        shop.call(step, b2)
        assert shop.snapshot() == once, step
    assert shop.rows("select step, rows from etl.batch_step where batch_id = %s order by 1",
                     (b2,)) == [
        ("check_reconciliation", 2), ("load_dimensions", 0), ("load_fact_sales", 0),
        ("refresh_batch_aggregates", 0)]


def test_a_batch_loaded_twice_from_scratch_gives_the_same_warehouse(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.load(b1)
    first = shop.snapshot()
    shop.load(b1)
    assert shop.snapshot() == first


def test_bulk_and_incremental_paths_write_the_same_rows(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.product(b1, 11, cost="2.50")
    for number in range(5):
        shop.transaction(b1, 200 + number, 1, f"2025-02-{10 + number} 12:00",
                         status=("completed", "pending")[number % 2])
        shop.item(b1, 2000 + number, 200 + number, 10 + number % 2, quantity=number + 1,
                  discount=f"{number}.25")
    shop.load(b1)  # the fact was empty: bulk path
    bulk = shop.rows("select * from warehouse.fact_sales order by item_id")
    bulk_orders = shop.rows("select transaction_id, status_code, source_batch_id "
                            "from warehouse.fact_order_status order by 1")
    assert bulk_orders == [(100, "completed", b1)] + [
        (200 + number, ("completed", "pending")[number % 2], b1) for number in range(5)]
    shop.cur.execute("truncate warehouse.fact_sales, warehouse.fact_order_status; "
                     "insert into warehouse.fact_sales (item_id, transaction_id, date_key, "
                     "customer_key, product_key, payment_method_key, "
                     "transaction_ts, quantity, unit_price, discount, line_amount, line_cost, "
                     "line_margin, source_batch_id) values "
                     "(1, 1, 20000101, -1, -1, -1, '2000-01-01', 1, 0, 0, 0, 0, 0, 1); "
                     "insert into warehouse.fact_order_status (transaction_id, status_code, "
                     "source_batch_id) values (1, 'pending', 1)")
    shop.call("load_fact_sales", b1)  # not empty now: incremental path
    incremental = shop.rows("select * from warehouse.fact_sales where item_id > 1 "
                            "order by item_id")
    columns = slice(0, 14)  # all but updated_at
    assert [r[columns] for r in incremental] == [r[columns] for r in bulk]
    assert shop.rows("select transaction_id, status_code, source_batch_id "
                     "from warehouse.fact_order_status where transaction_id > 1 "
                     "order by 1") == bulk_orders
    assert shop.value("select count(*) from warehouse.fact_sales f "
                      "join warehouse.v_sales_lines l using (item_id) "
                      "where (f.product_key, f.line_cost) <> (l.product_key, l.line_cost)") == 0
    index_names = [r[0] for r in shop.rows(
        "select indexrelid::regclass::text from pg_index "
        "where indrelid = 'warehouse.fact_sales'::regclass order by 1")]
    assert index_names == ["warehouse.fact_sales_customer_idx",
                           "warehouse.fact_sales_date_idx", "warehouse.fact_sales_pkey",
                           "warehouse.fact_sales_product_date_idx",
                           "warehouse.fact_sales_transaction_idx",
                           "warehouse.fact_sales_ts_idx"]


def test_steps_record_rows_written_in_batch_step(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.load(b1)
    assert dict(shop.rows("select step, rows from etl.batch_step where batch_id = %s",
                          (b1,))) == {
        "load_dimensions": 2 + 6 + 27,  # 2 versions, 6 payment methods, Jan 15 .. Feb 10
        "load_fact_sales": 2,  # the line and its order's status row
        # day, product month, payment month, customer activity, 2 customer months, the
        # month's best seller
        "refresh_batch_aggregates": 7,
        "check_reconciliation": 1,
    }


def test_unknown_batch_is_refused_with_its_id(shop: Shop) -> None:
    for step in WAREHOUSE_STEPS:
        with pytest.raises(psycopg2.errors.RaiseException, match="batch 999 does not exist"):
            shop.call(step, 999)


def test_later_dimension_version_does_not_repoint_earlier_facts(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1, at="2025-02-10 12:00")
    shop.load(b1)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.product(b2, 10, cost="7.00")  # valid from the load time, after the sale
    shop.load(b2)
    assert fact(shop, 1000)["version_cost"] == Decimal("4.00")
    assert shop.rows("select day from warehouse.agg_refresh_queue where batch_id = %s "
                     "and grain = 'day'", (b2,)) == []


def test_the_pipeline_role_can_run_every_warehouse_step(shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)
    shop.cur.execute("set role warehouse_etl")
    try:
        shop.load(b1)  # not the fact's owner: the incremental path loads the empty fact
        b2 = shop.batch("2025-03-02 00:00+00")
        shop.product(b2, 10, cost="5.00", updated_at="2025-02-01 00:00+00")
        shop.load(b2)
    finally:
        shop.cur.execute("reset role")
    assert fact(shop, 1000)["line_cost"] == Decimal("10.00")
    assert shop.rows("select revenue, margin from analytics.v_daily_sales") == [
        (Decimal("20.00"), Decimal("10.00"))]


def test_sums_at_the_contract_bounds_do_not_overflow_the_aggregates(shop: Shop) -> None:
    """1,001 lines of 1000 x 9,999,999,999.99 on one day: 10,009,999,999,989,990.00, beyond
    numeric(18,2); every aggregate and view holds it exactly."""
    batch = shop.batch("2025-03-01 00:00+00")
    shop.customer(batch, 1)
    shop.product(batch, 10, price="9999999999.99", cost="0.00")
    shop.transaction(batch, 100, 1, "2025-02-10 12:00")
    for item_id in range(1, 1002):
        shop.item(batch, item_id, 100, 10, quantity=1000, price="9999999999.99")
    shop.load(batch)
    total = Decimal("10009999999989990.00")
    assert daily(shop) == {date(2025, 2, 10): (1, 1_001_000, total, Decimal("0.00"), total)}
    assert shop.rows("select revenue, margin, avg_order_value from analytics.v_daily_sales") == [
        (total, total, total)]
    assert shop.rows("select revenue, margin from analytics.v_monthly_sales") == [(total, total)]
    assert shop.rows("select revenue, margin from analytics.v_product_performance") == [
        (total, total)]
    assert shop.rows("select revenue, revenue_share from analytics.v_payment_methods") == [
        (total, Decimal(1))]


def test_the_fact_load_gives_the_planner_the_distinct_keys_of_its_join_columns(
        shop: Shop) -> None:
    b1 = shop.batch("2025-03-01 00:00+00")
    one_sale(shop, b1)  # customer 1, product 10, order 100 with one line
    shop.customer(b1, 2)
    shop.product(b1, 11)
    for number in range(5):  # five orders of two lines each
        shop.transaction(b1, 200 + number, 1 + number % 2, f"2025-02-{10 + number} 12:00")
        shop.item(b1, 2000 + number, 200 + number, 10)
        shop.item(b1, 3000 + number, 200 + number, 11)
    for step in WAREHOUSE_STEPS:
        shop.call(step, b1)
        if step == "load_dimensions":  # analyzed by it from 1,000 new versions on
            shop.cur.execute("analyze warehouse.dim_customer, warehouse.dim_product")
    # the fact was empty: bulk path, analyzed, then etl.set_key_statistics
    # 6 orders, 3 customer and 3 product versions (the unknown members included) for 11
    # lines: ANALYZE reads every row of tables this small, so the counts are exact
    settings = {
        "transaction_id": ["n_distinct=-0.545455"],
        "customer_key": ["n_distinct=-0.272727"],
        "product_key": ["n_distinct=-0.272727"],
    }
    assert dict(shop.rows(
        "select attname, attoptions from pg_attribute "
        "where attrelid = 'warehouse.fact_sales'::regclass and attoptions is not null")
    ) == settings
    assert dict(shop.rows(
        "select attname, n_distinct from pg_stats where schemaname = 'warehouse' "
        "and tablename = 'fact_sales' and attname = any(%s)", (list(settings),))
    ) == {"transaction_id": -0.545455, "customer_key": -0.272727,
          "product_key": -0.272727}
    # four more orders: 10 for 11 lines, the setting moves by more than a tenth
    shop.cur.execute("insert into warehouse.fact_order_status "
                     "(transaction_id, status_code, source_batch_id) "
                     "select 900 + n, 'completed', %s from generate_series(1, 4) n", (b1,))
    shop.cur.execute("analyze warehouse.fact_order_status")
    shop.cur.execute("call etl.set_key_statistics(array['warehouse.fact_sales'::regclass])")
    assert shop.value("select n_distinct from pg_stats where schemaname = 'warehouse' "
                      "and tablename = 'fact_sales' "
                      "and attname = 'transaction_id'") == pytest.approx(-0.909091)
