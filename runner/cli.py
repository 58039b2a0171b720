"""The command line: ``python -m runner COMMAND``.

Each command lives in runner/commands/, in the module of its subject, and registers itself
here through a ``register(subparsers)`` function; its handler takes the parsed arguments and the
configuration and returns the process exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from runner.commands import db, ingest, pipeline, privacy, reports
from runner.config import ConfigError, load_config
from runner.exitcodes import EXIT_FAILED, EXIT_STOPPED, EXIT_USAGE
from runner.redact import RedactingFormatter, redact

log = logging.getLogger("runner")

COMMAND_MODULES = [db, ingest, reports, pipeline, privacy]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runner",
        description="E-commerce analytics warehouse on PostgreSQL: migrate, ingest, run, "
        "schedule, status, dashboard. The database is DATABASE_URL when set, otherwise an "
        "embedded cluster under .pgdata/ started on demand.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    for command in subparsers.choices.values():
        # -v is accepted after the command too (`run -v`); SUPPRESS keeps the one given
        # before the command when it is not repeated after it.
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="debug logging: each step and the procedures' notices")
    return parser


def command_names() -> list[str]:
    """Names of every command (the deployment test checks compose against this)."""
    parser = build_parser()
    for action in parser._actions:  # noqa: SLF001 - argparse keeps subparsers here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return sorted(action.choices)
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        handlers=[handler])
    try:
        config = load_config()
    except ConfigError as error:
        print(f"python -m runner {args.command}: {redact(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args, config) or 0)
    except KeyboardInterrupt:
        return EXIT_STOPPED
    except Exception as error:  # a message, not a traceback (which -v adds to the log)
        log.debug("%s failed", args.command, exc_info=True)
        print(f"python -m runner {args.command}: {type(error).__name__}: "
              f"{redact(' '.join(str(error).split()))}", file=sys.stderr)
        return EXIT_FAILED
