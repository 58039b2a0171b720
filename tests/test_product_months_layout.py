"""warehouse.agg_product_monthly keeps a month's rows together (issue 17, revision 0015),
and warehouse.agg_customer_activity changes its rows in place (revision 0017).

A year of analytics.v_product_performance reads the product-months of twelve months through
the table's (month, product_id) key; it stays a read of a few thousand pages at 5M orders
only while the rows stay where the initial load wrote them, in key order. The table leaves
two fifths of each page free (revision 0022; a fifth since 0015 was too little for a status
feed, which rewrites a quarter to a third of them at once), so a product-month changed later
(as a batch's deltas change them) is rewritten in its own page: a HOT update, which moves
nothing and adds no key entry. Without the free space every such update moves the row to
another page. agg_customer_activity leaves a fifth, for a status feed's changes of
customer-months all over the history.
"""

from __future__ import annotations

import pytest

from tests.test_drilldown_plans import plan_nodes

# per table: the rows an initial load writes (in key order), and a batch's change of every
# third product-month (1,992 rows: a status feed), of every tenth customer-month (600 rows),
# as its deltas change them
LAYOUTS = {
    "agg_product_monthly": (
        """insert into warehouse.agg_product_monthly (month, product_id, orders, units,
                                                      revenue, margin)
           select (date '2024-01-01' + m * interval '1 month')::date, p, 3, 4, 50.25, 20.10
           from generate_series(0, 11) m, generate_series(1, 500) p
           order by 1, 2""",
        """update warehouse.agg_product_monthly
           set orders = orders + 1, revenue = revenue + 9.99, refreshed_at = now()
           where product_id % 3 = 0"""),
    "agg_customer_activity": (
        """insert into warehouse.agg_customer_activity (month, customer_id, orders)
           select (date '2024-01-01' + m * interval '1 month')::date, c, 2
           from generate_series(0, 11) m, generate_series(1, 500) c
           order by 1, 2""",
        """update warehouse.agg_customer_activity set orders = orders + 1
           where customer_id % 10 = 0"""),
}
KEYS = {"agg_product_monthly": ("month", "product_id"),
        "agg_customer_activity": ("month", "customer_id")}
FILLFACTOR = {"agg_product_monthly": 60, "agg_customer_activity": 80}
CHANGED = {"agg_product_monthly": 1992, "agg_customer_activity": 600}
TABLES = pytest.mark.parametrize("table", sorted(LAYOUTS))


def changed_in_place(conn, table: str) -> tuple[int, int, int]:  # noqa: ANN001
    """The table's change of every tenth key in one transaction: (rows updated, of them
    HOT, rows that moved to another page)."""
    key = ", ".join(KEYS[table])
    with conn.cursor() as cur:
        cur.execute("begin")
        cur.execute(f"create temp table before on commit drop as "
                    f"select {key}, (ctid::text::point)[0]::int as page "
                    f"from warehouse.{table}")
        cur.execute(LAYOUTS[table][1])
        cur.execute("select n_tup_upd, n_tup_hot_upd from pg_stat_xact_user_tables "
                    "where relid = %s::regclass", (f"warehouse.{table}",))
        updated, hot = cur.fetchone()
        cur.execute(f"select count(*) from warehouse.{table} a join before b using ({key}) "
                    f"where (a.ctid::text::point)[0]::int <> b.page")
        moved = cur.fetchone()[0]
        cur.execute("commit")
    return updated, hot, moved


@TABLES
def test_the_table_leaves_room_in_each_page(conn, table: str) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("select reloptions from pg_class where oid = %s::regclass",
                    (f"warehouse.{table}",))
        assert cur.fetchone()[0] == [f"fillfactor={FILLFACTOR[table]}"]


@TABLES
def test_a_changed_row_stays_in_its_page(conn, table: str) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(LAYOUTS[table][0])
    # every row rewritten in place
    assert changed_in_place(conn, table) == (CHANGED[table], CHANGED[table], 0)


@TABLES
def test_without_the_room_the_changed_rows_move(conn, table: str) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(f"alter table warehouse.{table} reset (fillfactor)")
        cur.execute(LAYOUTS[table][0])
    updated, hot, moved = changed_in_place(conn, table)
    assert updated == CHANGED[table]
    assert hot < updated / 10 and moved > updated * 9 / 10


