"""Ingestion: CSV batches into ``staging``, exactly once, every line accounted for.

A batch is a directory holding any of the four contract files; a landing directory holds
batch directories, taken in the order of their names (docs/data-contract.md, "Files and
batches"). For each batch, in ONE transaction:

1. take the ingestion lock (``pg_advisory_xact_lock``), so two ingests queue;
2. for each file (customers, products, transactions, items): if a file with the same
   SHA-256 is in the ledger (``etl.batch_file``), skip it as *already loaded*: it stays
   under the batch that first loaded it. Otherwise read its header and match it to the
   contract (runner/csvstream.py); a problem there refuses the batch before anything is
   copied;
3. insert the batch (``etl.batch``, status 'ingested', load_ts = now()), then create the
   batch's partition of each new file's table (``staging.add_batch_partition``: validation
   reads that partition alone) and stream the file through ``COPY staging.<table> FROM
   STDIN`` (runner/csvstream.CopyStream), its
   malformed records into ``etl.rejected_row`` (rule ``malformed_row``, raw text, line), and
   its ledger row (hash, header, extra and absent columns, rows in file = staged +
   malformed);
4. commit. A process killed at any moment before the commit leaves nothing: the next call
   loads the batch whole.

A batch whose every file is already loaded creates no batch row; it is reported as
``already_loaded`` with the batches that loaded its files. A batch directory whose name was
discarded (``etl.discard_batch``) and whose new files are all among that batch's files
(``etl.discarded_file``, by name and hash) creates none either: it is reported as
``discarded``, so leaving it in the landing does not hold the pipeline again. Changed files
under that name, or the same bytes under another name, load as a new batch.

Refusal (missing header, missing or repeated column, not UTF-8, a NUL byte, a record over
256 MiB): the batch's transaction is rolled back (nothing staged, no hash recorded, so the
fixed batch can be delivered again), the refusal is recorded in ``etl.batch_refusal`` in its
own transaction, and ``BatchRefused`` is raised. ``ingest_paths`` stops there: the batches
before it stay committed, none after it is taken.

Safety: file names and paths never reach SQL text. Identifiers come from the whitelist
``FILE_SPECS`` of runner/contract.py; names from the files are matched against it and only
the whitelist's names are written into the COPY statement; everything else is a parameter.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn, Protocol

import psycopg2
import psycopg2.extensions

from runner.contract import FILE_SPECS, FileSpec
from runner.csvstream import (
    LONG_RECORD_LINES,
    SEND_SIZE,
    CopyStream,
    FileProblem,
    Header,
    Layout,
    LongField,
    LongRecord,
    Snapshot,
    plan_layout,
    read_header,
    unreadable,
)
from runner.db import connect
from runner.redact import is_printable, printable

log = logging.getLogger(__name__)

INGEST_LOCK_KEY = 720_300_004  # pg_advisory_xact_lock key held by each batch's transaction
MALFORMED_RULES = "{malformed_row}"
_SPOOL_IN_MEMORY = 8 * 1024 * 1024  # malformed records beyond this spill to a temp file
_HASH_BLOCK = 1024 * 1024
# Names a batch may hold beside the contract files without a warning: the manifest and the
# marker a delivery writes when it is complete (DESIGN.md, "watch").
EXPECTED_EXTRA_FILES = frozenset({"manifest.json", "_READY"})
SPEC_BY_FILE = {spec.file_name: spec for spec in FILE_SPECS}

_COPY_REJECTS_SQL = (
    "copy etl.rejected_row (batch_id, file_name, line_no, rules, raw_text) "
    "from stdin with (format csv)"
)
_INSERT_BATCH_SQL = (
    "insert into etl.batch (batch_name, source_path) values (%s, %s) returning batch_id"
)
_INSERT_LEDGER_SQL = """
insert into etl.batch_file (
    batch_id, file_name, sha256, size_bytes, header, extra_columns, absent_optional,
    rows_in_file, rows_staged, rows_malformed
) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
_LOADED_WITH_SIZE_SQL = """
select f.sha256, b.batch_id, b.batch_name
from etl.batch_file f
join etl.batch b on b.batch_id = f.batch_id
where f.size_bytes = %s
"""
_LOADED_WITH_HASH_SQL = """
select b.batch_id, b.batch_name
from etl.batch_file f
join etl.batch b on b.batch_id = f.batch_id
where f.sha256 = %s
"""
_DISCARDED_SQL = "select file_name, sha256 from etl.discarded_file where batch_name = %s"
# One batch-check event per file whose longest record spans too many lines (revision 0013);
# etl.check_batch queues it for the alert channels like every event of the batch.
_INSERT_LONG_RECORD_EVENT_SQL = """
insert into etl.dq_event (batch_id, file_name, check_name, severity, observed, threshold,
                          message)
values (%s, %s, 'long_record', 'warn', %s, %s, %s)
on conflict do nothing
"""
_INSERT_REFUSAL_SQL = """
insert into etl.batch_refusal (
    batch_name, source_path, file_name, problem, line_no, byte_offset, message
) values (%s, %s, %s, %s, %s, %s, %s)
"""


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    """One file of a batch: loaded now, or already loaded by an earlier batch."""

    file_name: str
    status: str  # 'loaded' or 'already_loaded'
    sha256: str
    size_bytes: int
    rows_in_file: int = 0
    rows_staged: int = 0
    rows_malformed: int = 0
    extra_columns: tuple[str, ...] = ()
    absent_optional: tuple[str, ...] = ()
    seconds: float = 0.0
    loaded_in_batch_id: int | None = None  # the batch holding the file
    loaded_in_batch_name: str | None = None
    long_records: tuple[LongRecord, ...] = ()  # records spanning many lines (stray quotes?)
    long_fields: tuple[LongField, ...] = ()  # records quarantined for a field over the limit
    bare_cr_lines: tuple[int, ...] = ()  # malformed records holding a CR that ends no line

    @property
    def rows_per_second(self) -> float:
        return self.rows_in_file / self.seconds if self.seconds > 0 else 0.0

    def warnings(self) -> list[str]:
        """What the operator should look at: stray quotes, fields over the limit, bare CRs."""
        found = [item.describe(self.file_name)
                 for item in (*self.long_records, *self.long_fields)]
        if self.bare_cr_lines:
            lines = ", ".join(str(n) for n in self.bare_cr_lines[:5])
            more = f" and {len(self.bare_cr_lines) - 5:,} more" if len(self.bare_cr_lines) > 5 \
                else ""
            found.append(f"{self.file_name}: {len(self.bare_cr_lines):,} record(s) hold a "
                         "carriage return that ends no line (CR-only line ends after the "
                         f"header?), quarantined as malformed: line(s) {lines}{more}")
        return found

    def summary(self, batch_name: str) -> str:
        """The file's one-line summary, as the ``ingest`` command prints it."""
        where = f"{batch_name}/{self.file_name}"
        if self.status == "already_loaded":
            return (f"{where}: already loaded (batch {self.loaded_in_batch_id}, "
                    f"{self.loaded_in_batch_name}), skipped")
        parts = [f"{self.rows_in_file:,} rows", f"{self.rows_staged:,} staged",
                 f"{self.rows_malformed:,} malformed"]
        if self.extra_columns:
            count = len(self.extra_columns)
            names = ", ".join(name or '""' for name in self.extra_columns)
            parts.append(f"{count} extra column{'s' if count > 1 else ''} ({names}) ignored")
        if self.absent_optional:
            parts.append(f"absent optional ({', '.join(self.absent_optional)}) left empty")
        parts.append(f"{self.seconds:.2f} s ({self.rows_per_second:,.0f} rows/s)")
        warnings = "".join(f"\n  WARNING {text}" for text in self.warnings())
        return f"{where}: " + ", ".join(parts) + warnings


