"""The HTML dashboard: built from the analytics views, self-contained, tested in a real
headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``: no port,
no extra dependency), and the BI guide's SQL examples.

The browser tests skip, saying why, only when no Chromium binary is installed
(``apt-get install chromium``; .ci/run installs it).
"""

from __future__ import annotations

import base64
import csv
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from runner.config import PROJECT_ROOT, RetryPolicy
from runner.dashboard import render_html, script_json, write_dashboard
from runner.pipeline import RunOptions, run_pipeline

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser",
                       "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-dev-shm-usage", "--remote-debugging-pipe",
)
CHART_IDS = ("chart-daily", "chart-monthly", "chart-customers", "chart-products",
             "chart-categories", "chart-payments")
KPIS = ("revenue", "orders", "aov", "customers", "margin")
# A product name and a category that would break HTML, JS or plotly's label markup if any
# of them were not escaped (quotes, a closing script tag, a tag plotly understands, an
# ampersand, non-ASCII); 33 characters, so the chart label shows it whole.
HOSTILE_NAME = "Tom's \"Best\" & </script><b>日本</b>"
HOSTILE_CATEGORY = "Toys & <Games>"
GENERATOR_ARGS = ("--batches", "2", "--seed", "3", "--quiet", "--customers", "60",
                  "--products", "24", "--transactions", "400", "--items-per-order", "2",
                  "--start", "2025-01-01", "--days", "150")


def chromium_binary() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if candidate.startswith("/"):
            if os.access(candidate, os.X_OK):
                return candidate
        elif shutil.which(candidate):
            return shutil.which(candidate)
    return None


needs_chromium = pytest.mark.skipif(
    chromium_binary() is None,
    reason="Chromium is not installed (apt-get install chromium chromium-driver); "
    "the dashboard's browser test needs it",
)


# -- a minimal DevTools-protocol client over --remote-debugging-pipe ----------------------

class DevTools:
    """Chromium with ``--remote-debugging-pipe``: commands go to its fd 3, answers and
    events come from its fd 4, each JSON message ended by a NUL byte."""

    def __init__(self, binary: str, workdir: Path) -> None:
        profile = workdir / "profile"
        profile.mkdir()
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Copies numbered 10 or more (close-on-exec), so that placing them on 3 and 4 in the
        # child cannot overwrite one with the other; the placed 3 and 4 survive the exec.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)

        def place_pipe_fds() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.log_path = workdir / "chromium.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                close_fds=False, preexec_fn=place_pipe_fds,
            )
        for fd in (to_browser_r, from_browser_w, child_in, child_out):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read(deadline))
        except TimeoutError:
            pass

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from Chromium in time; log: "
                                   f"{self.log_path}")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited; log: {self.log_path.read_text()}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


