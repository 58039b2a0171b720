"""The PostgreSQL servers the benchmark measures on.

- ``durable`` (the default): a dedicated embedded cluster with the settings of
  docker-compose.yml's ``postgres`` service, read from that file (one place), on top of
  PostgreSQL's defaults: ``wal_level=replica``, ``synchronous_commit=on``, ``fsync=on``,
  full page writes. What a deployment runs.
- ``fast``: the embedded cluster's own settings (runner/localdb.py WAREHOUSE_SETTINGS:
  ``wal_level=minimal``, ``synchronous_commit=off``), which let a bulk load into a table
  created or truncated in the same transaction skip the WAL. Reported separately.
- ``url``: the server of DATABASE_URL, as configured (set when DATABASE_URL is set).

Each embedded kind lives in its own folder under bench/out/, so the two never share
settings or caches.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from runner.config import PROJECT_ROOT, load_config
from runner.db import database_url
from runner.localdb import WAREHOUSE_SETTINGS, LocalCluster

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
KINDS = ("durable", "fast", "url")
# not server settings of the compose service, or meaningless for a local cluster
_SKIPPED = {"shared_preload_libraries"}


def compose_settings(path: Path = COMPOSE) -> dict[str, str]:
    """The ``-c name=value`` settings of the compose file's postgres command."""
    command = yaml.safe_load(path.read_text("utf-8"))["services"]["postgres"]["command"]
    settings = {}
    for flag, value in zip(command[1::2], command[2::2], strict=True):
        if flag != "-c":
            raise ValueError(f"{path}: postgres command: expected -c, found {flag!r}")
        name, _, setting = value.partition("=")
        if name not in _SKIPPED:
            settings[name] = setting
    return settings


def durable_settings() -> dict[str, str]:
    """Compose settings plus what the local cluster needs to be reachable and quiet."""
    local = {key: WAREHOUSE_SETTINGS[key] for key in ("log_timezone",
                                                      "unix_socket_permissions")}
    return {**compose_settings(), **local}


def server_url(kind: str) -> str:
    """URL of the ``postgres`` database of the server of ``kind``, started when embedded."""
    if kind == "url":
        config = load_config()
        if config.database_url is None:
            raise SystemExit("bench --server url: DATABASE_URL is not set")
        return database_url(config)
    settings = durable_settings() if kind == "durable" else dict(WAREHOUSE_SETTINGS)
    cluster = LocalCluster(PROJECT_ROOT / "bench" / "out" / f"pg-{kind}", settings=settings,
                           dbname="postgres")
    return cluster.ensure_running()
