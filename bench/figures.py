"""Measured figures in the docs: recorded in ``docs/figures/NAME.json``, rendered or checked.

    python -m bench.figures record NAME FILE [--label L] [--command CMD] [--commit C]
    python -m bench.figures write        # re-render every figures block of README.md, docs/
    python -m bench.figures check        # what tests/test_docs_figures.py asserts
    python -m bench.figures quote NAME   # record the hand-derived figures NAME's prose quotes

The convention is in docs/contributing.md ("Measured figures"). In short:

- A **figures file** ``docs/figures/NAME.json`` holds runs, each with its provenance
  (``command``, ``machine``, ``commit``, ``measured_at``, ``load_average``, ``source``) and
  its ``results`` (the JSON a benchmark or ``make demo`` wrote), and ``quoted``: figures the
  docs' prose derives from the runs by hand (each with the words around it).
  ``record`` puts a result file in as a run (replacing the run of the same label) and drops
  ``quoted``: figures derived from the old runs must be derived again.
- A **rendered block** ``<!-- figures: KEY -->...<!-- /figures -->`` (one line or many) is
  what ``RENDERERS[KEY]`` makes of its figures file (NAME is KEY up to its first dot);
  ``write`` re-renders them, the test fails when a doc differs.
- A **quoted block** ``<!-- figures quoted: NAME -->...<!-- /figures -->`` is prose or a
  hand-made table: each measured figure in it (a number with a unit: s, ms, MB, %, x ...; a
  table cell that is only a number) must be one of NAME's results at the precision shown, or
  in its ``quoted``.
- Anywhere else in README.md and docs/*.md a measured figure fails the test, but for the
  short list of settings and limits in ``NOT_MEASURED``.

Hand-written: the blocks are HTML comments in our Markdown (invisible on GitHub), and the
check of quoted prose is ours; the JSON files are read with the standard library.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.config import PROJECT_ROOT

FIGURES_DIR = PROJECT_ROOT / "docs" / "figures"
PROVENANCE = ("label", "command", "machine", "commit", "measured_at", "load_average", "source")

BLOCK = re.compile(r"<!-- figures(?P<quoted> quoted)?: (?P<key>[\w.-]+) -->(?P<body>.*?)"
                   r"<!-- /figures -->", re.DOTALL)
FENCE = re.compile(r"^ *```.*?^ *```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]+`")
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
UNIT = (r"ms|us|µs|s|seconds?|min|minutes?|h|hours?|KiB|kB|KB|MiB|MB|GiB|GB|TB|B|bytes|%"
        r"|x|rows/s")
# A unit after a space ("23.1 s", "6.76 MB") or a share or ratio ("13%", "5.1x"); a unit
# written without the space is a setting's syntax ("30s", "8GB", "256MB"), not a measurement.
FIGURE = re.compile(rf"(?<![\w.,/-])(?:{NUMBER})(?:\s*(?:-|to|/)\s*(?:{NUMBER}))*"
                    rf"(?: (?:{UNIT})|%|x)(?![\w])")
# Shares and ratios are measured figures in docs/performance.md; elsewhere they describe
# the data (the generator's model, thresholds), checked by the tests of what they describe.
SHARES_MEASURED_IN = ("docs/performance.md",)
CELL = re.compile(rf"^\s*\**\s*(?:{NUMBER})\s*\**\s*$")

# Figures in the docs that are settings, limits or defaults, not measurements: (file, the
# words around the figure), each a reason to keep it where it is.
NOT_MEASURED = (
    ("docs/data-contract.md", "a record longer than 256 MiB"),  # the ingestion bound
    ("docs/data-contract.md", "2,000 bytes"),  # the field limit (MAX_FIELD_BYTES)
    ("docs/operations.md", "2,000 bytes"),
    ("docs/operations.md", "longer than 256 MiB"),
    ("docs/operations.md", "seeded 5 attempts, 0.5 s, 30 s"),  # the seeded retry policy
    ("docs/operations.md", "capped at 10 minutes, or 5 minutes"),  # misfire grace
    ("docs/operations.md", "(5 min in"),  # compose's stop_grace_period
    ("docs/operations.md", "(default 30 s)"),  # watch --settle
    ("docs/operations.md", "every 60 s"),  # compose's health check
    ("docs/operations.md", "after a 60 s start period"),
    ("docs/bi.md", "every 15 minutes"),  # an example schedule
)


class FiguresError(ValueError):
    """A figures file or block that does not follow the convention."""


# -- figures files ----------------------------------------------------------------------------


def figures_path(name: str) -> Path:
    return FIGURES_DIR / f"{name}.json"


def load(name: str) -> dict:
    path = figures_path(name)
    if not path.exists():
        raise FiguresError(f"{path.relative_to(PROJECT_ROOT)}: no such figures file")
    return json.loads(path.read_text(encoding="utf-8"))


def save(name: str, figures: dict) -> None:
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    figures_path(name).write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n",
                                  encoding="utf-8")


def run(figures: dict, label: str) -> dict:
    for entry in figures["runs"]:
        if entry["label"] == label:
            return entry
    raise FiguresError(f"{figures.get('name')}: no run labelled {label!r}")


def this_machine() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]
        model = models[0] if models else model
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB RAM"


def head_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def record(name: str, source: Path, label: str | None = None, command: str | None = None,
           commit: str | None = None, load_average: str | None = None) -> dict:
    """Put ``source`` (a benchmark's result JSON) into NAME's figures file as the run
    ``label``; the provenance comes from the result where it says it (``command``,
    ``machine``, ``measured_at``, ``load_before``/``load_after``), else from this machine,
    this checkout and the file's time. Figures quoted by hand from the old runs are dropped."""
    results = json.loads(source.read_text(encoding="utf-8"))
    path = figures_path(name)
    figures = load(name) if path.exists() else {"name": name, "about": "", "runs": []}
    label = label or results.get("label") or source.stem
    load_average = load_average or results.get("load_average") or " / ".join(
        str(results[key]) for key in ("load_before", "load_after") if key in results)
    entry = {
        "label": label,
        "command": command or results.get("command") or "",
        "machine": results.get("machine") or this_machine(),
        "commit": commit or results.get("commit") or head_commit(),
        "measured_at": results.get("measured_at") or datetime.fromtimestamp(
            source.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": load_average,
        "source": str(source),
        "results": results,
    }
    for key, option in (("command", "--command"), ("load_average", "--load")):
        if not entry[key]:
            raise FiguresError(f"{source}: the result does not say its {key}: pass {option}")
    runs = [r for r in figures["runs"] if r["label"] != label]
    position = next((i for i, r in enumerate(figures["runs"]) if r["label"] == label),
                    len(runs))
    runs.insert(position, entry)
    figures["runs"] = runs
    figures["quoted"] = {}
    save(name, figures)
    return figures


def publish(name: str, results: dict, label: str = "recorded") -> Path:
    """What a benchmark calls to put its figures into the docs: ``results`` (with at least
    ``command`` and ``load_average``) written to bench/out/figures-NAME.json, recorded as
    the run ``label`` of NAME's figures file, and every figures block re-rendered."""
    out = PROJECT_ROOT / "bench" / "out" / f"figures-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {"measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", **results}
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    record(name, out, label)
    write()
    return figures_path(name)


# -- blocks in the docs -------------------------------------------------------------------------


def doc_files() -> list[Path]:
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


@dataclass
class Block:
    path: Path
    line: int
    key: str
    quoted: bool
    body: str

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[0]


def _spans(text: str) -> Iterator[re.Match]:
    """The figures blocks of ``text`` (not those shown in code)."""
    masked = prose(text)
    for match in BLOCK.finditer(text):
        if masked[match.start()] == "<":
            yield match


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [Block(path, text.count("\n", 0, m.start()) + 1, m.group("key"),
                  bool(m.group("quoted")), m.group("body")) for m in _spans(text)]


def render(key: str) -> str:
    if key not in RENDERERS:
        raise FiguresError(f"no renderer for figures block {key!r} (bench/figures.py)")
    name = key.split(".", 1)[0]
    try:
        return RENDERERS[key](load(name))
    except (KeyError, TypeError, ValueError, StopIteration) as error:
        raise FiguresError(f"renderer {key!r} cannot read docs/figures/{name}.json: "
                           f"{type(error).__name__} {error}") from None


def rendered_body(block: Block) -> str:
    """The block's body as it should be: between blank lines when the block has lines (a
    table or paragraph of its own), else inline."""
    text = render(block.key)
    return f"\n\n{text.strip(chr(10))}\n\n" if "\n" in block.body else text.strip()


def write() -> list[Path]:
    """Re-render every rendered block; returns the files that changed."""
    changed = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")

        new, end = [], 0
        for match in _spans(text):
            new.append(text[end:match.start()])
            end = match.end()
            if match.group("quoted"):
                new.append(match.group(0))
                continue
            block = Block(path, 0, match.group("key"), False, match.group("body"))
            new.append(f"<!-- figures: {block.key} -->{rendered_body(block)}<!-- /figures -->")
        new = "".join(new) + text[end:]
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


# -- measured figures in prose ----------------------------------------------------------------


def prose(text: str) -> str:
    """``text`` with fenced code and code spans (commands, settings, the markers shown as
    examples) blanked out; every other character stays where it was."""
    def blank(match: re.Match) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return CODE_SPAN.sub(blank, FENCE.sub(blank, text))


def figures_in(text: str, cells: bool = False) -> Iterator[tuple[int, str]]:
    """(line offset, figure) of every measured figure in ``text``; with ``cells``, table
    cells holding only a number too."""
    for offset, line in enumerate(prose(text).splitlines()):
        for match in FIGURE.finditer(line):
            yield offset, match.group(0)
        if cells and line.lstrip().startswith("|"):
            for cell in line.strip().strip("|").split("|"):
                if CELL.match(cell):
                    yield offset, cell.strip().strip("*").strip()


def numbers(figure: str) -> list[str]:
    return re.findall(NUMBER, figure)


def leaves(value: object) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, str):
        for found in re.findall(r"-?\d+(?:\.\d+)?", value):
            yield float(found)
    elif isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)


