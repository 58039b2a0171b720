"""``python -m runner ingest PATH...``: CSV batches into staging (runner/ingest.py).

Prints one line per file on stdout (rows, staged, malformed, extra columns, time, rows/s),
and a progress bar with rows/s on stderr for large files when stderr is a terminal. Exit
codes: 0 every batch ingested (or nothing new), 2 a batch was refused (the batches before it
were kept, none after it was taken), 1 a path is not a directory.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from runner.config import Config
from runner.db import database_url
from runner.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from runner.ingest import BatchRefused, FileResult, IngestError, ingest_paths

BAR_MIN_BYTES = 16 * 1024 * 1024  # smaller files load too fast for a bar to help
BAR_INTERVAL = 0.2  # seconds between redraws
BAR_WIDTH = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    ingest = subparsers.add_parser(
        "ingest", help="copy CSV batches into staging (exactly once per file)",
        description="Copy CSV batches into the staging schema. PATH is a batch directory "
        "(holding customers.csv, products.csv, transactions.csv and/or "
        "transaction_items.csv) or a landing directory of batch directories, taken in name "
        "order. Files already loaded (same SHA-256) are skipped. A refused batch stops the "
        "command with exit code 3 (as for run); the batches before it are kept.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="batch or landing directory")
    ingest.set_defaults(handler=run_ingest)


def run_ingest(args: argparse.Namespace, config: Config) -> int:
    progress = ConsoleProgress(sys.stdout, sys.stderr)
    try:
        report = ingest_paths(database_url(config), args.paths, progress=progress)
    except IngestError as error:
        print(f"ingest: {error}", file=sys.stderr)
        return EXIT_FAILED
    except BatchRefused as refused:
        for batch in refused.report.batches:
            print(batch.summary())
        kept = len(refused.report.loaded)
        print(f"REFUSED {refused.refusal.describe()} The {kept} batch(es) before it were "
              "kept; no batch after it was taken.", file=sys.stderr)
        return EXIT_REFUSED
    for batch in report.batches:
        if batch.status != "loaded":
            print(batch.summary())
    print(report.summary())
    return EXIT_OK


class ConsoleProgress:
    """Summary lines on ``out``; a progress bar on ``err`` for large files on a terminal."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self._bar = False
        self._drawn = False
        self._label = ""
        self._size = 0
        self._began = 0.0
        self._last = 0.0

    def file_started(self, batch_name: str, file_name: str, size_bytes: int) -> None:
        self._label = f"{batch_name}/{file_name}"
        self._size = size_bytes
        self._began = self._last = time.monotonic()
        self._bar = size_bytes >= BAR_MIN_BYTES and self.err.isatty()

    def file_advanced(self, bytes_read: int, rows: int) -> None:
        if not self._bar:
            return
        now = time.monotonic()
        if now - self._last < BAR_INTERVAL:
            return
        self._last = now
        share = min(bytes_read / self._size, 1.0) if self._size else 1.0
        filled = int(share * BAR_WIDTH)
        rate = rows / (now - self._began) if now > self._began else 0.0
        self.err.write(f"\r{self._label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                       f"{share:6.1%} {rows:,} rows {rate:,.0f} rows/s")
        self.err.flush()
        self._drawn = True

    def file_finished(self, batch_name: str, result: FileResult) -> None:
        if self._drawn:
            self.err.write("\r\033[K")
            self.err.flush()
            self._drawn = False
        self._bar = False
        print(result.summary(batch_name), file=self.out, flush=True)
