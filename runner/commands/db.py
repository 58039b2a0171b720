"""Commands about the database itself: ``db start|stop|status|url``, ``migrate``."""

from __future__ import annotations

import argparse

from runner.config import Config
from runner.db import database_url, local_cluster


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser(
        "db", help="manage the embedded PostgreSQL cluster under .pgdata/",
        description="Manage the embedded cluster (ignored when DATABASE_URL is set).",
    )
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    db.add_argument("--port", type=int, help="also listen on TCP localhost:PORT (start)")
    db.set_defaults(handler=run_db)

    mig = subparsers.add_parser(
        "migrate", help="alembic upgrade head (tables, then changed procedures/ files)"
    )
    mig.add_argument("--revision", default="head", help="target revision (default head)")
    mig.set_defaults(handler=run_migrate)


def run_db(args: argparse.Namespace, config: Config) -> int:
    if config.database_url and args.action != "url":
        print("DATABASE_URL is set: the embedded cluster is not used")
        return 0
    if config.database_url:
        print(database_url(config))
        return 0
    cluster = local_cluster(config)
    if args.port:
        cluster.tcp_port = args.port
    if args.action == "start":
        cluster.start()
        print(f"running: {cluster.url()}")
    elif args.action == "stop":
        print("stopped" if cluster.stop() else "not running")
    elif args.action == "status":
        running = cluster.is_running()
        print(f"{'running' if running else 'stopped'}: {cluster.base}")
        return 0 if running else 3
    else:
        print(cluster.url())
    return 0


def run_migrate(args: argparse.Namespace, config: Config) -> int:
    from runner import migrate  # alembic takes a second to import: only when migrating

    url = database_url(config)
    migrate.upgrade(url, args.revision)
    print(f"migrated to {args.revision}")
    return 0
