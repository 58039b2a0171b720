"""Commands that drive the pipeline: ``run``, ``schedule``, ``watch``, ``status``, ``demo``.

Exit codes: runner/exitcodes.py (docs/operations.md, "Exit codes").
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from datetime import timedelta
from pathlib import Path

import psycopg2

from runner import alerts, demo, status
from runner.config import (
    Config,
    duration_option,
    optional_duration_option,
    parse_duration,
    port_option,
    positive_option,
)
from runner.db import connect, database_url
from runner.exitcodes import EXIT_USAGE
from runner.pipeline import RunOptions, run_pipeline, stop_on_signals
from runner.run_summary import run_summary
from runner.scheduler import FULL_CHECK_CRON, MetricsPortBusy, Schedule, Service
from runner.watcher import Watcher

log = logging.getLogger(__name__)

UNSET = object()  # --max-data-age not given (None is its value 'off')


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="ingest new batches, then run the steps for every pending batch",
        description="Ingest the new batches of LANDING, then call the steps (validate, merge, "
        "reprocess orphans, dimensions, fact, aggregates, reconciliation) for every pending "
        "batch, each in its own transaction. Exit codes: 0 done, 1 a step failed, 3 a batch "
        "was refused, 6 a batch is held by a batch check (CALL etl.release_batch(id) or "
        "etl.discard_batch(id) ends the hold), 75 another run holds the lock, 130 stopped "
        "by a signal. Then the alerts are sent (WAREHOUSE_ALERT_URLS).",
    )
    run.add_argument("landing", nargs="?", type=Path, default=None,
                     help="landing directory (default WAREHOUSE_LANDING, or data/)")
    run.add_argument("--wait", action="store_true",
                     help="wait for a run in progress to end instead of exiting with 75")
    run.add_argument("--no-ingest", action="store_true",
                     help="only process the batches already ingested")
    run.set_defaults(handler=run_run)

    sched = subparsers.add_parser(
        "schedule", help="the service: a run on every tick (APScheduler), /metrics, /healthz",
        description="Run the pipeline on a schedule until SIGTERM or SIGINT (then the current "
        "step finishes and the service exits 0).",
    )
    when = sched.add_mutually_exclusive_group()
    when.add_argument("--every", type=duration_option, default=None,
                      help="interval, e.g. 30s, 15m, 1h (default 15m); first run at start")
    when.add_argument("--cron", default=None, help='crontab expression in UTC, e.g. "*/15 * * * *"')
    sched.add_argument("--misfire-grace", type=duration_option, default=None,
                       help="run a late tick if it is late by less than this (default: one "
                       "interval, at most 10m; 5m for cron)")
    sched.add_argument("--metrics-port", type=port_option, default=None,
                       help="port of /metrics and /healthz (default WAREHOUSE_METRICS_PORT or "
                       "9108; 0 disables)")
    sched.add_argument("--full-check-cron", default=FULL_CHECK_CRON, metavar="EXPR|off",
                       help="when to run the full reconciliation, crontab in UTC (default "
                       f'"{FULL_CHECK_CRON}": Sundays 03:00; off disables)')
    sched.add_argument("landing", nargs="?", type=Path, default=None,
                       help="landing directory (default WAREHOUSE_LANDING, or data/)")
    sched.set_defaults(handler=run_schedule)

    rec = subparsers.add_parser(
        "reconcile", help="full reconciliation: every day of production, fact and aggregates",
        description="Under the pipeline lock: process the pending batches, then compare "
        "completed revenue, units, items and orders of every day between production, "
        "warehouse.fact_sales and warehouse.agg_daily_sales "
        "(warehouse.check_full_reconciliation). A balanced check clears the writes made "
        "outside the pipeline (etl.unverified_write). Exit codes as for run: 0 balanced, 1 "
        "a day differs or a step failed, 75 another run holds the lock, 130 stopped.",
    )
    rec.add_argument("--wait", action="store_true",
                     help="wait for a run in progress to end instead of exiting with 75")
    rec.set_defaults(handler=run_reconcile)

    watch = subparsers.add_parser(
        "watch", help="the micro-batch service: each batch processed as soon as it is complete",
        description="Watch LANDING and run the pipeline for each batch directory as soon as "
        "it is complete: it holds _READY or manifest.json, or its files have not changed for "
        "the settle time. Batches go in name order. Same lock, history, retries and metrics "
        "as schedule; SIGTERM or SIGINT: the current step finishes and the service exits 0.",
    )
    watch.add_argument("landing", nargs="?", type=Path, default=None,
                       help="landing directory (default WAREHOUSE_LANDING, or data/)")
    watch.add_argument("--settle", type=optional_duration_option, default=timedelta(seconds=30),
                       metavar="DURATION|off",
                       help="a batch without a marker is complete when its files have not "
                       "changed for this long (default 30s; off: wait for a marker)")
    watch.add_argument("--poll", action="store_true",
                       help="poll the folder instead of file events (network file systems)")
    watch.add_argument("--metrics-port", type=int, default=None,
                       help="port of /metrics and /healthz (default WAREHOUSE_METRICS_PORT or "
                       "9108; 0 disables)")
    watch.set_defaults(handler=run_watch)

    stat = subparsers.add_parser(
        "status", help="last runs, steps, rejects and freshness; the exit code is the verdict",
        description="Exit codes: 0 healthy, 1 the last run failed, 3 stale, 4 empty (no sales "
        "yet), 5 database unavailable or not migrated, 6 a batch is held. A freshness limit "
        "passed raises an alert (once per stale period); the alerts are then sent.",
    )
    stat.add_argument("--max-age", type=duration_option, default=None,
                      help="limit on the last successful run's age (default WAREHOUSE_MAX_AGE "
                      "or 26h)")
    stat.add_argument("--max-data-age", type=optional_duration_option, default=UNSET,
                      metavar="DURATION|off",
                      help="limit on the newest sale's age, or 'off' (default "
                      "WAREHOUSE_MAX_DATA_AGE, else the same as --max-age)")
    stat.add_argument("--runs", type=positive_option, default=10,
                      help="how many runs to list (10)")
    out = stat.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--quiet", "-q", action="store_true",
                     help="one line (verdict: reason); for health checks")
    stat.set_defaults(handler=run_status)

    dem = subparsers.add_parser(
        "demo", help="migrate, generate demo data if missing, run, print the KPIs",
        description="On the configured database (the embedded one by default): migrate, "
        f"generate {demo.DEMO_DESCRIPTION} under data/demo if it is not there, run the "
        "pipeline, print KPIs and rejects, write the dashboard.",
    )
    dem.add_argument("--out", type=Path, default=None,
                     help="where the demo data goes (default data/demo under the project)")
    dem.set_defaults(handler=run_demo)


# -- run --------------------------------------------------------------------------------------

def run_options(config: Config, landing: Path | None, *, trigger: str,
                wait: bool = False) -> RunOptions:
    return RunOptions(landing=landing if landing is not None else config.landing,
                      retry=config.retry, trigger=trigger, wait=wait)


def landing_problem(config: Config, landing: Path | None, command: str) -> str | None:
    """Why the landing directory cannot be used, when it was named (as an argument or in
    WAREHOUSE_LANDING) and is not a directory; the default data/ may be missing."""
    path = landing if landing is not None else config.landing
    if (landing is None and not config.landing_set) or path.is_dir():
        return None
    what = "does not exist" if not path.exists() else "is not a directory"
    source = "" if landing is not None else " (WAREHOUSE_LANDING)"
    return (f"{command}: the landing directory {path}{source} {what}: give a batch directory "
            "or a directory of batch directories")


def run_run(args: argparse.Namespace, config: Config) -> int:
    problem = None if args.no_ingest else landing_problem(config, args.landing, "run")
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    options = run_options(config, args.landing, trigger="cli", wait=args.wait)
    if args.no_ingest:
        options = RunOptions(landing=None, retry=config.retry, trigger="cli", wait=args.wait)
    url = database_url(config)
    with stop_on_signals(threading.Event()) as stop:
        result = run_pipeline(url, options, stop)
    alerts.dispatch(url, config.alerts)
    print(run_summary(url, result))
    return result.exit_code


# -- reconcile --------------------------------------------------------------------------------

def run_reconcile(args: argparse.Namespace, config: Config) -> int:
    options = RunOptions(landing=None, retry=config.retry, trigger="reconcile", wait=args.wait,
                         full_reconciliation=True)
    url = database_url(config)
    with stop_on_signals(threading.Event()) as stop:
        result = run_pipeline(url, options, stop)
    print(run_summary(url, result))
    return result.exit_code


# -- schedule ---------------------------------------------------------------------------------

def run_schedule(args: argparse.Namespace, config: Config) -> int:
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # one log line per run
        for chatty in ("apscheduler", "runner.ingest"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    problem = landing_problem(config, args.landing, "schedule")
    if args.every is not None and args.every.total_seconds() <= 0:
        problem = f"schedule: --every must be longer than 0s (got {args.every})"
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    every = args.every if args.every is not None or args.cron else parse_duration("15m")
    full_check = None if args.full_check_cron.strip().lower() == "off" else args.full_check_cron
    schedule = Schedule(every=every, cron=args.cron, misfire_grace=args.misfire_grace,
                        full_check_cron=full_check)
    try:
        schedule.trigger()
        schedule.full_check_trigger()
    except ValueError as error:
        print(f"schedule: {error}", file=sys.stderr)
        return EXIT_USAGE
    service = Service(database_url(config), run_options(config, args.landing,
                                                         trigger="schedule"),
                      schedule, config.metrics_host, metrics_port(args, config),
                      alert_settings=config.alerts, limits=freshness_limits(config))
    return serve("schedule", service)


def metrics_port(args: argparse.Namespace, config: Config) -> int:
    """The metrics port of schedule and watch: --metrics-port, else the configured one."""
    return config.metrics_port if args.metrics_port is None else args.metrics_port


def freshness_limits(config: Config) -> status.Limits:
    return status.Limits(max_age=config.max_age, max_data_age=config.max_data_age)


def serve(command: str, service: Service | Watcher) -> int:
    """Run the service of schedule or watch until it stops; a busy metrics port is a usage
    error."""
    try:
        return service.serve()
    except MetricsPortBusy as busy:
        print(f"{command}: {busy}", file=sys.stderr)
        return EXIT_USAGE


# -- watch ----------------------------------------------------------------------------------

def run_watch(args: argparse.Namespace, config: Config) -> int:
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # one log line per run
        logging.getLogger("runner.ingest").setLevel(logging.WARNING)
    settle = args.settle
    options = run_options(config, args.landing, trigger="watch")
    if not options.landing.is_dir():  # watched, so it must exist, even the default data/
        print(f"watch: the landing directory {options.landing} does not exist or is not a "
              "directory: create it, or give the folder the batches arrive in",
              file=sys.stderr)
        return EXIT_USAGE
    watcher = Watcher(database_url(config), options, options.landing, settle=settle,
                      poll=args.poll, metrics_host=config.metrics_host,
                      metrics_port=metrics_port(args, config), alert_settings=config.alerts,
                      limits=freshness_limits(config))
    return serve("watch", watcher)


# -- status -----------------------------------------------------------------------------------

def run_status(args: argparse.Namespace, config: Config) -> int:
    max_age = config.max_age if args.max_age is None else args.max_age
    if args.max_data_age is not UNSET:
        max_data_age = args.max_data_age
    elif args.max_age is not None and config.max_data_age == config.max_age:
        max_data_age = args.max_age  # one --max-age moves both limits unless set apart
    else:
        max_data_age = config.max_data_age
    limits = status.Limits(max_age=max_age, max_data_age=max_data_age)
    report = None
    url = database_url(config)
    try:
        conn = connect(url, autocommit=True, application_name="warehouse-status")
        try:
            report = status.collect(conn, args.runs)
            _queue_freshness_alert(conn, report, limits)
        finally:
            conn.close()
        health = status.judge(report, limits)
    except psycopg2.Error as error:
        health = status.unavailable(error)
    if report is not None:
        alerts.dispatch(url, config.alerts)
    if args.json:
        print(status.to_json(report, health, limits))
    elif args.quiet or report is None:
        print(health.one_line())
    else:
        print(status.render_text(report, health, limits))
    return health.exit_code


def _queue_freshness_alert(conn: psycopg2.extensions.connection, report: status.Report,
                           limits: status.Limits) -> None:
    """status reports even when the alert cannot be queued (a read-only standby)."""
    try:
        status.queue_freshness_alert(conn, report, limits)
    except psycopg2.Error as error:
        log.warning("freshness alert not queued: %s", " ".join(str(error).split()))


# -- demo -------------------------------------------------------------------------------------

def run_demo(args: argparse.Namespace, config: Config) -> int:
    return demo.run_demo(config, args.out)
