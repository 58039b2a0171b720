"""Power BI and Tableau connection files (runner/bi/connections.py, issue 15): they parse (JSON,
XML), name only existing views and columns (read from the catalogue), are what a migrated
database generates, and the Tableau measures compute the views' own figures: average order
value per order, not per line.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from xml.etree import ElementTree

from runner.bi import connections
from tests import test_warehouse
from tests.test_analytics_filters import two_category_shop
from tests.test_warehouse import Shop

shop = test_warehouse.shop  # the fixture, shared
FIELD = re.compile(r"\[([^\]]+)\]")


def view_columns(shop: Shop, view: str) -> list[str]:
    return [r[0] for r in shop.rows("""
        select column_name from information_schema.columns
        where table_schema = 'analytics' and table_name = %s order by ordinal_position""",
        (view,))]


def test_connection_files_are_what_the_migrated_schema_generates(shop: Shop) -> None:
    for path, text in connections.files(shop.cur.connection).items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is out of date: `python -m runner.bi.connections --write` from a freshly "
            "migrated database")


def test_pbids_is_a_postgresql_connection_to_the_warehouse(shop: Shop) -> None:
    data = json.loads(connections.PBIDS.read_text(encoding="utf-8"))
    assert data["version"] == "0.1"
    (connection,) = data["connections"]
    assert connection["details"] == {
        "protocol": "postgresql",
        "address": {"server": "localhost:5432", "database": "warehouse"}}
    assert connection["mode"] == "Import"


def test_tds_files_name_only_existing_views_and_columns(shop: Shop) -> None:
    files = sorted(connections.TDS_DIR.glob("*.tds"))
    assert [f.stem for f in files] == sorted(connections.TABLEAU_SOURCES)
    for path in files:
        root = ElementTree.parse(path).getroot()
        assert root.tag == "datasource"
        (relation,) = root.iter("relation")
        view = relation.get("name")
        assert relation.get("table") == f"[analytics].[{view}]"
        columns = view_columns(shop, view)
        assert columns, f"{path}: no view analytics.{view}"
        assert [r.findtext("remote-name") for r in root.iter("metadata-record")] == columns
        calculations = {c.get("caption"): c.find("calculation").get("formula")
                        for c in root.findall("column") if c.find("calculation") is not None}
        plain = [c.get("name") for c in root.findall("column")
                 if c.find("calculation") is None]
        assert plain == [f"[{c}]" for c in columns]
        assert not {c.lower() for c in calculations} & {c.lower() for c in columns}, path
        for caption, formula in calculations.items():
            assert set(FIELD.findall(formula)) <= set(columns), (path, caption, formula)
        (connection,) = root.iter("named-connection")
        assert connection.find("connection").get("dbname") == "warehouse"
        assert connection.find("connection").get("username") == "warehouse_bi"
        assert all(not key.startswith("password") for element in root.iter()
                   for key in element.attrib), path  # a login, never a password


def sql_of(formula: str) -> str | None:
    """A Tableau aggregate formula as SQL (None for table calculations)."""
    if re.search(r"TOTAL|LOOKUP|RANK|WINDOW_|RUNNING_", formula):
        return None
    text = formula.replace("COUNTD(", "count(distinct ")
    return FIELD.sub(lambda m: m.group(1), text)


def test_tableau_measures_compute_the_views_figures(shop: Shop) -> None:
    """On an order with a toy and a book: order value per order, not per line."""
    two_category_shop(shop)
    figures = {}
    for view, calculations in connections.TABLEAU_SOURCES.items():
        for calculation in calculations:
            expression = sql_of(calculation.formula)
            if expression:
                figures[(view, calculation.caption)] = shop.value(
                    f"select {expression} from analytics.{view}")
    ((orders, revenue),) = shop.rows(
        "select sum(orders), sum(revenue) from analytics.v_daily_sales")
    assert figures[("v_order_categories", "Order count")] == orders == 3
    assert figures[("v_order_categories", "Total revenue")] == revenue == Decimal("54.00")
    aov = figures[("v_order_categories", "Average order value")]
    assert round(aov, 2) == Decimal("18.00")  # 54.00 over 3 orders, not over 5 lines
    assert round(figures[("v_monthly_sales", "Average order value")], 2) == Decimal("18.00")
    assert figures[("v_order_categories", "Active customer count")] == 2
    assert figures[("v_customer_growth", "Customers to date")] == 3
