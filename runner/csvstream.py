"""Streaming CSV for COPY: one pass over a file's bytes, staged rows out, every line counted.

What it does with a file (docs/data-contract.md, "Files and batches"):

- reads big binary chunks, hashes them (SHA-256 of every byte) and checks them as text
  (valid UTF-8, no NUL byte) as they arrive; the bytes of a chunk are never decoded twice;
- splits the chunks into records and sends each record to ``COPY staging.t (batch_id,
  line_no, <the file's columns in file order>) FROM STDIN (FORMAT text, DELIMITER ',',
  NULL '')`` with its batch id and the physical line where it starts (the header is line 1)
  prefixed: values reach staging as delivered, quoted commas, quotes and newlines included,
  and an empty field (quoted or not) is NULL;
- skips empty lines (nothing but the line end), turns records without the header's number
  of fields into malformed records (handed to a callback with their raw text, never
  staged), drops extra columns, accepts a byte-order mark and CRLF line ends.

Memory stays flat: a chunk in, its COPY text out, nothing else kept (a record is held
whole only while it spans chunks, up to ``MAX_RECORD_BYTES``).

How records and fields are found. A record ends at a line end outside quotes; a field ends
at a comma outside quotes; "outside" means after an even number of quote characters in the
record, and a field's value is its text with the quotes removed and ``""`` inside quotes read
as one quote. This is exactly how PostgreSQL's COPY CSV reads a record (a quote anywhere
toggles quoting). A record still inside quotes at the end of the file, and a carriage return
outside quotes that is not part of a CRLF line end (which COPY CSV refuses), are malformed
records.

Why COPY's text format: the server parses it ~13% faster than CSV (docs/performance.md).
A line without quote, backslash or carriage return (almost every line of real files) is the
same in both formats and is sent as it is. A line holding a backslash gets it doubled; a
record holding quotes is rebuilt from its field values, with backslash, line feed,
carriage return and comma escaped by a backslash.

Speed. The fast path handles runs of such plain lines with vectorised byte operations
(numpy): it checks that every line holds exactly the header's number of commas and writes
the ``batch_id,line_no,`` prefixes (line numbers zero-padded to a fixed width per chunk) in
place, with no Python work per line. Lines that fail the check, lines of a file with extra
columns, and records holding quotes or backslashes take a per-record Python path.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from runner.contract import FileSpec

BOM = b"\xef\xbb\xbf"
READ_SIZE = 256 * 1024  # bytes read (and hashed, checked, parsed) at a time
SEND_SIZE = 64 * 1024  # bytes handed to COPY per read(): COPY overlaps the next parse
MAX_HEADER_BYTES = 1024 * 1024
MAX_RECORD_BYTES = 256 * 1024 * 1024  # a longer record refuses the batch (memory bound)
# A field longer than this makes its record malformed (quarantined with its raw text, never
# staged): no contract column needs more, and every later step must process whatever is
# staged. A value over ~2,700 bytes cannot enter a btree index (production.customers' e-mail,
# production.categories' name): the merge would fail on every run, a batch blocking every
# later one. bench/bench_field_limit.py measures it (docs/performance.md, "Field limit").
MAX_FIELD_BYTES = 2000
# A record spanning more physical lines than this is reported (a stray quote, such as an
# unquoted 12" in a product name, turns the rest of a file into one record).
LONG_RECORD_LINES = 5
ASCII_WHITESPACE = " \t\r\n"

_NL, _COMMA = ord("\n"), ord(",")
# "0000".."9999" as one uint32 each (4 ASCII bytes), repeated so that the low 4 digits of any
# run of consecutive numbers are a slice of it
_DIGITS4 = np.frombuffer(b"".join(b"%04d" % i for i in range(10_000)), dtype=np.uint32)
_DIGITS4_RUN = np.tile(_DIGITS4, 8)


# -- problems that refuse a batch ------------------------------------------------------------


class FileProblem(Exception):
    """A file that refuses its whole batch: the message names the file and the problem."""

    def __init__(self, file_name: str, problem: str, message: str, *,
                 line_no: int | None = None, byte_offset: int | None = None) -> None:
        super().__init__(message)
        self.file_name = file_name
        self.problem = problem  # missing_header, missing_column, duplicate_column,
        #                         invalid_utf8, nul_byte, record_too_long, cr_line_ends,
        #                         not_regular_file, symlink, unreadable, file_changed
        self.message = message
        self.line_no = line_no
        self.byte_offset = byte_offset


def unreadable(file_name: str, error: OSError) -> FileProblem:
    """A file that cannot be opened or read refuses its batch like any other bad file."""
    return FileProblem(file_name, "unreadable",
                       f"{file_name} cannot be read: {error.strerror or error} (check its "
                       "owner and permissions)")


@dataclass(frozen=True)
class Snapshot:
    """What identifies a file's content without reading it: a file whose snapshot differs
    after its read changed while it was read (truncated, appended to, rewritten, replaced)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, info: os.stat_result) -> Snapshot:
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)

    @classmethod
    def of_path(cls, path: Path, file_name: str) -> Snapshot:
        """The snapshot of a regular file; FileProblem for a link, a non-file, no access."""
        try:
            info = os.lstat(path)
        except OSError as error:
            raise unreadable(file_name, error) from None
        if stat.S_ISLNK(info.st_mode):
            raise FileProblem(
                file_name, "symlink",
                f"{file_name} is a symbolic link (to {os.readlink(path)}): only regular files "
                "inside the landing directory are loaded; copy the file into the batch")
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(file_name, "not_regular_file",
                              f"{file_name} is not a regular file")
        return cls.of(info)

    def differences(self, other: Snapshot) -> str:
        """How ``other`` differs, for the message (empty when it does not)."""
        found = []
        if other.size != self.size:
            found.append(f"size {self.size:,} -> {other.size:,} bytes")
        if other.mtime_ns != self.mtime_ns or other.ctime_ns != self.ctime_ns:
            found.append("modified")
        if (other.inode, other.device) != (self.inode, self.device):
            found.append("replaced by another file")
        return ", ".join(found)


