"""Holds and alerts end to end, through ``python -m runner run`` and real receivers: an HTTP
server on 127.0.0.1 (Apprise ``json://``) and an SMTP server (aiosmtpd, Apprise
``mailto://``) each receive each alert once; a hold stops the run until it is released or
discarded; every event of a multi-batch dirty run is what the CSV files say."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import apprise
import psycopg2
import pytest
from aiosmtpd.controller import Controller

from generator.options import Burst, burst_problems
from runner import alerts
from runner.config import PROJECT_ROOT, AlertSettings
from runner.dashboard import collect_data, write_dashboard
from runner.pipeline import EXIT_HELD, EXIT_OK, RunOptions, run_pipeline
from runner.status import EXIT_HELD as STATUS_EXIT_HELD
from tests.staging_data import fetch
from tests.test_dashboard import DevTools, Tab, chromium_binary, needs_chromium, wait_rendered
from tests.test_runner_pipeline_real import snapshot
from tests.test_runner_stubs import (
    add_batches,
    fast_retry,
    inject,
    install_stub_steps,
    run_cli,
    start_cli,
)
from tests.test_scheduler import get, metric, wait_for

HEADERS = {
    "customers.csv": "customer_id,first_name,last_name,email,phone,city,state,country,"
                     "signup_date,updated_at",
    "products.csv": "product_id,product_name,category,brand,unit_price,cost,updated_at",
    "transactions.csv": "transaction_id,customer_id,transaction_ts,payment_method,status",
    "transaction_items.csv": "item_id,transaction_id,product_id,quantity,unit_price,discount",
}


# -- receivers -----------------------------------------------------------------------------

class HttpReceiver:
    """Apprise json:// posts, kept in order."""

    def __init__(self, port: int = 0) -> None:
        received: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpHandler:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp_receiver() -> Iterator[tuple[str, SmtpHandler]]:
    handler = SmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield (f"mailto://127.0.0.1:{port}?from=warehouse@example.com&to=ops@example.com",
           handler)
    controller.stop()


# -- landing -------------------------------------------------------------------------------

def write_batch(landing: Path, name: str, files: dict[str, list[str]]) -> Path:
    directory = landing / name
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, rows in files.items():
        (directory / file_name).write_text("\n".join([HEADERS[file_name], *rows]) + "\n")
    return directory


def products(names: dict[int, str], bad: set[int] = frozenset()) -> list[str]:
    return [f"{pid},{name},Books,Acme,{'12,50' if pid in bad else '19.90'},7.50,"
            .replace("12,50", '"12,50"') for pid, name in names.items()]


def base_batch(landing: Path) -> None:
    """batch_0001: 10 products, 2 customers, one completed order of product 1."""
    write_batch(landing, "batch_0001", {
        "customers.csv": [f"{c},Ann,Lee,c{c}@example.com,,Paris,,FR,2024-01-15,"
                          for c in (1, 2)],
        "products.csv": products({p: f"Product {p}" for p in range(1, 11)}),
        "transactions.csv": ["10,1,2025-05-01 10:00:00,credit_card,completed"],
        "transaction_items.csv": ["100,10,1,2,19.90,0.00"],
    })


def dirty_batch(landing: Path, name: str = "batch_0002") -> Path:
    """10 products, 9 with a price written 12,50 (invalid_amount): ratio 0.9, held; the
    valid row renames product 1."""
    return write_batch(landing, name, {"products.csv": products(
        {1: "Second name", **{p: f"Product {p}" for p in range(11, 20)}},
        bad=set(range(11, 20)))})


def later_batch(landing: Path) -> None:
    """batch_0003: renames product 1 again (the later batch wins)."""
    write_batch(landing, "batch_0003", {"products.csv": products({1: "Third name"})})


def statuses(conn) -> list[tuple]:  # noqa: ANN001
    return fetch(conn, "select batch_name, status from etl.v_batch_status order by batch_id")


def product_name(conn, product_id: int) -> str:  # noqa: ANN001
    return fetch(conn, "select product_name from production.products where product_id = %s",
                 (product_id,))[0][0]


# -- hold, release, discard ----------------------------------------------------------------

