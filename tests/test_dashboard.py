"""The HTML dashboard: built from the analytics views, self-contained, tested in a real
headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``: no port,
no extra dependency), and the BI guide's SQL examples.

The browser tests skip, saying why, only when no Chromium binary is installed
(``apt-get install chromium``; .ci/run installs it).
"""

from __future__ import annotations

import base64
import csv
import gzip
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import plotly.offline
import psycopg2
import pytest

from runner.config import PROJECT_ROOT, RetryPolicy
from runner.dashboard import DashboardData, render_html, script_json, write_dashboard
from runner.pipeline import RunOptions, run_pipeline
from tests.chromium import DevTools, Tab, chromium_binary

CHART_IDS = ("chart-daily", "chart-monthly", "chart-customers", "chart-products",
             "chart-categories", "chart-payments")
KPIS = ("revenue", "orders", "aov", "active", "new", "margin")
# A product name and a category that would break HTML, JS or plotly's label markup if any
# of them were not escaped (quotes, a closing script tag, a tag plotly understands, an
# ampersand, non-ASCII); 33 characters, so the chart label shows it whole.
HOSTILE_NAME = "Tom's \"Best\" & </script><b>日本</b>"
HOSTILE_CATEGORY = "Toys & <Games>"
GENERATOR_ARGS = ("--batches", "2", "--seed", "3", "--quiet", "--customers", "60",
                  "--products", "24", "--transactions", "400", "--items-per-order", "2",
                  "--start", "2025-01-01", "--days", "150")


needs_chromium = pytest.mark.skipif(
    chromium_binary() is None,
    reason="Chromium is not installed (apt-get install chromium chromium-driver); "
    "the dashboard's browser test needs it",
)


CHART_STATE_JS = """
JSON.stringify(Array.from(document.querySelectorAll('[data-chart]')).map(el => ({
  id: el.id,
  points: Number(el.dataset.points),
  traces: el.querySelectorAll('.main-svg .trace').length,
  bars: el.querySelectorAll('.barlayer .point').length,
  markers: el.querySelectorAll('.scatterlayer .points path').length,
  slices: el.querySelectorAll('.pielayer .slice').length,
  svgs: el.querySelectorAll('svg.main-svg').length
})))
"""
TILES_JS = """
JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll('.tile')).map(t => [
  t.dataset.kpi, {value: t.querySelector('.value').dataset.value,
                  text: t.querySelector('.value').textContent,
                  delta: t.querySelector('.delta').dataset.value,
                  deltaText: t.querySelector('.delta').textContent}])))
"""


def chart_state(tab: Tab) -> dict[str, dict[str, int]]:
    return {c["id"]: c for c in json.loads(tab.evaluate(CHART_STATE_JS))}


def tiles(tab: Tab) -> dict[str, dict[str, str]]:
    return json.loads(tab.evaluate(TILES_JS))


def wait_rendered(tab: Tab, renders: int) -> None:
    tab.wait_for(
        "document.documentElement.dataset.ready === 'true' && "
        f"Number(document.documentElement.dataset.renders) >= {renders}"
    )


# -- data: the real pipeline on generated batches, plus a rename with hostile text --------

def fetch(conn, sql: str, params: tuple | dict = ()) -> list[tuple]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def run_real_pipeline(db_url: str, landing: Path) -> None:
    result = run_pipeline(db_url, RunOptions(landing=landing, retry=RetryPolicy(attempts=2)))
    assert result.status == "succeeded", result.error


def generate_batches(landing: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "generator", "--out", str(landing), *GENERATOR_ARGS],
        check=True, cwd=PROJECT_ROOT,
    )


def deliver_hostile_rename(conn, landing: Path) -> int:  # noqa: ANN001
    """batch_0003: the best-selling product renamed and moved to a new category, with text
    that must be escaped everywhere. Returns its product id."""
    ((product_id, unit_price, cost, brand),) = fetch(conn, """
        select p.product_id, p.unit_price, p.cost, p.brand
        from production.products p
        join (select product_id, sum(revenue) as revenue
              from analytics.v_product_performance group by product_id
              order by revenue desc, product_id limit 1) top using (product_id)
    """)
    batch = landing / "batch_0003"
    batch.mkdir()
    with (batch / "products.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "product_name", "category", "brand", "unit_price",
                         "cost", "updated_at"])
        writer.writerow([product_id, HOSTILE_NAME, HOSTILE_CATEGORY, brand or "", unit_price,
                         cost, ""])
    return product_id


