"""Measured figures in the docs come from docs/figures/*.json (bench/figures.py).

The convention is in docs/contributing.md ("Measured figures"): a rendered block is its
figures file's rendering, a quoted block's figures are in its file, and no measured figure
sits outside a block. The first test holds the real docs to it; the others show that each
rule fails when it should.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import figures
from runner.demo import demo_figures
from runner.pipeline import RunResult, StepResult
from tests.staging_data import create_batch, customer, item, transaction


def test_the_docs_agree_with_their_figures_files() -> None:
    assert figures.problems() == []


def test_every_figures_file_says_where_its_figures_come_from() -> None:
    names = sorted(p.stem for p in figures.FIGURES_DIR.glob("*.json"))
    assert {"demo", "history", "before-after"} <= set(names)
    for name in names:
        for entry in figures.load(name)["runs"]:
            assert all(entry[key] for key in figures.PROVENANCE), (name, entry["label"])


# -- each rule fails when it should -----------------------------------------------------------


def _doc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_rendered_block_that_differs_from_its_file_fails(tmp_path: Path) -> None:
    rendered = figures.render("demo.total")
    good = _doc(tmp_path, f"About <!-- figures: demo.total -->{rendered}<!-- /figures -->.\n")
    assert figures.doc_problems(good) == []
    stale = _doc(tmp_path, "About <!-- figures: demo.total -->40 seconds<!-- /figures -->.\n")
    assert figures.doc_problems(stale) == [
        f"{stale}:1: the block differs from docs/figures/demo.json "
        "(python -m bench.figures write)"]


def test_a_quoted_figure_must_be_in_a_run_at_the_precision_shown(tmp_path: Path) -> None:
    history = figures.load("history")
    # batch_0002 of the 5M run took 110.06 s; the database after the initial load 12.10 GB
    assert figures.recorded("110.1 s", history) and figures.recorded("110.06 s", history)
    assert figures.recorded("12.10 GB", history)
    assert not figures.recorded("110.2 s", history) and not figures.recorded("111 s", history)
    doc = _doc(tmp_path, "<!-- figures quoted: history -->\nThe feed took 110.1 s, "
                         "then 987.6 s.\n\n| a | 123.45 |\n<!-- /figures -->\n")
    assert figures.doc_problems(doc) == [
        f"{doc}:1: '123.45' is in no run of docs/figures/history.json nor in its quoted figures",
        f"{doc}:1: '987.6 s' is in no run of docs/figures/history.json nor in its quoted figures"]


def test_a_measured_figure_outside_a_block_fails_but_settings_do_not(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "The load took 52.8 s and 71 MB.\n"
                         "Set `--every 30s` or 30s; work_mem 256MB; 5 % of rows.\n"
                         "```sh\nsleep 3 s\n```\n")
    assert figures.doc_problems(doc) == [
        f"{doc}:1: measured figure '52.8 s' outside a figures block",
        f"{doc}:1: measured figure '71 MB' outside a figures block"]


def test_the_figure_pattern_reads_ranges_units_and_table_cells() -> None:
    text = "took 0.9-1.0 s and 9.7 / 10.5 s, 1,048,592 bytes, 5.1x, 13%; batch_0002 2026-12-03\n"
    assert [f for _, f in figures.figures_in(text)] == [
        "0.9-1.0 s", "9.7 / 10.5 s", "1,048,592 bytes", "5.1x", "13%"]
    assert [f for _, f in figures.figures_in("| step | **23.3** | 2.0 s |\n", cells=True)] == [
        "2.0 s", "23.3"]


# -- recording a benchmark's results ----------------------------------------------------------


def test_record_keeps_the_provenance_replaces_a_run_and_drops_hand_quoted_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figures, "FIGURES_DIR", tmp_path / "figures")
    result = tmp_path / "result.json"
    for seconds in (12.5, 11.0):
        result.write_text(json.dumps({"command": "make bench", "machine": "2 cores",
                                      "load_before": "1.0", "load_after": "2.0",
                                      "measured_at": "2026-12-03 14:00 UTC",
                                      "seconds": seconds}))
        figures.record("x", result, "run A", commit="abc1234")
        stored = figures.load("x")
        stored["quoted"] = {"25 us": "derived by hand"}
        figures.save("x", stored)
    figures.record("x", result, "run B", commit="abc1234")
    stored = figures.load("x")
    assert [r["label"] for r in stored["runs"]] == ["run A", "run B"]
    assert stored["runs"][0] == {
        "label": "run A", "command": "make bench", "machine": "2 cores", "commit": "abc1234",
        "measured_at": "2026-12-03 14:00 UTC", "load_average": "1.0 / 2.0",
        "source": str(result), "results": json.loads(result.read_text())}
    assert stored["quoted"] == {}
    result.write_text(json.dumps({"seconds": 1.0, "command": "make bench"}))
    with pytest.raises(figures.FiguresError, match="does not say its load_average: pass --load"):
        figures.record("x", result, "run C")


def test_the_demo_records_what_it_measured(conn, db_url: str) -> None:  # noqa: ANN001
    batch = create_batch(conn, {"customers.csv": [customer(1)],
                                "transactions.csv": [transaction(10), transaction(11)],
                                "transaction_items.csv": [item(100), item(101), item(102)]})
    result = RunResult("succeeded", 0, run_id=1, batches=[batch], touched=[batch], steps=[
        StepResult("validate", batch, 1.5, 1, 6), StepResult("merge", batch, 0.5, 1, 6),
        StepResult("validate", batch, 0.25, 1, 0)], seconds=2.5)
    measured = demo_figures(db_url, result, {"generate_seconds": None, "migrate_seconds": 1.0,
                                             "total_seconds": 4.0}, "python -m runner demo",
                            "0.50 0.40 0.30")
    assert json.loads(json.dumps(measured)) == measured  # what the demo writes as JSON
    assert measured["load_average"].startswith("0.50 0.40 0.30 / ")
    del measured["load_average"], measured["measured_at"]
    assert measured == {"command": "python -m runner demo", "exit_code": 0, "batches": 1,
                        "transaction_rows": 2, "lines": 6, "generate_seconds": None,
                        "migrate_seconds": 1.0, "total_seconds": 4.0, "pipeline_seconds": 2.5,
                        "steps": {"validate": 1.75, "merge": 0.5}}


def test_a_figures_file_its_renderer_cannot_read_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figures, "FIGURES_DIR", tmp_path)
    figures.save("demo", {"name": "demo", "runs": [{"label": "medium", "results": {}}]})
    doc = _doc(tmp_path, "About <!-- figures: demo.total -->56 seconds<!-- /figures -->.\n")
    assert figures.doc_problems(doc) == [
        f"{doc}:1: renderer 'demo.total' cannot read docs/figures/demo.json: "
        "KeyError 'total_seconds'"]
