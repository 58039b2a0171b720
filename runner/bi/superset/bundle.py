"""The Superset bundle: one database connection (no password), datasets on the analytics
views, charts for the four KPI areas (revenue trends, product performance, customer growth,
payment methods) and one dashboard with native filters (date, category, payment method) and
cross-filtering, as the YAML files of Superset's import format (version 1.0.0).

runner/bi/superset/bundle/ holds the files. They are generated, never edited by hand: the datasets'
columns, types and descriptions come from the catalogue of a migrated database (the views'
COMMENTs, which Superset would not read by itself), the charts and the dashboard from the
specs below. tests/test_superset.py fails when the files differ from what a freshly migrated
database generates.

    python -m runner.bi.superset.bundle --write   # regenerate the bundle/ folder (DATABASE_URL)
    python -m runner.bi.superset.bundle --zip FILE --uri postgresql://warehouse_bi@host:5432/warehouse

``--zip`` packs the committed files into an archive for ``superset import-dashboards``, with
the connection's URI replaced by ``--uri`` (a URI with a password is refused: Superset keeps
passwords encrypted in its own metadata, set them there).

Every chart's metric is exact under every filter the dashboard offers: orders and average
order value count distinct orders of ``v_order_categories`` (an order with lines in two
categories counts once under a filter on both, once under each), revenue, units and margin
are sums, active customers distinct customers.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import uuid
import zipfile
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from runner.bi.catalog import SCHEMA, view_columns, view_comment

BUNDLE_DIR = Path(__file__).resolve().parent / "bundle"
ROOT_FOLDER = "warehouse_kpis"  # the folder inside the zip (Superset drops it)
NAMESPACE = uuid.UUID("6f1f5a52-5d4e-4b0c-9f0e-3a1de6a7c015")  # fixes every uuid of the bundle
DATABASE_NAME = "Warehouse"
DEFAULT_URI = "postgresql+psycopg2://warehouse_bi@localhost:5432/warehouse"
DASHBOARD_TITLE = "E-commerce KPIs"
DASHBOARD_SLUG = "warehouse-kpis"
TIMESTAMP = "2026-12-03T00:00:00+00:00"  # metadata.yaml's; fixed so the files are stable
TEMPORAL_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")
FILTERED_COLUMNS = ("category", "payment_method")  # the native select filters' columns


@dataclass(frozen=True)
class Metric:
    name: str
    expression: str
    description: str  # its first words, up to a colon, label the metric in charts

    @property
    def label(self) -> str:
        return self.description.split(":")[0].split(" (")[0]


@dataclass(frozen=True)
class Dataset:
    view: str
    time_column: str
    metrics: tuple[Metric, ...]


REVENUE = Metric("revenue_total", "SUM(revenue)", "Revenue: sum of line amounts")
MARGIN = Metric("margin_total", "SUM(margin)", "Margin: revenue minus cost")
UNITS = Metric("units_total", "SUM(units)", "Units: units sold")
DATASETS = (
    Dataset("v_daily_category_sales", "sales_date", (REVENUE, MARGIN, UNITS)),
    Dataset("v_order_categories", "sales_date", (
        Metric("order_count", "COUNT(DISTINCT transaction_id)",
               "Orders: distinct completed orders (under a category filter: those with lines "
               "in the category)"),
        REVENUE,
        Metric("avg_order_value",
               "ROUND(SUM(revenue) / NULLIF(COUNT(DISTINCT transaction_id), 0), 2)",
               "Average order value: revenue per order, not per line"),
        Metric("active_customers", "COUNT(DISTINCT customer_id)",
               "Active customers: distinct customers with a matching completed order"),
        MARGIN,
    )),
    Dataset("v_product_payment_monthly", "month", (
        REVENUE, UNITS, MARGIN,
        Metric("order_count", "SUM(orders)",
               "Orders holding the product (an order has one month and one payment method, "
               "so these add up per product)"),
    )),
    Dataset("v_customer_growth", "month", (
        Metric("new_customers_total", "SUM(new_customers)", "New customers: sign-ups"),
        Metric("active_customers_total", "SUM(active_customers)",
               "Active customers of the month (a month's figure; months do not add up)"),
        Metric("cumulative_customers_last", "MAX(cumulative_customers)",
               "Cumulative customers: signed up by the end of the month"),
    )),
)


@dataclass(frozen=True)
class Chart:
    number: int  # its id in the bundle; Superset gives it another on import
    name: str
    viz_type: str
    dataset: str
    metrics: tuple[str, ...]
    groupby: tuple[str, ...] = ()
    row_limit: int = 10_000
    width: int = 6
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(NAMESPACE, f"chart:{self.name}"))

    @property
    def time_axis(self) -> bool:
        return self.viz_type.startswith("echarts_timeseries")


CHARTS = (
    Chart(1, "Revenue and margin by month", "echarts_timeseries_bar", "v_daily_category_sales",
          ("revenue_total", "margin_total"), width=12),
    Chart(2, "Orders, revenue and average order value", "table", "v_order_categories",
          ("order_count", "revenue_total", "avg_order_value"), row_limit=10, width=8),
    Chart(3, "Top 10 products by revenue", "table", "v_product_payment_monthly",
          ("revenue_total", "units_total", "order_count"),
          ("product_id", "product_name", "category"), row_limit=10),
    Chart(4, "Customer growth", "echarts_timeseries_line", "v_customer_growth",
          ("new_customers_total", "active_customers_total", "cumulative_customers_last"),
          width=12),
    Chart(5, "Active customers", "big_number_total", "v_order_categories",
          ("active_customers",), width=4),
    Chart(6, "Revenue by payment method", "pie", "v_order_categories",
          ("revenue_total",), ("payment_method",), row_limit=100),
)
LAYOUT = ((2, 5), (1,), (3, 6), (4,))  # rows of the dashboard, chart numbers


# -- the catalogue ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str | None


def read_views(conn: Any) -> dict[str, tuple[str | None, list[Column]]]:  # noqa: ANN401
    """Each dataset's view: its COMMENT and its columns, from the catalogue."""
    return {d.view: (view_comment(conn, d.view), [Column(*c) for c in view_columns(conn, d.view)])
            for d in DATASETS}


