"""Alerts: the outbox ``etl.alert`` delivered through Apprise to every channel of
``WAREHOUSE_ALERT_URLS``, each alert once per channel (docs/data-contract.md, "Alerts").

What is alerted is queued in the database where it happens, so the runner and
``etl.process_pending()`` raise the same alerts: check events (``etl.check_batch``), failed
runs, holds and refusals (``etl.queue_run_alert``, called when a run fails), and freshness
passing its limit (``runner.status.queue_freshness_alert``, from ``status`` and the schedule
service). ``dispatch`` is the one call that sends: ``run``, ``status``, the schedule service
and the micro-batch service call it after their work.

- Apprise does the talking (webhooks, e-mail, chat); this module only decides what goes
  where and records it in ``etl.alert_delivery`` (channel = SHA-256 of its URL, because a
  URL may hold a password; the label is Apprise's URL with secrets masked).
- A channel receives, in order, the alerts of the retry window (``WAREHOUSE_ALERT_RETRY_WINDOW``)
  that it has not accepted yet. The first failure stops that channel for this call: its
  later alerts wait for the next call, so a channel that is down costs one time-out per
  call, not one per alert. A failure is recorded (attempts, error) and retried next call.
- Each channel is sent to from its own thread, with Apprise's connect and read time-outs set
  to the channel time-out, and the call waits at most that time-out (plus a second) for all
  of them: a channel never slows a run down by more than its time-out. An alert still being
  sent then is not recorded, and is sent again next call.
- ``dispatch`` never raises: delivery never fails a run. One dispatcher at a time (a
  session advisory lock; a second one returns at once), so no alert goes twice to a channel
  from two processes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

import apprise
import psycopg2
import psycopg2.extensions

from runner.config import AlertSettings
from runner.db import connect

log = logging.getLogger(__name__)

DISPATCH_LOCK_KEY = 720_300_013  # pg_try_advisory_lock key held while alerts are sent
JOIN_MARGIN_SECONDS = 1.0
NOTIFY_TYPES = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
                "failure": apprise.NotifyType.FAILURE}

_PENDING_SQL = """
select a.alert_id, a.severity, a.title, a.body
from etl.alert a
where a.created_at > now() - %(window)s
  and not exists (
      select 1 from etl.alert_delivery d
      where d.alert_id = a.alert_id and d.channel = %(channel)s and d.delivered_at is not null)
order by a.alert_id
"""
_RECORD_SQL = """
insert into etl.alert_delivery (alert_id, channel, channel_label, attempts, delivered_at,
                                last_attempt_at, last_error)
values (%(alert_id)s, %(channel)s, %(label)s, 1,
        case when %(ok)s then clock_timestamp() end, clock_timestamp(), %(error)s)
on conflict (alert_id, channel) do update
set attempts = etl.alert_delivery.attempts + 1,
    delivered_at = coalesce(etl.alert_delivery.delivered_at, excluded.delivered_at),
    last_attempt_at = excluded.last_attempt_at,
    last_error = excluded.last_error,
    channel_label = excluded.channel_label
