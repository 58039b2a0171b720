"""The KPI dashboard: one self-contained HTML file built from the analytics views.

``write_dashboard(conn_or_url, out_path)`` queries the BI views (docs/data-contract.md,
"BI views", and the filter views of docs/bi.md) and ``etl.v_freshness``, and writes
``runner/templates/dashboard.html`` with plotly's ``plotly.min.js`` and the data embedded
(both gzip-compressed): one file that opens offline. The page filters by date range,
category and payment method and drills from months to days, from a category to its products
and a product's trend, and from a payment method to its monthly share, all in the browser.

Every figure the page shows is exact for every selection it allows, so the data it embeds
is chosen per figure (the grain of each, and why it is exact):

- revenue, units, discount, margin: additive, from ``v_daily_category_sales`` (day x
  category x payment method) and, for all categories, ``v_daily_payment_sales``;
- orders and average order value: distinct orders are not additive across categories, so
  the page never adds them across categories: one category's orders come from
  ``v_daily_category_sales`` (each order once per category; an order has one day and one
  payment method, so they add up over days and methods), all categories' from
  ``v_daily_payment_sales``. The category filter selects one category or all;
- active customers (distinct over any range of days): one compact row per customer, day
  and payment method with the categories bought (``v_order_categories``), counted in the
  page;
- new customers: signups per day (``v_daily_signups``);
- products: ``v_product_payment_monthly`` with names from ``v_product_performance``, so
  product rankings are over whole calendar months, as that view ranks them.

Size: at 1M orders the rows above are about a million small integers; they are embedded as
typed columns (the narrowest integer type that holds each), compressed with gzip and
base64-encoded, and unpacked by the browser's own ``DecompressionStream``. This is written
here rather than taken from a library because no library packs numpy columns for a
browser with nothing to load. ``analytics.v_sales`` (one row per order line) is never read.
Strings reach the page as JSON (escaped for a ``<script>`` element) and are put into the
DOM as text, never as markup.

A banner tops the page when a batch is held by a batch check (its figures and those of every
later batch are missing) or when the latest processed batch warned (``_check_banner``, from
``etl.batch`` and ``etl.dq_event``; none for a reader who cannot read ``etl``).
"""

from __future__ import annotations

import base64
import gzip
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

import numpy as np
import plotly.offline
import psycopg2
import psycopg2.errors
import psycopg2.extensions

from runner.db import connect
from runner.status import Freshness  # etl.v_freshness's row, read by both

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parent / "templates" / "dashboard.html"
TOP_PRODUCTS = 10

Connection = psycopg2.extensions.connection