@dataclass(frozen=True)
class Selection:
    """A selection of the page: dates, and a category and payment method (None: all)."""

    first: date
    last: date
    category: str | None = None
    method: str | None = None

    @property
    def previous(self) -> Selection:
        days = (self.last - self.first).days + 1
        return Selection(self.first - timedelta(days=days), self.first - timedelta(days=1),
                         self.category, self.method)

    def months(self) -> tuple[date, date]:
        return self.first.replace(day=1), self.last.replace(day=1)


def pct(current: Decimal | int, previous: Decimal | int) -> Decimal | None:
    if not previous:
        return None
    value = Decimal(100) * (Decimal(current) - Decimal(previous)) / Decimal(previous)
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def filters(sel: Selection, date_column: str = "sales_date") -> tuple[str, dict]:
    """SQL conditions and parameters of a selection on the filter views."""
    where = [f"{date_column} between %(first)s and %(last)s"]
    if sel.category is not None:
        where.append("category = %(category)s")
    if sel.method is not None:
        where.append("payment_method = %(method)s")
    return " and ".join(where), {"first": sel.first, "last": sel.last,
                                 "category": sel.category, "method": sel.method}


def sales_of(conn, sel: Selection) -> dict[str, Any]:  # noqa: ANN001
    """Tile figures of a selection, from the analytics views: one category's orders from
    v_daily_category_sales, all categories' from v_daily_payment_sales."""
    view = "v_daily_category_sales" if sel.category is not None else "v_daily_payment_sales"
    where, params = filters(sel)
    ((orders, units, revenue, margin),) = fetch(conn, f"""
        select coalesce(sum(orders), 0), coalesce(sum(units), 0), coalesce(sum(revenue), 0),
               coalesce(sum(margin), 0)
        from analytics.{view} where {where}""", params)
    ((active,),) = fetch(conn, f"""
        select count(distinct customer_id) from analytics.v_order_categories
        where {where}""", params)
    ((signups,),) = fetch(conn, """
        select coalesce(sum(new_customers), 0) from analytics.v_daily_signups
        where signup_date between %(first)s and %(last)s""", params)
    aov = (Decimal(revenue) / orders).quantize(Decimal("0.01"), ROUND_HALF_UP) if orders else None
    return {"orders": int(orders), "units": int(units), "revenue": Decimal(revenue),
            "margin": Decimal(margin), "aov": aov, "active": int(active), "new": int(signups)}


def assert_tiles_show(tab: Tab, conn, sel: Selection) -> dict[str, Any]:  # noqa: ANN001
    """Every tile's value and its change against the previous period equal SQL."""
    current, previous = sales_of(conn, sel), sales_of(conn, sel.previous)
    shown = tiles(tab)
    for kpi in ("revenue", "margin", "aov"):
        value = shown[kpi]["value"]
        assert (Decimal(value) if value else None) == current[kpi], (kpi, sel)
    for kpi in ("orders", "active", "new"):
        assert int(shown[kpi]["value"]) == current[kpi], (kpi, sel)
    for kpi in KPIS:
        expected = pct(current[kpi], previous[kpi]) if current[kpi] is not None and \
            previous[kpi] is not None else None
        delta = shown[kpi]["delta"]
        if expected is None:
            assert delta == "", (kpi, sel)
        else:  # JavaScript rounds a double; allow its last-digit difference only
            assert abs(Decimal(delta) - expected) <= Decimal("0.01"), (kpi, sel, delta)
    return current


def chart_data(tab: Tab, chart_id: str, trace: int = 0) -> dict[str, Any]:
    """The figures a chart shows: its trace's x, y (or labels, values) and its level."""
    return json.loads(tab.evaluate(f"""JSON.stringify((() => {{
        const el = document.getElementById('{chart_id}');
        const t = (el.data || [])[{trace}] || {{}};
        return {{level: el.dataset.level, points: Number(el.dataset.points), x: t.x, y: t.y,
                 labels: t.labels, values: t.values, customdata: t.customdata}};
    }})())"""))


