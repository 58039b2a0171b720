"""The KPI dashboard: one self-contained HTML file built from the analytics views.

``write_dashboard(conn_or_url, out_path)`` runs a handful of aggregated queries against the
BI views of docs/data-contract.md (``analytics.v_daily_sales``, ``v_monthly_sales``,
``v_product_performance``, ``v_customer_growth``, ``v_payment_methods``) and
``etl.v_freshness``, embeds the results as JSON in ``runner/templates/dashboard.html``
together with plotly's bundled ``plotly.min.js``, and writes one file that opens offline.

Size stays bounded whatever the data volume: one row per day, per month, per category and
month, per payment method and month, and per month of a bounded set of candidate products
(the top ``TOP_PRODUCTS`` of each month and of all time). ``analytics.v_sales`` (one row per
fact row) is never read. The page's JavaScript filters the embedded aggregates by a date
range and re-renders the tiles and charts; every string reaches the page as JSON (escaped
for a ``<script>`` element) and is put into the DOM as text, never as markup.

A banner tops the page when a batch is held by a batch check (its figures and those of every
later batch are missing) or when the latest processed batch warned (``_check_banner``, from
``etl.batch`` and ``etl.dq_event``; none for a reader who cannot read ``etl``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.offline
import psycopg2
import psycopg2.errors
import psycopg2.extensions

from runner.db import connect

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parent / "templates" / "dashboard.html"
TOP_PRODUCTS = 10

Connection = psycopg2.extensions.connection

# name in the page's data -> (query, columns as sent). Every query is an aggregate.
DAILY_SQL = """
select sales_date, orders, units, revenue, discount, margin
from analytics.v_daily_sales
order by sales_date
"""
MONTHLY_SQL = """
select month, orders, units, revenue, discount, margin, avg_order_value, revenue_growth_pct
from analytics.v_monthly_sales
order by month
"""
CATEGORY_SQL = """
select month, category, sum(units) as units, sum(revenue) as revenue, sum(margin) as margin
from analytics.v_product_performance
group by month, category
order by month, category
"""
# Candidates for "top products": the top N of each month and the top N of all time. The
# page ranks the candidates over the chosen range, which is exact for one month and for
# the whole range, and a close approximation in between.
PRODUCT_SQL = """
with product_months as (
    select month, product_id, product_name, category, brand, orders, units, revenue, margin
    from analytics.v_product_performance
),
top_of_month as (
    select product_id
    from (
        select product_id,
               row_number() over (partition by month order by revenue desc, product_id) as place
        from product_months
    ) ranked
    where place <= %(top)s
),
top_of_all_time as (
    select product_id
    from product_months
    group by product_id
    order by sum(revenue) desc, product_id
    limit %(top)s
),
candidates as (
    select product_id from top_of_month
    union
    select product_id from top_of_all_time
)
select pm.month, pm.product_id, pm.product_name, pm.category, pm.brand,
       pm.orders, pm.units, pm.revenue, pm.margin
from product_months pm
join candidates using (product_id)
order by pm.month, pm.product_id
"""
CUSTOMER_SQL = """
select month, new_customers, cumulative_customers, active_customers
from analytics.v_customer_growth
order by month
"""
PAYMENT_SQL = """
select month, payment_method, orders, revenue
from analytics.v_payment_methods
order by month, payment_method
"""
FRESHNESS_SQL = """
select newest_transaction_ts, newest_transaction_age,
       last_successful_run_at, last_successful_run_age
from etl.v_freshness
"""

_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")
_MARKERS = re.compile(r"/\*@@(PLOTLY_JS|DASHBOARD_DATA)@@\*/")


class DashboardError(RuntimeError):
    """The dashboard could not be built; the message says what to do."""


@dataclass(frozen=True)
class Freshness:
    newest_transaction_ts: datetime | None
    newest_transaction_age: timedelta | None
    last_successful_run_at: datetime | None
    last_successful_run_age: timedelta | None


def write_dashboard(
    conn_or_url: Connection | str,
    out_path: str | Path,
    *,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> Path:
    """Query the analytics views and write the dashboard HTML to ``out_path``.

    ``conn_or_url`` is an open psycopg2 connection (left open; in a transaction it is left
    as found) or a database URL (connected and closed here). ``max_age`` marks freshness
    older than it as stale. Returns the path written.
    """
    out = Path(out_path)
    with _connection(conn_or_url) as conn:
        data = collect_data(conn, max_age=max_age, now=now)
    html = render_html(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    log.info(
        "dashboard written to %s (%d days, %d months, %d candidate products, %d bytes)",
        out, len(data["daily"]["date"]), len(data["monthly"]["month"]),
        len(data["products"]["id"]), len(html.encode("utf-8")),
    )
    return out


@contextmanager
def _connection(conn_or_url: Connection | str) -> Iterator[Connection]:
    if not isinstance(conn_or_url, str):
        yield conn_or_url
        return
    conn = connect(conn_or_url, autocommit=True, application_name="warehouse-dashboard")
    try:
        yield conn
    finally:
        conn.close()


def collect_data(
    conn: Connection, *, max_age: timedelta | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready columns (lists per column)."""
    generated_at = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        daily = _query(conn, DAILY_SQL)
        monthly = _query(conn, MONTHLY_SQL)
        categories = _query(conn, CATEGORY_SQL)
        product_rows = _query(conn, PRODUCT_SQL, {"top": TOP_PRODUCTS})
        customers = _query(conn, CUSTOMER_SQL)
        payments = _query(conn, PAYMENT_SQL)
    except psycopg2.errors.UndefinedTable as exc:
        raise DashboardError(
            f"the analytics views are missing ({exc.pgerror.strip() if exc.pgerror else exc});"
            " run `python -m runner migrate` first"
        ) from exc
    freshness, freshness_error = _freshness(conn)
    return {
        "check_banner": _check_banner(conn),
        "generated_at": _iso_utc(generated_at),
        "top_products": TOP_PRODUCTS,
        "max_age_seconds": max_age.total_seconds() if max_age is not None else None,
        "freshness": _freshness_json(freshness),
        "freshness_error": freshness_error,
        "daily": _columns(daily, ["date", "orders", "units", "revenue", "discount", "margin"]),
        "monthly": _columns(
            monthly,
            ["month", "orders", "units", "revenue", "discount", "margin", "avg_order_value",
             "revenue_growth_pct"],
        ),
        "categories": _columns(categories, ["month", "category", "units", "revenue", "margin"]),
        "products": _products(product_rows),
        "product_months": _columns(
            [(r[0], r[1], r[5], r[6], r[7], r[8]) for r in product_rows],
            ["month", "product_id", "orders", "units", "revenue", "margin"],
        ),
        "customers": _columns(customers, ["month", "new", "cumulative", "active"]),
        "payments": _columns(payments, ["month", "method", "orders", "revenue"]),
    }


