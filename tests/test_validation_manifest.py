"""The quarantine equals the generator's predictions, record by record.

Three dirty batches from the generator (``python -m generator --batches 3 --dirty 0.03
--seed 5``) go through ingestion (runner/ingest.py) and then, batch after batch, through
validation, the merge and orphan reprocessing. Each batch's manifest.json lists per file the
rows, accepted and rejected, and every rejected record with its line, raw key and rules,
and, for an orphan whose parents arrive later, the batch after which it is accepted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg2.extensions

from runner.config import PROJECT_ROOT
from runner.ingest import ingest_batch
from tests.staging_data import fetch, run_batch

GENERATOR_ARGS = ["--batches", "3", "--dirty", "0.03", "--seed", "5", "--quiet"]


def generate(out: Path) -> list[Path]:
    subprocess.run([sys.executable, "-m", "generator", "--out", str(out), *GENERATOR_ARGS],
                   check=True, cwd=PROJECT_ROOT)
    return sorted(path for path in out.iterdir() if path.is_dir())


def quarantine(conn: psycopg2.extensions.connection, batch_id: int
               ) -> dict[tuple[str, int], tuple[str, list[str]]]:
    """Every reject of a batch (resolved or not): (file, line) -> (raw key, sorted rules)."""
    return {
        (file_name, line): (key or "", sorted(rules))
        for file_name, line, key, rules in fetch(
            conn, "select file_name, line_no, record_key, rules from etl.rejected_row "
                  "where batch_id = %s", (batch_id,))
    }


def predicted(manifest: dict) -> dict[tuple[str, int], tuple[str, list[str]]]:
    return {(d["file"], d["line"]): (d["key"] or "", sorted(d["rules"]))
            for d in manifest["defects"]}


def test_quarantine_matches_the_generator_manifests_rule_by_rule(
        conn: psycopg2.extensions.connection, db_url: str, tmp_path: Path) -> None:
    batches = {}
    for batch_dir in generate(tmp_path / "landing"):
        result = ingest_batch(db_url, batch_dir)
        assert result.status == "loaded", result.summary()
        run_batch(conn, result.batch_id)
        manifest = json.loads((batch_dir / "manifest.json").read_text(encoding="utf-8"))
        batches[batch_dir.name] = (result.batch_id, manifest)

        counts = {
            file_name: {"rows": rows, "accepted": accepted, "rejected": rows - accepted}
            for file_name, rows, accepted in fetch(
                conn, "select file_name, rows_in_file, rows_accepted from etl.batch_file "
                      "where batch_id = %s", (result.batch_id,))
        }
        assert counts == manifest["files"], batch_dir.name
        actual, expected = quarantine(conn, result.batch_id), predicted(manifest)
        differences = sorted(
            (place, actual.get(place), expected.get(place))
            for place in actual.keys() | expected.keys()
            if actual.get(place) != expected.get(place)
        )
        assert differences == [], f"{batch_dir.name}: {differences[:20]}"

    names = {batch_id: name for name, (batch_id, _) in batches.items()}
    for name, (batch_id, manifest) in batches.items():
        resolved = {
            (file_name, line): names.get(resolved_by)
            for file_name, line, resolved_by in fetch(
                conn, "select file_name, line_no, resolved_batch_id from etl.rejected_row "
                      "where batch_id = %s and resolution = 'merged'", (batch_id,))
        }
        assert resolved == {(d["file"], d["line"]): d["resolved_by"]
                            for d in manifest["defects"] if "resolved_by" in d}, name
    assert all(balanced for (balanced,) in fetch(
        conn, "select balanced from etl.v_batch_reconciliation"))