def open_snapshot(path: Path, file_name: str, expected: Snapshot) -> BinaryIO:
    """``path`` opened for reading, never through a link, still as ``expected`` says."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise unreadable(file_name, error) from None
    handle = os.fdopen(fd, "rb")
    check_unchanged(handle, path, file_name, expected)
    return handle


def check_unchanged(handle: BinaryIO, path: Path, file_name: str, expected: Snapshot,
                    bytes_read: int | None = None) -> None:
    """FileProblem ``file_changed`` unless the open file and the path still match
    ``expected`` (and, after the whole read, ``bytes_read`` is its size)."""
    now = Snapshot.of(os.fstat(handle.fileno()))
    try:
        at_path = Snapshot.of(os.lstat(path))
    except OSError:
        at_path = None
    changes = expected.differences(now)
    if not changes and at_path is not None:
        changes = expected.differences(at_path)
    elif at_path is None:
        changes = changes or "removed"
    if not changes and bytes_read is not None and bytes_read != expected.size:
        changes = f"{bytes_read:,} bytes read of {expected.size:,}"
    if changes:
        handle.close()
        raise FileProblem(
            file_name, "file_changed",
            f"{file_name} changed while it was being read ({changes}): nothing of the batch "
            "was loaded; it is taken again, whole, by the next run once the file is complete")


@dataclass(frozen=True)
class LongField:
    """A field over MAX_FIELD_BYTES: its record was quarantined as malformed."""

    line_no: int
    column: str
    size: int

    def describe(self, file_name: str) -> str:
        return (f"{file_name}: line {self.line_no}, column {self.column}: a value of "
                f"{self.size:,} bytes, over the {MAX_FIELD_BYTES:,}-byte limit of a field: the "
                "record is quarantined as malformed")


@dataclass(frozen=True)
class LongRecord:
    """A record spanning many physical lines: where its quote opened, and how many lines."""

    line_no: int
    lines: int
    closed: bool  # False: the quote was still open at the end of the file

    def describe(self, file_name: str) -> str:
        end = "to the end of the file" if not self.closed else "before its quotes balance"
        return (f"{file_name}: the record starting at line {self.line_no} spans {self.lines:,} "
                f"physical lines {end}: a quote opened on line {self.line_no} (a stray \" in a "
                "value?) makes the lines after it one record")


# -- the header -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """A file's first record: its names as delivered (trimmed) and where the data begins."""

    names: tuple[str, ...]
    raw: bytes  # every byte before the data, byte-order mark and line end included
    lines: int  # physical lines the header spans (1 unless a quoted name holds a newline)

    @property
    def data_offset(self) -> int:
        return len(self.raw)


