"""Apache Superset for real (issue 15): the bundle in runner/bi/superset/ imported with Superset's
own command line into a throwaway home, Superset serving on 127.0.0.1, every chart's data
asked of Superset's API and compared with SQL on the same analytics views, and the
dashboard rendered by headless Chromium without errors.

Superset lives in its own virtual environment (runner/bi/superset/.venv, `make superset-venv`;
.ci/run installs it). Without it the tests marked ``superset`` skip, saying so; the check
that the committed bundle equals what the migrated schema generates always runs.
One Superset serves the whole test session (starting it takes about a minute).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from runner.bi.superset import bundle
from runner.bi.superset.start import SUPERSET, prepare, serve_command
from tests.chromium import DevTools, Tab, chromium_binary
from tests.conftest import url_for
from tests.test_dashboard import fetch, generate_batches, run_real_pipeline

needs_superset = pytest.mark.skipif(
    not SUPERSET.exists(),
    reason="Superset is not installed in runner/bi/superset/.venv (make superset-venv); "
    "the Superset tests need it",
)
CENT = Decimal("0.01")
TELEMETRY_HOST = "apachesuperset.gateway.scarf.sh"


# -- the bundle's files ---------------------------------------------------------------------

def test_superset_bundle_is_what_the_migrated_schema_generates(conn) -> None:  # noqa: ANN001
    generated = bundle.bundle_files(bundle.read_views(conn))
    assert bundle.committed_files() == generated, (
        "runner/bi/superset/bundle/ is out of date: regenerate it with "
        "`python -m runner.bi.superset.bundle --write` from a freshly migrated database")


def test_superset_bundle_names_existing_views_and_columns_and_no_password(
    conn, tmp_path: Path  # noqa: ANN001
) -> None:
    archive = bundle.zip_bundle(tmp_path / "b.zip", "postgresql+psycopg2://warehouse_bi@db/w")
    with zipfile.ZipFile(archive) as zipped:
        files = {name: yaml.safe_load(zipped.read(name)) for name in zipped.namelist()}
    (database,) = [f for n, f in files.items() if "/databases/" in n]
    assert database["sqlalchemy_uri"] == "postgresql+psycopg2://warehouse_bi@db/w"
    datasets = [f for n, f in files.items() if "/datasets/" in n]
    for dataset in datasets:
        columns = [r[0] for r in fetch(conn, """
            select column_name from information_schema.columns
            where table_schema = 'analytics' and table_name = %s order by ordinal_position""",
            (dataset["table_name"],))]
        assert [c["column_name"] for c in dataset["columns"]] == columns
        assert all(c["description"] for c in dataset["columns"])  # the views' COMMENTs
    charts = [f for n, f in files.items() if "/charts/" in n]
    assert len(charts) == 6
    assert {c["dataset_uuid"] for c in charts} <= {d["uuid"] for d in datasets}
    (dashboard,) = [f for n, f in files.items() if "/dashboards/" in n]
    filters = dashboard["metadata"]["native_filter_configuration"]
    assert [(f["name"], f["filterType"]) for f in filters] == [
        ("Date", "filter_time"), ("Category", "filter_select"),
        ("Payment method", "filter_select")]
    assert dashboard["metadata"]["cross_filters_enabled"] is True
    with pytest.raises(ValueError, match="no password"):
        bundle.zip_bundle(tmp_path / "c.zip", "postgresql://warehouse_bi:secret@db/w")


# -- a running Superset ---------------------------------------------------------------------

@dataclass
class Server:
    base: str
    admin_password: str
    warehouse_url: str
    log: Path
    token: str = ""

    def api(self, path: str, body: dict | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode() if body is not None else None,
            headers={**({"Content-Type": "application/json"} if body is not None else {}),
                     **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{path}: {exc.code} {exc.read()[:2000]!r}") from exc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"Superset exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as response:
                if response.read() == b"OK":
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"Superset did not answer in 180 s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def superset_server(pg_cluster, warehouse_server, tmp_path_factory  # noqa: ANN001
                    ) -> Iterator[Server]:
    """A warehouse database filled by the real pipeline, and Superset serving the bundle
    on 127.0.0.1, once for the session."""
    workdir = tmp_path_factory.mktemp("superset")
    name = f"superset_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(url_for("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}" template "{warehouse_server.template_dbname}"')
    warehouse_url = url_for(name)
    generate_batches(workdir / "landing")
    run_real_pipeline(warehouse_url, workdir / "landing")
    superset = prepare(workdir / "home", warehouse_url)
    port = free_port()
    log = workdir / "superset.log"
    with log.open("wb") as out:
        process = subprocess.Popen(serve_command(port), env=superset.env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        server = Server(f"http://127.0.0.1:{port}", superset.admin_password, warehouse_url, log)
        wait_healthy(server.base, process, log)
        server.token = server.api("/api/v1/security/login", {
            "username": "admin", "password": superset.admin_password, "provider": "db",
            "refresh": False})["access_token"]
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with admin.cursor() as cur:
            cur.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                        "where datname = %s", (name,))
            cur.execute(f'drop database if exists "{name}"')
        admin.close()


@pytest.fixture
def warehouse(superset_server: Server) -> Iterator[Any]:
    connection = psycopg2.connect(superset_server.warehouse_url, options="-c timezone=UTC")
    connection.autocommit = True
    yield connection
    connection.close()


def charts(server: Server) -> dict[str, dict[str, Any]]:
    listed = server.api("/api/v1/chart/?q=(page_size:100)")["result"]
    return {c["slice_name"]: server.api(f"/api/v1/chart/{c['id']}")["result"] for c in listed}


def chart_rows(server: Server, chart: dict[str, Any], filters: list | None = None
               ) -> list[dict[str, Any]]:
    """The chart's data from Superset: its saved query, with ``filters`` added."""
    if filters is None:
        answer = server.api(f"/api/v1/chart/{chart['id']}/data/?format=json")
    else:
        context = json.loads(chart["query_context"])
        context["queries"][0]["filters"] += filters
        answer = server.api("/api/v1/chart/data", context)
    (result,) = answer["result"]
    assert result["error"] is None, result
    return result["data"]


