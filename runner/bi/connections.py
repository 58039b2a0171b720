"""Connection files for Power BI and Tableau, on the analytics views.

- ``runner/bi/powerbi/warehouse.pbids``: a Power BI data source file (JSON): PostgreSQL, the
  warehouse's server and database, Import mode. Opening it starts *Get data* with the
  connection filled in; the Navigator lists the ``analytics`` views (docs/bi.md says which
  to tick for each KPI page).
- ``runner/bi/tableau/<view>.tds``: one Tableau data source (XML) per view the KPI pages use, with
  its columns (types and the views' COMMENTs as descriptions, read from the catalogue) and
  the measures in Tableau's calculation language (average order value per order, not per
  line).

The files are generated, never edited by hand; tests/test_bi_files.py fails when they differ
from what a freshly migrated database generates, and checks they name only existing views
and columns.

    python -m runner.bi.connections --write     # regenerate from the configured database
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from runner.bi.catalog import SCHEMA, view_columns

BI_DIR = Path(__file__).resolve().parent
PBIDS = BI_DIR / "powerbi" / "warehouse.pbids"
TDS_DIR = BI_DIR / "tableau"
SERVER, PORT, DATABASE, LOGIN = "localhost", 5432, "warehouse", "warehouse_bi"


@dataclass(frozen=True)
class Calculation:
    caption: str
    formula: str  # Tableau's calculation language; [column] names the view's columns
    role: str = "measure"
    datatype: str = "real"


ORDERS = Calculation("Order count", "COUNTD([transaction_id])", datatype="integer")
REVENUE = Calculation("Total revenue", "SUM([revenue])")
MARGIN = Calculation("Total margin", "SUM([margin])")
MARGIN_RATE = Calculation("Margin rate", "SUM([margin]) / SUM([revenue])")
UNITS = Calculation("Total units", "SUM([units])", datatype="integer")
# One data source per view of the KPI pages, with its measures.
TABLEAU_SOURCES: dict[str, tuple[Calculation, ...]] = {
    "v_order_categories": (
        ORDERS, REVENUE, MARGIN, MARGIN_RATE,
        Calculation("Average order value", "SUM([revenue]) / COUNTD([transaction_id])"),
        Calculation("Active customer count", "COUNTD([customer_id])", datatype="integer"),
        Calculation("Revenue share", "SUM([revenue]) / TOTAL(SUM([revenue]))"),
    ),
    "v_daily_category_sales": (REVENUE, MARGIN, MARGIN_RATE,
                               UNITS),
    "v_monthly_sales": (
        REVENUE,
        Calculation("Order count", "SUM([orders])", datatype="integer"),
        Calculation("Average order value", "SUM([revenue]) / SUM([orders])"),
        Calculation("Revenue growth",
                    "(SUM([revenue]) - LOOKUP(SUM([revenue]), -1)) "
                    "/ LOOKUP(SUM([revenue]), -1)"),
    ),
    "v_product_payment_monthly": (
        REVENUE, MARGIN, UNITS,
        Calculation("Revenue rank", "RANK(SUM([revenue]))", datatype="integer"),
    ),
    "v_customer_growth": (
        Calculation("New customer count", "SUM([new_customers])", datatype="integer"),
        Calculation("Active customers in month", "SUM([active_customers])",
                    datatype="integer"),
        Calculation("Customers to date", "MAX([cumulative_customers])", datatype="integer"),
    ),
    "v_payment_methods": (
        REVENUE, Calculation("Order count", "SUM([orders])", datatype="integer"),
        Calculation("Revenue share", "SUM([revenue]) / TOTAL(SUM([revenue]))"),
    ),
}
# PostgreSQL type -> (Tableau remote-type code, local type, role, type)
_TYPES = {
    "date": (133, "date", "dimension", "ordinal"),
    "timestamp with time zone": (135, "datetime", "dimension", "ordinal"),
    "bigint": (20, "integer", "measure", "quantitative"),
    "integer": (3, "integer", "measure", "quantitative"),
    "text": (129, "string", "dimension", "nominal"),
    "boolean": (11, "boolean", "dimension", "nominal"),
}
_NUMERIC = (131, "real", "measure", "quantitative")
_KEYS = re.compile(r"(_id|_key)$")  # identifiers are dimensions, never summed

def pbids() -> str:
    return json.dumps({
        "version": "0.1",
        "connections": [{
            "details": {"protocol": "postgresql",
                        "address": {"server": f"{SERVER}:{PORT}", "database": DATABASE}},
            "options": {},
            "mode": "Import",
        }],
    }, indent=2) + "\n"


def _type(pg_type: str) -> tuple[int, str, str, str]:
    return _NUMERIC if pg_type.startswith("numeric") else _TYPES[pg_type]


def tds(view: str, columns: list[tuple[str, str, str | None]]) -> str:
    """A Tableau data source on one view: connection, relation, columns, measures."""
    source = ElementTree.Element("datasource", {
        "formatted-name": f"Warehouse {view}", "inline": "true", "version": "18.1",
        "xmlns:user": "http://www.tableausoftware.com/xml/user"})
    connection = ElementTree.SubElement(source, "connection", {"class": "federated"})
    named = ElementTree.SubElement(
        ElementTree.SubElement(connection, "named-connections"), "named-connection",
        {"caption": SERVER, "name": "warehouse"})
    ElementTree.SubElement(named, "connection", {
        "class": "postgres", "server": SERVER, "port": str(PORT), "dbname": DATABASE,
        "username": LOGIN, "authentication": "username-password", "sslmode": "",
        "one-time-sql": ""})
    ElementTree.SubElement(connection, "relation", {
        "connection": "warehouse", "name": view, "table": f"[{SCHEMA}].[{view}]",
        "type": "table"})
    records = ElementTree.SubElement(connection, "metadata-records")
    for name, pg_type, _ in columns:
        remote, local, _, _ = _type(pg_type)
        record = ElementTree.SubElement(records, "metadata-record", {"class": "column"})
        for tag, text in (("remote-name", name), ("remote-type", str(remote)),
                          ("local-name", f"[{name}]"), ("parent-name", f"[{view}]"),
                          ("remote-alias", name), ("local-type", local)):
            ElementTree.SubElement(record, tag).text = text
    for name, pg_type, comment in columns:
        _, local, role, kind = _type(pg_type)
        if _KEYS.search(name):
            role, kind = "dimension", "ordinal"
        column = ElementTree.SubElement(source, "column", {
            "name": f"[{name}]", "datatype": local, "role": role, "type": kind})
        if comment:
            run = ElementTree.SubElement(
                ElementTree.SubElement(ElementTree.SubElement(column, "desc"),
                                       "formatted-text"), "run")
            run.text = comment
    for calculation in TABLEAU_SOURCES[view]:
        column = ElementTree.SubElement(source, "column", {
            "caption": calculation.caption, "datatype": calculation.datatype,
            "name": f"[{calculation.caption}]", "role": calculation.role,
            "type": "quantitative"})
        ElementTree.SubElement(column, "calculation",
                               {"class": "tableau", "formula": calculation.formula})
    ElementTree.indent(source)
    return ("<?xml version='1.0' encoding='utf-8' ?>\n"
            + ElementTree.tostring(source, encoding="unicode") + "\n")


def files(conn: Any) -> dict[Path, str]:  # noqa: ANN401
    out = {PBIDS: pbids()}
    for view in TABLEAU_SOURCES:
        out[TDS_DIR / f"{view}.tds"] = tds(view, view_columns(conn, view))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bi.connections",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", required=True,
                        help="regenerate runner/bi/powerbi/ and runner/bi/tableau/ from the "
                             "database")
    parser.parse_args(argv)
    from runner.config import load_config
    from runner.db import connect, database_url

    with closing(connect(database_url(load_config()), autocommit=True)) as conn:
        for path, text in files(conn).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"written: {path.relative_to(BI_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
