"""Alembic environment: revisions first, then the repeatable routines of procedures/.

The database: a connection handed in through ``config.attributes["connection"]`` (tests,
the runner), else ``config.attributes["url"]``, else ``DATABASE_URL``, else the embedded
cluster. Everything runs in one transaction under an advisory lock, so two upgrades at once
queue instead of colliding, and a failed routine file rolls the revisions back with it.
"""

from __future__ import annotations

import logging.config

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from alembic import context
from runner.config import load_config
from runner.db import database_url, sqlalchemy_url
from runner.routines import MIGRATION_LOCK_KEY, apply_routines

config = context.config
if config.config_file_name is not None and not config.attributes:  # CLI, not the runner
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _at_head() -> bool:
    heads = set(ScriptDirectory.from_config(config).get_heads())
    return set(context.get_context().get_current_heads()) == heads


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        connection.exec_driver_sql(f"select pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()
        if _at_head():
            apply_routines(connection)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = config.attributes.get("url") or database_url(load_config())
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    url = config.attributes.get("url") or load_config().database_url
    if not url:
        raise SystemExit("offline (--sql) mode needs DATABASE_URL to name the target dialect")
    context.configure(url=sqlalchemy_url(url), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
