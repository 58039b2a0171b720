"""``schedule``: the service. Each tick of an APScheduler 3 ``BlockingScheduler`` is one run.

- Trigger: ``--every 15m`` (interval; the first tick runs at start) or ``--cron "EXPR"``
  (five crontab fields, UTC). ``max_instances=1`` and ``coalesce=True``: a tick never
  overlaps the previous one, and ticks missed while a run went long collapse into one.
  ``misfire_grace_time``: a tick that could not start on time still runs if it is late by
  less than the grace (default: one interval, at most 10 minutes; 5 minutes for cron);
  otherwise it is skipped and the next one runs.
- ``--full-check-cron`` (default ``0 3 * * sun``, Sundays 03:00 UTC; ``off`` disables): the
  full reconciliation (``warehouse.check_full_reconciliation``, every day of the history)
  as a run of its own, after the pending batches; it waits for the pipeline lock.
- A failed tick is logged (one line per run) and the service goes on. A tick that finds the
  pipeline lock taken (a manual ``run``) is skipped.
- SIGTERM or SIGINT: the current step finishes, the run ends as cancelled (the next run
  resumes there), the service exits 0.
- ``/healthz`` and Prometheus ``/metrics`` on WAREHOUSE_METRICS_HOST:PORT (``--metrics-port
  0`` disables): runs, failures, step durations and rows, freshness in seconds, held
  batches, batch-check events by check and severity, undelivered alerts.
- After each tick: the freshness alert when a limit is passed (once per stale period,
  ``runner.status.queue_freshness_alert``), then the alerts are sent
  (``runner.alerts.dispatch``).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from runner import alerts, status
from runner.config import AlertSettings
from runner.db import connect
from runner.pipeline import RunOptions, RunResult, run_pipeline

log = logging.getLogger(__name__)

MAX_INTERVAL_GRACE = timedelta(minutes=10)
CRON_GRACE = timedelta(minutes=5)
JOB_ID = "pipeline"
FULL_CHECK_JOB_ID = "full_reconciliation"
FULL_CHECK_CRON = "0 3 * * sun"  # Sundays 03:00 UTC (APScheduler reads a 0 as Monday)
FULL_CHECK_GRACE = timedelta(hours=6)


@dataclass(frozen=True)
class Schedule:
    """When to run: exactly one of ``every`` and ``cron``."""

    every: timedelta | None = None
    cron: str | None = None
    misfire_grace: timedelta | None = None  # None: the default described above
    full_check_cron: str | None = FULL_CHECK_CRON  # None: no weekly full reconciliation

    def trigger(self) -> BaseTrigger:
        if self.cron:
            return CronTrigger.from_crontab(self.cron, timezone=UTC)
        if self.every is None or self.every.total_seconds() <= 0:
            raise ValueError("the interval must be positive, e.g. --every 15m")
        return IntervalTrigger(seconds=self.every.total_seconds(), timezone=UTC)

    def full_check_trigger(self) -> BaseTrigger | None:
        if not self.full_check_cron:
            return None
        return CronTrigger.from_crontab(self.full_check_cron, timezone=UTC)

    def grace_seconds(self) -> int:
        if self.misfire_grace is not None:
            grace = self.misfire_grace
        elif self.cron:
            grace = CRON_GRACE
        else:
            grace = min(self.every or MAX_INTERVAL_GRACE, MAX_INTERVAL_GRACE)
        return max(1, int(grace.total_seconds()))

    def describe(self) -> str:
        runs = f"cron '{self.cron}' (UTC)" if self.cron else f"every {self.every}"
        check = (f"full reconciliation at cron '{self.full_check_cron}' (UTC)"
                 if self.full_check_cron else "no full reconciliation")
        return f"{runs}, {check}"


class Metrics:
    """The service's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("warehouse_pipeline_runs_total", "Pipeline runs by outcome",
                            ["status"], registry=self.registry)
        self.failures = Counter("warehouse_pipeline_failures_total",
                                "Failed runs by the step that failed", ["step"],
                                registry=self.registry)
        self.step_seconds = Histogram(
            "warehouse_pipeline_step_duration_seconds", "Duration of each step call",
            ["step"], registry=self.registry,
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
        )
        self.step_rows = Counter("warehouse_pipeline_step_rows_total",
                                 "Rows written by each step", ["step"], registry=self.registry)
        self.batches = Counter("warehouse_pipeline_batches_processed_total",
                               "Batches marked processed", registry=self.registry)
        self.last_run_ok = Gauge("warehouse_pipeline_last_run_success",
                                 "1 when the last finished run succeeded, else 0",
                                 registry=self.registry)
        self.freshness = Gauge("warehouse_freshness_seconds",
                               "Age of the newest sale and of the last successful run",
                               ["what"], registry=self.registry)
        self.held = Gauge("warehouse_batches_held", "Batches held by a batch check",
                          registry=self.registry)
        self.dq_events = Gauge("warehouse_dq_events", "Batch-check events recorded, by check "
                               "and severity", ["check", "severity"], registry=self.registry)
        self.undelivered = Gauge("warehouse_alerts_undelivered", "Alerts of the retry window "
                                 "not yet accepted by a configured channel (summed over the "
                                 "channels)", registry=self.registry)
        self._newest_sale: datetime | None = None
        self._last_success: datetime | None = None
        self.freshness.labels("newest_sale").set_function(lambda: _age(self._newest_sale))
        self.freshness.labels("last_successful_run").set_function(
            lambda: _age(self._last_success))

    def observe(self, result: RunResult) -> None:
        self.runs.labels(result.status).inc()
        for step in result.steps:
            self.step_seconds.labels(step.step).observe(step.seconds)
            if step.rows:
                self.step_rows.labels(step.step).inc(step.rows)
        self.batches.inc(len(result.batches))
        if result.status in ("succeeded", "failed"):
            self.last_run_ok.set(1 if result.status == "succeeded" else 0)
        if result.status == "failed":
            self.failures.labels(result.failed_step or "start").inc()

    def set_freshness(self, newest_sale: datetime | None, last_success: datetime | None
                      ) -> None:
        self._newest_sale, self._last_success = newest_sale, last_success

    def set_checks(self, held: int, events: list[tuple[str, str, int]], undelivered: int
                   ) -> None:
        self.held.set(held)
        for check, severity, count in events:
            self.dq_events.labels(check, severity).set(count)
        self.undelivered.set(undelivered)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _age(instant: datetime | None) -> float:
    """Seconds since ``instant``; NaN when there is none (no sale, no successful run)."""
    return float("nan") if instant is None else time.time() - instant.timestamp()


