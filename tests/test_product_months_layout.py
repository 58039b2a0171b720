"""warehouse.agg_product_monthly keeps a month's rows together (issue 17, revision 0015).

A year of analytics.v_product_performance reads the product-months of twelve months through
the table's (month, product_id) key; it stays a read of a few thousand pages at 5M orders
only while the rows stay where the initial load wrote them, in key order. The table leaves
a fifth of each page free, so a product-month changed later (as a batch's deltas change
them) is rewritten in its own page: a HOT update, which moves nothing and adds no key
entry. Without the free space every such update moves the row to another page.
"""

from __future__ import annotations

LOAD_SQL = """
insert into warehouse.agg_product_monthly (month, product_id, orders, units, revenue, margin)
select (date '2024-01-01' + m * interval '1 month')::date, p, 3, 4, 50.25, 20.10
from generate_series(0, 11) m, generate_series(1, 500) p
order by 1, 2
"""


def changed_in_place(conn, every: int) -> tuple[int, int, int]:  # noqa: ANN001
    """Change every ``every``-th product's figures in one transaction, as a batch's
    deltas do: (rows updated, of them HOT, pages whose rows moved elsewhere)."""
    with conn.cursor() as cur:
        cur.execute("begin")
        cur.execute("create temp table before on commit drop as "
                    "select month, product_id, (ctid::text::point)[0]::int as page "
                    "from warehouse.agg_product_monthly")
        cur.execute("update warehouse.agg_product_monthly "
                    "set orders = orders + 1, revenue = revenue + 9.99, refreshed_at = now() "
                    "where product_id %% %s = 0", (every,))
        cur.execute("select n_tup_upd, n_tup_hot_upd from pg_stat_xact_user_tables "
                    "where relid = 'warehouse.agg_product_monthly'::regclass")
        updated, hot = cur.fetchone()
        cur.execute("select count(*) from warehouse.agg_product_monthly a "
                    "join before b using (month, product_id) "
                    "where (a.ctid::text::point)[0]::int <> b.page")
        moved = cur.fetchone()[0]
        cur.execute("commit")
    return updated, hot, moved


def test_the_table_leaves_room_in_each_page(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("select reloptions from pg_class "
                    "where oid = 'warehouse.agg_product_monthly'::regclass")
        assert cur.fetchone()[0] == ["fillfactor=80"]


def test_a_changed_product_month_stays_in_its_page(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(LOAD_SQL)
    # one product in ten, in every month: 600 rows, each rewritten in place
    assert changed_in_place(conn, 10) == (600, 600, 0)


def test_without_the_room_the_changed_rows_move(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("alter table warehouse.agg_product_monthly reset (fillfactor)")
        cur.execute(LOAD_SQL)
    updated, hot, moved = changed_in_place(conn, 10)
    assert updated == 600
    print("ACTUAL", updated, hot, moved)
    assert hot < 60 and moved > 540


YEAR_SQL = """
select product_id, product_name, sum(revenue) as revenue
from analytics.v_product_performance
where month >= date '2025-01-01' and month < date '2026-01-01'
group by product_id, product_name order by revenue desc limit 10
"""


def plan_nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in plan_nodes(child))]


def test_a_year_of_products_reads_its_months_by_key_without_ranking(conn) -> None:  # noqa: ANN001
    """The top products of a year: the year's product-months through the key, and no
    ranking (the view's RANK() is left out when the query does not read it)."""
    with conn.cursor() as cur:
        cur.execute("""
            insert into warehouse.agg_product_monthly (month, product_id, orders, units,
                                                       revenue, margin)
            select (date '2023-01-01' + m * interval '1 month')::date, p, 3, 4, p, 1
            from generate_series(0, 35) m, generate_series(1, 500) p order by 1, 2;
            analyze warehouse.agg_product_monthly""")
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
