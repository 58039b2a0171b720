"""``python -m runner schedule``: ticks, failed ticks, /healthz and /metrics, SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import time
import urllib.request
from datetime import timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from runner.scheduler import Schedule
from tests.test_runner_stubs import (
    Gate,
    add_batches,
    fetch,
    inject,
    install_stub_steps,
    start_cli,
    step_names,
)


@pytest.fixture
def stubbed(conn):  # noqa: ANN001, ANN201
    install_stub_steps(conn)
    return conn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def runs(conn) -> list[tuple]:  # noqa: ANN001
    return fetch(conn, "select run_id, status, trigger, ended_at is not null "
                       "from etl.pipeline_run order by run_id")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+|NaN)"
    match = re.search(pattern, text)
    assert match, f"{name}{{{labels}}} not in /metrics"
    return float(match.group(1))


def test_interval_ticks_repeat_serve_metrics_and_stop_cleanly_on_sigterm(
        stubbed, db_url, tmp_path) -> None:  # noqa: ANN001
    batches = add_batches(stubbed, 2)
    port = free_port()
    service = start_cli(db_url, "schedule", "--every", "1s", "--metrics-port", str(port),
                        str(tmp_path))
    try:
        wait_for(lambda: len([r for r in runs(stubbed) if r[1] == "succeeded"]) >= 3)
        wait_for(lambda: metric(get(f"http://127.0.0.1:{port}/metrics")[1],
                                "warehouse_pipeline_runs_total", 'status="succeeded"') >= 3)
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert (status, body) == (200, '{"status": "ok"}')
        status, text = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert metric(text, "warehouse_pipeline_runs_total", 'status="succeeded"') >= 3
        assert metric(text, "warehouse_pipeline_batches_processed_total") == 2
        assert metric(text, "warehouse_pipeline_step_rows_total", 'step="validate"') == 20
        assert metric(text, "warehouse_pipeline_step_duration_seconds_count",
                      'step="merge"') == 2
        assert metric(text, "warehouse_pipeline_last_run_success") == 1
        last_run_age = metric(text, "warehouse_freshness_seconds", 'what="last_successful_run"')
        assert 0 <= last_run_age < 30
        assert "warehouse_freshness_seconds{what=\"newest_sale\"} NaN" in text  # no sales
        assert get(f"http://127.0.0.1:{port}/nothing")[0] == 404
    finally:
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=30)
    assert service.returncode == 0, err
    assert "schedule service stopped" in err
    history = runs(stubbed)
    assert len(history) >= 3
    assert {(r[2], r[3]) for r in history} == {("schedule", True)}  # every run finished
    assert {r[1] for r in history} <= {"succeeded", "cancelled"}
    assert fetch(stubbed, "select count(*) from etl.step_run where status = 'running'") == [(0,)]
    assert fetch(stubbed, "select count(*) from etl.batch where status = 'processed'") == [
        (len(batches),)]
    per_run = [line for line in err.splitlines() if "runner.pipeline: run " in line]
    assert len(per_run) == len(history)  # one log line per run


def test_sigterm_during_a_step_finishes_it_and_exits_zero(stubbed, db_url, tmp_path) -> None:  # noqa: ANN001
    (batch,) = add_batches(stubbed, 1)
    with Gate(db_url) as gate:
        inject(stubbed, "merge", gate=gate)
        service = start_cli(db_url, "schedule", "--every", "1h", "--metrics-port", "0",
                            str(tmp_path))
        wait_for(lambda: fetch(stubbed, "select count(*) from etl.step_run where step = "
                                        "'merge' and status = 'running'") == [(1,)])
        service.send_signal(signal.SIGTERM)  # while merge waits at the gate
        time.sleep(0.2)
        assert service.poll() is None  # it waits for the step
    out, err = service.communicate(timeout=30)
    assert service.returncode == 0, err
    assert fetch(stubbed, "select step, status from etl.step_run order by step_run_id") == [
        ("ingest", "succeeded"),
        *((name, "succeeded") for name in step_names()[:step_names().index("merge") + 1])]
    assert fetch(stubbed, "select status, error_step, error_batch_id from etl.pipeline_run") == [
        ("cancelled", "reprocess_rejects", batch)]


def test_failed_ticks_are_logged_and_the_service_goes_on(stubbed, db_url, tmp_path) -> None:  # noqa: ANN001
    add_batches(stubbed, 1)
    inject(stubbed, "validate", sqlstate="22P02", fail_calls=2,
           message="invalid input syntax for type bigint")
    service = start_cli(db_url, "schedule", "--every", "1s", "--metrics-port", "0",
                        str(tmp_path))
    try:
        wait_for(lambda: [r[1] for r in runs(stubbed)][:3] == ["failed", "failed", "succeeded"])
    finally:
        service.send_signal(signal.SIGINT)
        out, err = service.communicate(timeout=30)
    assert service.returncode == 0
    failures = [line for line in err.splitlines() if " ERROR runner.pipeline: run " in line]
    assert len(failures) == 2
    assert "SQLSTATE 22P02: invalid input syntax for type bigint" in failures[0]


def test_interval_grace_is_one_interval_capped_and_cron_is_utc() -> None:
    every = Schedule(every=timedelta(minutes=15))
    assert isinstance(every.trigger(), IntervalTrigger)
    assert every.grace_seconds() == 600  # 15 min capped at 10 min
    assert Schedule(every=timedelta(seconds=30)).grace_seconds() == 30
    cron = Schedule(cron="*/5 * * * *")
    trigger = cron.trigger()
    assert isinstance(trigger, CronTrigger) and str(trigger.timezone) == "UTC"
    assert cron.grace_seconds() == 300
    assert Schedule(cron="0 * * * *", misfire_grace=timedelta(seconds=90)).grace_seconds() == 90
    with pytest.raises(ValueError):
        Schedule(cron="not a cron").trigger()
    with pytest.raises(ValueError, match="positive"):
        Schedule(every=timedelta(0)).trigger()


def test_a_busy_metrics_port_is_a_clear_message_not_a_traceback(db_url, tmp_path) -> None:  # noqa: ANN001
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = start_cli(db_url, "schedule", "--every", "1h", "--metrics-port", str(port),
                            str(tmp_path))
        out, err = service.communicate(timeout=60)
    assert service.returncode == 2, err
    assert "Traceback" not in err
    assert err.strip().endswith(
        f"schedule: cannot serve /metrics on 127.0.0.1:{port}: Address already in use (another "
        "schedule service running? choose another port with --metrics-port or "
        "WAREHOUSE_METRICS_PORT, or 0 to serve none)")