def _query(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


CHECK_BANNER_SQL = """
with latest as (
    select b.batch_id, b.batch_name from etl.batch b
    where b.status = 'processed' order by b.batch_id desc limit 1
)
select 'held', b.batch_name, etl.hold_message(b.batch_id)
from etl.batch b where b.status = 'held'
union all
select 'warned', latest.batch_name, e.message
from latest join etl.dq_event e on e.batch_id = latest.batch_id and e.severity = 'warn'
"""


def _check_banner(conn: Connection) -> dict[str, str] | None:
    """The banner of held batches, else of the latest batch's warnings; None when neither
    (or when the user cannot read etl: the banner is for the people who run the pipeline)."""
    savepoint = not conn.autocommit  # an error must not abort the caller's transaction
    try:
        with conn.cursor() as cur:
            if savepoint:
                cur.execute("savepoint dashboard_checks")
            cur.execute(CHECK_BANNER_SQL)
            rows = cur.fetchall()
            if savepoint:
                cur.execute("release savepoint dashboard_checks")
    except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.UndefinedTable,
            psycopg2.errors.UndefinedFunction):
        if savepoint:
            with conn.cursor() as cur:
                cur.execute("rollback to savepoint dashboard_checks")
        return None
    held = [message for kind, _, message in rows if kind == "held"]
    if held:
        return {"level": "held", "text": "Figures are incomplete: " + " ".join(held)}
    warned = [message for kind, _, message in rows if kind == "warned"]
    if warned:
        return {"level": "warned", "text": f"The latest batch ({rows[0][1]}) warned: "
                                          + "; ".join(warned) + "."}
    return None


def _freshness(conn: Connection) -> tuple[Freshness | None, str | None]:
    """etl.v_freshness, or the reason it cannot be read (e.g. a reader without etl)."""
    in_transaction = not conn.autocommit
    try:
        with conn.cursor() as cur:
            if in_transaction:
                cur.execute("savepoint dashboard_freshness")
            cur.execute(FRESHNESS_SQL)
            row = cur.fetchone()
            if in_transaction:
                cur.execute("release savepoint dashboard_freshness")
    except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.UndefinedTable) as exc:
        if in_transaction:
            with conn.cursor() as cur:
                cur.execute("rollback to savepoint dashboard_freshness")
        message = (exc.pgerror or str(exc)).strip().splitlines()[0]
        log.warning("freshness not shown: %s", message)
        return None, message
    if row is None:
        return Freshness(None, None, None, None), None
    return Freshness(*row), None


def _freshness_json(freshness: Freshness | None) -> dict[str, Any] | None:
    if freshness is None:
        return None
    return {
        "newest_transaction_ts": _iso_utc(freshness.newest_transaction_ts),
        "newest_transaction_age_seconds": _seconds(freshness.newest_transaction_age),
        "last_successful_run_at": _iso_utc(freshness.last_successful_run_at),
        "last_successful_run_age_seconds": _seconds(freshness.last_successful_run_age),
    }


def _products(rows: Sequence[tuple]) -> dict[str, list]:
    """One entry per candidate product: id, name, category, brand (current version)."""
    seen: dict[int, tuple] = {}
    for row in rows:
        seen.setdefault(row[1], (row[1], row[2], row[3], row[4]))
    ordered = [seen[key] for key in sorted(seen)]
    return _columns(ordered, ["id", "name", "category", "brand"])


def _columns(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> dict[str, list]:
    """Rows to a dict of columns (compact JSON), values made JSON-ready."""
    columns: dict[str, list] = {name: [] for name in names}
    for row in rows:
        for name, value in zip(names, row, strict=True):
            columns[name].append(_json_value(value))
    return columns


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return _iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _seconds(value)
    return value


def _iso_utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds(), 3)


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, ``<!--`` or U+2028."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda match: _SCRIPT_ESCAPES[match.group(0)], text)


def render_html(data: dict[str, Any]) -> str:
    """The template with plotly.js and the data embedded (one pass, so neither can inject
    a marker into the other)."""
    plotly_js = plotly.offline.get_plotlyjs()
    if "</script" in plotly_js.lower():
        raise DashboardError("plotly.min.js holds '</script' and cannot be inlined")
    parts = {"PLOTLY_JS": plotly_js, "DASHBOARD_DATA": script_json(data)}
    template = TEMPLATE.read_text(encoding="utf-8")
    return _MARKERS.sub(lambda match: parts[match.group(1)], template)