class MetricsPortBusy(RuntimeError):
    """The metrics address cannot be bound (in use, or not ours to take)."""


class MetricsServer:
    """``/metrics`` (Prometheus text format) and ``/healthz`` on a background thread."""

    def __init__(self, host: str, port: int, metrics: Metrics,
                 healthy: threading.Event) -> None:
        handler = _handler_class(metrics, healthy)
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            raise MetricsPortBusy(
                f"cannot serve /metrics on {host}:{port}: {error.strerror or error} (another "
                "schedule service running? choose another port with --metrics-port or "
                "WAREHOUSE_METRICS_PORT, or 0 to serve none)") from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics",
                                       daemon=True)

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()
        log.info("metrics on %s/metrics, health on %s/healthz", self.address, self.address)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_class(metrics: Metrics, healthy: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, metrics.exposition())
            elif path == "/healthz":
                ok = healthy.is_set()
                body = json.dumps({"status": "ok" if ok else "stopping"}).encode()
                self._send(200 if ok else 503, "application/json", body)
            else:
                self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("http: " + format, *args)

    return Handler


@dataclass(frozen=True)
class Reporting:
    """What a service does after each run: metrics, alerts, the freshness limits."""

    metrics: Metrics
    alert_settings: AlertSettings
    limits: status.Limits | None = None  # None: no freshness alert


def service_run(url: str, options: RunOptions, stop: threading.Event,
                reporting: Reporting) -> RunResult | None:
    """One run of a service (a tick of ``schedule``, a batch of ``watch``): the run, its
    metrics, freshness, then the alerts. Never raises, so the service goes on after a
    failed run; None when the run itself broke (a bug, logged)."""
    try:
        result = run_pipeline(url, options, stop)
        if result.status == "busy":
            log.info("run skipped: the pipeline lock is held by %s", result.holder_text())
        reporting.metrics.observe(result)
        refresh_freshness(url, reporting)
        alerts.dispatch(url, reporting.alert_settings)
        refresh_freshness(url, reporting)  # undelivered alerts after the dispatch
        return result
    except Exception:  # a bug must not stop the service: log it, try again next time
        log.exception("run failed unexpectedly")
        return None