@dataclass(frozen=True)
class Layout:
    """How a file's columns map onto its staging table."""

    spec: FileSpec
    header: Header
    copy_columns: tuple[str, ...]  # staging columns of the kept fields, in file order
    keep: tuple[int, ...] | None  # positions of the kept fields; None: every field is kept
    field_count: int
    extra_columns: tuple[str, ...]  # header names ignored (not contract columns)
    absent_optional: tuple[str, ...]  # optional contract columns the file lacks (NULL)


def read_header(path: Path, file_name: str | None = None, snapshot: Snapshot | None = None
                ) -> Header:
    """The header of ``path``; raises FileProblem when there is none or it is not text.
    With ``snapshot`` the file is opened without following links and must still match it."""
    name = file_name or path.name
    try:
        handle = (open_snapshot(path, name, snapshot) if snapshot is not None
                  else open(path, "rb"))  # noqa: SIM115 - closed by the with below
    except OSError as error:
        raise unreadable(name, error) from None
    with handle:
        data = handle.read(64 * 1024)
        if not data:
            raise FileProblem(name, "missing_header",
                              f"{name} has no header: the file is empty (0 bytes)", line_no=1)
        start = len(BOM) if data.startswith(BOM) else 0
        while True:
            end = _first_record_end(data, start)
            if end is not None or len(data) > MAX_HEADER_BYTES:
                break
            more = handle.read(64 * 1024)
            if not more:
                end = len(data)
                break
            data += more
    if end is None and b"\r" in data:
        raise FileProblem(
            name, "cr_line_ends",
            f"{name}: no line feed within its first {MAX_HEADER_BYTES} bytes but carriage "
            "returns: the line ends are CR only (an old Mac file?); convert them to LF or "
            "CRLF and deliver the batch again", line_no=1)
    if end is None:
        raise FileProblem(name, "missing_header",
                          f"{name}: no end of the header line within its first "
                          f"{MAX_HEADER_BYTES} bytes", line_no=1)
    raw = data[:end]
    check_text(name, raw, 0, 1)
    record = raw[start:-1] if raw.endswith(b"\n") else raw[start:]
    record = record[:-1] if record.endswith(b"\r") else record
    if any(b"\r" in part for part in record.split(b'"')[0::2]):
        raise FileProblem(
            name, "cr_line_ends",
            f"{name}: the header (line 1) holds a carriage return that is not part of a CRLF "
            "line end: the line ends are CR only (an old Mac file?); convert them to LF or "
            "CRLF and deliver the batch again", line_no=1)
    if not record:
        what = "the file holds only a byte-order mark" if start and end == start else (
            "its first line is empty")
        raise FileProblem(name, "missing_header", f"{name} has no header: {what} (line 1)",
                          line_no=1, byte_offset=start)
    names = tuple(
        field_value(field).decode("utf-8").strip(ASCII_WHITESPACE)
        for field in split_fields(record)
    )
    return Header(names=names, raw=raw, lines=raw.count(b"\n") or 1)


def _first_record_end(data: bytes, start: int) -> int | None:
    """Offset just past the first line end outside quotes at or after ``start``."""
    quotes = 0
    pos = start
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            return None
        quotes += data.count(b'"', pos, end)
        if quotes % 2 == 0:
            return end + 1
        pos = end + 1