def click_point(tab: Tab, selector: str, index: int) -> None:
    """A real mouse click (DevTools input events) in the middle of the index-th match."""
    box = tab.evaluate(f"""(() => {{
        const el = document.querySelectorAll({json.dumps(selector)})[{index}];
        if (!el) return null;
        el.scrollIntoView({{block: 'center'}});
        const r = el.getBoundingClientRect();
        return [r.left + r.width / 2, r.top + r.height / 2];
    }})()""")
    assert box, f"nothing to click at {selector} #{index}"
    x, y = box
    tab.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
    # plotly's click reports the point of its last hover, and it throttles hovers (50 ms):
    # a click right after another one reported the previous chart's point (a category
    # clicked again at the products level). Wait until the hover is this point of the
    # chart as drawn now. (A pie's slice handles its own click: nothing to wait for.)
    tab.wait_for(f"""(() => {{
        const el = document.querySelectorAll({json.dumps(selector)})[{index}];
        if (el && el.closest('.pielayer')) return true;
        const gd = el && el.closest('.js-plotly-plot');
        const h = gd && gd._hoverdata && gd._hoverdata[0];
        return !!h && h.pointNumber === {index} && h.data === gd.data[h.curveNumber];
    }})()""", timeout=10)
    for kind in ("mousePressed", "mouseReleased"):
        tab.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                              "clickCount": 1})


def click(tab: Tab, selector: str) -> None:
    tab.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def choose(tab: Tab, select_id: str, label: str | None) -> None:
    """Pick an option of a filter by its text (None: the first, 'All ...')."""
    tab.evaluate(f"""(() => {{
        const s = document.getElementById('{select_id}');
        const o = Array.from(s.options).find((o, i) => {json.dumps(label)} === null ? i === 0
                                                        : o.textContent === {json.dumps(label)});
        s.value = o.value; s.dispatchEvent(new Event('change'));
    }})()""")


class Page:
    """The dashboard in a tab: act, then wait for the re-render that follows."""

    def __init__(self, tab: Tab) -> None:
        self.tab = tab
        self.renders = 1

    def after(self, action: Any, *args: Any) -> None:
        action(self.tab, *args)
        self.renders += 1
        wait_rendered(self.tab, self.renders)


def money_list(values: list) -> list[Decimal]:
    return [Decimal(str(v)).quantize(Decimal("0.01")) for v in values]


def pretty(code: str) -> str:
    return code.replace("_", " ").capitalize()


# -- tests --------------------------------------------------------------------------------