# The queries; every one reads an analytics view.
CATEGORY_GRID_SQL = """
select sales_date, category, payment_method, orders, units, revenue, discount, margin
from analytics.v_daily_category_sales
order by sales_date, category, payment_method
"""
PAYMENT_GRID_SQL = """
select sales_date, payment_method, orders, units, revenue, discount, margin
from analytics.v_daily_payment_sales
order by sales_date, payment_method
"""
SIGNUPS_SQL = """
select signup_date, new_customers from analytics.v_daily_signups order by signup_date
"""
PRODUCTS_SQL = """
select distinct on (product_id) product_id, product_name, category, brand
from analytics.v_product_performance
order by product_id, month desc
"""
PRODUCT_GRID_SQL = """
select month, product_id, payment_method, orders, units, revenue, margin
from analytics.v_product_payment_monthly
order by product_id, month, payment_method
"""
# Active customers: one row per customer, day and payment method, with the categories.
CUSTOMER_DAYS_SQL = """
select customer_id, sales_date, payment_method, array_agg(distinct category) as categories
from analytics.v_order_categories
where customer_id is not null
group by customer_id, sales_date, payment_method
order by customer_id, sales_date, payment_method
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
_MARKERS = re.compile(r"/\*@@(PLOTLY_JS|DASHBOARD_DATA|DASHBOARD_COLUMNS)@@\*/")
# Integer column types, narrowest first: (numpy dtype, name of the JavaScript typed array).
_INT_TYPES = (
    (np.uint8, "Uint8Array"), (np.uint16, "Uint16Array"), (np.int32, "Int32Array"),
    (np.float64, "Float64Array"),
)


class DashboardError(RuntimeError):
    """The dashboard could not be built; the message says what to do."""


@dataclass(frozen=True)
class DashboardData:
    """What the page embeds: JSON (names, dates, freshness) and integer columns."""

    meta: dict[str, Any]
    columns: dict[str, np.ndarray]


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
        "dashboard written to %s (%d days, %d categories, %d products, %d customer-days, "
        "%d bytes)", out, data.meta["days"], len(data.meta["categories"]),
        len(data.meta["products"]["id"]), len(data.columns["cr_day"]), len(html.encode()),
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
) -> DashboardData:
    """Everything the page shows: names and dates as JSON, figures as integer columns."""
    generated_at = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        category_grid = _query(conn, CATEGORY_GRID_SQL)
        payment_grid = _query(conn, PAYMENT_GRID_SQL)
        signups = _query(conn, SIGNUPS_SQL)
        products = _query(conn, PRODUCTS_SQL)
        product_grid = _query(conn, PRODUCT_GRID_SQL)
        customer_days = _query(conn, CUSTOMER_DAYS_SQL)
    except psycopg2.errors.UndefinedTable as exc:
        raise DashboardError(
            f"the analytics views are missing ({exc.pgerror.strip() if exc.pgerror else exc});"
            " run `python -m runner migrate` first"
        ) from exc
    freshness, freshness_error = _freshness(conn)

    days = [r[0] for r in payment_grid] + [r[0] for r in signups]
    first_day = min(days) if days else generated_at.date()
    last_day = max(days) if days else first_day
    first_month = first_day.replace(day=1)
    categories = _names({r[1] for r in category_grid} | {p[2] for p in products})
    methods = _names({r[1] for r in payment_grid})
    axes = _Axes(first_day, first_month, _index(categories), _index(methods),
                 _index([p[0] for p in products]))
    columns = {
        **_category_grid(category_grid, axes),
        **_payment_grid(payment_grid, axes),
        **_signups(signups, axes),
        **_product_grid(product_grid, axes),
        **_customer_days(customer_days, axes),
    }
    meta = {
        "check_banner": _check_banner(conn),
        "generated_at": _iso_utc(generated_at),
        "top_products": TOP_PRODUCTS,
        "max_age_seconds": max_age.total_seconds() if max_age is not None else None,
        "freshness": _freshness_json(freshness),
        "freshness_error": freshness_error,
        "has_sales": bool(payment_grid),
        "first_day": first_day.isoformat(),
        "days": (last_day - first_day).days + 1,
        "first_month": first_month.isoformat(),
        "months": _month_number(last_day) - _month_number(first_month) + 1,
        "categories": categories,
        "payment_methods": methods,
        "products": _columns(products, ["id", "name", "category", "brand"]),
    }
    meta["products"]["category"] = [axes.category[c] for c in meta["products"]["category"]]
    return DashboardData(meta, columns)


@dataclass(frozen=True)
class _Axes:
    """Positions of days, months, categories, payment methods and products in the page."""

    first_day: date
    first_month: date
    category: dict[Any, int]
    method: dict[Any, int]
    product: dict[Any, int]

    def day(self, value: date) -> int:
        return (value - self.first_day).days

    def month(self, value: date) -> int:
        return _month_number(value) - _month_number(self.first_month)


def _month_number(value: date) -> int:
    return value.year * 12 + value.month - 1


def _names(values: set[Any]) -> list[Any]:
    """Sorted, null (an unknown product's category) last."""
    return sorted((v for v in values if v is not None), key=str) + (
        [None] if None in values else [])


def _index(values: Sequence[Any]) -> dict[Any, int]:
    return {value: position for position, value in enumerate(values)}


def _cents(value: Decimal) -> int:
    return int(value * 100)


def _category_grid(rows: Sequence[tuple], axes: _Axes) -> dict[str, np.ndarray]:
    return _grid("cg", rows, [axes.day, axes.category.__getitem__, axes.method.__getitem__],
                 ["day", "category", "method"])


def _payment_grid(rows: Sequence[tuple], axes: _Axes) -> dict[str, np.ndarray]:
    return _grid("pg", rows, [axes.day, axes.method.__getitem__], ["day", "method"])


def _grid(prefix: str, rows: Sequence[tuple], keys: list, names: list[str]
          ) -> dict[str, np.ndarray]:
    """Key columns (positions) then orders, units, revenue, discount, margin (cents)."""
    width = len(keys)
    out = {f"{prefix}_{name}": np.array([key(r[i]) for r in rows], dtype=np.int64)
           for i, (key, name) in enumerate(zip(keys, names, strict=True))}
    out[f"{prefix}_orders"] = np.array([r[width] for r in rows], dtype=np.int64)
    out[f"{prefix}_units"] = np.array([r[width + 1] for r in rows], dtype=np.int64)
    for offset, name in enumerate(("revenue", "discount", "margin"), start=width + 2):
        out[f"{prefix}_{name}"] = np.array([_cents(r[offset]) for r in rows], dtype=np.int64)
    return out


def _signups(rows: Sequence[tuple], axes: _Axes) -> dict[str, np.ndarray]:
    return {"su_day": np.array([axes.day(r[0]) for r in rows], dtype=np.int64),
            "su_count": np.array([r[1] for r in rows], dtype=np.int64)}


def _product_grid(rows: Sequence[tuple], axes: _Axes) -> dict[str, np.ndarray]:
    return {
        "pp_product": np.array([axes.product[r[1]] for r in rows], dtype=np.int64),
        "pp_month": np.array([axes.month(r[0]) for r in rows], dtype=np.int64),
        "pp_method": np.array([axes.method[r[2]] for r in rows], dtype=np.int64),
        "pp_orders": np.array([r[3] for r in rows], dtype=np.int64),
        "pp_units": np.array([r[4] for r in rows], dtype=np.int64),
        "pp_revenue": np.array([_cents(r[5]) for r in rows], dtype=np.int64),
        "pp_margin": np.array([_cents(r[6]) for r in rows], dtype=np.int64),
    }


def _customer_days(rows: Sequence[tuple], axes: _Axes) -> dict[str, np.ndarray]:
    """Rows sorted by customer and day: how many rows each customer has, and per row the
    day (as the gap to the customer's previous row; the first as a position), the payment
    method, and its categories as a count plus a flat list."""
    customers = np.array([r[0] for r in rows], dtype=np.int64)
    day = np.array([axes.day(r[1]) for r in rows], dtype=np.int64)
    first_of_customer = np.ones(len(rows), dtype=bool)
    first_of_customer[1:] = customers[1:] != customers[:-1]
    gap = day.copy()
    gap[1:] = np.where(first_of_customer[1:], day[1:], day[1:] - day[:-1])
    categories = [sorted(axes.category[c] for c in r[3]) for r in rows]
    starts = np.flatnonzero(first_of_customer)
    return {
        "cr_runs": np.diff(np.append(starts, len(rows))),
        "cr_day": gap,
        "cr_method": np.array([axes.method[r[2]] for r in rows], dtype=np.int64),
        "cr_ncat": np.array([len(c) for c in categories], dtype=np.int64),
        "cr_cats": np.array([c for cats in categories for c in cats], dtype=np.int64),
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


def pack_columns(columns: dict[str, np.ndarray]) -> tuple[str, dict[str, list]]:
    """Integer columns as one gzip-compressed, base64-encoded buffer, each in the narrowest
    type that holds its values, little-endian, its bytes split into planes (every value's
    first byte, then every second byte, ...: small numbers leave planes of zeros, which
    gzip packs to almost nothing). Returns the text and {name: [type, offset, length]}."""
    layout: dict[str, list] = {}
    parts: list[bytes] = []
    offset = 0
    for name, values in columns.items():
        dtype, js_type = _narrowest(values)
        little = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
        planes = little.view(np.uint8).reshape(len(values), little.itemsize).T.tobytes()
        layout[name] = [js_type, offset, len(values)]
        parts.append(planes)
        offset += len(planes)
    return gzip_base64(b"".join(parts)), layout


def gzip_base64(data: bytes) -> str:
    """gzip, then base64: how the page embeds plotly.js and the columns (the browser's
    DecompressionStream unpacks them; base64 holds nothing a ``<script>`` could end on)."""
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def _narrowest(values: np.ndarray) -> tuple[type, str]:
    low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    for dtype, js_type in _INT_TYPES:
        if dtype is np.float64:
            if max(abs(low), abs(high)) > 2**53:
                raise DashboardError(f"a figure beyond 2**53 ({low}..{high}) cannot be shown")
            return dtype, js_type
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype, js_type
    raise AssertionError("unreachable: float64 ends the list")


def render_html(data: DashboardData) -> str:
    """The template with plotly.js and the data embedded (one pass, so none of them can
    inject a marker into another). plotly.min.js (4.8 MB) is embedded gzip-compressed
    (1.4 MB), which keeps the file of a million orders well under 10 MB."""
    plotly_js = gzip_base64(plotly.offline.get_plotlyjs().encode("utf-8"))
    packed, layout = pack_columns(data.columns)
    parts = {"PLOTLY_JS": plotly_js, "DASHBOARD_DATA": script_json({**data.meta,
             "columns": layout}), "DASHBOARD_COLUMNS": packed}
    template = TEMPLATE.read_text(encoding="utf-8")
    return _MARKERS.sub(lambda match: parts[match.group(1)], template)
