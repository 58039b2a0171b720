"""Every shell command and SQL example of README.md and docs/*.md runs, as the doc says.

The convention is in docs/contributing.md ("Examples in the docs are tests"); the parser and
the markers' options are in tests/docblocks.py. Each runnable block (```sh, ```sql) is one
test named after its file and line. They run against one small dataset, generated and
taken through the real pipeline once per session (six dirty batches, like the demo's,
at a fraction of its size); each doc file gets its own copy of that database, and its blocks
run in the order of the file, as a reader following it would run them:

- SQL with psql (``ON_ERROR_STOP``), as the database owner or ``SET ROLE`` to the role the
  marker names; every query must return a row unless the marker says ``empty ok``;
- shell commands one by one with bash, from a scratch directory that links to the project,
  with ``python`` and ``alembic`` of this virtualenv and ``psql`` on the PATH,
  ``DATABASE_URL`` set to the file's database and ``WAREHOUSE_LANDING`` to the dataset;
  each must exit 0 (or what ``exit N`` says);
- a ``text`` block marked ``output`` after a block is the output it must print.

Roles a file's blocks create are dropped after its last block, so the next file starts as
a fresh cluster would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
import yaml

from runner.config import PROJECT_ROOT
from runner.localdb import WAREHOUSE_SETTINGS, find_bindir
from tests.conftest import url_for
from tests.docblocks import Block, MarkerError, output_matches, parse, shell_commands

DOC_FILES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
# The docs dataset: the demo's shape (six batches, 1 % defects), a fiftieth of its size.
GENERATOR_ARGS = ["--customers", "400", "--products", "80", "--transactions", "4000",
                  "--batches", "6", "--dirty", "0.01", "--quiet"]
PROJECT_LINKS = ("alembic", "alembic.ini", "procedures", "runner", "generator", "bench",
                 "requirements.txt", "Makefile", "docker-compose.yml", "Dockerfile")
TIMEOUT = 300


def _collect() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    errors: list[str] = []
    for path in DOC_FILES:
        try:
            blocks += parse(path)
        except MarkerError as error:
            errors.append(str(error))
    return blocks, errors


BLOCKS, MARKER_ERRORS = _collect()
RUNNABLE = [b for b in BLOCKS if b.kind]


def test_doc_markers_follow_the_convention() -> None:
    assert MARKER_ERRORS == []


def test_every_code_block_names_its_language() -> None:
    unnamed = [b.where(PROJECT_ROOT) for b in BLOCKS if not b.lang]
    assert unnamed == [], f"fenced blocks without a language (```text for plain text): {unnamed}"


def test_the_docs_have_runnable_examples_and_most_run() -> None:
    skipped = [b for b in RUNNABLE if b.options.skip]
    assert len(RUNNABLE) >= 40 and len(skipped) < len(RUNNABLE) / 3


# -- the site: one dataset, one pipeline run, one database per doc file ------------------------


@dataclass
class DocsSite:
    base: Path
    workdir: Path
    landing: Path
    admin: psycopg2.extensions.connection
    base_roles: set[str]
    databases: dict[Path, str] = field(default_factory=dict)
    current: Path | None = None

    def roles(self) -> set[str]:
        with self.admin.cursor() as cur:
            cur.execute("select rolname from pg_roles")
            return {r for (r,) in cur.fetchall()}

    def database_for(self, path: Path) -> str:
        """The doc file's own copy of the loaded database; the previous file's is dropped."""
        if self.current != path:
            self.finish_file()
            name = f"docs_{uuid.uuid4().hex[:8]}"
            with self.admin.cursor() as cur:
                cur.execute(f'create database "{name}" template docs_base')
            self.databases[path] = name
            self.current = path
        return url_for(self.databases[path])

    def finish_file(self) -> None:
        if self.current is None:
            return
        name = self.databases.pop(self.current)
        with self.admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
            for role in sorted(self.roles() - self.base_roles):
                cur.execute(f'drop role "{role}"')
        self.current = None

    def env(self, url: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "PG"))}
        env.pop("DATABASE_URL", None)
        if url:
            env["DATABASE_URL"] = url
        env["WAREHOUSE_LANDING"] = str(self.landing)
        env["WAREHOUSE_PGDATA"] = str(self.base / "pgdata")
        env["PATH"] = os.pathsep.join(
            [str(Path(sys.executable).parent), str(find_bindir()), env.get("PATH", "")]
        )
        return env


def _run_pipeline(env: dict[str, str], landing: Path, workdir: Path) -> None:
    for args in (["-m", "generator", *GENERATOR_ARGS, "--out", str(landing)],
                 ["-m", "runner", "run", str(landing)]):
        done = subprocess.run([sys.executable, *args], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def docs_site(warehouse_server, tmp_path_factory) -> Iterator[DocsSite]:  # noqa: ANN001
    base = tmp_path_factory.mktemp("docs")
    os.chmod(base, 0o755)
    workdir = base / "project"
    workdir.mkdir()
    for name in PROJECT_LINKS:
        (workdir / name).symlink_to(PROJECT_ROOT / name)
    admin = psycopg2.connect(url_for("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("drop database if exists docs_base")
        cur.execute(f'create database docs_base template "{warehouse_server.template_dbname}"')
    site = DocsSite(base, workdir, base / "landing", admin, set())
    site.base_roles = site.roles()
    _run_pipeline(site.env(url_for("docs_base")), site.landing, workdir)
    yield site
    site.finish_file()
    with admin.cursor() as cur:
        cur.execute("drop database if exists docs_base with (force)")
    admin.close()


# -- running one block ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _substituted(block: Block, landing: Path | None = None) -> str:
    """The block's text with its free ports and landing directory put in."""
    text = block.text
    for port in block.options.free_ports:
        text = re.sub(rf"\b{port}\b", str(_free_port()), text)
    if block.options.landing and landing is not None:
        text = text.replace(block.options.landing, str(landing))
    return text