@dataclass(frozen=True)
class BatchResult:
    """One batch directory: loaded as batch ``batch_id``, or nothing new in it."""

    batch_name: str
    source_path: str
    status: str  # 'loaded', 'already_loaded' (every file was), 'discarded' (unchanged since
    # etl.discard_batch) or 'empty' (no contract file)
    batch_id: int | None
    files: tuple[FileResult, ...] = ()
    seconds: float = 0.0

    @property
    def loaded_files(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.status == "loaded")

    @property
    def rows_staged(self) -> int:
        return sum(f.rows_staged for f in self.loaded_files)

    @property
    def rows_malformed(self) -> int:
        return sum(f.rows_malformed for f in self.loaded_files)

    def summary(self) -> str:
        if self.status == "empty":
            return f"{self.batch_name}: no contract file in {self.source_path}, skipped"
        if self.status == "already_loaded":
            return f"{self.batch_name}: every file already loaded, nothing new"
        if self.status == "discarded":
            return (f"{self.batch_name}: discarded (etl.discard_batch) and unchanged since, "
                    "skipped; deliver corrected files to load it")
        skipped = len(self.files) - len(self.loaded_files)
        return (f"{self.batch_name}: batch {self.batch_id}, {len(self.loaded_files)} file(s), "
                f"{self.rows_staged:,} rows staged, {self.rows_malformed:,} malformed"
                + (f", {skipped} file(s) already loaded" if skipped else "")
                + f", {self.seconds:.2f} s")