# -- the files --------------------------------------------------------------------------------

def _uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


def database_file(uri: str = DEFAULT_URI) -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": uri,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {"allows_virtual_table_explore": True, "schema_options": {},
                  "metadata_params": {}, "engine_params": {}},
        "uuid": _uuid("database", DATABASE_NAME),
        "version": "1.0.0",
    }


def dataset_file(dataset: Dataset, comment: str | None, columns: Sequence[Column]
                 ) -> dict[str, Any]:
    return {
        "table_name": dataset.view,
        "main_dttm_col": dataset.time_column,
        "description": comment,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "catalog": None,
        "schema": SCHEMA,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": _uuid("dataset", dataset.view),
        "metrics": [{
            "metric_name": m.name, "verbose_name": m.label, "metric_type": None,
            "expression": m.expression, "description": m.description, "d3format": None,
            "currency": None, "extra": None, "warning_text": None,
        } for m in dataset.metrics],
        "columns": [{
            "column_name": c.name, "verbose_name": None, "is_dttm": c.type in TEMPORAL_TYPES,
            "is_active": True, "type": c.type.upper(), "advanced_data_type": None,
            "groupby": True, "filterable": True, "expression": None,
            "description": c.description, "python_date_format": None, "extra": None,
        } for c in columns],
        "version": "1.0.0",
        "database_uuid": _uuid("database", DATABASE_NAME),
    }


def _dataset(name: str) -> Dataset:
    (dataset,) = [d for d in DATASETS if d.view == name]
    return dataset


def chart_params(chart: Chart) -> dict[str, Any]:
    """The chart's form data, as Superset's explore view saves it."""
    time_column = _dataset(chart.dataset).time_column
    params: dict[str, Any] = {
        "viz_type": chart.viz_type,
        "datasource": "0__table",  # set to the imported dataset by the import
        "adhoc_filters": [{"clause": "WHERE", "comparator": "No filter",
                           "expressionType": "SIMPLE", "operator": "TEMPORAL_RANGE",
                           "subject": time_column}],
        "row_limit": chart.row_limit,
        "color_scheme": "supersetColors",
        "extra_form_data": {},
        "dashboards": [],
    }
    if chart.time_axis:
        params.update({
            "x_axis": time_column, "time_grain_sqla": "P1M", "metrics": list(chart.metrics),
            "groupby": list(chart.groupby), "x_axis_sort_asc": True,
            "x_axis_time_format": "%b %Y", "y_axis_format": "SMART_NUMBER",
            "show_legend": True, "legendType": "scroll", "legendOrientation": "top",
            "rich_tooltip": True, "truncateXAxis": True, "comparison_type": "values",
            "orientation": "vertical", "markerEnabled": True,
        })
    elif chart.viz_type == "table":
        params.update({
            "query_mode": "aggregate", "groupby": list(chart.groupby),
            "metrics": list(chart.metrics), "all_columns": [], "percent_metrics": [],
            "timeseries_limit_metric": chart.metrics[0], "order_desc": True,
            "server_page_length": 10, "table_timestamp_format": "smart_date",
            "show_cell_bars": True, "include_search": False,
        })
    elif chart.viz_type == "big_number_total":
        params.update({"metric": chart.metrics[0], "header_font_size": 0.4,
                       "subheader_font_size": 0.15, "y_axis_format": "SMART_NUMBER",
                       "time_format": "smart_date"})
    elif chart.viz_type == "pie":
        params.update({
            "metric": chart.metrics[0], "groupby": list(chart.groupby),
            "sort_by_metric": True, "show_labels": True, "labels_outside": True,
            "label_type": "key_percent", "number_format": "SMART_NUMBER", "donut": True,
            "innerRadius": 40, "outerRadius": 70, "show_legend": True,
            "legendType": "scroll", "legendOrientation": "top",
        })
    else:
        raise ValueError(f"chart {chart.name!r}: no form data for {chart.viz_type}")
    return params