def plan_layout(spec: FileSpec, header: Header) -> Layout:
    """Match the header to the contract's columns; raises FileProblem when it does not fit."""
    folded = [n.lower() for n in header.names]
    seen: dict[str, int] = {}
    for position, column in enumerate(folded, start=1):
        if column and column in seen:
            raise FileProblem(
                spec.file_name, "duplicate_column",
                f"{spec.file_name}: the header (line 1) names column {column!r} twice "
                f"(fields {seen[column]} and {position}, compared case-insensitively after "
                "trimming)", line_no=1)
        seen.setdefault(column, position)
    missing = [c for c in spec.required if c not in seen]
    if missing:
        raise FileProblem(
            spec.file_name, "missing_column",
            f"{spec.file_name}: the header (line 1) lacks the required column"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}", line_no=1)
    known = set(spec.columns)
    keep = tuple(i for i, column in enumerate(folded) if column in known)
    return Layout(
        spec=spec,
        header=header,
        copy_columns=tuple(folded[i] for i in keep),
        keep=None if len(keep) == len(folded) else keep,
        field_count=len(folded),
        extra_columns=tuple(header.names[i] for i in range(len(folded)) if i not in keep),
        absent_optional=tuple(c for c in spec.columns if c not in seen),
    )


# -- records and fields -----------------------------------------------------------------------


def split_fields(record: bytes) -> list[bytes]:
    """The raw text of each field of one record (quotes kept), split at commas outside quotes."""
    fields: list[bytes] = []
    current: list[bytes] = []
    for index, segment in enumerate(record.split(b'"')):
        if index % 2:  # inside quotes: commas are data
            current.append(segment)
            continue
        parts = segment.split(b",")
        current.append(parts[0])
        for part in parts[1:]:
            fields.append(b'"'.join(current))
            current = [part]
    fields.append(b'"'.join(current))
    return fields


def field_value(raw: bytes) -> bytes:
    """The value of a raw field as COPY CSV reads it: quotes removed, ``""`` inside is ``"``."""
    if b'"' not in raw:
        return raw
    segments = raw.split(b'"')
    value = bytearray()
    for index, segment in enumerate(segments):
        inside = index % 2 == 1
        if not inside and not segment and 0 < index < len(segments) - 1:
            value += b'"'  # an empty stretch between two quoted ones: an escaped quote
        value += segment
    return bytes(value)


def text_field(value: bytes) -> bytes:
    """A value as COPY's text format with delimiter ',' reads it back unchanged."""
    if b"\\" in value:
        value = value.replace(b"\\", b"\\\\")
    if b"\n" in value:
        value = value.replace(b"\n", b"\\n")
    if b"\r" in value:
        value = value.replace(b"\r", b"\\r")
    if b"," in value:
        value = value.replace(b",", b"\\,")
    return value


