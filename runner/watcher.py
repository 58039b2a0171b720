"""``watch``: the micro-batch service. Each batch is processed as soon as it is complete.

A batch directory of the landing directory is *complete* when it holds a contract file and
- a ``_READY`` marker or ``manifest.json`` (the producer writes it last), or
- neither, and its files (names, sizes, modification times) have not changed for the settle
  time, as observed by this process (``--settle``, default 30s; ``off`` waits for a marker).
Batches are taken in the order of their names (docs/data-contract.md): a complete batch waits
while an earlier one is still incomplete.

File events come from watchdog (inotify on Linux; ``--poll`` uses its polling observer, for
network file systems whose changes raise no events). An event only wakes the loop, which
then rescans the landing directory: events can be lost or merged, a rescan cannot. The
loop also wakes when a settle time runs out.

Each complete batch is one pipeline run (runner/pipeline.py) with the batch directory as
its landing, through the same ``service_run`` as ``schedule`` (runner/scheduler.py): the
pipeline lock, the run history in ``etl``, retries, metrics, then the alerts
(``runner.alerts.dispatch``) and the freshness alert. Two watchers on one landing
never process a batch twice: the lock lets one run at a time, and the ingestion ledger
(file hashes) skips files already loaded, so the second finds nothing new. A batch already
in ``etl.batch`` (by its resolved path) is not handed to a run again; one that a run took
without creating a batch (every file already loaded, or refused) is not retried until its
files change. On start, batches left pending (a run stopped or failed) are resumed first.

SIGTERM or SIGINT: the current step finishes, the run ends as cancelled (the next run
resumes there), the service exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from types import FrameType

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from runner import status
from runner.config import AlertSettings
from runner.db import connect
from runner.ingest import is_batch_dir
from runner.pipeline import EXIT_OK, RunOptions
from runner.scheduler import Metrics, MetricsServer, Reporting, refresh_freshness, service_run

log = logging.getLogger(__name__)

MARKERS = ("_READY", "manifest.json")
IDLE_RESCAN_SECONDS = 60.0  # a rescan even without events (a lost event, a clock jump)
BUSY_RETRY_SECONDS = 1.0  # the lock was held by another run: look again soon

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(batch_dir: Path) -> Fingerprint:
    """Names, sizes and modification times of the directory's files."""
    entries = []
    for path in batch_dir.iterdir():
        try:
            if path.is_file():
                stat = path.stat()
                entries.append((path.name, stat.st_size, stat.st_mtime_ns))
        except FileNotFoundError:  # removed while we looked: the next scan sees it
            continue
    return tuple(sorted(entries))


@dataclass
class Completeness:
    """Tells when batch directories are complete; remembers what it saw and when."""

    settle: timedelta | None  # None: markers only
    clock: Callable[[], float] = time.monotonic
    _seen: dict[Path, tuple[Fingerprint, float]] = field(default_factory=dict)

    def check(self, batch_dir: Path) -> tuple[bool, float | None]:
        """(complete, seconds until it may become complete by settling, or None)."""
        if not is_batch_dir(batch_dir):
            return False, None
        if any((batch_dir / marker).is_file() for marker in MARKERS):
            return True, None
        if self.settle is None:
            return False, None
        now = self.clock()
        current = fingerprint(batch_dir)
        seen = self._seen.get(batch_dir)
        if seen is None or seen[0] != current:
            self._seen[batch_dir] = (current, now)
            return False, self.settle.total_seconds()
        waited = now - seen[1]
        remaining = self.settle.total_seconds() - waited
        return (True, None) if remaining <= 0 else (False, remaining)

    def forget(self, batch_dir: Path) -> None:
        self._seen.pop(batch_dir, None)