@pytest.mark.browser
@needs_chromium
def test_dashboard_filters_and_drill_downs_show_the_views_figures_in_headless_chromium(
    db_url: str, conn, tmp_path: Path  # noqa: ANN001
) -> None:
    landing = tmp_path / "landing"
    generate_batches(landing)
    run_real_pipeline(db_url, landing)
    product_id = deliver_hostile_rename(conn, landing)
    run_real_pipeline(db_url, landing)

    # docs/bi.md's drill-down reconciles with the aggregate view on these data
    (reconcile,) = [b for b in sql_blocks((PROJECT_ROOT / "docs" / "bi.md").read_text("utf-8"))
                    if b.startswith("-- Reconcile")]
    ((_, orders, revenue, orders_from_lines, revenue_from_lines),) = fetch(conn, reconcile)
    assert (orders, revenue) == (orders_from_lines, revenue_from_lines) and orders > 0
    # the data hold orders with lines in several categories: summed over categories,
    # orders exceed the orders of the total, so a category filter must not add them up
    ((by_category, total),) = fetch(conn, """
        select (select sum(orders) from analytics.v_daily_category_sales),
               (select sum(orders) from analytics.v_daily_sales)""")
    assert by_category > total

    html_path = write_dashboard(db_url, tmp_path / "dashboard.html")
    html = html_path.read_text(encoding="utf-8")
    assert HOSTILE_NAME not in html and "</script><b>" not in html

    ((first, last, first_sale),) = fetch(conn, """
        select least(min(d.sales_date), min(s.signup_date)),
               greatest(max(d.sales_date), max(s.signup_date)), min(d.sales_date)
        from analytics.v_daily_sales d, analytics.v_daily_signups s""")
    ((category, method),) = fetch(conn, """
        select (select category from analytics.v_daily_category_sales where category is not null
                group by category order by sum(orders) desc, category limit 1),
               (select payment_method from analytics.v_daily_payment_sales
                group by payment_method order by sum(orders) desc, payment_method limit 1)""")
    browser = DevTools(chromium_binary(), tmp_path)
    try:
        tab = Tab(browser, width=1280)
        tab.open(html_path)
        wait_rendered(tab, 1)
        page = Page(tab)
        assert tab.evaluate("Plotly.version") == plotly.offline.get_plotlyjs_version()
        assert tab.evaluate("[dashboard.extent.from, dashboard.extent.to]") == [
            first.isoformat(), last.isoformat()]
        everything = Selection(first, last)
        assert_tiles_show(tab, conn, everything)
        assert all(chart["points"] > 0 for chart in chart_state(tab).values())
        assert tab.evaluate("document.getElementById('active-filters').textContent") == \
            f"No filter: everything since {first}"
        print(f"\ndashboard screenshot: {tab.screenshot(tmp_path / 'dashboard.png')}")
        # The modebar's "download as PNG" works under the page's content security policy.
        assert tab.evaluate(
            "Plotly.toImage(document.getElementById('chart-monthly'),"
            " {format: 'png', width: 600, height: 400}).then(url => url.slice(0, 22))"
        ) == "data:image/png;base64,"

        # The hostile product is the top seller: its name is shown as text, whole.
        labels = tab.evaluate(
            "Array.from(document.querySelectorAll('#chart-products .ytick text'))"
            ".sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)"
            ".map(t => t.textContent)")  # top to bottom
        assert labels[0] == HOSTILE_NAME
        assert tab.evaluate(  # "<b>" in the name was not read as plotly's bold markup
            "document.querySelectorAll('#chart-products tspan[style*=\"bold\"]').length") == 0
        assert HOSTILE_CATEGORY in tab.evaluate(
            "Array.from(document.querySelectorAll('#chart-categories .ytick text'))"
            ".map(t => t.textContent)")
        assert HOSTILE_CATEGORY in tab.evaluate(
            "Array.from(document.querySelectorAll('#filter-category option'))"
            ".map(o => o.textContent)")
        data = tab.evaluate("dashboard.data.products")
        assert HOSTILE_NAME in data["name"] and product_id in data["id"]

        # Date filters: a preset, then typed dates; tiles against the previous period.
        page.after(click, '[data-preset="30d"]')
        assert_tiles_show(tab, conn, Selection(last - timedelta(days=29), last))
        middle_from, middle_to = first_sale + timedelta(days=40), first_sale + timedelta(days=70)
        page.after(lambda t: t.evaluate(
            f"(() => {{ const f = document.getElementById('range-from');"
            f" const t = document.getElementById('range-to');"
            f" f.value = '{middle_from}'; t.value = '{middle_to}';"
            f" t.dispatchEvent(new Event('change')); }})()"))
        middle = Selection(middle_from, middle_to)
        assert_tiles_show(tab, conn, middle)

        # Category and payment method, alone and together; chips show and clear them.
        page.after(choose, "filter-category", category)
        in_category = assert_tiles_show(tab, conn, Selection(middle_from, middle_to, category))
        assert in_category["orders"] < sales_of(conn, middle)["orders"]
        page.after(choose, "filter-method", pretty(method))
        both = Selection(middle_from, middle_to, category, method)
        assert_tiles_show(tab, conn, both)
        chips = tab.evaluate("Array.from(document.querySelectorAll('#active-filters .chip'))"
                             ".map(c => c.dataset.filter + ': ' + c.firstChild.textContent)")
        assert chips == [f"range: Dates: {middle_from} to {middle_to}",
                         f"category: Category: {category}",
                         f"method: Payment: {pretty(method)}"]
        page.after(click, '#active-filters .chip[data-filter="category"] button')
        assert_tiles_show(tab, conn, Selection(middle_from, middle_to, None, method))
        page.after(click, "#clear-filters")
        assert_tiles_show(tab, conn, everything)
        page.after(choose, "filter-method", pretty(method))
        by_method = Selection(first, last, None, method)
        assert_tiles_show(tab, conn, by_method)

        # Drill-down: a month opens its days (the method filter applies), and back up.
        months = chart_data(tab, "chart-monthly")
        assert months["level"] == "months"
        page.after(click_point, "#chart-monthly .barlayer .point", 1)
        month = date.fromisoformat(months["x"][1][:10])
        days = chart_data(tab, "chart-monthly")
        assert days["level"] == "days"
        expected_days = fetch(conn, """
            select sales_date, revenue from analytics.v_daily_payment_sales
            where payment_method = %s and date_trunc('month', sales_date) = %s
            order by sales_date""", (method, month))
        assert [x[:10] for x in days["x"]] == [d.isoformat() for d, _ in expected_days]
        assert money_list(days["y"]) == [r for _, r in expected_days]
        page.after(click, '#crumbs-monthly button[data-level="months"]')
        assert chart_data(tab, "chart-monthly")["level"] == "months"

        # A category opens its products, ranked as v_product_performance ranks them (here
        # over every month, paid with the method); a product opens its monthly trend.
        categories = chart_data(tab, "chart-categories")
        position = [c[1] for c in categories["customdata"]].index(category)
        page.after(click_point, "#chart-categories .barlayer .trace:first-child .point",
                   position)
        products = chart_data(tab, "chart-categories")
        assert products["level"] == "products"
        ranking = fetch(conn, """
            with revenue as (
                select pp.product_id, sum(pp.revenue) as revenue
                from analytics.v_product_payment_monthly pp
                join (select distinct product_id, category
                      from analytics.v_product_performance) p using (product_id)
                where p.category = %s and pp.payment_method = %s
                group by pp.product_id)
            select product_id, revenue, rank() over (order by revenue desc)
            from revenue order by revenue desc, product_id limit 15""", (category, method))
        ids = tab.evaluate("dashboard.data.products.id")
        assert [ids[q] for q in products["customdata"]] == [r[0] for r in ranking]
        assert money_list(products["x"]) == [r[1] for r in ranking]
        assert [y.split(" ")[0] for y in products["y"]] == [f"#{r[2]}" for r in ranking]
        page.after(click_point, "#chart-categories .barlayer .point", 0)
        trend = chart_data(tab, "chart-categories")
        assert trend["level"] == "product"
        monthly = dict(fetch(conn, """
            select month, revenue from analytics.v_product_payment_monthly
            where product_id = %s and payment_method = %s""", (ranking[0][0], method)))
        assert money_list(trend["y"]) == [
            monthly.get(date.fromisoformat(x[:10]), Decimal("0.00")) for x in trend["x"]]
        page.after(click, '#crumbs-categories button[data-level="products"]')
        assert chart_data(tab, "chart-categories")["level"] == "products"
        page.after(click, '#crumbs-categories button[data-level="categories"]')
        assert chart_data(tab, "chart-categories")["level"] == "categories"

        # A payment method opens its monthly share (v_payment_methods), and back up.
        page.after(click, '#active-filters .chip[data-filter="method"] button')
        pie = chart_data(tab, "chart-payments")
        assert pie["level"] == "methods" and len(pie["labels"]) == len(fetch(
            conn, "select distinct payment_method from analytics.v_payment_methods"))
        page.after(click_point, "#chart-payments .pielayer .slice", 0)
        shares = chart_data(tab, "chart-payments", trace=1)
        assert shares["level"] == "method"
        opened = tab.evaluate("dashboard.data.payment_methods[dashboard.state.drill.method]")
        expected_share = dict(fetch(conn, """
            select month, 100 * revenue_share from analytics.v_payment_methods
            where payment_method = %s""", (opened,)))
        for x, y in zip(shares["x"], shares["y"], strict=True):
            want = expected_share.get(date.fromisoformat(x[:10]))
            assert (y is None and not want) or abs(Decimal(str(y)) - want) < Decimal("1e-9")
        page.after(click, '#crumbs-payments button[data-level="methods"]')
        assert chart_data(tab, "chart-payments")["level"] == "methods"

        # Responsive: a phone-sized viewport needs no horizontal scrolling.
        tab.resize(390, 844)
        tab.evaluate("new Promise(r => setTimeout(r, 300))")
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        print(f"narrow screenshot: {tab.screenshot(tmp_path / 'dashboard-narrow.png')}")

        assert tab.problems() == []
        # Nothing from the network: the file itself, inline images, the PNG export's blob.
        assert all(url.startswith(("file:", "data:", "blob:")) for url in tab.requested_urls()), \
            tab.requested_urls()
    finally:
        browser.close()


