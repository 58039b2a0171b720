"""Database access: which database, and connections to it."""

from __future__ import annotations

import re

import psycopg2
import psycopg2.extensions

from runner.config import Config
from runner.localdb import LocalCluster

APPLICATION_NAME = "warehouse-runner"
_SCHEME = re.compile(r"^(postgres|postgresql)(\+[a-z0-9_]+)?://", re.IGNORECASE)


def libpq_url(url: str) -> str:
    """The URL as libpq reads it: ``postgres://`` and ``postgresql+driver://`` normalised."""
    return _SCHEME.sub("postgresql://", url, count=1)


def sqlalchemy_url(url: str) -> str:
    """The URL as SQLAlchemy reads it, with the psycopg2 driver."""
    return _SCHEME.sub("postgresql+psycopg2://", url, count=1)


def local_cluster(config: Config) -> LocalCluster:
    return LocalCluster(config.pgdata)


def database_url(config: Config) -> str:
    """``DATABASE_URL`` when set; otherwise the embedded cluster, started on demand."""
    if config.database_url:
        return libpq_url(config.database_url)
    return local_cluster(config).ensure_running()


def connect(url: str, *, autocommit: bool = False, application_name: str = APPLICATION_NAME
            ) -> psycopg2.extensions.connection:
    """A psycopg2 connection to ``url`` with the session pinned to UTC."""
    conn = psycopg2.connect(
        libpq_url(url), application_name=application_name, options="-c timezone=UTC"
    )
    conn.autocommit = autocommit
    return conn
