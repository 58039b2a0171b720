"""CSV text of columns, built in bulk: a few NumPy passes instead of a format call per row.

Each column turns into a byte matrix, one row per record, padded with NUL bytes (which
never occur in text). The matrices of a table are laid side by side with commas and line
ends, and dropping every NUL leaves the CSV text of all rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from generator.timeline import SECONDS_PER_DAY, iso_date, iso_second

NUL = 0
NEWLINE_BYTE = ord("\n")


def csv_field(value: str) -> str:
    """One field as RFC 4180 writes it: quoted when it holds a comma, quote or line end."""
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_record(cells: list[str], newline: str) -> bytes:
    """One record's bytes with its line end; a lone empty field is written `""`."""
    text = ",".join(csv_field(cell) for cell in cells)
    return ((text or '""') + newline).encode("utf-8")


def money_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


class Column(Protocol):
    """A column of a table: the text of one row, or the CSV bytes of all rows."""

    def __len__(self) -> int: ...

    def text(self, row: int) -> str: ...

    def block(self) -> np.ndarray: ...


def literal_block(text: bytes, rows: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (rows, len(text)))


def fixed_digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers, `width` bytes each."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.int64, copy=True)
    for position in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, 10)
        out[:, position] = digit + ord("0")
    return out


def digit_block(values: np.ndarray) -> np.ndarray:
    """Decimal digits of non-negative integers, leading zeros blanked to NUL."""
    if len(values) == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    if int(values.min()) < 0:
        raise ValueError("digit_block encodes non-negative integers only")
    width = len(str(int(values.max())))
    out = fixed_digits(values, width)
    if width > 1:
        powers = 10 ** np.arange(width - 1, 0, -1, dtype=np.int64)
        out[:, :-1][values[:, None] < powers[None, :]] = NUL
    return out


def encode_strings(values: list[str] | tuple[str, ...]) -> np.ndarray:
    """CSV-encoded UTF-8 bytes of each string as a NUL-padded matrix."""
    encoded = np.array([csv_field(value).encode("utf-8") for value in values] or [b""])
    width = max(encoded.dtype.itemsize, 1)
    matrix = encoded.astype(f"S{width}").view(np.uint8).reshape(len(encoded), width)
    return matrix[: len(values)]


def date_block(days: np.ndarray) -> np.ndarray:
    """`YYYY-MM-DD` of days since the Unix epoch."""
    moments = days.astype("datetime64[D]")
    years = moments.astype("datetime64[Y]").astype(np.int64) + 1970
    months = moments.astype("datetime64[M]")
    month_numbers = months.astype(np.int64) % 12 + 1
    day_numbers = (moments - months.astype("datetime64[D]")).astype(np.int64) + 1
    dash = literal_block(b"-", len(days))
    return np.concatenate(
        [fixed_digits(years, 4), dash, fixed_digits(month_numbers, 2), dash,
         fixed_digits(day_numbers, 2)],
        axis=1,
    )  # fmt: skip


def time_block(seconds_of_day: np.ndarray) -> np.ndarray:
    """`HH:MM:SS` of seconds since midnight."""
    hours, rest = np.divmod(seconds_of_day, 3600)
    minutes, seconds = np.divmod(rest, 60)
    colon = literal_block(b":", len(seconds_of_day))
    return np.concatenate(
        [fixed_digits(hours, 2), colon, fixed_digits(minutes, 2), colon,
         fixed_digits(seconds, 2)],
        axis=1,
    )  # fmt: skip


@dataclass(frozen=True)
class IntColumn:
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def text(self, row: int) -> str:
        return str(int(self.values[row]))

    def block(self) -> np.ndarray:
        return digit_block(self.values)


@dataclass(frozen=True)
class MoneyColumn:
    """Non-negative amounts in cents, written with two decimals."""

    cents: np.ndarray

    def __len__(self) -> int:
        return len(self.cents)

    def text(self, row: int) -> str:
        return money_text(int(self.cents[row]))

    def block(self) -> np.ndarray:
        whole, fraction = np.divmod(self.cents, 100)
        return np.concatenate(
            [digit_block(whole), literal_block(b".", len(self.cents)), fixed_digits(fraction, 2)],
            axis=1,
        )


class Pool:
    """A tuple of texts with their CSV bytes, for columns that pick from it by index."""

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values
        self.matrix = encode_strings(values)


@dataclass(frozen=True)
class PoolColumn:
    codes: np.ndarray
    pool: Pool

    def __len__(self) -> int:
        return len(self.codes)

    def text(self, row: int) -> str:
        return self.pool.values[int(self.codes[row])]

    def block(self) -> np.ndarray:
        return self.pool.matrix[self.codes]


@dataclass(frozen=True)
class TextColumn:
    values: list[str]

    def __len__(self) -> int:
        return len(self.values)

    def text(self, row: int) -> str:
        return self.values[row]

    def block(self) -> np.ndarray:
        return encode_strings(self.values)


@dataclass(frozen=True)
class DateColumn:
    """Days since the Unix epoch, written `YYYY-MM-DD`."""

    days: np.ndarray

    def __len__(self) -> int:
        return len(self.days)

    def text(self, row: int) -> str:
        return iso_date(int(self.days[row]))

    def block(self) -> np.ndarray:
        return date_block(self.days)


@dataclass(frozen=True)
class TimestampColumn:
    """Seconds since the Unix epoch, written `YYYY-MM-DD HH:MM:SS` (UTC)."""

    seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.seconds)

    def text(self, row: int) -> str:
        return iso_second(int(self.seconds[row]))

    def block(self) -> np.ndarray:
        days, rest = np.divmod(self.seconds, SECONDS_PER_DAY)
        return np.concatenate(
            [date_block(days), literal_block(b" ", len(days)), time_block(rest)], axis=1
        )


@dataclass(frozen=True)
class EncodedRows:
    """CSV bytes of a table's rows: data[offsets[i]:offsets[i+1]] is row i with its line end."""

    data: np.ndarray
    offsets: np.ndarray
    lines: np.ndarray  # physical lines of each row (1 + line ends inside quoted fields)

    def slice(self, first: int, end: int) -> memoryview:
        return memoryview(self.data[int(self.offsets[first]) : int(self.offsets[end])])


def encode_rows(columns: list[Column], newline: bytes, rows: int) -> EncodedRows:
    """The CSV bytes of `rows` rows whose fields are the given columns, in order."""
    if rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return EncodedRows(np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.int64), empty)
    comma = literal_block(b",", rows)
    blocks: list[np.ndarray] = []
    for position, column in enumerate(columns):
        if position:
            blocks.append(comma)
        blocks.append(column.block())
    blocks.append(literal_block(newline, rows))
    matrix = np.concatenate(blocks, axis=1)
    keep = matrix != NUL
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    lines = (matrix == NEWLINE_BYTE).sum(axis=1)
    return EncodedRows(data=matrix[keep], offsets=offsets, lines=lines)
