"""Repeatable routines: procedures/**/*.sql re-applied by checksum after the revisions.

Each file is an idempotent script (CREATE OR REPLACE; views dropped and recreated). On every
``alembic upgrade`` that ends at head, the files are compared by SHA-256 with
``etl.routine_checksum``. The first changed (or new) file in path order and every file after
it are applied, because later files may depend on earlier ones (a view dropped with CASCADE
must be recreated). Nothing changed: nothing is applied. Checksums of deleted files are
forgotten. All of it runs in the migration's own transaction.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection

from runner.config import PROJECT_ROOT

log = logging.getLogger(__name__)

PROCEDURES_DIR = PROJECT_ROOT / "procedures"
MIGRATION_LOCK_KEY = 720_300_001  # pg_advisory_xact_lock key held by every upgrade


@dataclass(frozen=True)
class RoutineFile:
    path: str  # relative to procedures/, POSIX separators: the key in etl.routine_checksum
    sha256: str
    text: str


def routine_files(root: Path = PROCEDURES_DIR) -> list[RoutineFile]:
    """Every .sql file under ``root``, in path order, with its checksum."""
    files = []
    for path in sorted(root.rglob("*.sql"), key=lambda p: p.relative_to(root).as_posix()):
        data = path.read_bytes()
        files.append(
            RoutineFile(path.relative_to(root).as_posix(), hashlib.sha256(data).hexdigest(),
                        data.decode("utf-8"))
        )
    return files


def files_to_apply(files: list[RoutineFile], recorded: dict[str, str]) -> list[RoutineFile]:
    """The first changed file and every file after it; nothing when none changed."""
    for index, routine in enumerate(files):
        if recorded.get(routine.path) != routine.sha256:
            return files[index:]
    return []


def apply_routines(connection: Connection, root: Path = PROCEDURES_DIR) -> list[str]:
    """Apply what changed and record the checksums; returns the applied paths."""
    files = routine_files(root)
    recorded = dict(
        connection.exec_driver_sql("select path, sha256 from etl.routine_checksum").fetchall()
    )
    applied = []
    for routine in files_to_apply(files, recorded):
        log.info("applying procedures/%s", routine.path)
        try:
            with connection.connection.cursor() as cursor:  # raw: '%' in SQL stays literal
                cursor.execute(routine.text)
        except Exception as exc:
            raise RuntimeError(f"procedures/{routine.path} failed to apply: {exc}") from exc
        connection.exec_driver_sql(
            "insert into etl.routine_checksum (path, sha256, applied_at)"
            " values (%(path)s, %(sha)s, now())"
            " on conflict (path) do update"
            " set sha256 = excluded.sha256, applied_at = excluded.applied_at",
            {"path": routine.path, "sha": routine.sha256},
        )
        applied.append(routine.path)
    current = [routine.path for routine in files]
    connection.exec_driver_sql(
        "delete from etl.routine_checksum where not (path = any(%(paths)s))", {"paths": current}
    )
    if applied:
        log.info("applied %d routine file(s)", len(applied))
    return applied


# Downgrades drop tables with CASCADE, which drops routine objects (views) built on them;
# forgetting every checksum makes the next upgrade re-apply all of procedures/.
FORGET_ROUTINES_SQL = """
do $$ begin
  if to_regclass('etl.routine_checksum') is not null then
    delete from etl.routine_checksum;
  end if;
end $$
"""
