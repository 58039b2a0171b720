"""runner/retry.py: which errors are transient, backoff with full jitter, attempts."""

from __future__ import annotations

import random

import psycopg2
import pytest

from runner.config import RetryPolicy, load_config
from runner.retry import GaveUp, Retrier, backoff_delay, read_policy


def raised_by_server(conn, sqlstate: str) -> psycopg2.Error:  # noqa: ANN001
    """The error the server sends for ``sqlstate``, raised for real."""
    with conn.cursor() as cur:
        try:
            cur.execute(f"do $$ begin raise exception 'boom {sqlstate}' "
                        f"using errcode = '{sqlstate}'; end $$")
        except psycopg2.Error as error:
            return error
    raise AssertionError("no error raised")


def test_transient_sqlstates_are_transient_and_others_permanent(conn) -> None:  # noqa: ANN001
    is_transient = read_policy(conn).is_transient
    transient = ["40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"]
    permanent = ["23505", "23503", "22P02", "P0001", "42883", "57014", "40002"]
    assert [is_transient(raised_by_server(conn, code)) for code in transient] == [True] * 7
    assert [is_transient(raised_by_server(conn, code)) for code in permanent] == [False] * 7


def test_lost_and_refused_connections_are_transient(conn) -> None:  # noqa: ANN001
    is_transient = read_policy(conn).is_transient
    with pytest.raises(psycopg2.OperationalError) as refused:
        psycopg2.connect("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert is_transient(refused.value)
    conn.close()
    with pytest.raises(psycopg2.InterfaceError) as closed:
        conn.cursor().execute("select 1")
    assert is_transient(closed.value)
    assert not is_transient(ValueError("not a database error"))


def test_describe_names_sqlstate_and_message_without_plpgsql_context(conn) -> None:  # noqa: ANN001
    describe = read_policy(conn).describe
    error = raised_by_server(conn, "40001")
    assert describe(error) == "SQLSTATE 40001 serialization_failure: boom 40001"
    assert describe(raised_by_server(conn, "23505")) == "SQLSTATE 23505: boom 23505"


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(attempts=8, base_delay=0.5, max_delay=3.0)
    rng = random.Random(7)
    for retry, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (7, 3.0)]:
        delays = [backoff_delay(retry, policy, rng) for _ in range(400)]
        assert 0 <= min(delays) and max(delays) <= cap
        assert max(delays) > 0.9 * cap and min(delays) < 0.1 * cap  # spread over [0, cap]


def test_transient_errors_are_retried_up_to_the_configured_attempts(conn) -> None:  # noqa: ANN001
    slept: list[float] = []
    calls = []

    def always_serialization_failure() -> None:
        calls.append(1)
        raise raised_by_server(conn, "40001")

    retrier = Retrier(read_policy(conn, RetryPolicy(attempts=4, base_delay=1, max_delay=2)),
                      sleep=slept.append, rng=random.Random(1))
    with pytest.raises(GaveUp) as gave_up:
        retrier.call(always_serialization_failure, what="test")
    assert (len(calls), gave_up.value.attempts, len(slept)) == (4, 4, 3)
    assert [d <= cap for d, cap in zip(slept, [1, 2, 2], strict=True)] == [True] * 3
    assert str(gave_up.value) == ("SQLSTATE 40001 serialization_failure: boom 40001 "
                                  "(still failing after 4 attempt(s))")


def test_permanent_error_is_not_retried(conn) -> None:  # noqa: ANN001
    slept: list[float] = []
    calls = []

    def unique_violation() -> None:
        calls.append(1)
        raise raised_by_server(conn, "23505")

    with pytest.raises(GaveUp) as gave_up:
        Retrier(read_policy(conn), sleep=slept.append).call(unique_violation, what="test")
    assert (len(calls), slept, gave_up.value.attempts, gave_up.value.sqlstate) == (
        1, [], 1, "23505")


def test_success_after_a_transient_error_reports_the_attempts(conn) -> None:  # noqa: ANN001
    outcomes = iter([raised_by_server(conn, "40P01"), None])
    seen = []

    def flaky() -> str:
        error = next(outcomes)
        if error is not None:
            raise error
        return "done"

    done = Retrier(read_policy(conn, RetryPolicy(base_delay=0)), sleep=lambda _: None).call(
        flaky, what="test", on_transient=lambda error, attempt: seen.append(attempt))
    assert (done.value, done.attempts, seen) == ("done", 2, [1])


def test_stop_during_the_wait_gives_up_without_another_attempt(conn) -> None:  # noqa: ANN001
    calls = []

    def failing() -> None:
        calls.append(1)
        raise raised_by_server(conn, "40001")

    with pytest.raises(GaveUp) as gave_up:
        Retrier(read_policy(conn), sleep=lambda _: True).call(failing, what="test")
    assert (len(calls), gave_up.value.stopped) == (1, True)


def test_retry_policy_comes_from_the_environment() -> None:
    config = load_config({"WAREHOUSE_RETRY_ATTEMPTS": "9", "WAREHOUSE_RETRY_BASE_DELAY": "0.25",
                          "WAREHOUSE_RETRY_MAX_DELAY": "4"})
    assert config.retry == RetryPolicy(attempts=9, base_delay=0.25, max_delay=4.0)
    assert load_config({"WAREHOUSE_MAX_DATA_AGE": "off"}).max_data_age is None
    assert load_config({"WAREHOUSE_MAX_AGE": "2h"}).max_data_age.total_seconds() == 7200