def chart_query(chart: Chart) -> dict[str, Any]:
    """The query of the chart's saved query context (what its data API answers)."""
    time_column = _dataset(chart.dataset).time_column
    columns: list[Any] = list(chart.groupby)
    if chart.time_axis:
        columns.insert(0, {"timeGrain": "P1M", "columnType": "BASE_AXIS",
                           "sqlExpression": time_column, "label": time_column,
                           "expressionType": "SQL"})
    return {
        "filters": [{"col": time_column, "op": "TEMPORAL_RANGE", "val": "No filter"}],
        "extras": {"having": "", "where": ""},
        "applied_time_extras": {},
        "columns": columns,
        "metrics": list(chart.metrics),
        "orderby": [] if chart.time_axis else [[chart.metrics[0], False]],
        "annotation_layers": [],
        "row_limit": chart.row_limit,
        "series_limit": 0,
        "order_desc": True,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }


def chart_file(chart: Chart) -> dict[str, Any]:
    params = chart_params(chart)
    query_context = {"datasource": {"id": 0, "type": "table"}, "force": False,
                     "queries": [chart_query(chart)], "form_data": params,
                     "result_format": "json", "result_type": "full"}
    return {
        "slice_name": chart.name,
        "description": None,
        "certified_by": None,
        "certification_details": None,
        "viz_type": chart.viz_type,
        "params": params,
        "query_context": json.dumps(query_context, sort_keys=True),
        "cache_timeout": None,
        "uuid": chart.uuid,
        "version": "1.0.0",
        "dataset_uuid": _uuid("dataset", chart.dataset),
    }


def unfiltered_charts() -> list[int]:
    """Charts whose dataset lacks the category and payment-method columns: out of the scope
    of those filters and of cross-filters (on such columns)."""
    return [c.number for c in CHARTS if c.dataset == "v_customer_growth"]


def _position() -> dict[str, Any]:
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "parents": ["ROOT_ID"],
                    "children": [f"ROW-{i}" for i in range(1, len(LAYOUT) + 1)]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": DASHBOARD_TITLE}},
    }
    charts = {c.number: c for c in CHARTS}
    for row_number, row in enumerate(LAYOUT, start=1):
        row_id = f"ROW-{row_number}"
        position[row_id] = {"type": "ROW", "id": row_id, "parents": ["ROOT_ID", "GRID_ID"],
                            "meta": {"background": "BACKGROUND_TRANSPARENT"},
                            "children": [f"CHART-{n}" for n in row]}
        for number in row:
            chart = charts[number]
            position[f"CHART-{number}"] = {
                "type": "CHART", "id": f"CHART-{number}", "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {"chartId": number, "uuid": chart.uuid, "width": chart.width,
                         "height": 50, "sliceName": chart.name},
            }
    return position


def _native_filter(key: str, name: str, filter_type: str, column: str | None,
                   description: str) -> dict[str, Any]:
    select = filter_type == "filter_select"
    return {
        "id": f"NATIVE_FILTER-{key}",
        "name": name,
        "filterType": filter_type,
        "type": "NATIVE_FILTER",
        "targets": [{"column": {"name": column},
                     "datasetUuid": _uuid("dataset", "v_daily_category_sales")}]
        if column else [{}],
        "controlValues": ({"multiSelect": True, "enableEmptyFilter": False,
                           "defaultToFirstItem": False, "inverseSelection": False,
                           "searchAllOptions": False} if select
                          else {"enableEmptyFilter": False}),
        "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
        "cascadeParentIds": [],
        "scope": {"rootPath": ["ROOT_ID"], "excluded": unfiltered_charts() if select else []},
        "description": description,
    }


