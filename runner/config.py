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
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_optional_duration(text: str) -> timedelta | None:
    """A duration, or None for ``off`` / ``none``."""
    return None if text.strip().lower() in ("off", "none") else parse_duration(text)


def parse_duration(text: str) -> timedelta:
    """Parse ``90``, ``30s``, ``15m``, ``26h`` or ``2d`` into a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 26h, 2d)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True)
class RetryPolicy:
    """Overrides of the database's retry policy (``etl.retry_policy``); None: its value."""

    attempts: int | None = None
    base_delay: float | None = None
    max_delay: float | None = None


def _optional(env: Mapping[str, str], name: str, kind: type[int] | type[float]
              ) -> int | float | None:
    text = env.get(name)
    return kind(text) if text else None


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

    @property
    def embedded(self) -> bool:
        """True when the embedded local cluster is the database."""
        return self.database_url is None


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    root = PROJECT_ROOT
    url = env.get("DATABASE_URL") or None
    return Config(
        database_url=url,
        project_root=root,
        pgdata=Path(env.get("WAREHOUSE_PGDATA") or root / ".pgdata"),
        landing=Path(env.get("WAREHOUSE_LANDING") or root / "data"),
        retry=RetryPolicy(
            attempts=_optional(env, "WAREHOUSE_RETRY_ATTEMPTS", int),
            base_delay=_optional(env, "WAREHOUSE_RETRY_BASE_DELAY", float),
            max_delay=_optional(env, "WAREHOUSE_RETRY_MAX_DELAY", float),
        ),
        max_age=parse_duration(env.get("WAREHOUSE_MAX_AGE", "26h")),
        max_data_age=parse_optional_duration(
            env.get("WAREHOUSE_MAX_DATA_AGE") or env.get("WAREHOUSE_MAX_AGE", "26h")
        ),
        metrics_host=env.get("WAREHOUSE_METRICS_HOST", "127.0.0.1"),
        metrics_port=int(env.get("WAREHOUSE_METRICS_PORT", "9108")),
    )