def test_a_held_batch_stops_the_run_and_a_release_lets_the_later_batch_win(
        conn, db_url, tmp_path) -> None:  # noqa: ANN001
    base_batch(tmp_path)
    dirty_batch(tmp_path)
    later_batch(tmp_path)
    done = run_cli(db_url, "run", str(tmp_path))
    assert done.returncode == EXIT_HELD, done.stdout + done.stderr
    assert statuses(conn) == [("batch_0001", "processed"), ("batch_0002", "held"),
                              ("batch_0003", "pending")]
    assert ("error: batch 2 (batch_0002) is held: batch 2 (batch_0002): products.csv: 9 of 10 "
            "rows rejected for any rule (ratio 0.9000), above the error threshold 0.50."
            ) in done.stdout
    assert "CALL etl.release_batch(2);" in done.stdout
    assert "CALL etl.discard_batch(2);" in done.stdout
    assert product_name(conn, 1) == "Product 1"  # nothing of batch 2 merged
    assert fetch(conn, "select count(*) from etl.rejected_row where batch_id = 2") == [(9,)]

    with pytest.raises(psycopg2.Error) as raised, conn.cursor() as cur:
        cur.execute("call etl.process_pending()")
    assert raised.value.pgcode == "WH001"
    assert raised.value.diag.message_primary.startswith(
        "etl.process_pending: run 2 failed at step hold of batch 2: batch 2 (batch_0002) is "
        "held: ")
    assert fetch(conn, "select status, error_step, error_batch_id from etl.pipeline_run "
                       "order by run_id") == [("failed", "hold", 2), ("failed", "hold", 2)]
    again = run_cli(db_url, "status")
    assert again.returncode == STATUS_EXIT_HELD, again.stdout
    assert "Held batches" in again.stdout
    document = json.loads(run_cli(db_url, "status", "--json").stdout)
    assert (document["verdict"], document["exit_code"]) == ("held", STATUS_EXIT_HELD)
    assert [(h["batch_id"], h["batch_name"]) for h in document["held"]] == [(2, "batch_0002")]
    assert document["held"][0]["message"] == fetch(conn, "select etl.hold_message(2)")[0][0]
    assert [(e["batch_name"], e["check"], e["severity"]) for e in document["events"]] == [
        ("batch_0002", "reject_ratio", "error")]

    with conn.cursor() as cur:
        cur.execute("call etl.release_batch(2)")
    assert statuses(conn)[1] == ("batch_0002", "released")
    done = run_cli(db_url, "run", str(tmp_path))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert statuses(conn) == [("batch_0001", "processed"), ("batch_0002", "processed"),
                              ("batch_0003", "processed")]
    assert product_name(conn, 1) == "Third name"  # batch 3 after batch 2: the later wins
    assert run_cli(db_url, "status", "--max-data-age", "off").returncode == 0


def test_after_a_release_the_views_equal_a_run_with_the_threshold_raised(
        conn, db_url, second_db_url, tmp_path) -> None:  # noqa: ANN001
    base_batch(tmp_path)
    dirty_batch(tmp_path)
    later_batch(tmp_path)
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_HELD
    with conn.cursor() as cur:
        cur.execute("call etl.release_batch(2)")
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_OK
    reference = psycopg2.connect(second_db_url)
    reference.autocommit = True
    with reference.cursor() as cur:
        cur.execute("update etl.dq_threshold set error_ratio = 0.95")
    reference.close()
    assert run_cli(second_db_url, "run", str(tmp_path)).returncode == EXIT_OK
    assert snapshot(db_url) == snapshot(second_db_url)


def test_a_discarded_batch_is_skipped_unchanged_and_loads_corrected_or_renamed(
        conn, db_url, tmp_path) -> None:  # noqa: ANN001
    base_batch(tmp_path)
    dirty = dirty_batch(tmp_path)
    later_batch(tmp_path)
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_HELD
    dirty_bytes = (dirty / "products.csv").read_bytes()
    with conn.cursor() as cur:
        cur.execute("call etl.discard_batch(2)")

    done = run_cli(db_url, "run", str(tmp_path))  # the directory is still in the landing
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert "batch_0002: discarded earlier and unchanged since, skipped" in done.stderr
    assert statuses(conn) == [("batch_0001", "processed"), ("batch_0002", "discarded"),
                              ("batch_0003", "processed")]
    assert product_name(conn, 1) == "Third name"

    (dirty / "products.csv").write_text(  # corrected, under the same name
        "\n".join([HEADERS["products.csv"], *products({20: "Fixed"})]) + "\n")
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_OK
    assert statuses(conn)[-1] == ("batch_0002", "processed")
    assert product_name(conn, 20) == "Fixed"

    again = tmp_path / "batch_0004"  # the discarded bytes under another name load again
    again.mkdir()
    (again / "products.csv").write_bytes(dirty_bytes)
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_HELD
    assert statuses(conn)[-1] == ("batch_0004", "held")


