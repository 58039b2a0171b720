"""Configuration, read from the environment in one place and passed down as values.

Variables (all optional):

- ``DATABASE_URL``: any libpq / SQLAlchemy PostgreSQL URL. When unset, the embedded cluster
  under ``.pgdata/`` in the project is used (created and started on demand).
- ``WAREHOUSE_LANDING``: landing directory of ``run`` (default ``data/``).
- ``WAREHOUSE_PGDATA``: where the embedded cluster lives (default ``<project>/.pgdata``).
- ``WAREHOUSE_RETRY_ATTEMPTS``, ``WAREHOUSE_RETRY_BASE_DELAY`` seconds,
  ``WAREHOUSE_RETRY_MAX_DELAY`` seconds: override, for this process, the retry policy of the
  database's ``etl.retry_policy`` (5 attempts, 0.5 s, 30 s as seeded; runner/retry.py).
- ``WAREHOUSE_MAX_AGE``: freshness limit of ``status``, e.g. ``26h``, ``90m`` (default 26h).
- ``WAREHOUSE_MAX_DATA_AGE``: limit on the age of the newest sale in ``status`` (default: the
  same as ``WAREHOUSE_MAX_AGE``; ``off`` disables the check, e.g. for historical data).
- ``WAREHOUSE_METRICS_HOST`` / ``WAREHOUSE_METRICS_PORT``: the scheduler's /healthz and
  /metrics (default 127.0.0.1:9108).
- ``WAREHOUSE_RUNNER_PASSWORD`` / ``WAREHOUSE_BI_PASSWORD``: passwords of the runner's and
  BI's logins, for ``python -m runner logins`` (runner/logins.py).
- ``WAREHOUSE_ALERT_URLS``: Apprise URLs of the alert channels (``json://``, ``mailto://``,
  ``slack://`` ...), separated by spaces or new lines (not commas: a URL may hold one);
  unset: alerts are queued in ``etl.alert`` and sent nowhere.
- ``WAREHOUSE_ALERT_TIMEOUT``: time-out of one channel, e.g. ``10s`` (default 10s).
- ``WAREHOUSE_ALERT_RETRY_WINDOW``: an alert not delivered to a channel is retried on later
  runs for this long after it was raised, e.g. ``3d`` (default 3d).

A value that cannot be used raises ConfigError naming the variable; the CLI exits 2.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from runner.logins import LOGINS

PROJECT_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(ValueError):
    """A setting (an environment variable or an option) holds a value that cannot be used;
    the message names the setting and the value. The CLI exits 2 (a usage error) on it."""


def parse_optional_duration(text: str) -> timedelta | None:
    """A duration, or None for ``off`` / ``none``."""
    return None if text.strip().lower() in ("off", "none") else parse_duration(text)


def parse_duration(text: str) -> timedelta:
    """Parse ``90``, ``30s``, ``15m``, ``26h`` or ``2d`` into a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 26h, 2d)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def duration_option(text: str) -> timedelta:
    """``parse_duration`` for argparse: a bad value is a usage error naming it (exit 2)."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def optional_duration_option(text: str) -> timedelta | None:
    """``parse_optional_duration`` for argparse (``off`` allowed)."""
    try:
        return parse_optional_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}, or off") from None


def port_option(text: str) -> int:
    """A TCP port for argparse (0 allowed: none)."""
    try:
        port = _whole_number(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (0 to 65535): {text!r}")
    return port


def positive_option(text: str) -> int:
    """A whole number of at least 1, for argparse."""
    try:
        number = _whole_number(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return number


def _setting(env: Mapping[str, str], name: str, default: str, parse: Callable[[str], T],
             check: Callable[[T], bool] = lambda value: True, rule: str = "") -> T:
    """``env[name]`` parsed, or ConfigError naming the variable, its value and the rule."""
    text = env.get(name) or default
    try:
        value = parse(text)
    except ValueError as error:
        raise ConfigError(f"{name}={text!r} is not valid: {error}") from None
    if not check(value):
        raise ConfigError(f"{name}={text!r} is not valid: {rule}")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("not a whole number") from None


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("not a number of seconds") from None


@dataclass(frozen=True)
class RetryPolicy:
    """Overrides of the database's retry policy (``etl.retry_policy``); None: its value."""

    attempts: int | None = None
    base_delay: float | None = None
    max_delay: float | None = None