@pytest.mark.browser
@needs_chromium
def test_dashboard_of_an_empty_warehouse_renders_without_errors(
    db_url: str, tmp_path: Path
) -> None:
    html_path = write_dashboard(db_url, tmp_path / "empty.html")
    browser = DevTools(chromium_binary(), tmp_path)
    try:
        tab = Tab(browser, width=1024)
        tab.open(html_path)
        wait_rendered(tab, 1)
        assert tab.evaluate("document.getElementById('range-note').textContent") == \
            "No sales in the warehouse yet"
        assert {c["points"] for c in chart_state(tab).values()} == {0}
        assert tiles(tab)["revenue"]["text"] == "\u2014"
        assert "never" in tab.evaluate("document.getElementById('freshness').textContent")
        print(f"\nempty dashboard screenshot: {tab.screenshot(tmp_path / 'empty.png')}")
        assert tab.problems() == []
    finally:
        browser.close()


def test_dashboard_is_one_file_with_plotly_inlined_and_nothing_fetched(
    db_url: str, tmp_path: Path
) -> None:
    html = write_dashboard(db_url, tmp_path / "d.html").read_text(encoding="utf-8")
    (packed,) = re.findall(r'<script type="application/octet-stream" id="plotly-js">(.*?)<', html)
    assert gzip.decompress(base64.b64decode(packed)).decode() == plotly.offline.get_plotlyjs()
    assert len(html) > 1_000_000  # the bundle itself, not a link to it
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=""", html)
    assert "default-src 'none'" in html  # the page may not fetch anything, by policy


def test_embedded_json_cannot_close_its_script_element() -> None:
    text = script_json({"name": "</script><script>alert(1)</script>", "sep": "a\u2028b&c"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"name": "</script><script>alert(1)</script>", "sep": "a\u2028b&c"}


def test_template_markers_in_data_are_not_expanded() -> None:
    html = render_html(DashboardData({"x": "/*@@PLOTLY_JS@@*/"}, {}))
    assert html.count("/*@@PLOTLY_JS@@*/") == 1
    assert '"x":"/*@@PLOTLY_JS@@*/"' in html


def test_dashboard_reads_no_order_lines_and_works_for_a_reader_without_etl(
    db_url: str, conn, tmp_path: Path  # noqa: ANN001
) -> None:
    """Built from aggregates only: a reader denied analytics.v_sales can still build it;
    without access to etl it shows that freshness is unavailable."""
    with conn.cursor() as cur:
        cur.execute("create role dashboard_reader login in role warehouse_reader")
        cur.execute("revoke select on analytics.v_sales from warehouse_reader")
    try:
        reader_url = db_url.replace("postgres@", "dashboard_reader@", 1)
        html = write_dashboard(reader_url, tmp_path / "reader.html").read_text("utf-8")
        match = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>',
                          html, re.S)
        data = json.loads(match.group(1))
        assert data["freshness"] is None
        assert "permission denied" in data["freshness_error"]
    finally:
        with conn.cursor() as cur:
            cur.execute("drop role dashboard_reader")


def test_an_open_connection_in_a_transaction_is_left_usable(
    db_url: str, conn, tmp_path: Path  # noqa: ANN001
) -> None:
    """The demo passes its own connection: a reader's failed freshness query is rolled back
    to a savepoint, so the caller's transaction goes on."""
    with conn.cursor() as cur:
        cur.execute("create role dashboard_tx_reader login in role warehouse_reader")
    reader = psycopg2.connect(db_url.replace("postgres@", "dashboard_tx_reader@", 1))
    try:
        assert not reader.autocommit
        with reader.cursor() as cur:
            cur.execute("select count(*) from analytics.v_daily_sales")
        path = write_dashboard(reader, tmp_path / "tx.html")
        assert path == tmp_path / "tx.html" and path.stat().st_size > 1_000_000
        with reader.cursor() as cur:
            cur.execute("select 1")
            assert cur.fetchone() == (1,)
        assert not reader.closed
    finally:
        reader.close()
        with conn.cursor() as cur:
            cur.execute("drop role dashboard_tx_reader")