def refresh_freshness(url: str, reporting: Reporting) -> None:
    """Freshness, held batches, events and undelivered alerts into the metrics; the
    freshness alert when a limit is passed. The metrics keep their last values on error."""
    try:
        conn = connect(url, autocommit=True, application_name="warehouse-scheduler")
    except Exception as error:  # noqa: BLE001 - metrics keep their last values
        log.debug("freshness not refreshed: %s", error)
        return
    try:
        with conn.cursor() as cur:
            cur.execute("select newest_transaction_ts, last_successful_run_at "
                        "from etl.v_freshness")
            reporting.metrics.set_freshness(*cur.fetchone())
            cur.execute("select count(*) from etl.batch where status = 'held'")
            (held,) = cur.fetchone()
            cur.execute('select "check", severity, count(*) from etl.v_dq_events '
                        "group by 1, 2")
            events = cur.fetchall()
        reporting.metrics.set_checks(held, events,
                                     alerts.undelivered(conn, reporting.alert_settings))
        if reporting.limits is not None:
            status.queue_freshness_alert(conn, status.collect(conn, 1), reporting.limits)
    except Exception as error:  # noqa: BLE001
        log.debug("freshness not refreshed: %s", error)
    finally:
        conn.close()


class Service:
    """The scheduler service: ticks, signals, metrics."""

    def __init__(self, url: str, options: RunOptions, schedule: Schedule,
                 metrics_host: str, metrics_port: int, *,
                 alert_settings: AlertSettings | None = None,
                 limits: status.Limits | None = None) -> None:
        self.url = url
        self.options = options
        self.schedule = schedule
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        self.metrics = Metrics()
        self.reporting = Reporting(self.metrics, alert_settings or AlertSettings(), limits)
        self.stop = threading.Event()
        self.healthy = threading.Event()
        self.running = threading.Condition()
        self.runs_in_progress = 0
        self.scheduler = BlockingScheduler(timezone=UTC)

    def tick(self) -> None:
        """One run; never raises, so the service goes on after a failed tick."""
        self._run(self.options)

    def full_check(self) -> None:
        """The weekly full reconciliation: the pending batches, then every day; it waits
        for the pipeline lock rather than skip a week."""
        self._run(replace(self.options, landing=None, wait=True, full_reconciliation=True,
                          trigger="reconcile"))

    def _run(self, options: RunOptions) -> None:
        if self.stop.is_set():
            return
        with self.running:
            self.runs_in_progress += 1
        try:
            service_run(self.url, options, self.stop, self.reporting)
        finally:
            with self.running:
                self.runs_in_progress -= 1
                self.running.notify_all()

    def _refresh_freshness(self) -> None:
        refresh_freshness(self.url, self.reporting)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s received: finishing the current step, then stopping",
                 signal.Signals(signum).name)
        self.stop.set()
        self.healthy.clear()
        # shutdown() takes the scheduler's locks, which the interrupted main thread may
        # hold: call it from another thread.
        threading.Thread(target=self._shutdown_scheduler, name="shutdown", daemon=True).start()

    def _shutdown_scheduler(self) -> None:
        deadline = time.monotonic() + 10
        while True:  # the signal may come just before the scheduler starts
            try:
                self.scheduler.shutdown(wait=False)
                return
            except SchedulerNotRunningError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.1)

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit code (0)."""
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        server = None
        try:
            if self.metrics_port:
                server = MetricsServer(self.metrics_host, self.metrics_port, self.metrics,
                                       self.healthy)
                server.start()
            self._refresh_freshness()
            # An interval's first tick runs at once; a cron waits for its time.
            first = {} if self.schedule.cron else {"next_run_time": datetime.now(UTC)}
            self.scheduler.add_job(
                self.tick, self.schedule.trigger(), id=JOB_ID, name="pipeline run",
                max_instances=1, coalesce=True,
                misfire_grace_time=self.schedule.grace_seconds(), **first,
            )
            full_check = self.schedule.full_check_trigger()
            if full_check is not None:
                self.scheduler.add_job(
                    self.full_check, full_check, id=FULL_CHECK_JOB_ID,
                    name="full reconciliation", max_instances=1, coalesce=True,
                    misfire_grace_time=int(FULL_CHECK_GRACE.total_seconds()),
                )
            log.info("schedule service started: %s, misfire grace %ss, landing %s",
                     self.schedule.describe(), self.schedule.grace_seconds(),
                     self.options.landing)
            self.healthy.set()
            if not self.stop.is_set():
                self.scheduler.start()
            with self.running:
                self.running.wait_for(lambda: self.runs_in_progress == 0)
            log.info("schedule service stopped")
            return 0
        finally:
            if server is not None:
                server.stop()
            for sig, old in previous.items():
                signal.signal(sig, old)