# -- alerts --------------------------------------------------------------------------------

def mail_text(message) -> str:  # noqa: ANN001
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    return part.get_payload(decode=True).decode().strip()


def titles(http: HttpReceiver) -> list[str]:
    return [message["title"] for message in http.received]


def test_each_alert_reaches_each_channel_once_with_its_text(
        conn, db_url, tmp_path, http_receiver, smtp_receiver) -> None:  # noqa: ANN001
    mail_url, mailbox = smtp_receiver
    urls = f"{http_receiver.url} {mail_url}"
    base_batch(tmp_path)
    dirty_batch(tmp_path)
    assert run_cli(db_url, "run", str(tmp_path),
                   WAREHOUSE_ALERT_URLS=urls).returncode == EXIT_HELD
    first = ["warehouse: error reject_ratio in batch 2 (batch_0002), products.csv",
             "warehouse: batch 2 (batch_0002) held, run 1 stopped"]
    assert titles(http_receiver) == first
    assert [m["Subject"] for m in mailbox.messages] == first
    event, hold = http_receiver.received
    assert event["message"] == (
        "batch 2 (batch_0002): products.csv: 9 of 10 rows rejected for any rule (ratio "
        "0.9000), above the error threshold 0.50. The batch is held: nothing of it is merged "
        "and the pipeline stops before it. Inspect etl.v_dq_events and etl.v_reject_summary "
        "for batch 2, then CALL etl.release_batch(2); to merge it as validated, or CALL "
        "etl.discard_batch(2); to drop it and deliver corrected files.")
    assert (event["type"], hold["type"]) == ("failure", "failure")
    assert hold["message"] == fetch(conn, "select etl.hold_message(2)")[0][0]
    assert mail_text(mailbox.messages[1]) == hold["message"]

    assert run_cli(db_url, "run", str(tmp_path),
                   WAREHOUSE_ALERT_URLS=urls).returncode == EXIT_HELD  # held still: a new run
    second = [*first, "warehouse: batch 2 (batch_0002) held, run 2 stopped"]
    assert titles(http_receiver) == second
    assert [m["Subject"] for m in mailbox.messages] == second
    assert fetch(conn, "select count(*), count(delivered_at), sum(attempts) "
                       "from etl.alert_delivery") == [(6, 6, 6)]


def test_a_channel_that_is_down_fails_nothing_and_gets_the_alert_next_run(
        conn, db_url, tmp_path) -> None:  # noqa: ANN001
    port = free_port()  # nothing listens there yet
    url = f"json://127.0.0.1:{port}/hook"
    base_batch(tmp_path)
    write_batch(tmp_path, "batch_0002", {"products.csv": products(
        {p: f"Product {p}" for p in range(11, 21)}, bad={11})})  # 1 of 10: a warning
    done = run_cli(db_url, "run", str(tmp_path), WAREHOUSE_ALERT_URLS=url)
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert "the rest is retried on the next run" in done.stderr
    assert fetch(conn, "select attempts, delivered_at is null from etl.alert_delivery") == [
        (1, True)]
    receiver = HttpReceiver(port)
    try:
        assert run_cli(db_url, "run", str(tmp_path), WAREHOUSE_ALERT_URLS=url).returncode == 0
        assert run_cli(db_url, "run", str(tmp_path), WAREHOUSE_ALERT_URLS=url).returncode == 0
        assert titles(receiver) == [
            "warehouse: warning reject_ratio in batch 2 (batch_0002), products.csv"]
        assert receiver.received[0]["type"] == "warning"
    finally:
        receiver.close()
    assert fetch(conn, "select attempts, delivered_at is not null from etl.alert_delivery"
                 ) == [(2, True)]


