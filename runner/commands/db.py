"""Commands about the database itself: ``db start|stop|status|url``, ``migrate``."""

from __future__ import annotations

import argparse
import sys

from runner.config import Config
from runner.db import connect, database_url, local_cluster
from runner.exitcodes import EXIT_CLUSTER_STOPPED, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from runner.localdb import LocalDbError
from runner.logins import LOGINS, ensure_logins


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser(
        "db", help="manage the embedded PostgreSQL cluster under .pgdata/",
        description="Manage the embedded cluster (ignored when DATABASE_URL is set).",
    )
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    db.add_argument("--port", type=int, help="also listen on TCP localhost:PORT (start)")
    db.set_defaults(handler=run_db)

    logins = subparsers.add_parser(
        "logins", help="create or update the runner's and BI's logins (after migrate)",
        description="As the migrating superuser: create or update the login "
        "warehouse_runner (member of warehouse_etl) with WAREHOUSE_RUNNER_PASSWORD and the "
        "login warehouse_bi (member of warehouse_reader) with WAREHOUSE_BI_PASSWORD. Exit 2 "
        "when neither variable is set.",
    )
    logins.set_defaults(handler=run_logins)

    mig = subparsers.add_parser(
        "migrate", help="alembic upgrade head (tables, then changed procedures/ files)"
    )
    mig.add_argument("--revision", default="head", help="target revision (default head)")
    mig.set_defaults(handler=run_migrate)


def run_db(args: argparse.Namespace, config: Config) -> int:
    if config.database_url and args.action != "url":
        print("DATABASE_URL is set: the embedded cluster is not used")
        return EXIT_OK
    if config.database_url:
        print(database_url(config))
        return EXIT_OK
    cluster = local_cluster(config)
    if args.port:
        cluster.tcp_port = args.port
    if args.action == "start":
        try:
            cluster.start()
        except LocalDbError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_FAILED
        print(f"running: {cluster.url()}")
    elif args.action == "stop":
        print("stopped" if cluster.stop() else "not running")
    elif args.action == "status":
        running = cluster.is_running()
        print(f"{'running' if running else 'stopped'}: {cluster.base}")
        return EXIT_OK if running else EXIT_CLUSTER_STOPPED
    else:
        print(cluster.url())
    return EXIT_OK


def run_migrate(args: argparse.Namespace, config: Config) -> int:
    from runner import migrate  # alembic takes a second to import: only when migrating

    url = database_url(config)
    migrate.upgrade(url, args.revision)
    print(f"migrated to {args.revision}")
    return EXIT_OK


def run_logins(args: argparse.Namespace, config: Config) -> int:
    if not config.login_passwords:
        names = " and ".join(login.password_variable for login in LOGINS)
        print(f"logins: set {names} (the passwords of the logins to create)", file=sys.stderr)
        return EXIT_USAGE
    conn = connect(database_url(config))
    try:
        for line in ensure_logins(conn, config.login_passwords):
            print(line)
    finally:
        conn.close()
    return EXIT_OK