class _Wake(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.wake.set()


class Watcher:
    """The watch service: file events, completeness, one run per complete batch."""

    def __init__(self, url: str, options: RunOptions, landing: Path, *,
                 settle: timedelta | None, poll: bool, metrics_host: str,
                 metrics_port: int, alert_settings: AlertSettings | None = None,
                 limits: status.Limits | None = None) -> None:
        self.url = url
        self.options = options
        self.landing = landing
        self.completeness = Completeness(settle)
        self.poll = poll
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        self.metrics = Metrics()
        self.reporting = Reporting(self.metrics, alert_settings or AlertSettings(), limits)
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.healthy = threading.Event()
        self.handed: dict[Path, Fingerprint] = {}  # taken by a run that created no batch

    # -- scanning ------------------------------------------------------------------------
    def ready_batches(self) -> tuple[list[Path], float | None]:
        """Complete batches not yet ingested, in name order up to the first incomplete one;
        and the seconds until the next settle time runs out (None: nothing settling)."""
        children = sorted((c for c in self.landing.iterdir()
                           if c.is_dir() and not c.name.startswith(".")), key=lambda c: c.name)
        known = self._ingested({str(c.resolve()) for c in children})
        ready: list[Path] = []
        for child in children:
            if str(child.resolve()) in known:
                self.completeness.forget(child)
                continue
            if child in self.handed and self.handed[child] == fingerprint(child):
                continue
            complete, remaining = self.completeness.check(child)
            if not complete:
                if ready or remaining is not None:
                    log.debug("%s not complete yet: later batches wait for it", child.name)
                return ready, remaining
            ready.append(child)
        return ready, None

    def _ingested(self, paths: set[str]) -> set[str]:
        conn = connect(self.url, autocommit=True, application_name="warehouse-watch")
        try:
            with conn.cursor() as cur:
                cur.execute("select source_path from etl.batch where source_path = any(%s)",
                            (sorted(paths),))
                return {row[0] for row in cur.fetchall()}
        finally:
            conn.close()

    def _pending(self) -> bool:
        conn = connect(self.url, autocommit=True, application_name="warehouse-watch")
        try:
            with conn.cursor() as cur:
                cur.execute("select exists (select 1 from etl.batch "
                            "where status <> 'processed')")
                return bool(cur.fetchone()[0])
        finally:
            conn.close()

    # -- running -------------------------------------------------------------------------
    def process(self, batch_dir: Path | None) -> str:
        """One run for one batch (None: only the pending ones); returns the run's status."""
        options = replace(self.options, landing=batch_dir)
        result = service_run(self.url, options, self.stop, self.reporting)
        if result is None:
            return "failed"
        if batch_dir is not None and result.status != "busy":
            self.completeness.forget(batch_dir)
            if result.exit_code != EXIT_OK or not result.touched:
                self.handed[batch_dir] = fingerprint(batch_dir)
        return result.status

    def loop(self) -> None:
        if self._pending():
            log.info("resuming the batches left pending")
            self.process(None)
        timeout: float | None = 0.0
        while not self.stop.is_set():
            self.wake.wait(IDLE_RESCAN_SECONDS if timeout is None else timeout)
            self.wake.clear()
            if self.stop.is_set():
                break
            try:
                ready, timeout = self.ready_batches()
            except Exception:  # noqa: BLE001 - the database or the folder: try again soon
                log.exception("scanning %s failed; trying again", self.landing)
                timeout = BUSY_RETRY_SECONDS * 5
                continue
            for batch_dir in ready:
                if self.stop.is_set():
                    break
                if self.process(batch_dir) == "busy":
                    timeout = BUSY_RETRY_SECONDS
                    break

    # -- the service ---------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s received: finishing the current step, then stopping",
                 signal.Signals(signum).name)
        self.stop.set()
        self.healthy.clear()
        self.wake.set()

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit code (0). The landing directory
        must exist (the command checks it)."""
        server = None
        if self.metrics_port:  # raises MetricsPortBusy before anything starts
            server = MetricsServer(self.metrics_host, self.metrics_port, self.metrics,
                                   self.healthy)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        observer = PollingObserver(timeout=1) if self.poll else Observer()
        observer.schedule(_Wake(self.wake), str(self.landing), recursive=True)
        try:
            if server is not None:
                server.start()
            refresh_freshness(self.url, self.reporting)
            observer.start()
            settle = self.completeness.settle
            log.info("watch service started: landing %s, %s, settle %s", self.landing,
                     "polling" if self.poll else "file events",
                     "off (markers only)" if settle is None else f"{settle.total_seconds():g}s")
            self.healthy.set()
            self.loop()
            log.info("watch service stopped")
            return 0
        finally:
            if observer.is_alive():
                observer.stop()
                observer.join(timeout=5)
            if server is not None:
                server.stop()
            for sig, old in previous.items():
                signal.signal(sig, old)
