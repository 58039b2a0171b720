"""Test harness: a real PostgreSQL for every test, no mocks.

One throwaway cluster per test session, started with the project's own embedded-cluster
code (which runs the server binaries as an unprivileged user when the tests run as root),
handed to pytest-postgresql's ``postgresql_noproc`` factory. Its ``load`` step runs
``alembic upgrade head`` once into a template database; every test that asks for a database
gets a fresh one cloned from that template.

Fixtures:
- ``db_url``: URL of the test's fresh, migrated database (libpq / SQLAlchemy form).
- ``conn``: a psycopg2 connection to it, autocommit on (procedures that COMMIT need it).
- ``empty_db_url``: URL of a fresh database with nothing migrated.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from pytest_postgresql import factories

from runner import migrate
from runner.localdb import SUPERUSER, WAREHOUSE_SETTINGS, LocalCluster

# A test cluster trades durability for speed: it is thrown away after the session.
TEST_SETTINGS: dict[str, str] = {
    **WAREHOUSE_SETTINGS,
    "shared_buffers": "256MB",
    "fsync": "off",
    "full_page_writes": "off",
}

_BASE = Path(tempfile.gettempdir()) / f"warehouse-test-{uuid.uuid4().hex[:8]}"
CLUSTER = LocalCluster(_BASE, dbname="postgres", settings=TEST_SETTINGS, fast_init=True)


def url_for(dbname: str) -> str:
    return CLUSTER.url(dbname)


def _migrate_template(host: str, port: int, user: str, dbname: str, **_: object) -> None:
    migrate.upgrade(url_for(dbname))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalCluster]:
    CLUSTER.start()
    print(f"\ntest cluster: {CLUSTER.base}")
    yield CLUSTER
    CLUSTER.stop()
    shutil.rmtree(CLUSTER.base, ignore_errors=True)


_warehouse_template = factories.postgresql_noproc(
    host=str(CLUSTER.socket_dir),
    port=CLUSTER.port,
    user=SUPERUSER,
    dbname="warehouse_test",
    load=[_migrate_template],
)


@pytest.fixture(scope="session")
def warehouse_server(pg_cluster, _warehouse_template):  # noqa: ANN001 - pytest fixtures
    """The session's server with the migrated template database."""
    return _warehouse_template


postgresql = factories.postgresql("warehouse_server")


@pytest.fixture
def db_url(postgresql) -> str:  # noqa: ANN001
    """URL of this test's fresh database, cloned from the migrated template."""
    return url_for(postgresql.info.dbname)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(db_url, options="-c timezone=UTC")
    connection.autocommit = True
    yield connection
    connection.close()


@pytest.fixture
def empty_db_url(pg_cluster: LocalCluster) -> Iterator[str]:
    """A fresh database with nothing in it (for migration tests)."""
    name = f"empty_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(url_for("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    yield url_for(name)
    with admin.cursor() as cur:
        cur.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
        )
        cur.execute(f'drop database if exists "{name}"')
    admin.close()


@pytest.fixture
def second_db_url(warehouse_server, db_url) -> Iterator[str]:  # noqa: ANN001
    """Another fresh database cloned from the migrated template (a clean reference run)."""
    name = f"second_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(url_for("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}" template "{warehouse_server.template_dbname}"')
    yield url_for(name)
    with admin.cursor() as cur:
        cur.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                    (name,))
        cur.execute(f'drop database if exists "{name}"')
    admin.close()
