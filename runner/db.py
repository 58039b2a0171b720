"""Database access: which database, connections to it, and a connection that comes back
after it broke (``Session``)."""

from __future__ import annotations

import re
from collections.abc import Callable

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


class Session:
    """A connection that is made on first use and again after it broke."""

    def __init__(self, url: str, application_name: str, *, autocommit: bool) -> None:
        self.url = url
        self.application_name = application_name
        self.autocommit = autocommit
        self._conn: psycopg2.extensions.connection | None = None
        self.on_connect: Callable[[psycopg2.extensions.connection], None] | None = None

    def connection(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            self._conn = None
            conn = connect(self.url, autocommit=self.autocommit,
                           application_name=self.application_name)
            try:
                if self.on_connect is not None:
                    self.on_connect(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def recover(self) -> None:
        """After an error: roll back, or forget the connection when it is broken."""
        if self._conn is None:
            return
        if not self._conn.closed:
            try:
                self._conn.rollback()
                return
            except psycopg2.Error:
                pass
        self.discard()

    def discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
        self._conn = None

    def notices(self) -> list[str]:
        """Notices the server sent since the last call (procedures' RAISE NOTICE)."""
        if self._conn is None:
            return []
        found = [n.strip() for n in self._conn.notices]
        del self._conn.notices[:]
        return found