"""


def channel_key(url: str) -> str:
    """A channel's key in etl.alert_delivery: the SHA-256 of its URL (which may hold a
    secret, so it is never stored)."""
    return hashlib.sha256(url.encode()).hexdigest()


@dataclass(frozen=True)
class PendingAlert:
    alert_id: int
    severity: str
    title: str
    body: str


@dataclass(frozen=True)
class Outcome:
    alert_id: int
    ok: bool
    error: str | None = None


@dataclass
class Channel:
    """One Apprise URL, its alerts to send, and what became of them."""

    url: str
    service: apprise.NotifyBase
    timeout: float
    pending: list[PendingAlert] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def key(self) -> str:
        return channel_key(self.url)

    @property
    def label(self) -> str:
        return self.service.url(privacy=True)

    def send_all(self, deadline: float) -> None:
        """Send in order until one fails or the deadline passes (runs in its own thread)."""
        for alert in self.pending:
            if time.monotonic() >= deadline:
                return
            outcome = self._send(alert)
            self.outcomes.append(outcome)
            if not outcome.ok:
                return

    def _send(self, alert: PendingAlert) -> Outcome:
        try:
            with apprise.LogCapture(level=logging.WARNING) as captured:
                ok = bool(self.service.notify(
                    body=alert.body, title=alert.title,
                    notify_type=NOTIFY_TYPES.get(alert.severity, apprise.NotifyType.INFO)))
            error = None if ok else (" ".join(captured.getvalue().split())[-500:]
                                     or "the channel refused the message")
        except Exception as problem:  # noqa: BLE001 - a plugin's bug must not fail a run
            ok, error = False, f"{type(problem).__name__}: {problem}"
        return Outcome(alert.alert_id, ok, error)


@dataclass
class DeliveryReport:
    """What one ``dispatch`` call did."""

    delivered: int = 0
    failed: int = 0
    channels_failing: list[str] = field(default_factory=list)  # masked URLs
    skipped: str | None = None  # why nothing was tried


def undelivered(conn: psycopg2.extensions.connection, settings: AlertSettings) -> int:
    """Alerts of the retry window that a configured channel has not accepted yet, summed
    over the channels (the /metrics gauge)."""
    keys = [channel_key(url) for url in settings.urls]
    if not keys:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            "select count(*) from etl.alert a cross join unnest(%(keys)s::text[]) k (channel) "
            "where a.created_at > now() - %(window)s and not exists ("
            " select 1 from etl.alert_delivery d where d.alert_id = a.alert_id"
            " and d.channel = k.channel and d.delivered_at is not null)",
            {"keys": keys, "window": settings.retry_window})
        return int(cur.fetchone()[0])


def open_channels(settings: AlertSettings) -> list[Channel]:
    """The configured channels Apprise understands; an unknown URL is logged and left out."""
    channels = []
    for position, url in enumerate(settings.urls, start=1):
        service = apprise.Apprise.instantiate(url)
        if service is None:
            log.error("alert channel %d of WAREHOUSE_ALERT_URLS is not a URL Apprise "
                      "supports: left out (see https://github.com/caronc/apprise/wiki)",
                      position)
            continue
        service.socket_connect_timeout = settings.timeout
        service.socket_read_timeout = settings.timeout
        channels.append(Channel(url, service, settings.timeout))
    return channels


def dispatch(url: str, settings: AlertSettings) -> DeliveryReport:
    """Send every undelivered alert of the retry window to every channel; never raises."""
    report = DeliveryReport()
    if not settings.urls:
        report.skipped = "no channel configured (WAREHOUSE_ALERT_URLS)"
        return report
    try:
        conn = connect(url, autocommit=True, application_name="warehouse-alerts")
    except psycopg2.Error as error:
        log.warning("alerts not sent: cannot reach the database: %s", " ".join(str(error).split()))
        report.skipped = "database unavailable"
        return report
    try:
        _dispatch_locked(conn, settings, report)
    except Exception as error:  # noqa: BLE001 - delivery never fails a run
        log.warning("alerts not sent: %s: %s", type(error).__name__, error)
        report.skipped = str(error)
    finally:
        conn.close()
    return report


def _dispatch_locked(conn: psycopg2.extensions.connection, settings: AlertSettings,
                     report: DeliveryReport) -> None:
    with conn.cursor() as cur:
        cur.execute("select pg_try_advisory_lock(%s)", (DISPATCH_LOCK_KEY,))
        if not cur.fetchone()[0]:
            report.skipped = "another process is sending alerts"
            return
        try:
            channels = open_channels(settings)
            for channel in channels:
                cur.execute(_PENDING_SQL, {"window": settings.retry_window,
                                           "channel": channel.key})
                channel.pending = [PendingAlert(*row) for row in cur.fetchall()]
            _send_concurrently([c for c in channels if c.pending], settings.timeout)
            for channel in channels:
                _record(cur, channel, report)
        finally:
            cur.execute("select pg_advisory_unlock(%s)", (DISPATCH_LOCK_KEY,))


def _send_concurrently(channels: list[Channel], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    threads = [threading.Thread(target=channel.send_all, args=(deadline,), daemon=True,
                                name=f"alerts-{index}")
               for index, channel in enumerate(channels)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline + JOIN_MARGIN_SECONDS - time.monotonic()))


def _record(cur: psycopg2.extensions.cursor, channel: Channel, report: DeliveryReport) -> None:
    outcomes = list(channel.outcomes)  # a thread past the deadline may still append
    for outcome in outcomes:
        cur.execute(_RECORD_SQL, {"alert_id": outcome.alert_id, "channel": channel.key,
                                  "label": channel.label, "ok": outcome.ok,
                                  "error": outcome.error})
    delivered = sum(1 for o in outcomes if o.ok)
    report.delivered += delivered
    failures = [o for o in outcomes if not o.ok]
    if failures or len(outcomes) < len(channel.pending):
        report.failed += len(channel.pending) - delivered
        report.channels_failing.append(channel.label)
        log.warning("alerts: %s: %d of %d alert(s) delivered%s; the rest is retried on the "
                    "next run", channel.label, delivered, len(channel.pending),
                    f" ({failures[0].error})" if failures else " (time-out)")
    elif delivered:
        log.info("alerts: %s: %d alert(s) delivered", channel.label, delivered)
