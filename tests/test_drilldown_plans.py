"""Drill-downs of analytics.v_sales read one customer's, one order's, one product's month's or
one day's lines through the fact's indexes, not the whole fact (issue 17; revision 0010); the
active customers of whole months read analytics.v_customer_activity's months through the key
of warehouse.agg_customer_activity, not the fact.

The plans are read through EXPLAIN on a fact of 3 years, 2,000 customers, 300 products and
60,000 lines (statistics gathered), where a scan of the fact would be the wrong plan; no
timings. Each test fails when the index it names is dropped.
"""

from __future__ import annotations

import json

import pytest

FACT_SQL = """
insert into warehouse.dim_customer (customer_key, customer_id, country, signup_date,
                                    valid_from, valid_to, is_current, source_batch_id)
select n, n, 'DE', date '2023-01-01', '-infinity', 'infinity', true, 1
from generate_series(1, 2000) n;
insert into warehouse.dim_product (product_key, product_id, product_name, category,
                                   unit_price, cost, valid_from, valid_to, is_current,
                                   source_batch_id)
select n, n, 'Product ' || n, 'Category ' || n % 10, 10, 4, '-infinity', 'infinity', true, 1
from generate_series(1, 300) n;
select warehouse.ensure_dim_date(date '2023-01-01', date '2025-12-31');
insert into warehouse.fact_sales (
    item_id, transaction_id, date_key, customer_key, product_key, payment_method_key,
    transaction_ts, quantity, unit_price, discount, line_amount, line_cost,
    line_margin, source_batch_id)
select n, n / 3 + 1, warehouse.date_key(warehouse.utc_date(ts)), (n::bigint * 7919) % 2000 + 1,
       (n::bigint * 104729) % 300 + 1, -1, ts, 1, 10, 0, 10, 4, 6, 1
from generate_series(1, 60000) n,
     lateral (select timestamptz '2023-01-01 00:00+00'
                     + (n / 3) * interval '1 day' * 1095 / 20000 as ts) t;
insert into warehouse.fact_order_status (transaction_id, status_code, source_batch_id)
select n, 'completed', 1 from generate_series(1, 20001) n;
analyze warehouse.fact_sales;
analyze warehouse.fact_order_status;
analyze warehouse.dim_customer;
analyze warehouse.dim_product;
analyze warehouse.dim_date;
"""

DRILL_DOWNS = {
    "fact_sales_customer_idx":
        "select * from analytics.v_sales where customer_id = 17",
    "fact_sales_transaction_idx":
        "select * from analytics.v_sales where transaction_id = 4242",
    "fact_sales_product_date_idx":
        "select * from analytics.v_sales where product_id = 42 "
        "and sales_date >= date '2024-03-01' and sales_date < date '2024-04-01'",
    "fact_sales_date_idx":
        "select * from analytics.v_sales where sales_date = date '2024-03-15'",
}


def plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


def fact_access(conn, sql: str) -> list[tuple[str, str | None]]:  # noqa: ANN001
    """How the plan reads warehouse.fact_sales: (node type, index) per access."""
    with conn.cursor() as cur:
        cur.execute("explain (format json) " + sql)
        (plan,) = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)[0]
    return [(node["Node Type"], node.get("Index Name"))
            for node in plan_nodes(plan["Plan"])
            if node.get("Relation Name") == "fact_sales"]


@pytest.fixture
def history(conn):  # noqa: ANN001, ANN201
    with conn.cursor() as cur:
        cur.execute(FACT_SQL)
    return conn


@pytest.mark.parametrize("index", sorted(DRILL_DOWNS))
def test_drill_down_reads_the_fact_through_its_index(history, index: str) -> None:  # noqa: ANN001
    accesses = fact_access(history, DRILL_DOWNS[index])
    assert len(accesses) == 1
    node_type, used = accesses[0]
    assert node_type in ("Index Scan", "Bitmap Heap Scan", "Bitmap Index Scan"), accesses
    if node_type == "Bitmap Heap Scan":  # the index is named on the bitmap scan below it
        with history.cursor() as cur:
            cur.execute("explain " + DRILL_DOWNS[index])
            text = "\n".join(row[0] for row in cur.fetchall())
        assert f"Bitmap Index Scan on {index}" in text
    else:
        assert used == index


def test_without_the_customer_index_one_customer_scans_the_whole_fact(history) -> None:  # noqa: ANN001
    with history.cursor() as cur:
        cur.execute("drop index warehouse.fact_sales_customer_idx")
    assert fact_access(history, DRILL_DOWNS["fact_sales_customer_idx"]) == [
        ("Seq Scan", None)]


def test_active_customers_of_a_quarter_read_the_quarter_of_the_activity_aggregate(
        history) -> None:  # noqa: ANN001
    with history.cursor() as cur:
        cur.execute("call warehouse.refresh_aggregates('2023-01-01', '2025-12-31')")
        cur.execute("analyze warehouse.agg_customer_activity")
        cur.execute("explain (format json) select count(distinct customer_id) "
                    "from analytics.v_customer_activity "
                    "where month between date '2024-01-01' and date '2024-03-01'")
        (plan,) = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)[0]
    reads = [(node["Node Type"], node.get("Relation Name"), node.get("Index Name"))
             for node in plan_nodes(plan["Plan"]) if node["Node Type"].endswith("Scan")]
    assert reads in (
        [("Index Only Scan", "agg_customer_activity", "agg_customer_activity_pkey")],
        [("Index Scan", "agg_customer_activity", "agg_customer_activity_pkey")],
        [("Bitmap Heap Scan", "agg_customer_activity", None),
         ("Bitmap Index Scan", None, "agg_customer_activity_pkey")]), reads


def test_best_sellers_read_their_stored_keys_and_rank_nothing(history) -> None:  # noqa: ANN001
    """bi.md's best seller of every category, month by month: the stored keys joined to
    their figures and names, no aggregate or ranking of the product-months at read time."""
    with history.cursor() as cur:
        cur.execute("call warehouse.refresh_aggregates('2023-01-01', '2025-12-31')")
        cur.execute("analyze warehouse.agg_product_monthly")
        cur.execute("analyze warehouse.agg_category_best_sellers")
        cur.execute("explain (format json) select month, category, product_id, product_name, "
                    "revenue from analytics.v_category_best_sellers order by month, category")
        (plan,) = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)[0]
    nodes = plan_nodes(plan["Plan"])
    assert {node.get("Relation Name") for node in nodes} >= {
        "agg_category_best_sellers", "agg_product_monthly", "dim_product"}
    assert [node["Node Type"] for node in nodes
            if node["Node Type"] in ("Aggregate", "WindowAgg")] == []
