"""Which database errors are transient, and retrying them with backoff and full jitter.

The policy is data, shared with ``etl.process_pending()``: ``etl.retry_policy`` (attempts,
base and largest delay) and ``etl.transient_sqlstate`` (the SQLSTATEs retried), seeded by
alembic/versions/0008_pipeline_chain.py. ``read_policy`` reads them; the environment's
``WAREHOUSE_RETRY_*`` (runner/config.py, ``RetryPolicy``) override the numbers for this
process only.

Transient: the connection was lost or could not be made (``OperationalError`` without a
SQLSTATE, ``InterfaceError`` of a closed connection), and the listed SQLSTATEs. Trying the
same thing again later can succeed. Anything else (a constraint violated, a missing
procedure, a reconciliation failure) is permanent: it fails at once, without retries.

Delays follow "exponential backoff with full jitter": before retry ``n`` (1-based) the caller
sleeps a uniformly random time in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

import psycopg2
import psycopg2.extensions

from runner.config import RetryPolicy
from runner.redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

POLICY_SQL = """
select p.attempts, p.base_delay_s, p.max_delay_s,
       (select coalesce(jsonb_object_agg(t.sqlstate, t.condition), '{}'::jsonb)
        from etl.transient_sqlstate t)
from etl.retry_policy p
"""


class Backoff(Protocol):
    base_delay: float
    max_delay: float


@dataclass(frozen=True)
class Policy:
    """The retry policy in force: the database's, with this process's overrides."""

    attempts: int
    base_delay: float
    max_delay: float
    transient: Mapping[str, str] = field(default_factory=dict)  # SQLSTATE -> condition name

    def overridden(self, overrides: RetryPolicy) -> Policy:
        """This policy with the numbers ``overrides`` sets."""
        changed = {name: value for name in ("attempts", "base_delay", "max_delay")
                   if (value := getattr(overrides, name)) is not None}
        return replace(self, **changed)

    def is_transient(self, error: BaseException) -> bool:
        """True when retrying the same work later can succeed."""
        code = sqlstate(error)
        if code is not None:
            return code in self.transient
        # No SQLSTATE: the connection broke, or was never made.
        return isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError)

    def describe(self, error: BaseException) -> str:
        """One line naming the error: ``SQLSTATE 40001 serialization_failure: message``
        (the condition is named for transient SQLSTATEs)."""
        message = server_message(error)
        code = sqlstate(error)
        if code is None:
            return message
        name = self.transient.get(code)
        return f"SQLSTATE {code}{' ' + name if name else ''}: {message}"


# Apart from etl.retry_policy: waiting for a server not reachable yet, before it can be read.
FIRST_CONTACT = Policy(attempts=5, base_delay=0.5, max_delay=30.0)


def read_policy(conn: psycopg2.extensions.connection,
                overrides: RetryPolicy | None = None) -> Policy:
    """The database's retry policy, with ``overrides`` applied."""
    with conn.cursor() as cur:
        cur.execute(POLICY_SQL)
        return policy_from_row(cur.fetchone(), overrides)


def policy_from_row(row: tuple, overrides: RetryPolicy | None = None) -> Policy:
    """A policy from ``POLICY_SQL``'s row."""
    attempts, base_delay, max_delay, transient = row
    policy = Policy(int(attempts), float(base_delay), float(max_delay), dict(transient))
    return policy.overridden(overrides) if overrides is not None else policy


def sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE the server sent with ``error``, when there is one."""
    return getattr(error, "pgcode", None) or None


def server_message(error: BaseException) -> str:
    """The server's message, detail and hint on one line; not its context (the PL/pgSQL
    line)."""
    diag = getattr(error, "diag", None)
    parts = [diag.message_primary, diag.message_detail, diag.message_hint] if diag else []
    if parts and parts[0]:
        labels = ("", "DETAIL: ", "HINT: ")
        message = " ".join(label + part for label, part in zip(labels, parts, strict=True)
                           if part)
    else:
        message = str(error)
    return redact(" ".join(message.split())) or type(error).__name__


def backoff_delay(retry_number: int, policy: Backoff, rng: random.Random) -> float:
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

    def __init__(self, cause: BaseException, attempts: int, policy: Policy, *,
                 stopped: bool = False) -> None:
        self.cause = cause
        self.attempts = attempts
        self.transient = policy.is_transient(cause)
        self.described = policy.describe(cause)
        self.stopped = stopped
        super().__init__(self.summary())

    def summary(self) -> str:
        if self.stopped:
            why = f"stopped while waiting to retry after {self.attempts} attempt(s)"
        elif self.transient:
            why = f"still failing after {self.attempts} attempt(s)"
        else:
            why = f"permanent error on attempt {self.attempts}, not retried"
        return f"{self.described} ({why})"

    @property
    def sqlstate(self) -> str | None:
        return sqlstate(self.cause)


@dataclass
class Retrier:
    """Calls work again after transient errors, as the policy allows.

    ``sleep`` returns True when the wait was cut short by a stop request (pass
    ``threading.Event().wait``); then no further attempt is made.
    """

    policy: Policy
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
        policy = self.policy
        attempts = max(1, policy.attempts)
        for attempt in range(1, attempts + 1):
            try:
                return Attempted(work(), attempt)
            except psycopg2.Error as error:
                if not policy.is_transient(error) or attempt == attempts:
                    raise GaveUp(error, attempt, policy) from error
                if on_transient is not None:
                    on_transient(error, attempt)
                delay = backoff_delay(attempt, policy, rng)
                log.warning("%s: transient error on attempt %d/%d, retrying in %.2fs: %s",
                            what, attempt, attempts, delay, policy.describe(error))
                if self.sleep(delay):
                    raise GaveUp(error, attempt, policy, stopped=True) from error
        raise AssertionError("unreachable: the loop returns or raises")
