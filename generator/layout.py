"""The records of a file chunk in file order: clean rows, hand-written edits, line numbers.

A `Table` holds clean rows as columns. `Edit`s replace a row or insert a record (or an empty
line) before it. `assemble` lays both out as the file will hold them, returns the bytes to
write and a `Records` view with what validation needs: start line, key, references and the
rules each hand-written record breaks on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from generator.contract import RULE_BIT, FileSpec, Header, RowCheck
from generator.encoding import Column, csv_record, encode_rows

NO_ID = -1


@dataclass
class Table:
    """Clean rows of one file chunk, as columns (contract columns plus any extra column)."""

    spec: FileSpec
    columns: dict[str, Column]
    keys: np.ndarray
    refs: dict[str, np.ndarray] = field(default_factory=dict)
    emails: list[str] | None = None  # lower-case e-mail of each row (customers)
    updates: bool = False  # every row repeats a key accepted in an earlier batch
    edit_weight: np.ndarray | None = None  # relative chance of each row to be hand-written

    def __len__(self) -> int:
        return len(self.keys)

    def values(self, row: int) -> dict[str, str]:
        """The text of each column of one row."""
        return {name: column.text(row) for name, column in self.columns.items()}


def inverse_popularity(popularity: np.ndarray, ids: np.ndarray, updates: int) -> np.ndarray:
    """Edit weights of a table whose first `updates` rows are changes: new rows of rarely
    referenced keys are likelier; changes (whose rejection orphans nothing) get the mean."""
    weight = 1.0 / popularity[ids]
    if len(weight):
        weight[:updates] = float(weight.mean())
    return weight


@dataclass
class Edit:
    """A hand-written record: replaces clean row `pos`, or goes before it when `insert`.

    `cells` are the fields in header order; None writes an empty line (not a record).
    `intended` are the rules it is meant to break (empty for a valid variant).
    """

    pos: int
    insert: bool
    cells: list[str] | None
    intended: frozenset[str]
    action: str


@dataclass
class Records:
    """Every entry of a chunk in file order (records and empty lines)."""

    is_record: np.ndarray
    line: np.ndarray
    key: np.ndarray
    refs: dict[str, np.ndarray]
    rules: np.ndarray  # bit mask of the rules each record breaks on its own
    key_texts: dict[int, str | None]  # raw key text of hand-written records
    emails: list[str | None] | None
    row_entry: np.ndarray  # entry of each clean table row (its edit when replaced)
    edit_entry: list[int]  # entry of each edit, in the order of the edit list
    has_edits: bool
    end_line: int  # the line after the chunk's last

    def __len__(self) -> int:
        return len(self.is_record)


def rule_mask(rules: set[str] | frozenset[str]) -> int:
    mask = 0
    for rule in rules:
        mask |= RULE_BIT[rule]
    return mask


def assemble(
    table: Table,
    header: Header,
    newline: str,
    edits: list[Edit],
    checks: list[RowCheck | None],
    first_line: int,
) -> tuple[list[bytes | memoryview], Records]:
    """Lay out clean rows and edits; `checks[j]` is the contract's verdict on edit j."""
    rows = len(table)
    encoded = encode_rows([table.columns[c] for c in header.columns], newline.encode(), rows)
    order = sorted(range(len(edits)), key=lambda j: (edits[j].pos, not edits[j].insert, j))
    insert_positions = np.array(sorted(e.pos for e in edits if e.insert), dtype=np.int64)
    row_entry = np.arange(rows, dtype=np.int64)
    row_entry += np.searchsorted(insert_positions, row_entry, side="right")
    size = rows + len(insert_positions)

    is_record = np.ones(size, dtype=bool)
    lines = np.empty(size, dtype=np.int64)
    key = np.full(size, NO_ID, dtype=np.int64)
    refs = {column: np.full(size, NO_ID, dtype=np.int64) for column in table.refs}
    rules = np.zeros(size, dtype=np.int64)
    lines[row_entry] = encoded.lines
    key[row_entry] = table.keys
    for column, ids in table.refs.items():
        refs[column][row_entry] = ids
    emails = None
    if table.emails is not None:
        email_array = np.empty(size, dtype=object)
        email_array[row_entry] = table.emails
        emails = email_array

    pieces: list[bytes | memoryview] = []
    key_texts: dict[int, str | None] = {}
    edit_entry = [0] * len(edits)
    cursor = 0
    inserted = 0
    for j in order:
        edit = edits[j]
        if edit.insert:
            entry = edit.pos + inserted
            inserted += 1
        else:
            entry = int(row_entry[edit.pos])
        edit_entry[j] = entry
        if edit.pos > cursor:
            pieces.append(encoded.slice(cursor, edit.pos))
        cursor = edit.pos if edit.insert else edit.pos + 1
        if edit.cells is None:
            data = newline.encode()
            is_record[entry] = False
        else:
            data = csv_record(edit.cells, newline)
            _place_check(checks[j], entry, key, refs, rules, key_texts, emails)
        lines[entry] = data.count(b"\n")
        pieces.append(data)
    if rows > cursor:
        pieces.append(encoded.slice(cursor, rows))

    line = np.empty(size, dtype=np.int64)
    if size:
        line[0] = first_line
        np.cumsum(lines[:-1], out=line[1:])
        line[1:] += first_line
    records = Records(
        is_record=is_record,
        line=line,
        key=key,
        refs=refs,
        rules=rules,
        key_texts=key_texts,
        emails=None if emails is None else emails.tolist(),
        row_entry=row_entry,
        edit_entry=edit_entry,
        has_edits=bool(edits),
        end_line=first_line + int(lines.sum()),
    )
    return pieces, records


def _place_check(
    check: RowCheck | None,
    entry: int,
    key: np.ndarray,
    refs: dict[str, np.ndarray],
    rules: np.ndarray,
    key_texts: dict[int, str | None],
    emails: np.ndarray | None,
) -> None:
    if check is None:
        raise ValueError("every edit that writes a record needs the contract's check")
    key[entry] = NO_ID if check.key is None else check.key
    for column, ids in refs.items():
        ref = check.refs.get(column)
        ids[entry] = NO_ID if ref is None else ref
    rules[entry] = rule_mask(check.rules)
    key_texts[entry] = check.key_text
    if emails is not None:
        emails[entry] = check.email
