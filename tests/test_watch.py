"""``python -m runner watch``: a batch is processed as soon as it is complete (runner/watcher.py).

Real processes on a real landing folder; the steps are the stubs of test_runner_stubs.py
(ingestion is real), so what a run did is read from the stubs' committed calls.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from runner.watcher import Completeness
from tests.test_runner_stubs import (
    Gate,
    committed_calls,
    expected_calls,
    fetch,
    inject,
    install_stub_steps,
    start_cli,
    step_names,
)
from tests.test_scheduler import wait_for

HEADER = "customer_id,first_name,last_name,email,country,signup_date\n"


def customer_line(n: int) -> str:
    return f"{n},Ada,Lovelace,c{n}@example.com,DE,2025-01-{1 + n % 28:02d}\n"


@pytest.fixture
def stubbed(conn):  # noqa: ANN001, ANN201
    install_stub_steps(conn)
    return conn


def write_batch(landing: Path, name: str, customers: int = 1, *, marker: str | None = None
                ) -> Path:
    batch = landing / name
    batch.mkdir()
    (batch / "customers.csv").write_text(HEADER + "".join(customer_line(n)
                                                          for n in range(1, customers + 1)))
    if marker:
        (batch / marker).write_text("")
    return batch


def batches(conn) -> list[tuple]:  # noqa: ANN001
    return fetch(conn, "select batch_id, batch_name, status from etl.batch order by batch_id")


def start_watch(db_url: str, landing: Path, *args: str) -> subprocess.Popen:
    return start_cli(db_url, "watch", str(landing), "--metrics-port", "0", *args)


def stop(service: subprocess.Popen) -> str:
    service.send_signal(signal.SIGTERM)
    _, err = service.communicate(timeout=30)
    assert service.returncode == 0, err
    return err


def test_a_marker_makes_a_batch_complete_and_it_is_processed(stubbed, db_url, tmp_path
                                                             ) -> None:  # noqa: ANN001
    service = start_watch(db_url, tmp_path, "--settle", "off")
    try:
        batch = write_batch(tmp_path, "batch_0001", customers=2)
        time.sleep(1.5)  # no marker, no settling: it waits
        assert batches(stubbed) == []
        (batch / "_READY").write_text("")
        wait_for(lambda: [b[2] for b in batches(stubbed)] == ["processed"])
        write_batch(tmp_path, "batch_0002", marker="manifest.json")
        wait_for(lambda: [b[2] for b in batches(stubbed)] == ["processed", "processed"])
    finally:
        stop(service)
    ids = [b[0] for b in batches(stubbed)]
    assert committed_calls(stubbed) == expected_calls(ids)
    assert fetch(stubbed, "select trigger, status, batches_processed from etl.pipeline_run "
                          "order by run_id") == [("watch", "succeeded", 1)] * 2
    assert fetch(stubbed, "select sum(rows_staged) from etl.batch_file") == [(3,)]


def test_an_unmarked_batch_is_processed_once_its_files_have_settled(stubbed, db_url, tmp_path
                                                                    ) -> None:  # noqa: ANN001
    service = start_watch(db_url, tmp_path, "--settle", "2s")
    try:
        write_batch(tmp_path, "batch_0001")
        written = time.time()
        wait_for(lambda: [b[2] for b in batches(stubbed)] == ["processed"])
    finally:
        stop(service)
    (loaded,) = fetch(stubbed, "select extract(epoch from load_ts) from etl.batch")
    assert float(loaded[0]) - written >= 2.0


def test_a_batch_still_being_written_is_never_processed(stubbed, db_url, tmp_path
                                                        ) -> None:  # noqa: ANN001
    service = start_watch(db_url, tmp_path, "--settle", "3s")  # ten times the writer's pace
    batch = tmp_path / "batch_0001"
    batch.mkdir()
    path = batch / "customers.csv"
    path.write_text(HEADER)
    seen_early: list[list[tuple]] = []

    def writer() -> None:  # a slow producer: one line every 0.3 s for 3 s
        for n in range(1, 11):
            with path.open("a") as handle:
                handle.write(customer_line(n))
            seen_early.append(batches(stubbed))
            time.sleep(0.3)

    try:
        thread = threading.Thread(target=writer)
        thread.start()
        thread.join()
        wait_for(lambda: [b[2] for b in batches(stubbed)] == ["processed"])
    finally:
        stop(service)
    assert all(seen == [] for seen in seen_early)
    assert fetch(stubbed, "select rows_in_file, rows_staged from etl.batch_file") == [(10, 10)]


def test_sigterm_during_a_step_finishes_it_and_exits_zero(stubbed, db_url, tmp_path
                                                          ) -> None:  # noqa: ANN001
    with Gate(db_url) as gate:
        inject(stubbed, "merge", gate=gate)
        service = start_watch(db_url, tmp_path, "--settle", "off")
        write_batch(tmp_path, "batch_0001", marker="_READY")
        wait_for(lambda: fetch(stubbed, "select count(*) from etl.step_run where step = "
                                        "'merge' and status = 'running'") == [(1,)])
        service.send_signal(signal.SIGTERM)  # while merge waits at the gate
        time.sleep(0.3)
        assert service.poll() is None  # it waits for the step
    _, err = service.communicate(timeout=30)
    assert service.returncode == 0, err
    assert fetch(stubbed, "select step, status from etl.step_run order by step_run_id") == [
        ("ingest", "succeeded"),
        *((name, "succeeded") for name in step_names()[:step_names().index("merge") + 1])]
    ((batch_id, _, _),) = batches(stubbed)
    assert fetch(stubbed, "select status, error_step, error_batch_id from etl.pipeline_run") == [
        ("cancelled", "reprocess_rejects", batch_id)]


def test_two_watchers_never_process_one_batch_twice(stubbed, db_url, tmp_path
                                                    ) -> None:  # noqa: ANN001
    inject(stubbed, "validate", sleep_s=0.3, sleep_calls=99)  # runs overlap the next batch
    watchers = [start_watch(db_url, tmp_path, "--settle", "off") for _ in range(2)]
    try:
        time.sleep(1.0)  # both watching
        for n in range(1, 5):
            write_batch(tmp_path, f"batch_{n:04d}", customers=n, marker="_READY")
            time.sleep(0.2)
        wait_for(lambda: [b[2] for b in batches(stubbed)] == ["processed"] * 4, timeout=60)
        time.sleep(1.5)  # give a second run of a batch every chance to happen
    finally:
        errors = [stop(w) for w in watchers]
    assert [b[1] for b in batches(stubbed)] == [f"batch_{n:04d}" for n in range(1, 5)], errors
    assert committed_calls(stubbed) == expected_calls([b[0] for b in batches(stubbed)])
    assert fetch(stubbed, "select count(*), sum(rows_staged) from etl.batch_file") == [(4, 10)]


def test_completeness_rules_markers_settle_time_and_changes(tmp_path) -> None:  # noqa: ANN001
    now = [100.0]
    rules = Completeness(timedelta(seconds=5), clock=lambda: now[0])
    seen = []
    batch = tmp_path / "batch_0001"
    batch.mkdir()
    seen.append(rules.check(batch))  # no contract file yet
    (batch / "customers.csv").write_text(HEADER)
    seen.append(rules.check(batch))  # first seen
    now[0] += 3
    seen.append(rules.check(batch))  # unchanged for 3 s
    (batch / "customers.csv").write_text(HEADER + customer_line(1))
    seen.append(rules.check(batch))  # changed: starts again
    now[0] += 5
    seen.append(rules.check(batch))  # settled
    markers_only = Completeness(None)
    seen.append(markers_only.check(batch))
    (batch / "_READY").write_text("")
    seen.append(markers_only.check(batch))
    assert seen == [(False, None), (False, 5.0), (False, 2.0), (False, 5.0), (True, None),
                    (False, None), (True, None)]