def _override(env: Mapping[str, str], name: str, parse: Callable[[str], T],
              check: Callable[[T], bool], rule: str) -> T | None:
    """``env[name]`` parsed and checked as ``_setting`` does; None when it is unset."""
    return _setting(env, name, "", parse, check, rule) if env.get(name) else None


@dataclass(frozen=True)
class AlertSettings:
    urls: tuple[str, ...] = ()  # Apprise URLs; they may hold secrets: never log them
    timeout: float = 10.0  # seconds, per channel
    retry_window: timedelta = timedelta(days=3)


@dataclass(frozen=True)
class Config:
    database_url: str | None
    project_root: Path
    pgdata: Path
    landing: Path
    retry: RetryPolicy
    max_age: timedelta
    max_data_age: timedelta | None
    metrics_host: str
    metrics_port: int
    landing_set: bool = False  # WAREHOUSE_LANDING was given (then it must exist)
    # WAREHOUSE_RUNNER_PASSWORD / WAREHOUSE_BI_PASSWORD: variable -> password of the logins
    # that `python -m runner logins` creates (runner/logins.py); never printed
    login_passwords: Mapping[str, str] = field(default_factory=dict, repr=False)
    alerts: AlertSettings = AlertSettings()

    @property
    def embedded(self) -> bool:
        """True when the embedded local cluster is the database."""
        return self.database_url is None


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from ``env`` (the process environment by default); raises
    ConfigError naming the variable and value that cannot be used."""
    env = os.environ if env is None else env
    root = PROJECT_ROOT
    url = env.get("DATABASE_URL") or None
    max_age = _setting(env, "WAREHOUSE_MAX_AGE", "26h", parse_duration)
    data_age_name = "WAREHOUSE_MAX_DATA_AGE" if env.get("WAREHOUSE_MAX_DATA_AGE") else (
        "WAREHOUSE_MAX_AGE")
    return Config(
        database_url=url,
        project_root=root,
        pgdata=Path(env.get("WAREHOUSE_PGDATA") or root / ".pgdata"),
        landing=Path(env.get("WAREHOUSE_LANDING") or root / "data"),
        landing_set=bool(env.get("WAREHOUSE_LANDING")),
        login_passwords={login.password_variable: env[login.password_variable]
                         for login in LOGINS if env.get(login.password_variable)},
        retry=RetryPolicy(
            attempts=_override(env, "WAREHOUSE_RETRY_ATTEMPTS", _whole_number,
                               lambda n: n >= 1, "at least 1 (1 means no retry)"),
            base_delay=_override(env, "WAREHOUSE_RETRY_BASE_DELAY", _seconds,
                                 lambda s: s >= 0, "0 or more seconds"),
            max_delay=_override(env, "WAREHOUSE_RETRY_MAX_DELAY", _seconds,
                                lambda s: s >= 0, "0 or more seconds"),
        ),
        max_age=max_age,
        max_data_age=_setting(env, data_age_name, "26h", parse_optional_duration),
        metrics_host=env.get("WAREHOUSE_METRICS_HOST", "127.0.0.1"),
        metrics_port=_setting(env, "WAREHOUSE_METRICS_PORT", "9108", _whole_number,
                              lambda p: 0 <= p <= 65535, "a TCP port, 0 to 65535 (0: off)"),
        alerts=AlertSettings(
            urls=tuple((env.get("WAREHOUSE_ALERT_URLS") or "").split()),
            timeout=_setting(env, "WAREHOUSE_ALERT_TIMEOUT", "10s", parse_duration,
                             lambda d: d.total_seconds() > 0, "a positive duration, e.g. 10s"
                             ).total_seconds(),
            retry_window=_setting(env, "WAREHOUSE_ALERT_RETRY_WINDOW", "3d", parse_duration),
        ),
    )