def test_a_channel_that_never_answers_costs_at_most_its_time_out(conn, db_url) -> None:  # noqa: ANN001
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with conn.cursor() as cur:
            cur.execute("select etl.queue_alert('test:1', 'freshness', 'warning', null, "
                        "'title', 'body')")
        settings = AlertSettings(urls=(f"json://127.0.0.1:{silent.getsockname()[1]}/x",),
                                 timeout=1.0)
        # Apprise loads its ~190 plugins on a process's first use (2.3 s on a busy machine):
        # a cost of the process, once, not of the channel this test times
        apprise.Apprise().add("json://127.0.0.1:1/warm-up")
        began = time.monotonic()
        report = alerts.dispatch(db_url, settings)
        assert time.monotonic() - began < 3.0
    assert (report.delivered, report.failed) == (0, 1)
    assert fetch(conn, "select attempts, delivered_at from etl.alert_delivery") == [(1, None)]


def test_a_freshness_limit_passed_alerts_once_per_stale_period(conn, db_url, tmp_path,
                                                                http_receiver) -> None:  # noqa: ANN001
    base_batch(tmp_path)
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_OK
    for _ in range(2):  # the sale of 2025-05-01 is older than 1 hour: stale, alerted once
        done = run_cli(db_url, "status", "--max-data-age", "1h",
                       WAREHOUSE_ALERT_URLS=http_receiver.url)
        assert done.returncode == 3, done.stdout
    assert titles(http_receiver) == ["warehouse: freshness limit passed"]
    assert http_receiver.received[0]["message"].startswith(
        "The warehouse is stale: the newest sale is ")
    assert fetch(conn, "select alert_key from etl.alert") == [
        ("freshness:data:2025-05-01T10:00:00+00:00",)]


# -- a multi-batch dirty run: each event from the CSV files -----------------------------------

GENERATOR_ARGS = ("--customers", "300", "--products", "40", "--transactions", "1500",
                  "--batches", "7", "--dirty", "0.01", "--quiet")


def csv_facts(path: Path) -> tuple[int, frozenset[str]]:
    """Records after the header (empty lines skipped) and the set of header names."""
    text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = frozenset(name.strip(" \t\r\n").lower() for name in next(reader))
    return sum(1 for fields in reader if fields), header


def expected_events(landing: Path) -> set[tuple]:
    """The events the contract asks for, from the files and the manifests' rejects."""
    events = set()
    history: dict[str, list[tuple[str, int, frozenset[str]]]] = {}
    for batch in sorted(p for p in landing.iterdir() if p.is_dir()):
        manifest = json.loads((batch / "manifest.json").read_text())
        for file_name in HEADERS:
            if not (batch / file_name).exists():
                continue
            rows, header = csv_facts(batch / file_name)
            rejected = manifest["files"][file_name]["rejected"]
            if rows and rejected * 20 > rows:  # the seeded row: warn above 0.05
                severity, limit = ("error", "0.50") if rejected * 2 > rows else ("warn", "0.05")
                observed = (Decimal(rejected) / rows).quantize(Decimal("0.000001"),
                                                                ROUND_HALF_UP)
                events.add((batch.name, file_name, "reject_ratio", severity, observed,
                            Decimal(limit)))
            earlier = history.setdefault(file_name, [])
            recent = [r for _, r, _ in earlier[-10:]]
            if len(recent) >= 5:
                median = Decimal(str(statistics.median(recent)))
                if 3 * rows < median or rows > 3 * median:
                    bound = median / 3 if 3 * rows < median else 3 * median
                    events.add((batch.name, file_name, "volume", "warn", Decimal(rows),
                                bound.quantize(Decimal("0.0001")).normalize()))
            if earlier and earlier[-1][2] != header:
                changed = len(earlier[-1][2] ^ header)
                events.add((batch.name, file_name, "schema_change", "warn", Decimal(changed),
                            None))
            earlier.append((batch.name, rows, header))
    return events


def test_each_event_of_a_dirty_multi_batch_run_matches_the_csv_files(
        conn, db_url, tmp_path) -> None:  # noqa: ANN001
    landing = tmp_path / "landing"
    subprocess.run([sys.executable, "-m", "generator", *GENERATOR_ARGS, "--out", str(landing)],
                   cwd=PROJECT_ROOT, check=True)
    done = run_cli(db_url, "run", str(landing))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    recorded = {(b, f, c, s, o, t if t is None else t.normalize())
                for b, f, c, s, o, t in fetch(
                    conn, 'select batch_name, file_name, "check", severity, observed, '
                          "threshold from etl.v_dq_events")}
    expected = {(b, f, c, s, o, t if t is None else t.normalize())
                for b, f, c, s, o, t in expected_events(landing)}
    assert recorded == expected
    assert {e[2] for e in expected} >= {"reject_ratio", "schema_change"}  # both show
    assert fetch(conn, "select count(*) from etl.alert where kind = 'dq_event'") == [
        (len(expected),)]