def money(value: float | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


def month_of(epoch_ms: int) -> date:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).date()


@pytest.mark.superset
@needs_superset
def test_every_superset_chart_shows_the_figures_of_the_views(
    superset_server: Server, warehouse  # noqa: ANN001
) -> None:
    found = charts(superset_server)
    assert set(found) == {c.name for c in bundle.CHARTS}

    rows = chart_rows(superset_server, found["Revenue and margin by month"])
    assert sorted((month_of(r["sales_date"]), money(r["revenue_total"]),
                   money(r["margin_total"])) for r in rows) == fetch(warehouse, """
        select month, revenue, margin from analytics.v_monthly_sales
        where orders > 0 order by month""")

    (kpis,) = chart_rows(superset_server, found["Orders, revenue and average order value"])
    ((orders, revenue),) = fetch(
        warehouse, "select sum(orders), sum(revenue) from analytics.v_daily_sales")
    assert (kpis["order_count"], money(kpis["revenue_total"]),
            money(kpis["avg_order_value"])) == (orders, revenue, money(revenue / orders))

    rows = chart_rows(superset_server, found["Top 10 products by revenue"])
    top = fetch(warehouse, """
        select product_id, product_name, category, sum(revenue), sum(units), sum(orders)
        from analytics.v_product_performance
        group by product_id, product_name, category
        order by sum(revenue) desc, product_id""")
    assert [money(r["revenue_total"]) for r in rows] == [t[3] for t in top[:10]]
    by_id = {t[0]: t for t in top}  # ties may come in either order
    assert [(r["product_id"], r["product_name"], r["category"], money(r["revenue_total"]),
             r["units_total"], r["order_count"]) for r in rows] == [
        by_id[r["product_id"]] for r in rows]

    rows = chart_rows(superset_server, found["Customer growth"])
    assert sorted((month_of(r["month"]), r["new_customers_total"], r["active_customers_total"],
                   r["cumulative_customers_last"]) for r in rows) == fetch(warehouse, """
        select month, new_customers, active_customers, cumulative_customers
        from analytics.v_customer_growth order by month""")

    (active,) = chart_rows(superset_server, found["Active customers"])
    assert active["active_customers"] == fetch(warehouse, """
        select count(distinct customer_id) from analytics.v_sales
        where status = 'completed'""")[0][0]

    rows = chart_rows(superset_server, found["Revenue by payment method"])
    assert {r["payment_method"]: money(r["revenue_total"]) for r in rows} == dict(fetch(
        warehouse, """select payment_method, sum(revenue) from analytics.v_payment_methods
                      group by payment_method"""))


