"""Which database errors are transient, and retrying them with backoff and full jitter.

Transient: the connection was lost or could not be made (``OperationalError`` without a
SQLSTATE, ``InterfaceError`` of a closed connection), and the SQLSTATEs in
``TRANSIENT_SQLSTATES`` (serialization failure, deadlock, lock timeout, the server shutting
down or starting, too many connections). Trying the same thing again later can succeed.
Anything else (a constraint violated, a missing procedure, a reconciliation failure) is
permanent: it fails at once, without retries.

Delays follow "exponential backoff with full jitter": before retry ``n`` (1-based) the caller
sleeps a uniformly random time in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg2

from runner.config import RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_SQLSTATES = {
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "55P03": "lock_not_available",
    "57P01": "admin_shutdown",
    "57P02": "crash_shutdown",
    "57P03": "cannot_connect_now",
    "53300": "too_many_connections",
    "08000": "connection_exception",
    "08001": "sqlclient_unable_to_establish_sqlconnection",
    "08003": "connection_does_not_exist",
    "08006": "connection_failure",
}


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE the server sent with ``error``, when there is one."""
    return getattr(error, "pgcode", None) or None


def is_transient(error: BaseException) -> bool:
    """True when retrying the same work later can succeed."""
    code = sqlstate(error)
    if code is not None:
        return code in TRANSIENT_SQLSTATES
    # No SQLSTATE: the connection broke, or was never made.
    return isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError)


def describe(error: BaseException) -> str:
    """One line naming the error: ``SQLSTATE 40001 serialization_failure: message``.

    The server's message, detail and hint; not its context (the PL/pgSQL line).
    """
    diag = getattr(error, "diag", None)
    parts = [diag.message_primary, diag.message_detail, diag.message_hint] if diag else []
    if parts and parts[0]:
        labels = ("", "DETAIL: ", "HINT: ")
        message = " ".join(label + part for label, part in zip(labels, parts, strict=True)
                           if part)
    else:
        message = str(error)
    message = " ".join(message.split()) or type(error).__name__
    code = sqlstate(error)
    if code is None:
        return message
    name = TRANSIENT_SQLSTATES.get(code)
    return f"SQLSTATE {code}{' ' + name if name else ''}: {message}"


def backoff_delay(retry_number: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based): full jitter."""
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (retry_number - 1))
    return rng.uniform(0.0, max(ceiling, 0.0))


@dataclass(frozen=True)
class Attempted(Generic[T]):
    """What a retried call returned, and after how many attempts."""

    value: T
    attempts: int


class GaveUp(Exception):
    """The work failed for good: a permanent error, retries exhausted, or a stop request."""

    def __init__(self, cause: BaseException, attempts: int, *, stopped: bool = False) -> None:
        self.cause = cause
        self.attempts = attempts
        self.transient = is_transient(cause)
        self.stopped = stopped
        super().__init__(self.summary())

    def summary(self) -> str:
        if self.stopped:
            why = f"stopped while waiting to retry after {self.attempts} attempt(s)"
        elif self.transient:
            why = f"still failing after {self.attempts} attempt(s)"
        else:
            why = f"permanent error on attempt {self.attempts}, not retried"
        return f"{describe(self.cause)} ({why})"

    @property
    def sqlstate(self) -> str | None:
        return sqlstate(self.cause)


@dataclass
class Retrier:
    """Calls work again after transient errors, as the policy allows.

    ``sleep`` returns True when the wait was cut short by a stop request (pass
    ``threading.Event().wait``); then no further attempt is made.
    """

    policy: RetryPolicy
    sleep: Callable[[float], bool | None] = time.sleep
    rng: random.Random | None = None

    def call(
        self,
        work: Callable[[], T],
        *,
        what: str,
        on_transient: Callable[[BaseException, int], None] | None = None,
    ) -> Attempted[T]:
        """Run ``work`` until it succeeds. A database error that is permanent, or transient
        beyond the policy's attempts, raises ``GaveUp``; any other exception propagates as is.

        ``on_transient(error, attempt)`` runs after each transient failure, before the wait
        (roll back, drop a broken connection, record the attempt).
        """
        rng = self.rng or random.Random()
        attempts = max(1, self.policy.attempts)
        for attempt in range(1, attempts + 1):
            try:
                return Attempted(work(), attempt)
            except psycopg2.Error as error:
                if not is_transient(error) or attempt == attempts:
                    raise GaveUp(error, attempt) from error
                if on_transient is not None:
                    on_transient(error, attempt)
                delay = backoff_delay(attempt, self.policy, rng)
                log.warning("%s: transient error on attempt %d/%d, retrying in %.2fs: %s",
                            what, attempt, attempts, delay, describe(error))
                if self.sleep(delay):
                    raise GaveUp(error, attempt, stopped=True) from error
        raise AssertionError("unreachable: the loop returns or raises")