# -- the generator's mass defect ------------------------------------------------------------

BURST_ARGS = ("--customers", "100", "--products", "20", "--transactions", "300",
              "--batches", "2", "--dirty", "0.01", "--quiet")


def test_a_defect_burst_changes_only_its_batch_and_file_and_is_held(
        conn, db_url, tmp_path) -> None:  # noqa: ANN001
    plain, burst = tmp_path / "plain", tmp_path / "burst"
    for out, extra in ((plain, ()), (burst, ("--defect-burst",
                                             "transaction_items.csv:invalid_amount:0.9"))):
        subprocess.run([sys.executable, "-m", "generator", *BURST_ARGS, *extra,
                        "--out", str(out)], cwd=PROJECT_ROOT, check=True)
    changed = sorted(str(path.relative_to(plain)) for path in plain.rglob("*.csv")
                     if path.read_bytes() != (burst / path.relative_to(plain)).read_bytes())
    assert changed == ["batch_0002/transaction_items.csv"]
    manifest = json.loads((burst / "batch_0002" / "manifest.json").read_text())
    rows = manifest["files"]["transaction_items.csv"]["rows"]
    broken = sum(1 for d in manifest["defects"] if d["file"] == "transaction_items.csv"
                 and "invalid_amount" in d["rules"])
    assert 0.85 * rows <= broken <= rows
    done = run_cli(db_url, "run", str(burst))
    assert done.returncode == EXIT_HELD, done.stdout + done.stderr
    assert statuses(conn) == [("batch_0001", "processed"), ("batch_0002", "held")]
    rejected = manifest["files"]["transaction_items.csv"]["rejected"]
    ratio = (Decimal(rejected) / rows).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    assert (f"transaction_items.csv: {rejected} of {rows} rows rejected for any rule (ratio "
            f"{ratio}), above the error threshold 0.50") in done.stdout


# -- the dashboard's banner -------------------------------------------------------------------

@pytest.mark.browser
@needs_chromium
def test_the_dashboard_shows_a_banner_while_a_batch_is_held(conn, db_url, tmp_path) -> None:  # noqa: ANN001
    base_batch(tmp_path)
    dirty_batch(tmp_path)
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_HELD
    html_path = write_dashboard(db_url, tmp_path / "dashboard.html")
    browser = DevTools(chromium_binary(), tmp_path)
    try:
        tab = Tab(browser, width=1280)
        tab.open(html_path)
        wait_rendered(tab, 1)
        banner = tab.evaluate("(() => { const b = document.getElementById('check-banner');"
                              " return [b.hidden, b.className, b.textContent]; })()")
        held = fetch(conn, "select etl.hold_message(2)")[0][0]
        assert banner == [False, "check-banner held", f"Figures are incomplete: {held}"]
        assert tab.problems() == []
    finally:
        browser.close()


def test_the_dashboard_banner_names_the_latest_batchs_warnings_and_nothing_when_clean(
        conn, db_url, tmp_path) -> None:  # noqa: ANN001
    base_batch(tmp_path)
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_OK
    assert collect_data(conn).meta["check_banner"] is None
    write_batch(tmp_path, "batch_0002", {"products.csv": products(
        {p: f"Product {p}" for p in range(11, 21)}, bad={11})})
    assert run_cli(db_url, "run", str(tmp_path)).returncode == EXIT_OK
    assert collect_data(conn).meta["check_banner"] == {
        "level": "warned",
        "text": "The latest batch (batch_0002) warned: batch 2 (batch_0002): products.csv: 1 of "
                "10 rows rejected for any rule (ratio 0.1000), above the warning threshold "
                "0.05."}


def scrape(port: int) -> str:
    """/metrics, or nothing while the service is not listening yet."""
    try:
        return get(f"http://127.0.0.1:{port}/metrics")[1]
    except OSError:
        return ""