def _run_sql(block: Block, url: str) -> str:
    sql = _substituted(block)
    if block.options.role:
        sql = f"set role {block.options.role};\n{sql}"
    done = subprocess.run(
        [str(find_bindir() / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-d", url],
        input=sql, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=TIMEOUT,
    )
    output = re.sub(r"^psql:<stdin>:\d+: ", "", done.stdout, flags=re.MULTILINE)
    if block.options.role:
        output = output.removeprefix("SET\n")
    assert done.returncode == 0, f"psql exited {done.returncode}:\n{output}"
    if not block.options.empty_ok:
        assert "(0 rows)" not in output, (
            f"a query returned no rows (mark the block `empty ok` if that is the point):\n{output}"
        )
    return output


def _run_shell(block: Block, site: DocsSite, url: str) -> str:
    text = _substituted(block, site.landing)
    env = site.env(None if block.options.embedded else url)
    if block.options.embedded:
        env["WAREHOUSE_PGDATA"] = str(site.base / f"pgdata_{block.line}")
    try:
        return _run_commands(block, text, env, site.workdir)
    finally:
        if block.options.embedded:
            subprocess.run([sys.executable, "-m", "runner", "db", "stop"], cwd=site.workdir,
                           env=env, capture_output=True, timeout=TIMEOUT)


def _run_commands(block: Block, text: str, env: dict[str, str], workdir: Path) -> str:
    exports: list[str] = []
    outputs: list[str] = []
    for offset, command in shell_commands(text):
        script = "\n".join(["set -o pipefail", *exports, command])
        done = subprocess.run(["bash", "-c", script], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        if command.startswith("export "):
            exports.append(command)
        assert done.returncode == block.options.exit_code, (
            f"line {block.line + 1 + offset}: `{command}` exited {done.returncode} "
            f"(expected {block.options.exit_code}):\n{done.stdout}\n{done.stderr}"
        )
        outputs.append(done.stdout)
    return "".join(outputs)


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.where(PROJECT_ROOT))
def test_doc_example_runs(block: Block, docs_site: DocsSite) -> None:
    where = block.where(PROJECT_ROOT)
    if block.options.skip:
        pytest.skip(f"{where}: not run: {block.options.skip}")
    url = docs_site.database_for(block.path)
    try:
        if block.kind == "sql":
            output = _run_sql(block, url)
        else:
            output = _run_shell(block, docs_site, url)
    except AssertionError as failure:
        raise AssertionError(f"{where}: the {block.kind} example fails: {failure}") from None
    if block.output is not None:
        expected = block.output
        assert output_matches(expected.text, output, expected.options.numbers_vary), (
            f"{where}: the output differs from the one shown at line {expected.line}:\n"
            f"--- shown\n{expected.text}--- printed\n{output}"
        )


def test_shell_lines_are_split_as_a_reader_would_type_them() -> None:
    text = "# comment\nexport A=1\npython -m x \\\n    --flag   # note\n\nls\n"
    assert shell_commands(text) == [(1, "export A=1"), (2, "python -m x --flag   # note"),
                                    (5, "ls")]


def test_psql_is_found_where_the_server_binaries_are() -> None:
    assert (find_bindir() / "psql").exists() or shutil.which("psql")


# -- figures the docs quote, checked against what they describe ---------------------------------


def _quoted(path: str, pattern: str) -> tuple[int, ...]:
    text = " ".join((PROJECT_ROOT / path).read_text(encoding="utf-8").split())
    found = re.search(pattern, text)
    assert found, f"{path} no longer says {pattern!r}: update this test with the doc"
    return tuple(int(g) for g in found.groups())


def _rejected_percent(landing: Path) -> dict[str, float]:
    """Rows rejected at their batch's processing, in % per file and in all, from the manifests."""
    rows: dict[str, int] = {}
    rejected: dict[str, int] = {}
    for manifest in sorted(landing.glob("*/manifest.json")):
        for name, counts in json.loads(manifest.read_text())["files"].items():
            for key, total in (("all", rows), (name, rows)):
                total[key] = total.get(key, 0) + counts["rows"]
            for key in ("all", name):
                rejected[key] = rejected.get(key, 0) + counts["rejected"]
    return {key: 100 * rejected[key] / rows[key] for key in rows}


def test_rejected_shares_quoted_in_the_docs_hold_for_data_of_the_demos_shape(docs_site) -> None:  # noqa: ANN001
    share = _rejected_percent(docs_site.landing)
    (readme,) = _quoted("README.md", r"about (\d+) % of the rows are rejected")
    assert abs(readme - share["all"]) <= 2, share
    (rows,) = _quoted("docs/generator.md", r"about (\d+) % of customer and transaction rows")
    assert abs(rows - share["customers.csv"]) <= 3 and abs(rows - share["transactions.csv"]) <= 3
    low, high = _quoted("docs/generator.md", r"about (\d+)-(\d+) % of items")
    assert low - 1 <= share["transaction_items.csv"] <= high + 1, share


def test_compose_settings_differ_from_the_embedded_ones_only_where_performance_md_says() -> None:
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    command = services["postgres"]["command"]
    compose = dict(arg.split("=", 1) for flag, arg in zip(command, command[1:], strict=False)
                   if flag == "-c")
    differ = {key for key in compose.keys() | WAREHOUSE_SETTINGS.keys()
              if compose.get(key) != WAREHOUSE_SETTINGS.get(key)}
    text = (PROJECT_ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    table = text.split("except these", 1)[1].split("\n\n", 2)[1]
    documented = {name for row in table.splitlines()[2:]
                  for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert differ == documented


# -- links between the docs -------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    headings = {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}
    return headings | set(re.findall(r"<a (?:id|name)=\"([^\"]+)\"", text))


def test_every_link_between_the_docs_reaches_a_file_and_heading() -> None:
    broken = []
    for doc in DOC_FILES:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue
                name, _, anchor = target.partition("#")
                path = (doc.parent / name).resolve() if name else doc
                if not path.exists() or (anchor and path.suffix == ".md"
                                         and anchor not in _anchors(path)):
                    broken.append(f"{doc.relative_to(PROJECT_ROOT)}:{number}: {target}")
    assert broken == []


# -- the layout the docs describe is the tree -------------------------------------------------


def _table_paths(path: Path, heading: str) -> set[str]:
    """The paths in code spans of the first column of the table under ``heading``."""
    section = path.read_text(encoding="utf-8").split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    return {name for row in section.splitlines() if row.startswith("| `")
            for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def _entries(folder: Path) -> set[str]:
    """The names directly in folder that hold a file of the project: tracked, or new and
    not ignored by .gitignore (git decides, so a folder left holding only ignored files,
    such as __pycache__ after a move, is not an entry)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
        cwd=folder, capture_output=True, check=True).stdout.decode("utf-8").split("\0")
    return {Path(path).parts[0] for path in listed if path and (folder / path).exists()}


def test_the_readme_layout_names_every_top_level_entry() -> None:
    listed = {name.rstrip("/") for name in _table_paths(PROJECT_ROOT / "README.md", "## Layout")}
    top = _entries(PROJECT_ROOT) - {".gitignore", ".ci"} | {".ci/run"}
    assert top - listed == set() and listed - top == set()


def test_the_module_map_names_every_module() -> None:
    """docs/architecture.md, "Where the code lives": every runner module and folder, every
    procedures/ layer and runner/bi/ folder, bench/ and generator/."""
    listed = _table_paths(PROJECT_ROOT / "docs" / "architecture.md", "## Where the code lives")
    wanted = {f"runner/{name}" for name in _entries(PROJECT_ROOT / "runner")
              if name.endswith(".py") and name not in ("__init__.py", "__main__.py")}
    for folder in ("runner", "procedures", "runner/bi"):
        wanted |= {f"{folder}/{name}/" for name in _entries(PROJECT_ROOT / folder)
                   if (PROJECT_ROOT / folder / name).is_dir()}
    wanted |= {"bench/", "generator/"}
    assert wanted - listed == set()