def dashboard_file() -> dict[str, Any]:
    cross_filtering = [c.number for c in CHARTS if c.viz_type in ("pie", "table")]
    return {
        "dashboard_title": DASHBOARD_TITLE,
        "description": None,
        "css": "",
        "slug": DASHBOARD_SLUG,
        "certified_by": "",
        "certification_details": "",
        "published": True,
        "uuid": _uuid("dashboard", DASHBOARD_TITLE),
        "position": _position(),
        "metadata": {
            "color_scheme": "supersetColors",
            "refresh_frequency": 0,
            "expanded_slices": {},
            "timed_refresh_immune_slices": [],
            "default_filters": "{}",
            "label_colors": {},
            "shared_label_colors": [],
            "color_scheme_domain": [],
            "cross_filters_enabled": True,
            "global_chart_configuration": {
                "scope": {"rootPath": ["ROOT_ID"], "excluded": unfiltered_charts()},
            },
            "chart_configuration": {
                str(n): {"id": n, "crossFilters": {"scope": "global"}}
                for n in cross_filtering
            },
            "native_filter_configuration": [
                _native_filter("date", "Date", "filter_time", None,
                               "UTC days of the orders; monthly charts keep the months whose "
                               "first day falls in the range"),
                _native_filter("category", "Category", "filter_select", "category",
                               "Product category (current version): the lines of the "
                               "category; an order with lines in two categories is one order "
                               "of each"),
                _native_filter("payment_method", "Payment method", "filter_select",
                               "payment_method", "Orders paid with the method"),
            ],
        },
        "version": "1.0.0",
    }


def bundle_files(views: dict[str, tuple[str | None, list[Column]]]) -> dict[str, str]:
    """Path in the bundle -> YAML text, for every file."""
    files = {
        "metadata.yaml": {"version": "1.0.0", "type": "Dashboard", "timestamp": TIMESTAMP},
        f"databases/{DATABASE_NAME}.yaml": database_file(),
    }
    for dataset in DATASETS:
        comment, columns = views[dataset.view]
        files[f"datasets/{DATABASE_NAME}/{dataset.view}.yaml"] = dataset_file(
            dataset, comment, columns)
    for chart in CHARTS:
        slug = chart.name.replace(" ", "_").replace(",", "")
        files[f"charts/{slug}_{chart.number}.yaml"] = chart_file(chart)
    files[f"dashboards/{DASHBOARD_TITLE.replace(' ', '_')}.yaml"] = dashboard_file()
    return {path: _yaml(content) for path, content in sorted(files.items())}


def _yaml(content: dict[str, Any]) -> str:
    return yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)


def committed_files() -> dict[str, str]:
    return {path.relative_to(BUNDLE_DIR).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(BUNDLE_DIR.rglob("*.yaml"))}


def write_bundle(files: dict[str, str]) -> None:
    for path in BUNDLE_DIR.rglob("*.yaml"):
        path.unlink()
    for name, text in files.items():
        target = BUNDLE_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def zip_bundle(out: Path, uri: str) -> Path:
    """The committed files as an archive to import, the connection pointing at ``uri``."""
    if urlsplit(uri).password:
        raise ValueError("the bundle's database URI must hold no password; set it in "
                         "Superset (Settings > Database connections) after the import")
    database = f"databases/{DATABASE_NAME}.yaml"
    files = committed_files()
    if database not in files:
        raise FileNotFoundError(f"{BUNDLE_DIR / database} is missing: run "
                                "`python -m runner.bi.superset.bundle --write`")
    connection = yaml.safe_load(files[database])
    connection["sqlalchemy_uri"] = uri
    files[database] = _yaml(connection)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(f"{ROOT_FOLDER}/{name}", text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bi.superset.bundle",
                                     description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true",
                        help="regenerate runner/bi/superset/bundle/ from the configured database")
    action.add_argument("--zip", type=Path, metavar="FILE", help="write the archive to import")
    parser.add_argument("--uri", default=DEFAULT_URI,
                        help=f"the warehouse's SQLAlchemy URI for --zip (default {DEFAULT_URI})")
    args = parser.parse_args(argv)
    if args.zip:
        print(f"bundle written: {zip_bundle(args.zip, args.uri)}")
        return 0
    from runner.config import load_config
    from runner.db import connect, database_url

    with closing(connect(database_url(load_config()), autocommit=True)) as conn:
        write_bundle(bundle_files(read_views(conn)))
    print(f"bundle regenerated: {BUNDLE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