def check_text(file_name: str, data: bytes, offset: int, first_line: int) -> None:
    """Raise FileProblem unless ``data`` (file bytes from ``offset``) is UTF-8 without NUL."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line = first_line + data.count(b"\n", 0, nul)
        raise FileProblem(
            file_name, "nul_byte",
            f"{file_name} holds a NUL byte (0x00) at byte offset {offset + nul} (line {line}),"
            " which PostgreSQL text cannot store", line_no=line, byte_offset=offset + nul)
    if data.isascii():
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + data.count(b"\n", 0, error.start)
        bad = data[error.start:error.end].hex(" ")
        raise FileProblem(
            file_name, "invalid_utf8",
            f"{file_name} is not valid UTF-8: byte(s) 0x{bad} at byte offset "
            f"{offset + error.start} (line {line})",
            line_no=line, byte_offset=offset + error.start) from None


def prefix_lines(segment: bytes, first_line: int, batch_prefix: bytes, commas: int
                 ) -> bytearray | None:
    """COPY text for a run of lines without quote, backslash or CR, or None if a line has
    the wrong number of fields (an empty line included).

    ``segment`` ends with a line end. Each line gets ``batch_prefix`` (``b"7,"``) and its line
    number, zero-padded to the width of the run's last line number, then a comma.
    """
    data = np.frombuffer(segment, dtype=np.uint8)
    line_ends = np.flatnonzero(data == _NL)
    lines = len(line_ends)
    comma_at = np.flatnonzero(data == _COMMA)
    if len(comma_at) != commas * lines:
        return None
    starts = np.empty(lines, dtype=np.int64)
    starts[0] = 0
    starts[1:] = line_ends[:-1] + 1
    if (line_ends - starts).max() > MAX_FIELD_BYTES:  # a field may be too long: line by line
        return None
    if commas:
        per_line = comma_at.reshape(lines, commas)
        # every line's own `commas` commas lie inside it: exactly `commas` in each line
        if (per_line[:, 0] < starts).any() or (per_line[:, -1] > line_ends).any():
            return None
    elif (line_ends == starts).any():
        return None
    last = first_line + lines - 1
    width = len(str(last))
    template = batch_prefix + b"0" * width + b","
    out = bytearray(template) + segment.replace(b"\n", b"\n" + template)
    del out[-len(template):]
    digits_at = (starts + np.arange(lines) * len(template) + len(batch_prefix))[:, None]
    view = np.frombuffer(out, dtype=np.uint8)
    view[digits_at + np.arange(width)] = _decimal_digits(first_line, last, width)
    return out


def _decimal_digits(first: int, last: int, width: int) -> np.ndarray:
    """Zero-padded ASCII digits of first..last, one row of ``width`` bytes per number.

    Built 4 digits at a time: the low group of consecutive numbers is a slice of a repeated
    table, and each higher group changes only every 10**4, 10**8, ... numbers.
    """
    count = last - first + 1
    groups = -(-width // 4)
    out = np.empty((count, groups), dtype=np.uint32)
    low = first % 10_000
    if low + count <= len(_DIGITS4_RUN):
        out[:, -1] = _DIGITS4_RUN[low:low + count]
    else:
        out[:, -1] = _DIGITS4[np.arange(first, last + 1) % 10_000]
    for group in range(1, groups):
        unit = 10_000 ** group
        values = np.arange(first // unit, last // unit + 1)
        run_starts = np.maximum(values * unit, first)
        counts = np.diff(np.append(run_starts, last + 1))
        out[:, -1 - group] = np.repeat(_DIGITS4[values % 10_000], counts)
    return out.view(np.uint8)[:, groups * 4 - width:]


# -- the stream COPY reads ---------------------------------------------------------------------


@dataclass
class StreamCounts:
    rows: int = 0  # records after the header (empty lines not counted)
    staged: int = 0
    malformed: int = 0
    bytes_read: int = 0


@dataclass
class _OpenRecord:
    """A record whose quotes do not balance yet: its lines so far."""

    first_line: int
    lines: list[bytes]
    size: int = 0
    quotes: int = 0


class CopyStream:
    """A file-like object for ``cursor.copy_expert``: ``read()`` returns COPY CSV text.

    ``on_malformed(line_no, raw_text)`` receives each malformed record; ``on_progress(bytes,
    rows)`` is called after each chunk. An exception raised while reading (a FileProblem)
    is kept in ``error``, since psycopg2 reports it only as a cancelled COPY.
    """

    def __init__(self, path: Path, layout: Layout, batch_id: int, *,
                 on_malformed: Callable[[int, bytes], None],
                 on_progress: Callable[[int, int], None] | None = None,
                 snapshot: Snapshot | None = None) -> None:
        self.layout = layout
        self.file_name = layout.spec.file_name
        self.counts = StreamCounts()
        self.error: BaseException | None = None
        self._on_malformed = on_malformed
        self._on_progress = on_progress
        self._batch_prefix = b"%d," % batch_id
        self._line_format = self._batch_prefix + b"%d,"
        self._commas = layout.field_count - 1
        self._keep = layout.keep
        self._hash = hashlib.sha256()
        self._pending: deque[bytes] = deque()
        self._leftover = bytearray()  # a line begun but not ended in the bytes read so far
        self._open: _OpenRecord | None = None
        self._eof = False
        self.long_records: list[LongRecord] = []
        self.long_fields: list[LongField] = []
        self.bare_cr_lines: list[int] = []  # malformed for a CR that ends no line
        self._path = path
        self._snapshot = snapshot or Snapshot.of_path(path, self.file_name)
        self._file: BinaryIO = open_snapshot(path, self.file_name, self._snapshot)
        try:
            head = self._file.read(layout.header.data_offset)
        except OSError as error:
            self._file.close()
            raise unreadable(self.file_name, error) from None
        if head != layout.header.raw:
            self._file.close()
            raise FileProblem(self.file_name, "file_changed",
                              f"{self.file_name} changed while it was being read (its header "
                              "differs from the one read first): nothing of the batch was "
                              "loaded; it is taken again, whole, by the next run")
        self._consume_bytes(head)
        self._offset = len(head)  # file offset of the next byte to parse
        self._line = layout.header.lines + 1  # physical line number of that byte

    # file-like protocol
    def read(self, size: int = -1) -> bytes:
        try:
            while not self._pending:
                if self._eof:
                    return b""
                self._fill()
            return self._pending.popleft()
        except BaseException as error:
            self.error = error
            raise

    def close(self) -> None:
        self._file.close()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    # reading
    def _consume_bytes(self, data: bytes) -> None:
        self._hash.update(data)
        self.counts.bytes_read += len(data)

    def _fill(self) -> None:
        try:
            data = self._file.read(READ_SIZE)
        except OSError as error:
            raise unreadable(self.file_name, error) from None
        if not data:  # the end: the file must be as it was when its read began
            check_unchanged(self._file, self._path, self.file_name, self._snapshot,
                            self.counts.bytes_read)
        if data:
            self._consume_bytes(data)
            cut = data.rfind(b"\n") + 1  # the leftover never holds a line end
            if not cut:
                chunk = b""
                self._leftover += data
            elif self._leftover:
                chunk = bytes(self._leftover) + data[:cut]
                self._leftover = bytearray(data[cut:])
            else:
                chunk = data[:cut] if cut < len(data) else data
                self._leftover = bytearray(data[cut:])
        else:
            self._eof = True
            chunk = bytes(self._leftover) + b"\n" if self._leftover else b""
            self._leftover = bytearray()
        if chunk:
            check_text(self.file_name, chunk, self._offset, self._line)
            self._offset += len(chunk)
            self._parse(chunk)
        if len(self._leftover) > MAX_RECORD_BYTES:  # one line without an end, too long
            self._too_long(self._open.first_line if self._open else self._line)
        if self._eof and self._open is not None:  # still inside quotes at the end
            record, self._open = self._open, None
            if len(record.lines) > LONG_RECORD_LINES:
                self.long_records.append(LongRecord(record.first_line, len(record.lines),
                                                    closed=False))
            self.counts.rows += 1
            self._malformed(record.first_line, b"\n".join(record.lines))
        if self._on_progress is not None:
            self._on_progress(self.counts.bytes_read, self.counts.rows)

    # parsing: a chunk is whole lines; it starts at a record start unless a record is open
    def _parse(self, chunk: bytes) -> None:
        out: list[bytes | bytearray] = []
        pos = self._continue_record(chunk, 0, out) if self._open is not None else 0
        while pos < len(chunk):
            quote = chunk.find(b'"', pos)
            if quote < 0:
                self._plain(chunk[pos:], out)
                break
            line_start = chunk.rfind(b"\n", pos, quote) + 1
            if line_start > pos:
                self._plain(chunk[pos:line_start], out)
                pos = line_start
            self._open = _OpenRecord(self._line, [])
            pos = self._continue_record(chunk, pos, out)
        self._emit(out)

    def _emit(self, out: list[bytes | bytearray]) -> None:
        """Queue the COPY text in pieces of at most SEND_SIZE (psycopg2 wants bytes)."""
        for piece in out:
            text = piece if isinstance(piece, bytes) else bytes(piece)
            if len(text) <= SEND_SIZE:
                self._pending.append(text)
                continue
            for start in range(0, len(text), SEND_SIZE):
                self._pending.append(text[start:start + SEND_SIZE])

    def _plain(self, segment: bytes, out: list[bytes | bytearray]) -> None:
        """Lines without a quote character: the fast path, else line by line."""
        first_line = self._line
        lines = segment.count(b"\n")
        self._line += lines
        if b"\r" in segment:
            normalised = segment.replace(b"\r\n", b"\n")
            if b"\r" in normalised:  # a bare carriage return: line by line
                self._plain_lines(segment, first_line, out)
                return
            segment = normalised
        if self._keep is None and b"\\" not in segment:
            text = prefix_lines(segment, first_line, self._batch_prefix, self._commas)
            if text is not None:
                self.counts.rows += lines
                self.counts.staged += lines
                out.append(text)
                return
        self._plain_lines(segment, first_line, out)

    def _plain_lines(self, segment: bytes, first_line: int, out: list[bytes | bytearray]
                     ) -> None:
        for line_no, line in enumerate(segment.split(b"\n")[:-1], start=first_line):
            body = line[:-1] if line.endswith(b"\r") else line
            if not body:
                continue  # an empty line: nothing but the line end (LF or CRLF)
            self.counts.rows += 1
            if b"\r" in body:
                self.bare_cr_lines.append(line_no)
                self._malformed(line_no, body)
                continue
            if body.count(b",") != self._commas:
                self._malformed(line_no, body)
                continue
            if len(body) > MAX_FIELD_BYTES and self._field_too_long(line_no, body.split(b",")):
                self._malformed(line_no, body)
                continue
            if self._keep is not None:
                fields = body.split(b",")
                body = b",".join([fields[i] for i in self._keep])
            if b"\\" in body:
                body = body.replace(b"\\", b"\\\\")
            out.append(self._line_format % line_no + body + b"\n")
            self.counts.staged += 1

    def _continue_record(self, chunk: bytes, pos: int, out: list[bytes | bytearray]) -> int:
        """Add lines to the open record until its quotes balance; returns the next offset."""
        record = self._open
        assert record is not None
        while pos < len(chunk):
            end = chunk.index(b"\n", pos)
            line = chunk[pos:end]
            pos = end + 1
            self._line += 1
            record.lines.append(line)
            record.size += len(line) + 1
            record.quotes += line.count(b'"')
            if record.size > MAX_RECORD_BYTES:
                self._too_long(record.first_line)
            if record.quotes % 2 == 0:
                self._open = None
                if len(record.lines) > LONG_RECORD_LINES:
                    self.long_records.append(LongRecord(record.first_line, len(record.lines),
                                                        closed=True))
                self._quoted_record(record.first_line, b"\n".join(record.lines), out)
                return pos
        return pos

    def _quoted_record(self, line_no: int, text: bytes, out: list[bytes | bytearray]) -> None:
        if text.endswith(b"\r"):  # the CR of a CRLF line end (outside quotes: they balance)
            text = text[:-1]
        self.counts.rows += 1
        outside = text.split(b'"')[0::2]
        if any(b"\r" in part for part in outside):
            self.bare_cr_lines.append(line_no)
            self._malformed(line_no, text)
            return
        if sum(part.count(b",") for part in outside) != self._commas:
            self._malformed(line_no, text)
            return
        values = [field_value(field) for field in split_fields(text)]
        if len(text) > MAX_FIELD_BYTES and self._field_too_long(line_no, values):
            self._malformed(line_no, text)
            return
        if self._keep is not None:
            values = [values[i] for i in self._keep]
        text = b",".join([text_field(value) for value in values])
        out.append(self._line_format % line_no + text + b"\n")
        self.counts.staged += 1

    def _field_too_long(self, line_no: int, values: list[bytes]) -> bool:
        """True (and noted) when a value of the record is over MAX_FIELD_BYTES."""
        sizes = [len(value) for value in values]
        longest = max(sizes)
        if longest <= MAX_FIELD_BYTES:
            return False
        column = self.layout.header.names[sizes.index(longest)]
        self.long_fields.append(LongField(line_no, column or "(unnamed)", longest))
        return True

    def _malformed(self, line_no: int, raw: bytes) -> None:
        self.counts.malformed += 1
        self._on_malformed(line_no, raw)

    def _too_long(self, line_no: int) -> None:
        raise FileProblem(
            self.file_name, "record_too_long",
            f"{self.file_name}: the record starting at line {line_no} is longer than "
            f"{MAX_RECORD_BYTES // (1024 * 1024)} MiB (an unterminated quote?)",
            line_no=line_no)