def test_a_fifth_of_room_was_too_little_for_a_status_feed(conn) -> None:  # noqa: ANN001
    """Revision 0015's fill factor: a feed changing a third of the product-months moves the
    rows that do not fit in their page's fifth."""
    with conn.cursor() as cur:
        cur.execute("alter table warehouse.agg_product_monthly set (fillfactor = 80)")
        cur.execute(LAYOUTS["agg_product_monthly"][0])
    updated, hot, moved = changed_in_place(conn, "agg_product_monthly")
    assert updated == 1992 and hot + moved == updated and moved > 0


# three years of 500 products, revenue = product id in every month, in key order, analyzed
THREE_YEARS_SQL = """
insert into warehouse.agg_product_monthly (month, product_id, orders, units, revenue, margin)
select (date '2023-01-01' + m * interval '1 month')::date, p, 3, 4, p, 1
from generate_series(0, 35) m, generate_series(1, 500) p order by 1, 2;
analyze warehouse.agg_product_monthly"""

YEAR_SQL = """
select product_id, product_name, sum(revenue) as revenue
from analytics.v_product_performance
where month >= date '2025-01-01' and month < date '2026-01-01'
group by product_id, product_name order by revenue desc limit 10
"""


def test_a_year_of_products_reads_its_months_by_key_without_ranking(conn) -> None:  # noqa: ANN001
    """The top products of a year: the year's product-months through the key, and no
    ranking (the view's RANK() is left out when the query does not read it)."""
    with conn.cursor() as cur:
        cur.execute(THREE_YEARS_SQL)
        cur.execute("explain (format json) " + YEAR_SQL)
        nodes = plan_nodes(cur.fetchone()[0][0]["Plan"])
        cur.execute("explain (format json) select * from analytics.v_product_performance "
                    "where month = date '2025-03-01'")
        ranked = plan_nodes(cur.fetchone()[0][0]["Plan"])
    reads = [(n["Node Type"], n.get("Index Name")) for n in nodes
             if n.get("Relation Name") == "agg_product_monthly"]
    assert reads == [("Index Scan", "agg_product_monthly_pkey")]
    assert [n for n in nodes if n["Node Type"] == "WindowAgg"] == []
    assert [n["Node Type"] for n in ranked].count("WindowAgg") == 1


def test_a_year_of_products_is_summed_by_product_before_it_is_named(conn) -> None:  # noqa: ANN001
    """analytics.v_product_yearly: the year's product-months through the key range of their
    months, summed by product, and only then joined to the current names (through
    v_product_performance the names are joined to every product-month first)."""
    with conn.cursor() as cur:
        cur.execute("select warehouse.ensure_dim_date(date '2023-01-01', date '2025-12-31')")
        cur.execute(THREE_YEARS_SQL)
        cur.execute("select year, product_id, orders, units, revenue, margin "
                    "from analytics.v_product_yearly where year = 2025 "
                    "order by revenue desc, product_id limit 2")
        assert cur.fetchall() == [(2025, 500, 36, 48, 6000, 12), (2025, 499, 36, 48, 5988, 12)]
        cur.execute("select year, count(*), sum(orders) from analytics.v_product_yearly "
                    "group by year order by year")
        assert cur.fetchall() == [(2023, 500, 18000), (2024, 500, 18000), (2025, 500, 18000)]
        cur.execute("explain (format json) select product_id, product_name, revenue "
                    "from analytics.v_product_yearly where year = 2025 "
                    "order by revenue desc limit 10")
        nodes = plan_nodes(cur.fetchone()[0][0]["Plan"])
    reads = [(n["Node Type"], n.get("Index Name")) for n in nodes
             if n.get("Relation Name") == "agg_product_monthly"]
    assert reads == [("Index Scan", "agg_product_monthly_pkey")]
    (aggregate,) = [n for n in nodes if n["Node Type"] == "Aggregate"]
    below = plan_nodes(aggregate)
    assert [n for n in below if n.get("Relation Name") == "dim_product"] == []
    assert [n for n in below if n.get("Relation Name") == "agg_product_monthly"] != []