def test_dashboard_command_writes_the_file(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "cli.html"
    env = {**os.environ, "DATABASE_URL": db_url}
    done = subprocess.run(
        [sys.executable, "-m", "runner", "dashboard", "--out", str(out)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"dashboard written: {out.resolve()}" in done.stdout
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")


def sql_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", markdown, re.S)


def test_bi_guide_examples_run_as_the_reader_login_it_creates(
    db_url: str, conn  # noqa: ANN001
) -> None:
    """docs/bi.md, followed literally: the DBA block creates alice, every query runs as her."""
    blocks = sql_blocks((PROJECT_ROOT / "docs" / "bi.md").read_text("utf-8"))
    admin = [b for b in blocks if "CREATE ROLE" in b]
    queries = [b for b in blocks if "CREATE ROLE" not in b]
    assert len(admin) == 1 and len(queries) >= 12
    with conn.cursor() as cur:
        cur.execute("drop role if exists alice")
        cur.execute(admin[0])
    alice = psycopg2.connect(db_url.replace("postgres@", "alice@", 1))
    alice.autocommit = True
    try:
        for query in queries:
            with alice.cursor() as cur:
                cur.execute(query)
                cur.fetchall()
        with alice.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("select count(*) from production.transactions")
    finally:
        alice.close()
        with conn.cursor() as cur:
            cur.execute("drop role alice")