@dataclass
class IngestReport:
    """Every batch an ``ingest_paths`` call went through, in order."""

    batches: list[BatchResult] = field(default_factory=list)

    @property
    def loaded(self) -> list[BatchResult]:
        return [b for b in self.batches if b.status == "loaded"]

    @property
    def rows_staged(self) -> int:
        return sum(b.rows_staged for b in self.batches)

    @property
    def rows_malformed(self) -> int:
        return sum(b.rows_malformed for b in self.batches)

    def summary(self) -> str:
        skipped = len(self.batches) - len(self.loaded)
        return (f"ingested {len(self.loaded)} batch(es): {self.rows_staged:,} rows staged, "
                f"{self.rows_malformed:,} malformed"
                + (f"; {skipped} batch(es) with nothing new" if skipped else ""))


@dataclass(frozen=True)
class Refusal:
    """Why a batch was refused (also a row of ``etl.batch_refusal``)."""

    batch_name: str
    source_path: str
    file_name: str | None
    problem: str
    message: str
    line_no: int | None = None
    byte_offset: int | None = None

    def describe(self) -> str:
        return (f"batch {self.batch_name} ({self.source_path}) refused: {self.message}. "
                "Nothing of it was staged; fix the file or remove the batch, then ingest "
                "again.")


class BatchRefused(Exception):
    """A batch was refused whole; ``report`` holds the batches committed before it."""

    def __init__(self, refusal: Refusal, report: IngestReport | None = None) -> None:
        super().__init__(refusal.describe())
        self.refusal = refusal
        self.report = report or IngestReport()


class IngestError(Exception):
    """A path given to ingest is not a batch or landing directory."""


# -- progress ----------------------------------------------------------------------------------


class IngestProgress(Protocol):
    """What the caller hears while files load (the CLI draws a bar and prints summaries)."""

    def file_started(self, batch_name: str, file_name: str, size_bytes: int) -> None: ...

    def file_advanced(self, bytes_read: int, rows: int) -> None: ...

    def file_finished(self, batch_name: str, result: FileResult) -> None: ...


class SilentProgress:
    """Hears nothing."""

    def file_started(self, batch_name: str, file_name: str, size_bytes: int) -> None:
        pass

    def file_advanced(self, bytes_read: int, rows: int) -> None:
        pass

    def file_finished(self, batch_name: str, result: FileResult) -> None:
        pass