SCALES = {"ms": (1, 1000), "%": (1, 100), "MB": (1, 1e-6, 2**-20), "MiB": (1, 2**-20),
          "GB": (1, 1e-9, 2**-30), "GiB": (1, 2**-30), "KiB": (1, 2**-10)}


def recorded(figure: str, figures: dict) -> bool:
    """Whether every number of ``figure`` is one of the runs' results at the precision
    shown (bytes shown as MB or GB, seconds as ms, shares as %), or the figure is quoted."""
    if figure in figures.get("quoted", {}):
        return True
    unit = re.sub(rf"^.*?(?:{NUMBER})\s?", "", figure) if re.search(r"[^\d.,\s]$", figure) else ""
    scales = SCALES.get(unit, (1,))
    values = [v * s for v in leaves([r["results"] for r in figures["runs"]]) for s in scales]
    for shown in numbers(figure):
        digits = len(shown.split(".")[1]) if "." in shown else 0
        target = float(shown.replace(",", ""))
        tolerance = 0.5 * 10 ** -digits + 1e-9
        if not any(abs(abs(v) - target) <= tolerance for v in values if math.isfinite(v)):
            return False
    return True


def context(text: str, figure: str) -> str:
    flat = " ".join(prose(text).split())
    at = flat.find(figure)
    return flat[max(0, at - 70):at + len(figure) + 10].strip() if at >= 0 else ""