class Tab:
    """One page: network offline, console and exceptions recorded, dialogs recorded."""

    def __init__(self, browser: DevTools, width: int, height: int = 900) -> None:
        self.browser = browser
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable")
        self.send("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        self.resize(width, height)

    def send(self, method: str, params: dict | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def resize(self, width: int, height: int = 900) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def open(self, path: Path) -> None:
        self.send("Page.navigate", {"url": path.resolve().as_uri()})

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> None:
        """Poll until ``expression`` is truthy (errors while the page loads count as no)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(expression):
                    return
            except (AssertionError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}; "
                                     f"problems: {self.problems()}")
            time.sleep(0.05)

    def screenshot(self, path: Path) -> Path:
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def events(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.browser.events
                if e.get("method") == method and e.get("sessionId") == self.session]

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, log errors, dialogs."""
        self.browser.drain(0.3)
        found = [f"console.{e['type']}: {e['args']}"
                 for e in self.events("Runtime.consoleAPICalled")
                 if e["type"] in ("error", "assert", "warning")]
        found += [f"exception: {e['exceptionDetails']}"
                  for e in self.events("Runtime.exceptionThrown")]
        found += [f"log {e['entry']['level']}: {e['entry']['text']}"
                  for e in self.events("Log.entryAdded")
                  if e["entry"]["level"] in ("error", "warning")]
        found += [f"dialog: {e['message']}" for e in self.events("Page.javascriptDialogOpening")]
        return found

    def requested_urls(self) -> list[str]:
        return [e["request"]["url"] for e in self.events("Network.requestWillBeSent")]


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
class Expected:
    """What the page must show for a date range, computed here in SQL."""

    revenue: Decimal
    orders: int
    margin: Decimal
    aov: Decimal | None
    revenue_growth: Decimal | None
    customers: int | None
    days_with_sales: int
    months: int
    customer_months: int
    categories: int
    payment_methods: int
    top_products: int


def pct(current: Decimal | int, previous: Decimal | int) -> Decimal | None:
    if not previous:
        return None
    value = Decimal(100) * (Decimal(current) - Decimal(previous)) / Decimal(previous)
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected_for(conn, first: date, last: date) -> Expected:  # noqa: ANN001
    days = (last - first).days + 1
    period = {"from": first, "to": last, "prev_from": first - timedelta(days=days),
              "prev_to": first - timedelta(days=1)}
    ((revenue, orders, margin, prev_revenue, days_with_sales),) = fetch(conn, """
        select coalesce(sum(revenue) filter (where sales_date between %(from)s and %(to)s), 0),
               coalesce(sum(orders) filter (where sales_date between %(from)s and %(to)s), 0),
               coalesce(sum(margin) filter (where sales_date between %(from)s and %(to)s), 0),
               coalesce(sum(revenue) filter (
                   where sales_date between %(prev_from)s and %(prev_to)s), 0),
               count(*) filter (where sales_date between %(from)s and %(to)s)
        from analytics.v_daily_sales
    """, period)
    overlapping = "month <= %(to)s and (month + interval '1 month' - interval '1 day') >= %(from)s"
    ((months,),) = fetch(
        conn, f"select count(*) from analytics.v_monthly_sales where {overlapping}", period)
    ((customer_months, customers),) = fetch(conn, f"""
        select (select count(*) from analytics.v_customer_growth where {overlapping}),
               (select cumulative_customers from analytics.v_customer_growth
                where month <= %(to)s order by month desc limit 1)
    """, period)
    ((categories, top_products),) = fetch(conn, f"""
        select count(distinct category), least(count(distinct product_id), 10)
        from analytics.v_product_performance where {overlapping}
    """, period)
    ((payment_methods,),) = fetch(conn, f"""
        select count(*) from (select payment_method from analytics.v_payment_methods
                              where {overlapping} group by payment_method
                              having sum(revenue) > 0) m
    """, period)
    aov = (Decimal(revenue) / orders).quantize(Decimal("0.01"), ROUND_HALF_UP) if orders else None
    return Expected(Decimal(revenue), int(orders), Decimal(margin), aov,
                    pct(revenue, prev_revenue), customers, days_with_sales, months,
                    customer_months, categories, payment_methods, top_products)


def assert_page_shows(tab: Tab, expected: Expected) -> None:
    shown = tiles(tab)
    assert Decimal(shown["revenue"]["value"]) == expected.revenue
    assert int(shown["orders"]["value"]) == expected.orders
    assert Decimal(shown["margin"]["value"]) == expected.margin
    if expected.aov is None:
        assert shown["aov"]["value"] == ""
    else:
        assert Decimal(shown["aov"]["value"]) == expected.aov
    assert int(shown["customers"]["value"]) == expected.customers
    if expected.revenue_growth is None:
        assert shown["revenue"]["delta"] == ""
        assert shown["revenue"]["deltaText"].startswith("no sales in the previous")
    else:  # JavaScript rounds a double; allow its last-digit difference only
        assert abs(Decimal(shown["revenue"]["delta"]) - expected.revenue_growth) <= Decimal(
            "0.01")
        assert "% vs previous" in shown["revenue"]["deltaText"]

    charts = chart_state(tab)
    assert set(charts) == set(CHART_IDS)
    assert charts["chart-daily"]["traces"] == (2 if expected.days_with_sales else 0)
    assert charts["chart-daily"]["markers"] == 2 * expected.days_with_sales
    assert charts["chart-monthly"]["bars"] == expected.months
    assert charts["chart-customers"]["bars"] == expected.customer_months
    assert charts["chart-customers"]["markers"] == 2 * expected.customer_months
    assert charts["chart-products"]["bars"] == expected.top_products
    assert charts["chart-categories"]["bars"] == 2 * min(expected.categories, 12)
    assert charts["chart-payments"]["slices"] == expected.payment_methods
    for chart_id, chart in charts.items():
        assert chart["svgs"] >= 1, chart_id
        assert (chart["traces"] >= 1) == (chart["points"] > 0), chart_id


# -- tests --------------------------------------------------------------------------------

@pytest.mark.browser
@needs_chromium
def test_dashboard_of_a_real_pipeline_run_renders_every_chart_in_headless_chromium(
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

    html_path = write_dashboard(db_url, tmp_path / "dashboard.html")
    html = html_path.read_text(encoding="utf-8")
    assert html.count("plotly.js v") == 1  # the bundle's banner: inlined exactly once
    assert HOSTILE_NAME not in html and "</script><b>" not in html

    ((first, last),) = fetch(conn, """
        select least(min(d.sales_date), min(g.month)), greatest(max(d.sales_date), max(g.month))
        from analytics.v_daily_sales d, analytics.v_customer_growth g
    """)
    browser = DevTools(chromium_binary(), tmp_path)
    try:
        tab = Tab(browser, width=1280)
        tab.open(html_path)
        wait_rendered(tab, 1)
        assert tab.evaluate("[dashboard.extent.from, dashboard.extent.to]") == [
            first.isoformat(), last.isoformat()]
        assert_page_shows(tab, expected_for(conn, first, last))
        assert all(chart["points"] > 0 for chart in chart_state(tab).values())
        screenshot = tab.screenshot(tmp_path / "dashboard.png")
        print(f"\ndashboard screenshot: {screenshot}")
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
        data = json.loads(tab.evaluate("document.getElementById('dashboard-data').textContent"))
        assert HOSTILE_NAME in data["products"]["name"]
        assert product_id in data["products"]["id"]

        # The date-range filter: a preset, then typed dates, recompute tiles and charts.
        tab.evaluate("document.querySelector('[data-preset=\"30d\"]').click()")
        wait_rendered(tab, 2)
        assert_page_shows(tab, expected_for(conn, last - timedelta(days=29), last))
        middle_from, middle_to = first + timedelta(days=40), first + timedelta(days=70)
        tab.evaluate(
            f"(() => {{ const f = document.getElementById('range-from');"
            f" const t = document.getElementById('range-to');"
            f" f.value = '{middle_from}'; t.value = '{middle_to}';"
            f" t.dispatchEvent(new Event('change')); }})()")
        wait_rendered(tab, 3)
        assert_page_shows(tab, expected_for(conn, middle_from, middle_to))

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
    assert html.count("plotly.js v") == 1
    assert len(html) > 3_000_000  # the bundle itself, not a link to it
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=""", html)
    assert "default-src 'none'" in html  # the page may not fetch anything, by policy


def test_embedded_json_cannot_close_its_script_element() -> None:
    text = script_json({"name": "</script><script>alert(1)</script>", "sep": "a\u2028b&c"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"name": "</script><script>alert(1)</script>", "sep": "a\u2028b&c"}


def test_template_markers_in_data_are_not_expanded() -> None:
    html = render_html({"x": "/*@@PLOTLY_JS@@*/", "daily": {"date": []}})
    assert html.count("plotly.js v") == 1
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
        assert path == tmp_path / "tx.html" and path.stat().st_size > 3_000_000
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