# -- finding batches ---------------------------------------------------------------------------


def _entries(path: Path) -> list[str] | None:
    """Names in directory ``path``; None when it cannot be listed."""
    try:
        return os.listdir(path)
    except OSError:
        return None


def is_batch_dir(path: Path) -> bool:
    """True when ``path`` holds at least one contract file itself (a link named like one
    counts: it is refused when the batch is taken)."""
    names = _entries(path)
    return names is not None and any(name in SPEC_BY_FILE for name in names)


def _is_candidate(path: Path) -> bool:
    """A landing entry that may be a batch: a directory, a link, or one that cannot be read
    (the last two are refused in order, naming them, rather than skipped unseen)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode):
        return path.is_dir()
    return stat.S_ISDIR(info.st_mode)


def discover_batches(paths: Iterable[Path | str]) -> list[Path]:
    """Batch directories of ``paths``, in order: a batch itself, or a landing directory's
    batch directories by name (sub-directories without a contract file are skipped, with a
    warning naming what they hold; those that cannot be listed are kept, to be refused)."""
    batches: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_symlink():  # named by the caller: followed (links inside it are not)
            path = path.resolve()
        if not path.is_dir():
            raise IngestError(f"{printable(str(path))} is not a directory: give a batch "
                              "directory or a landing directory of batch directories")
        names = _entries(path)
        if names is None:
            raise IngestError(f"{printable(str(path))} cannot be read (check its owner and "
                              "permissions)")
        if any(name in SPEC_BY_FILE for name in names):
            batches.append(path)
            continue
        children = sorted((path / name for name in names if not name.startswith(".")
                           and _is_candidate(path / name)), key=lambda c: c.name)
        for child in children:
            if is_batch_dir(child) or _entries(child) is None or child.is_symlink():
                batches.append(child)
            else:
                log.warning("%s holds no contract file%s: skipped", printable(str(child)),
                            _unknown_files_note(_entries(child) or []))
        if not children:
            log.warning("%s holds neither contract files nor batch directories",
                        printable(str(path)))
    return batches


def unknown_files(names: Iterable[str]) -> list[str]:
    """Names in a batch directory that are neither contract files nor expected extras."""
    return sorted(name for name in names if name not in SPEC_BY_FILE
                  and name not in EXPECTED_EXTRA_FILES and not name.startswith("."))


def _unknown_files_note(names: Iterable[str]) -> str:
    """`` (it holds X, Y: ...)`` telling that names are matched exactly; empty for none."""
    unknown = unknown_files(names)
    if not unknown:
        return ""
    described = []
    for name in unknown:
        near = next((spec.file_name for spec in FILE_SPECS
                     if spec.file_name == name.strip().lower()), None)
        described.append(printable(name) + (f" (not {near})" if near else ""))
    return (f" ({', '.join(described)} ignored: file names are matched exactly, case "
            f"included: {', '.join(s.file_name for s in FILE_SPECS)})")


# -- the API -----------------------------------------------------------------------------------

Target = str | psycopg2.extensions.connection


def ingest_paths(target: Target, paths: Sequence[Path | str], *,
                 progress: IngestProgress | None = None) -> IngestReport:
    """Ingest every batch under ``paths`` in order, one transaction per batch.

    ``target`` is a database URL or a psycopg2 connection (not inside a transaction; its
    autocommit setting is restored afterwards). Raises ``BatchRefused`` (carrying the report
    of the batches committed before it) at the first refused batch, and ``IngestError`` when
    a path is not a directory.
    """
    batches = discover_batches(paths)
    report = IngestReport()
    with _connection(target) as conn:
        for batch_dir in batches:
            try:
                report.batches.append(_ingest_batch(conn, batch_dir, progress))
            except BatchRefused as refused:
                raise BatchRefused(refused.refusal, report) from None
    log.info("%s", report.summary())
    return report


def ingest_batch(target: Target, batch_dir: Path | str, *,
                 progress: IngestProgress | None = None) -> BatchResult:
    """Ingest one batch directory in one transaction; raises ``BatchRefused``."""
    with _connection(target) as conn:
        return _ingest_batch(conn, Path(batch_dir), progress)


@contextmanager
def _connection(target: Target) -> Iterator[psycopg2.extensions.connection]:
    if isinstance(target, str):
        conn = connect(target)
        try:
            conn.set_client_encoding("UTF8")
            yield conn
        finally:
            conn.close()
        return
    if target.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        raise ValueError("ingest needs a connection outside any transaction: it commits "
                         "each batch itself")
    autocommit, encoding = target.autocommit, target.encoding
    target.autocommit = False
    target.set_client_encoding("UTF8")
    try:
        yield target
    finally:
        if target.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            target.rollback()
        target.set_client_encoding(encoding)
        target.autocommit = autocommit


# -- one batch ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """A file of the batch whose hash is already in the ledger."""

    spec: FileSpec
    sha256: str
    size_bytes: int
    batch_id: int
    batch_name: str


@dataclass(frozen=True)
class _New:
    """A file of the batch to load, its header matched to the contract."""

    spec: FileSpec
    path: Path
    layout: Layout
    snapshot: Snapshot  # the file as planned: its read must end with the file still so


def _ingest_batch(conn: psycopg2.extensions.connection, batch_dir: Path,
                  progress: IngestProgress | None) -> BatchResult:
    progress = progress or SilentProgress()
    batch_name, source_path = batch_dir.name, printable(str(batch_dir.absolute()))
    began = time.monotonic()
    problem = _batch_dir_problem(batch_dir)
    if problem is not None:
        _refuse(conn, Refusal(printable(batch_name), source_path, None, *problem))
    names = _entries(batch_dir) or []
    files = [(spec, batch_dir / spec.file_name) for spec in FILE_SPECS
             if spec.file_name in names]
    note = _unknown_files_note(names)
    if note:
        log.warning("%s: not every file was taken%s", batch_name, note)
    if not files:
        log.warning("%s: no contract file, skipped", batch_dir)
        return BatchResult(batch_name, source_path, "empty", None)
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(%s)", (INGEST_LOCK_KEY,))
            plan = [_plan_file(cur, spec, path) for spec, path in files]
            if not any(isinstance(item, _New) for item in plan):
                conn.rollback()
                results = tuple(_known_result(item) for item in plan)  # type: ignore[arg-type]
                for result in results:
                    progress.file_finished(batch_name, result)
                log.info("%s: every file already loaded, nothing new", batch_name)
                return BatchResult(batch_name, source_path, "already_loaded", None, results,
                                   time.monotonic() - began)
            if _unchanged_since_discarded(cur, batch_name, plan):
                conn.rollback()
                log.info("%s: discarded earlier and unchanged since, skipped", batch_name)
                return BatchResult(batch_name, source_path, "discarded", None, (),
                                   time.monotonic() - began)
            cur.execute(_INSERT_BATCH_SQL, (batch_name, source_path))
            (batch_id,) = cur.fetchone()
            results = []
            for item in plan:
                if isinstance(item, _Known):
                    result = _known_result(item)
                else:
                    progress.file_started(batch_name, item.spec.file_name,
                                          item.snapshot.size)
                    result = _load_file(cur, batch_id, batch_name, item, progress)
                results.append(result)
                progress.file_finished(batch_name, result)
            if not any(r.status == "loaded" for r in results):
                conn.rollback()  # every new file turned out to repeat another one
                return BatchResult(batch_name, source_path, "already_loaded", None,
                                   tuple(results), time.monotonic() - began)
        conn.commit()
    except FileProblem as bad_file:
        conn.rollback()
        _refuse(conn, Refusal(batch_name, source_path, bad_file.file_name, bad_file.problem,
                              bad_file.message, bad_file.line_no, bad_file.byte_offset))
    except BaseException:
        conn.rollback()
        raise
    batch = BatchResult(batch_name, source_path, "loaded", batch_id, tuple(results),
                        time.monotonic() - began)
    log.info("%s", batch.summary())
    return batch


def _batch_dir_problem(batch_dir: Path) -> tuple[str, str] | None:
    """(problem, message) when a batch directory cannot be taken: a name that is not valid
    UTF-8 or holds a control character (it would reach the database, logs and alerts), a
    link, or a directory that cannot be read."""
    shown = printable(batch_dir.name)
    if not is_printable(batch_dir.name):
        return ("bad_batch_name",
                f"the batch directory name {shown!r} is not valid UTF-8 or holds a control "
                "character (shown escaped); rename the directory")
    if batch_dir.is_symlink():
        return ("symlink", f"the batch directory {shown} is a symbolic link (to "
                f"{printable(os.readlink(batch_dir))}): only directories inside the landing "
                "directory are taken; move the batch there")
    if _entries(batch_dir) is None:
        return ("unreadable", f"the batch directory {shown} cannot be read (check its owner "
                "and permissions)")
    return None


def _refuse(conn: psycopg2.extensions.connection, refusal: Refusal) -> NoReturn:
    _record_refusal(conn, refusal)
    log.error("%s", refusal.describe())
    raise BatchRefused(refusal)


def _plan_file(cur: psycopg2.extensions.cursor, spec: FileSpec, path: Path) -> _Known | _New:
    """Already loaded (by hash), or new with its header matched; FileProblem refuses (a link,
    not a regular file, unreadable, a bad header)."""
    snapshot = Snapshot.of_path(path, spec.file_name)
    cur.execute(_LOADED_WITH_SIZE_SQL, (snapshot.size,))
    same_size = cur.fetchall()
    if same_size:  # hash the file only when a loaded file has its size
        try:
            digest = file_sha256(path)
        except OSError as error:
            raise unreadable(spec.file_name, error) from None
        for sha256, batch_id, batch_name in same_size:
            if sha256 == digest:
                return _Known(spec, digest, snapshot.size, batch_id, batch_name)
    header: Header = read_header(path, spec.file_name, snapshot)
    return _New(spec, path, plan_layout(spec, header), snapshot)


def _unchanged_since_discarded(cur: psycopg2.extensions.cursor, batch_name: str,
                               plan: list[_Known | _New]) -> bool:
    """True when a batch of this name was discarded and every new file is one of its files
    (same name, same bytes). Hashes the files only when such a batch exists."""
    cur.execute(_DISCARDED_SQL, (batch_name,))
    discarded = set(cur.fetchall())
    if not discarded:
        return False
    return all((item.spec.file_name, file_sha256(item.path)) in discarded
               for item in plan if isinstance(item, _New))


def _known_result(item: _Known) -> FileResult:
    return FileResult(item.spec.file_name, "already_loaded", item.sha256, item.size_bytes,
                      loaded_in_batch_id=item.batch_id, loaded_in_batch_name=item.batch_name)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def copy_sql(layout: Layout) -> str:
    """The COPY statement of a file: identifiers from the whitelist only."""
    allowed = set(layout.spec.columns)
    if not set(layout.copy_columns) <= allowed:  # plan_layout guarantees it; never relax
        raise ValueError(f"columns outside the whitelist: {layout.copy_columns}")
    columns = ", ".join(layout.copy_columns)
    return (f"copy staging.{layout.spec.table} (batch_id, line_no, {columns}) from stdin "
            "with (format text, delimiter ',', null '')")


def _load_file(cur: psycopg2.extensions.cursor, batch_id: int, batch_name: str, item: _New,
               progress: IngestProgress) -> FileResult:
    """COPY one file into staging (and its malformed records into the quarantine) and write
    its ledger row, under a savepoint so a file repeating another one leaves nothing."""
    spec, layout = item.spec, item.layout
    began = time.monotonic()
    cur.execute("savepoint ingest_file")
    cur.execute("call staging.add_batch_partition(%s, %s)", (spec.table, batch_id))
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        stream = CopyStream(
            item.path, layout, batch_id,
            on_malformed=lambda line_no, raw: _spool_reject(spool, batch_id, spec, line_no,
                                                            raw),
            on_progress=progress.file_advanced, snapshot=item.snapshot,
        )
        try:
            cur.copy_expert(copy_sql(layout), stream, size=SEND_SIZE)
        except psycopg2.Error:
            if stream.error is not None:  # our read() failed: raise that, not COPY's echo
                raise stream.error from None
            raise
        finally:
            stream.close()
        counts = stream.counts
        if cur.rowcount != counts.staged:
            raise RuntimeError(f"{item.path}: COPY stored {cur.rowcount} rows, the stream "
                               f"sent {counts.staged}")
        if counts.malformed:
            spool.seek(0)
            cur.copy_expert(_COPY_REJECTS_SQL, spool, size=SEND_SIZE)
    cur.execute(_LOADED_WITH_HASH_SQL, (stream.sha256,))
    earlier = cur.fetchone()
    if earlier is not None:  # the same bytes as a file loaded a moment ago in this batch
        cur.execute("rollback to savepoint ingest_file")
        return FileResult(spec.file_name, "already_loaded", stream.sha256, counts.bytes_read,
                          loaded_in_batch_id=earlier[0], loaded_in_batch_name=earlier[1])
    cur.execute(_INSERT_LEDGER_SQL, (
        batch_id, spec.file_name, stream.sha256, counts.bytes_read,
        list(layout.header.names), list(layout.extra_columns), list(layout.absent_optional),
        counts.rows, counts.staged, counts.malformed,
    ))
    if stream.long_records:
        longest = max(stream.long_records, key=lambda record: record.lines)
        more = len(stream.long_records) - 1
        cur.execute(_INSERT_LONG_RECORD_EVENT_SQL, (
            batch_id, spec.file_name, longest.lines, LONG_RECORD_LINES,
            f"batch {batch_id} ({batch_name}): {longest.describe(spec.file_name)}"
            + (f"; {more:,} other record(s) span more than {LONG_RECORD_LINES} lines"
               if more else ""),
        ))
    cur.execute("release savepoint ingest_file")
    result = FileResult(
        spec.file_name, "loaded", stream.sha256, counts.bytes_read,
        rows_in_file=counts.rows, rows_staged=counts.staged, rows_malformed=counts.malformed,
        extra_columns=layout.extra_columns, absent_optional=layout.absent_optional,
        seconds=time.monotonic() - began, loaded_in_batch_id=batch_id,
        loaded_in_batch_name=batch_name, long_records=tuple(stream.long_records),
        long_fields=tuple(stream.long_fields), bare_cr_lines=tuple(stream.bare_cr_lines),
    )
    for warning in result.warnings():
        log.warning("%s/%s", batch_name, warning)
    return result


def _spool_reject(spool: IO[bytes], batch_id: int, spec: FileSpec, line_no: int,
                  raw: bytes) -> None:
    """One malformed record as a CSV line of ``_COPY_REJECTS_SQL``."""
    quoted = raw.replace(b'"', b'""')
    spool.write(b'%d,%s,%d,"%s","%s"\n' % (batch_id, spec.file_name.encode(), line_no,
                                             MALFORMED_RULES.encode(), quoted))


def _record_refusal(conn: psycopg2.extensions.connection, refusal: Refusal) -> None:
    """The refusal in its own transaction (the batch's was rolled back)."""
    with conn.cursor() as cur:
        cur.execute(_INSERT_REFUSAL_SQL, (
            refusal.batch_name, refusal.source_path, refusal.file_name, refusal.problem,
            refusal.line_no, refusal.byte_offset, refusal.message,
        ))
    conn.commit()