@pytest.mark.superset
@needs_superset
def test_superset_charts_under_a_category_and_payment_filter_equal_the_views(
    superset_server: Server, warehouse  # noqa: ANN001
) -> None:
    """What the native filters send: an order with lines in the category counts once."""
    ((category, method),) = fetch(warehouse, """
        select category, payment_method from analytics.v_daily_category_sales
        group by 1, 2 order by sum(orders) desc, 1, 2 limit 1""")
    filters = [{"col": "category", "op": "IN", "val": [category]},
               {"col": "payment_method", "op": "IN", "val": [method]}]
    found = charts(superset_server)
    (kpis,) = chart_rows(superset_server, found["Orders, revenue and average order value"],
                         filters)
    ((orders, revenue),) = fetch(warehouse, """
        select sum(orders), sum(revenue) from analytics.v_daily_category_sales
        where category = %s and payment_method = %s""", (category, method))
    assert (kpis["order_count"], money(kpis["revenue_total"]),
            money(kpis["avg_order_value"])) == (orders, revenue, money(revenue / orders))
    (active,) = chart_rows(superset_server, found["Active customers"], filters)
    assert active["active_customers"] == fetch(warehouse, """
        select count(distinct customer_id) from analytics.v_sales
        where status = 'completed' and payment_method = %s and product_id in (
            select product_id from analytics.v_product_performance where category = %s)""",
        (method, category))[0][0]
    rows = chart_rows(superset_server, found["Revenue and margin by month"], filters)
    assert sorted((month_of(r["sales_date"]), money(r["revenue_total"])) for r in rows) == fetch(
        warehouse, """
        select date_trunc('month', sales_date)::date, sum(revenue)
        from analytics.v_daily_category_sales where category = %s and payment_method = %s
        group by 1 order by 1""", (category, method))


@pytest.mark.superset
@pytest.mark.browser
@needs_superset
@pytest.mark.skipif(chromium_binary() is None, reason="Chromium is not installed")
def test_superset_dashboard_renders_in_headless_chromium_without_errors(
    superset_server: Server, tmp_path: Path
) -> None:
    browser = DevTools(chromium_binary(), tmp_path)
    try:
        tab = Tab(browser, width=1400, height=1600, offline=False)
        tab.send("Page.navigate", {"url": superset_server.base + "/login/"})
        tab.wait_for("document.getElementById('csrf_token') !== null")
        assert tab.evaluate(f"""(async () => {{
            const body = new URLSearchParams({{username: 'admin',
                password: {json.dumps(superset_server.admin_password)},
                csrf_token: document.getElementById('csrf_token').value}});
            const r = await fetch('/login/', {{method: 'POST', body}});
            return r.ok; }})()""")
        tab.send("Page.navigate", {"url": superset_server.base +
                                   f"/superset/dashboard/{bundle.DASHBOARD_SLUG}/?standalone=2"})
        tab.wait_for(f"""(() => {{
            const holders = document.querySelectorAll('.dashboard-component-chart-holder');
            return holders.length === {len(bundle.CHARTS)} &&
              Array.from(holders).every(h => h.querySelector('canvas, table, .header-line')) &&
              document.querySelectorAll('.loading').length === 0; }})()""", timeout=120)
        tab.evaluate("new Promise(r => setTimeout(r, 1500))")  # animations settle
        shot = tab.screenshot(tmp_path / "superset-dashboard.png", whole_page=False)
        print(f"\nSuperset dashboard screenshot: {shot}")
        assert tab.evaluate("document.querySelectorAll('[role=alert]').length") == 0
        assert tab.evaluate("document.body.innerText.includes('Unexpected error')") is False
        errors = [e for e in tab.events("Runtime.exceptionThrown")]
        errors += [e for e in tab.events("Runtime.consoleAPICalled") if e["type"] == "error"]
        logged = [e["entry"] for e in tab.events("Log.entryAdded")
                  if e["entry"]["level"] == "error"]
        # Superset 6.1's menu holds a telemetry image of an outside host: the content
        # security policy of runner/bi/superset/superset_config.py blocks it (the browser says so
        # once); every other error fails the test.
        errors += [e for e in logged if not (
            e["source"] == "security" and TELEMETRY_HOST in e["text"] and "blocked" in e["text"])]
        assert errors == []
        # nothing left the machine: every request to another host was blocked by the policy
        blocked = {e["requestId"] for e in tab.events("Network.loadingFailed")
                   if e.get("blockedReason") == "csp"}
        outside = [e["request"]["url"] for e in tab.events("Network.requestWillBeSent")
                   if not e["request"]["url"].startswith((superset_server.base, "data:", "blob:"))
                   and e["requestId"] not in blocked]
        assert outside == []
    finally:
        browser.close()