def test_the_schedule_service_exports_holds_events_and_undelivered_alerts(
        conn, db_url, tmp_path) -> None:  # noqa: ANN001
    base_batch(tmp_path)
    dirty_batch(tmp_path)
    port = free_port()
    down = f"json://127.0.0.1:{free_port()}/hook"  # nothing listens: both alerts wait
    service = start_cli(db_url, "schedule", "--every", "1h", "--metrics-port", str(port),
                        str(tmp_path), WAREHOUSE_ALERT_URLS=down)
    try:
        wait_for(lambda: "warehouse_alerts_undelivered 2.0" in scrape(port))
        text = get(f"http://127.0.0.1:{port}/metrics")[1]
        assert metric(text, "warehouse_batches_held") == 1
        assert metric(text, "warehouse_dq_events", 'check="reject_ratio",severity="error"') == 1
        assert metric(text, "warehouse_pipeline_failures_total", 'step="hold"') == 1
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=30)
    assert service.returncode == 0


def test_a_refused_batch_alerts_with_the_file_and_what_to_do(
        conn, db_url, tmp_path, http_receiver) -> None:  # noqa: ANN001
    base_batch(tmp_path)
    refused = tmp_path / "batch_0002"
    refused.mkdir()
    (refused / "products.csv").write_text("product_id,product_name\n1,Pen\n")  # no price
    done = run_cli(db_url, "run", str(tmp_path), WAREHOUSE_ALERT_URLS=http_receiver.url)
    assert done.returncode == 3, done.stdout + done.stderr
    assert titles(http_receiver) == ["warehouse: a batch was refused, run 1 failed"]
    (refusal,) = fetch(conn, "select message from etl.batch_refusal")[0]
    assert http_receiver.received[0]["message"] == (
        f"Run 1 (cli) stopped at ingestion: batch batch_0002 ({refused.resolve()}) refused: "
        f"{refusal}. Nothing of it was staged; fix the file or remove the batch, then ingest "
        "again. The batches before it were processed; none after it was staged.")
    assert "products.csv" in refusal


def test_a_failed_step_alerts_with_step_batch_and_error(conn, db_url) -> None:  # noqa: ANN001
    install_stub_steps(conn)
    (batch,) = add_batches(conn, 1)
    inject(conn, "merge", sqlstate="22012", fail_calls=1, message="boom in the merge")
    result = run_pipeline(db_url, RunOptions(landing=None, retry=fast_retry(), trigger="test"))
    assert (result.status, result.exit_code) == ("failed", 1)
    ((kind, severity, alert_batch, title, body),) = fetch(
        conn, "select kind, severity, batch_id, title, body from etl.alert")
    assert (kind, severity, alert_batch, title) == (
        "run_failed", "failure", batch, "warehouse: run 1 failed at step merge")
    assert body.startswith(f"Run 1 (test) failed at step merge of batch {batch} (batch_0001): ")
    assert "boom in the merge" in body
    assert body.endswith("Fix the cause; the next run resumes at this step (python -m runner "
                         "status shows the history).")


@pytest.mark.parametrize(("text", "problem"), [
    ("transaction_items.csv:invalid_amount", "write FILE:RULE:SHARE[:BATCH]"),
    ("transaction_items.csv:invalid_amount:lots", "SHARE is a number between 0 and 1"),
])
def test_a_defect_burst_that_cannot_be_read_says_how_to_write_it(text: str, problem: str
                                                                   ) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        Burst.parse(text)


@pytest.mark.parametrize(("burst", "problem"), [
    (Burst("orders.csv", "invalid_amount", 0.5), "the file is one of customers.csv, "
                                                  "products.csv, transactions.csv, "
                                                  "transaction_items.csv"),
    (Burst("products.csv", "unknown_customer", 0.5), "the rule is one of duplicate_key, "
                                                      "invalid_amount, invalid_integer"),
    (Burst("products.csv", "invalid_amount", 0.0), "SHARE must be above 0 and at most 1"),
    (Burst("products.csv", "invalid_amount", 0.5, batch=3), "BATCH must be between 1 and "
                                                             "--batches (2)"),
])
def test_a_defect_burst_the_generator_cannot_write_is_refused_naming_why(
        burst: Burst, problem: str) -> None:
    assert any(problem in found for found in burst_problems(burst, batches=2))