def not_measured(path: Path, line: str) -> bool:
    relative = _relative(path)
    return any(relative == file and words in line for file, words in NOT_MEASURED)


# -- the checks -------------------------------------------------------------------------------


def _relative(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def doc_problems(path: Path) -> list[str]:
    """Where ``path`` disagrees with the figures files: a rendered block that is not its
    rendering, a quoted figure no run holds, a measured figure outside a block."""
    found: list[str] = []
    text = path.read_text(encoding="utf-8")
    for block in blocks(path):
        where = f"{_relative(path)}:{block.line}"
        try:
            figures = load(block.name)
            if block.quoted:
                missing = sorted({f for _, f in figures_in(block.body, cells=True)
                                  if not recorded(f, figures)})
                found += [f"{where}: {f!r} is in no run of docs/figures/{block.name}.json "
                          "nor in its quoted figures" for f in missing]
            elif block.body != rendered_body(block):
                found.append(f"{where}: the block differs from docs/figures/{block.name}.json "
                             "(python -m bench.figures write)")
        except FiguresError as error:
            found.append(f"{where}: {error}")
    outside = text
    for match in _spans(text):
        outside = (outside[:match.start()] + re.sub(r"[^\n]", " ", match.group(0))
                   + outside[match.end():])
    lines = outside.splitlines()
    shares = _relative(path) in SHARES_MEASURED_IN
    for offset, figure in figures_in(outside):
        if not shares and re.search(r"(?:%|x)$", figure):
            continue
        if not not_measured(path, lines[offset]):
            found.append(f"{_relative(path)}:{offset + 1}: measured figure {figure!r} outside "
                         "a figures block")
    return found


def file_problems() -> list[str]:
    """Figures files no doc uses, and runs without their provenance."""
    used = {block.name for path in doc_files() for block in blocks(path)}
    found: list[str] = []
    for path in sorted(FIGURES_DIR.glob("*.json")):
        figures = json.loads(path.read_text(encoding="utf-8"))
        if path.stem not in used:
            found.append(f"{_relative(path)}: no doc quotes it")
        for entry in figures.get("runs", []):
            lacking = [key for key in PROVENANCE if not entry.get(key)]
            if lacking or "results" not in entry:
                found.append(f"{_relative(path)}: run {entry.get('label')!r} lacks "
                             f"{lacking or ['results']}")
    return found


def problems() -> list[str]:
    """Every way the docs and the figures files disagree (empty: they agree)."""
    return [p for path in doc_files() for p in doc_problems(path)] + file_problems()


def quote(name: str) -> list[str]:
    """Put the figures of NAME's quoted blocks that its runs do not hold into its
    ``quoted`` (with the words around each): figures derived from the runs by hand."""
    figures = load(name)
    added = []
    for path in doc_files():
        for block in blocks(path):
            if block.quoted and block.name == name:
                for _, figure in figures_in(block.body, cells=True):
                    if not recorded(figure, figures):
                        figures.setdefault("quoted", {})[figure] = context(block.body, figure)
                        added.append(figure)
    save(name, figures)
    return added


# -- renderers: one per rendered block --------------------------------------------------------


def _provenance(entry: dict) -> str:
    return (f"`{entry['command']}` at commit {entry['commit']}, {entry['measured_at']}, on "
            f"{entry['machine']}; load average {entry['load_average']}")


DEMO_RUN = "medium"  # the run of docs/figures/demo.json that README.md quotes


def demo_total(figures: dict) -> str:
    return f"{run(figures, DEMO_RUN)['results']['total_seconds']:.0f} seconds"


def _seconds(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f} s"


def demo_table(figures: dict) -> str:
    lines = ["| scale | rows of transactions.csv / of all files | `make demo` in all | "
             "generation | pipeline | of which validate, merge, fact |",
             "|---|---|---:|---:|---:|---|"]
    for entry in figures["runs"]:
        r = entry["results"]
        steps = ", ".join(_seconds(r["steps"].get(step), 1)
                          for step in ("validate", "merge", "load_fact_sales"))
        lines.append(_row([entry["label"], f"{r['transaction_rows']:,} / {r['lines']:,}",
                           _seconds(r.get("total_seconds"), 0),
                           _seconds(r.get("generate_seconds"), 1),
                           _seconds(r["pipeline_seconds"], 1), steps]))
    sources = "; ".join(f"the {e['label']} row: {_provenance(e)}" for e in figures["runs"])
    return "\n".join([f"Measured ({sources}):", "", *lines])


def superset_size(figures: dict) -> str:
    return f"{figures['runs'][-1]['results']['venv_bytes'] / 1e6:.0f} MB"


HISTORY_STEP_MIN_SECONDS = 0.1  # steps shorter than this in every run are left out
FEED_STEP_MIN_SECONDS = 1.0


def _history_steps(runs: list[dict], pick: Callable[[dict], dict], least: float) -> list[str]:
    names: list[str] = []
    for r in runs:
        names += [n for n, s in pick(r).items() if n not in names and s >= least]
    return [n for n in pick(runs[0]) if n in names] + [
        n for n in names if n not in pick(runs[0])]


def history_table(figures: dict) -> str:
    runs = [e["results"] for e in figures["runs"]]

    def row(title: str, cell: Callable[[dict], str]) -> str:
        return f"| {title} | " + " | ".join(cell(r) for r in runs) + " |"

    def daily(r: dict, batch: str) -> dict:
        return next(d for d in r["daily"] if d["batch"] == batch)

    indent = "&nbsp;&nbsp;"
    lines = ["| | " + " | ".join(e["label"] for e in figures["runs"]) + " |",
             "|---|" + "---:|" * len(runs),
             row("orders in the fact after the initial load", lambda r: f"{r['orders_in_fact']:,}"),
             row("date order of the fact after it (`date_key` correlation; 1.00 = in order)",
                 lambda r: f"{r['fact_date_correlation']:.2f}"
                 if r.get("fact_date_correlation") is not None else ""),
             row("load average before / after (1, 5, 15 min)",
                 lambda r: f"{r['load_before']} / {r['load_after']}"),
             row("**initial load, CSV to aggregates (s)**",
                 lambda r: f"**{r['initial_seconds']:.1f}**")]
    for step in _history_steps(runs, lambda r: r["initial"], HISTORY_STEP_MIN_SECONDS):
        # a step a run did not have (renamed or added since) is an empty cell, not 0.0
        lines.append(row(indent + step, lambda r, s=step: _seconds(r["initial"].get(s), 1)
                         .removesuffix(" s")))
    lines += [
        row("bare COPY + typed INSERT floor, same run (s)",
            lambda r: f"{r['bare_floor_seconds']:.1f}"),
        row("initial load / floor",
            lambda r: f"{r['initial_seconds'] / r['bare_floor_seconds']:.1f}x"),
        row("**status feed batch_0002 (s)**",
            lambda r: f"**{daily(r, 'batch_0002')['seconds']:.2f}**"),
    ]
    for step in _history_steps(runs, lambda r: daily(r, "batch_0002")["steps"],
                               FEED_STEP_MIN_SECONDS):
        lines.append(row(indent + step, lambda r, s=step:
                         _seconds(daily(r, "batch_0002")["steps"].get(s), 2).removesuffix(" s")))
    ordinary = ("batch_0004", "batch_0005", "batch_0006", "batch_0007")
    lines += [
        row("batch_0003 (s)", lambda r: f"{daily(r, 'batch_0003')['seconds']:.2f}"),
        row("**ordinary daily batches 0004-0007 (s)**", lambda r: "**" + ", ".join(
            f"{daily(r, b)['seconds']:.2f}" for b in ordinary) + "**"),
        row("drill-down indexes in batch_0007's fact step (with / without, s)",
            lambda r: f"{r['index_cost']['with']:.3f} / {r['index_cost']['without']:.3f}"),
        row("their cost, % of batch_0007", lambda r: "{:.1f} %".format(
            100 * (r["index_cost"]["with"] - r["index_cost"]["without"])
            / daily(r, "batch_0007")["seconds"])),
        row("**watch: marker to processed, median (s)**",
            lambda r: f"**{r['watch_median']:.2f}** ({len(r['watch_latencies'])} batches, "
                      f"max {max(r['watch_latencies']):.2f})"),
        row("database size after the initial load (GB)",
            lambda r: f"{r['sizes_after_initial']['database_bytes'] / 1e9:.2f} (staging "
                      f"{r['sizes_after_initial']['staging_bytes'] / 1e9:.2f})"),
        row("database after all batches, before / after the staging purge (GB)",
            lambda r: f"{r['purge']['before_bytes'] / 1e9:.2f} / "
                      f"{r['purge']['after_bytes'] / 1e9:.2f}"),
        row("database per million orders after the purge (GB)",
            lambda r: f"{r['purge']['after_bytes'] / 1e9 / (r['orders_in_fact'] / 1e6):.2f}"),
        row("peak memory of the bench process (MB)", lambda r: f"{r['peak_rss_mb']:.0f}"),
    ]
    for query in runs[0]["bi_queries_ms"]:
        lines.append(row(f"{query} (ms)", lambda r, q=query: f"{r['bi_queries_ms'][q]:.1f}"))
    for query in runs[0]["drill_downs_ms"]:
        lines.append(row(f"{query} (ms, rows)", lambda r, q=query:
                         f"{r['drill_downs_ms'][q]['ms']:.1f} "
                         f"({r['drill_downs_ms'][q]['rows']:,})"))
    return "\n".join(lines)


def initial_load_table(figures: dict) -> str:
    """Runs of ``python -m bench.initial_load`` (or the history preset's initial load)
    side by side: the steps that took 0.1 s in some run, the total and the floor."""
    runs = [e["results"] for e in figures["runs"]]
    lines = ["| seconds | " + " | ".join(e["label"] for e in figures["runs"]) + " |",
             "|---|" + "---:|" * len(runs),
             "| load average before / after | " + " | ".join(
                 f"{r['load_before']} / {r['load_after']}" for r in runs) + " |"]
    for step in _history_steps(runs, lambda r: r["initial"], HISTORY_STEP_MIN_SECONDS):
        lines.append(f"| {step} | " + " | ".join(
            _seconds(r["initial"].get(step), 1).removesuffix(" s") for r in runs) + " |")
    lines += [
        "| **CSV to aggregates** | " + " | ".join(
            f"**{r['initial_seconds']:.1f}**" for r in runs) + " |",
        "| bare COPY + typed INSERT floor, same run | " + " | ".join(
            f"{r['bare_floor_seconds']:.1f}" for r in runs) + " |",
        "| CSV to aggregates / floor | " + " | ".join(
            f"{r['initial_seconds'] / r['bare_floor_seconds']:.1f}x" for r in runs) + " |",
    ]
    return "\n".join(lines)


def drill_downs_table(figures: dict) -> str:
    """Runs of ``python -m bench.drill_downs`` (or the end of a history preset's run) side
    by side: each query's milliseconds fetched into Python objects, and delivered by COPY
    where the run measured it; a query the run did not time is a dash. Rows: the latest
    run's queries, then those only earlier runs timed (a question since asked of another
    view keeps its old row)."""
    runs = [e["results"] for e in figures["runs"]]

    def queries(key: str) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for r in reversed(runs):
            for query, value in r.get(key, {}).items():
                found.setdefault(query, value)
        return found

    lines = ["| query (ms; delivered by COPY) | " + " | ".join(
                 e["label"] for e in figures["runs"]) + " |",
             "|---|" + "---:|" * len(runs),
             "| load average before / after | " + " | ".join(
                 f"{r['load_before']} / {r['load_after']}" for r in runs) + " |"]
    for query in queries("bi_queries_ms"):
        lines.append(f"| {query} | " + " | ".join(
            f"{r['bi_queries_ms'][query]:.1f}" if query in r["bi_queries_ms"] else "-"
            for r in runs) + " |")

    def timed(r: dict, key: str, query: str) -> str:
        if query not in r.get(key, {}):
            return "-"
        drill = r[key][query]
        delivered = f"; {drill['delivered_ms']:.1f}" if "delivered_ms" in drill else ""
        return f"{drill['ms']:.1f}{delivered}"

    for key in ("drill_downs_ms", "bi_examples_ms", "line_floors_ms"):
        for query, drill in queries(key).items():
            lines.append(f"| {query} ({drill['rows']:,} rows) | " + " | ".join(
                timed(r, key, query) for r in runs) + " |")
    return "\n".join(lines)


BEFORE_AFTER_STAGES = (
    ("ingest", ("ingest",)),
    ("validate", ("validate",)),
    ("check, hold (issue 13's rows of the chain)", ("check", "hold")),
    ("merge", ("merge",)),
    ("reprocess_rejects", ("reprocess_rejects",)),
    ("load_dimensions", ("load_dimensions",)),
    ("load_fact_sales", ("load_fact_sales",)),
    ("refresh_aggregates", ("refresh_aggregates",)),
    ("check_reconciliation", ("check_reconciliation",)),
)
CHANGE_SHOWN_FROM = 0.5  # seconds: below that a percentage says nothing


def stage_totals(results: dict) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per stage of the initial load and of the increments added up (``total``:
    every stage), from a ``make bench`` result (bench/__main__.py) or a run that states
    them (``totals``)."""
    if "totals" in results:
        return results["totals"]["initial"], results["totals"]["increments"]
    initial = {s["name"]: s["seconds"] for s in results["initial"]}
    initial["total"] = results["initial_seconds"]
    increments: dict[str, float] = {"total": 0.0}
    for batch in results["increments"]:
        increments["total"] += batch["seconds"]
        for name, seconds in batch["stages"].items():
            increments[name] = increments.get(name, 0.0) + seconds
    return initial, increments


def _row(cells: list[str]) -> str:
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def _change(old: float, new: float) -> str:
    """The change between two figures as shown (two decimals), in whole per cent."""
    return f"{100 * (round(new, 2) / round(old, 2) - 1):+.0f} %"


def before_after_table(figures: dict) -> str:
    before, after = (stage_totals(run(figures, label)["results"])
                     for label in ("before", "after"))

    def cells(stages: tuple[str, ...], which: int) -> list[str]:
        old = [before[which][s] for s in stages if s in before[which]]
        new = [after[which][s] for s in stages if s in after[which]]
        shown = [f"{sum(v):.2f}" if v else "-" for v in (old, new)]
        change = ""
        if old and new and sum(old) >= CHANGE_SHOWN_FROM:
            change = _change(sum(old), sum(new))
        return [*shown, change]

    lines = ["| stage | initial before | initial after | change | increments before | "
             "increments after | change |", "|---|---:|---:|---:|---:|---:|---:|"]
    for title, stages in BEFORE_AFTER_STAGES:
        lines.append(_row([title, *cells(stages, 0), *cells(stages, 1)]))
    totals = []
    for which in (0, 1):
        old, new = before[which]["total"], after[which]["total"]
        totals += [f"**{old:.2f}**", f"**{new:.2f}**", _change(old, new)]
    lines.append(_row(["**CSV to aggregates**", *totals]))
    return "\n".join(lines)


def recorded_markdown(figures: dict) -> str:
    """A benchmark that writes its own report (bench_ingest, bench_dashboard,
    bench_warehouse) records it as ``results.markdown`` of its latest run."""
    return figures["runs"][-1]["results"]["markdown"]


RENDERERS: dict[str, Callable[[dict], str]] = {
    "demo.total": demo_total,
    "demo.table": demo_table,
    "superset.size": superset_size,
    "history.table": history_table,
    "initial-load.table": initial_load_table,
    "initial-load-revisions.table": initial_load_table,
    "initial-load-variants.table": initial_load_table,
    "initial-load-session2.table": initial_load_table,
    "drill-downs.table": drill_downs_table,
    "before-after.table": before_after_table,
    "ingest": recorded_markdown,
    "dashboard": recorded_markdown,
    "warehouse": recorded_markdown,
}


# -- the command ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.figures",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="put a result file into docs/figures/NAME.json, "
                         "then re-render the docs")
    rec.add_argument("name")
    rec.add_argument("file", type=Path)
    rec.add_argument("--label", help="the run's label (default: the file's name)")
    rec.add_argument("--command", dest="run_command", help="the command that measured it")
    rec.add_argument("--commit", help="the commit measured (default: this checkout's HEAD)")
    rec.add_argument("--load", help="the load average during the run, when the result "
                     "does not say it (e.g. '3.5 / 3.4', before / after)")
    sub.add_parser("write", help="re-render every figures block of README.md and docs/")
    sub.add_parser("check", help="list where docs and figures files disagree (exit 1)")
    quo = sub.add_parser("quote", help="record the figures NAME's quoted prose derives by hand")
    quo.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.command == "record":
            record(args.name, args.file, args.label, args.run_command, args.commit, args.load)
            print(f"recorded {args.file} in {figures_path(args.name).relative_to(PROJECT_ROOT)}")
        if args.command in ("record", "write"):
            for path in write():
                print(f"rendered {path.relative_to(PROJECT_ROOT)}")
        if args.command == "quote":
            for figure in quote(args.name):
                print(f"quoted {figure!r}")
        if args.command in ("record", "check", "quote"):
            found = problems()
            print("\n".join(found) or "the docs agree with docs/figures/")
            return 1 if found else 0
    except FiguresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
