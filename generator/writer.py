"""Files on disk: each file's format (header, line ends, byte-order mark) and its writer.

Clean data uses the canonical header, LF line ends and no byte-order mark. With defects on,
some files get variants the contract accepts: another column order, upper or padded header
names, an extra column (ignored), items without the optional `discount` column, CRLF line
ends, a UTF-8 byte-order mark, an empty line at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from generator.contract import ITEMS, FileSpec, Header
from generator.encoding import Pool, PoolColumn, csv_field
from generator.layout import Table

BOM = "\ufeff".encode()
VARIANT_SHARE = 0.3
NO_DISCOUNT_SHARE = 0.25
EXTRA_COLUMNS = {
    "customers.csv": ("loyalty_tier", ("bronze", "silver", "gold", "")),
    "products.csv": ("warehouse", ("A1", "B2", "C3", "North, Dock 4")),
    "transactions.csv": ("channel", ("web", "app", "marketplace", "phone")),
    "transaction_items.csv": ("gift_wrap", ("no", "yes", "")),
}


@dataclass(frozen=True)
class FileFormat:
    """How one file of one batch is written."""

    header: Header
    crlf: bool = False
    bom: bool = False
    trailing_blank_line: bool = False

    @property
    def newline(self) -> str:
        return "\r\n" if self.crlf else "\n"


def file_format(spec: FileSpec, rng: np.random.Generator, variants: bool) -> FileFormat:
    """The canonical format, or with `variants` a random mix of the accepted variants."""
    if not variants:
        return FileFormat(Header.canonical(spec))
    draws = rng.random(7)
    columns = list(spec.columns)
    if spec is ITEMS and draws[0] < NO_DISCOUNT_SHARE:
        columns.remove("discount")
    if draws[1] < VARIANT_SHARE:
        columns = [columns[i] for i in rng.permutation(len(columns))]
    if draws[2] < VARIANT_SHARE:
        columns.insert(int(rng.integers(len(columns) + 1)), EXTRA_COLUMNS[spec.name][0])
    names = list(columns)
    if draws[3] < VARIANT_SHARE:
        names = [_restyle(name, rng) for name in names]
    return FileFormat(
        header=Header(names=tuple(names), columns=tuple(columns)),
        crlf=bool(draws[4] < VARIANT_SHARE),
        bom=bool(draws[5] < VARIANT_SHARE),
        trailing_blank_line=bool(draws[6] < VARIANT_SHARE),
    )


def _restyle(name: str, rng: np.random.Generator) -> str:
    style = int(rng.integers(4))
    if style == 0:
        return name.upper()
    if style == 1:
        return name.title()
    if style == 2:
        return f" {name} "
    return name


def add_extra_column(table: Table, header: Header, rng: np.random.Generator) -> None:
    """Give the table values for the header's extra column, if it has one."""
    name, values = EXTRA_COLUMNS[table.spec.name]
    if name in header.columns:
        codes = rng.integers(len(values), size=len(table))
        table.columns[name] = PoolColumn(codes, Pool(values))


class CsvWriter:
    """Writes one CSV file: byte-order mark, header, then chunks; counts physical lines."""

    def __init__(self, path: Path, fmt: FileFormat) -> None:
        self.fmt = fmt
        self.next_line = 2
        self._file = path.open("wb")
        if fmt.bom:
            self._file.write(BOM)
        header = ",".join(csv_field(name) for name in fmt.header.names)
        self._file.write((header + fmt.newline).encode("utf-8"))

    def write(self, pieces: list[bytes | memoryview], end_line: int) -> None:
        for piece in pieces:
            self._file.write(piece)
        self.next_line = end_line

    def close(self) -> None:
        if self.fmt.trailing_blank_line:
            self._file.write(self.fmt.newline.encode())
        self._file.close()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
