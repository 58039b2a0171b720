"""manifest.json of each batch: rows, accepted and rejected per file, and every defect.

The manifest predicts what validation gives when the batch is processed after the batches
before it and before any later one, loaded at or after `load_not_before` (and before
2090). Each rejected record is listed with its file, physical start line, raw key text
(null for a malformed record) and the sorted rule ids it breaks. An orphan whose parents
arrive later carries `resolved_by`: the batch after which it is accepted.

    {"batch": "batch_0001", "seed": 42, "load_not_before": "2025-04-01T00:00:00Z",
     "files": {"customers.csv": {"rows": 1000, "accepted": 990, "rejected": 10}, ...},
     "defects": [
      {"file": "customers.csv", "line": 17, "key": "123", "rules": ["invalid_email"]},
      ...
     ]}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from generator.contract import RULES
from generator.layout import Records
from generator.model import Outcome


@dataclass
class FileDefects:
    """Counts and rejected records of one file of one batch."""

    rows: int = 0
    rejected: int = 0
    lines: list[np.ndarray] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)
    rules: list[np.ndarray] = field(default_factory=list)
    key_texts: dict[int, str | None] = field(default_factory=dict)  # by line

    def add(self, records: Records, outcome: Outcome) -> None:
        rejected = np.flatnonzero(records.is_record & ~outcome.accepted)
        self.rows += int(records.is_record.sum())
        self.rejected += len(rejected)
        self.lines.append(records.line[rejected])
        self.keys.append(records.key[rejected])
        self.rules.append(outcome.rules[rejected])
        for entry, text in records.key_texts.items():
            if not outcome.accepted[entry]:
                self.key_texts[int(records.line[entry])] = text

    def entries(self, file: str, resolved: dict[tuple[str, int], str]) -> Iterator[str]:
        """The JSON text of this file's defect entries, by line."""
        if not self.lines:
            return
        names: dict[int, str] = {}
        prefix = '{"file": ' + json.dumps(file) + ', "line": '
        lines = np.concatenate(self.lines)
        keys = np.concatenate(self.keys)
        rules = np.concatenate(self.rules)
        order = np.argsort(lines, kind="stable")
        for line, key, mask in zip(
            lines[order].tolist(), keys[order].tolist(), rules[order].tolist(), strict=True
        ):
            if mask not in names:
                names[mask] = json.dumps(rule_names(mask))
            text = self.key_texts[line] if line in self.key_texts else str(key)
            entry = f'{prefix}{line}, "key": {json.dumps(text, ensure_ascii=False)}, '
            entry += f'"rules": {names[mask]}'
            if (file, line) in resolved:
                entry += f', "resolved_by": {json.dumps(resolved[(file, line)])}'
            yield entry + "}"


def rule_names(mask: int) -> list[str]:
    """Sorted rule ids of a bit mask."""
    return sorted(rule for i, rule in enumerate(RULES) if mask & (1 << i))


@dataclass
class BatchManifest:
    name: str
    seed: int
    load_not_before: datetime
    files: dict[str, FileDefects] = field(default_factory=dict)
    resolved: dict[tuple[str, int], str] = field(default_factory=dict)

    def file(self, name: str) -> FileDefects:
        return self.files.setdefault(name, FileDefects())

    @property
    def defect_count(self) -> int:
        return sum(defects.rejected for defects in self.files.values())

    def write(self, path: Path) -> None:
        """Write manifest.json, one defect per line."""
        head = {
            "batch": self.name,
            "seed": self.seed,
            "load_not_before": self.load_not_before.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": {
                name: {
                    "rows": defects.rows,
                    "accepted": defects.rows - defects.rejected,
                    "rejected": defects.rejected,
                }
                for name, defects in self.files.items()
            },
        }
        with path.open("w", encoding="utf-8") as out:
            out.write(json.dumps(head, ensure_ascii=False)[:-1] + ',\n "defects": [')
            separator = "\n  "
            for name, defects in self.files.items():
                for entry in defects.entries(name, self.resolved):
                    out.write(separator + entry)
                    separator = ",\n  "
            out.write("\n ]}\n" if separator != "\n  " else "]}\n")
