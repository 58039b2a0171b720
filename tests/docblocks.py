"""The code blocks of README.md and docs/*.md, with the doc-test markers that say how to run them.

Hand-written: the convention is ours (docs/contributing.md, "Examples in the docs are
tests"), and a Markdown library would give the blocks without the HTML comment in front of
them. A fenced block is a line starting with three backticks and a language, up to the
next such line. A marker is one HTML comment on the line right above the fence:

    <!-- doc-test: skip: starts Docker -->
    <!-- doc-test: as warehouse_reader; empty ok -->
    <!-- doc-test: output numbers vary -->

Options, separated by ``;``:

- ``skip: REASON``: not run; the reason (required, the rest of the marker) is shown in the
  test report;
- ``as ROLE``: SQL run after ``SET ROLE ROLE`` (default: the database owner);
- ``exit N``: every command of a shell block must exit with N (default 0);
- ``empty ok``: a SQL query of the block may return no rows (default: each must return one);
- ``free port N``: the literal port N is replaced by a free TCP port before running;
- ``landing PATH``: PATH stands for a landing directory: the test dataset's;
- ``embedded cluster``: shell commands run with ``DATABASE_URL`` unset, so they use (and
  create) an embedded cluster in a scratch folder, stopped after the block;
- ``output`` (on a ``text`` block right after a runnable block): the output that block must
  print; ``numbers vary`` lets every number differ, a line ``...`` stands for any lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

RUNNABLE = {"sh": "sh", "bash": "sh", "shell": "sh", "sql": "sql"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*doc-test:(?P<options>.*?)-->\s*$")
KNOWN = ("skip", "as", "exit", "empty ok", "free port", "landing", "embedded cluster",
         "output", "numbers vary")


class MarkerError(ValueError):
    """A doc-test marker that does not follow the convention."""


@dataclass
class Options:
    skip: str | None = None
    role: str | None = None
    exit_code: int = 0
    empty_ok: bool = False
    free_ports: list[int] = field(default_factory=list)
    landing: str | None = None
    embedded: bool = False
    is_output: bool = False
    numbers_vary: bool = False


@dataclass
class Block:
    path: Path
    line: int  # the fence's line, 1-based
    lang: str
    text: str
    options: Options
    output: Block | None = None  # the expected output block, when one follows

    @property
    def kind(self) -> str | None:
        return RUNNABLE.get(self.lang)

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def parse_options(text: str, where: str) -> Options:
    options = Options()
    text, _, reason = text.partition("skip:")
    if _:
        options.skip = reason.strip()
        if not options.skip:
            raise MarkerError(f"{where}: 'skip:' needs a reason")
    for raw in (part.strip() for part in text.split(";")):
        if not raw:
            continue
        if raw.startswith("as "):
            options.role = raw[3:].strip()
        elif re.fullmatch(r"exit \d+", raw):
            options.exit_code = int(raw.split()[1])
        elif raw == "empty ok":
            options.empty_ok = True
        elif re.fullmatch(r"free port \d+", raw):
            options.free_ports.append(int(raw.split()[2]))
        elif raw.startswith("landing "):
            options.landing = raw[len("landing "):].strip()
        elif raw == "embedded cluster":
            options.embedded = True
        elif raw in ("output", "output numbers vary"):
            options.is_output = True
            options.numbers_vary = raw.endswith("numbers vary")
        else:
            raise MarkerError(f"{where}: unknown doc-test option {raw!r} (known: {KNOWN})")
    return options


def parse(path: Path) -> list[Block]:
    """Every fenced block of ``path``; an output block is attached to the block before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start = i
        marker = MARKER.match(lines[start - 1]) if start > 0 else None
        where = f"{path}:{start + 1}"
        options = parse_options(marker.group("options"), where) if marker else Options()
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("```"):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise MarkerError(f"{where}: code block never closed")
        block = Block(path, start + 1, fence.group("lang"), "\n".join(body) + "\n", options)
        if options.is_output:
            if not blocks or blocks[-1].kind is None or blocks[-1].output is not None:
                raise MarkerError(f"{where}: an output block must follow a runnable block")
            blocks[-1].output = block
        else:
            blocks.append(block)
        i += 1
    return blocks


def shell_commands(text: str) -> list[tuple[int, str]]:
    """(line offset, command) of a shell block: comments dropped, continuations joined."""
    commands: list[tuple[int, str]] = []
    pending: list[str] = []
    first = 0
    for offset, line in enumerate(text.splitlines()):
        if not pending:
            first = offset
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        commands.append((first, " ".join(part.strip() for part in pending)))
        pending = []
    return commands


def output_matches(expected: str, actual: str, numbers_vary: bool) -> bool:
    """Line by line, trailing blanks ignored; ``...`` lines match any lines."""
    number = re.compile(r"-?\d+(?:[.,]\d+)*")
    parts = []
    for line in expected.strip("\n").splitlines():
        if line.strip() == "...":
            parts.append("(?:.*\n)*?")
        elif numbers_vary:
            pieces = number.split(line.rstrip())
            parts.append(r"-?[\d.,]+".join(re.escape(piece) for piece in pieces) + "\n")
        else:
            parts.append(re.escape(line.rstrip()) + "\n")
    normal = "".join(line.rstrip() + "\n" for line in actual.strip("\n").splitlines())
    return re.fullmatch("".join(parts), normal) is not None
