"""``make superset``: a local Apache Superset on 127.0.0.1 with the bundle imported and the
warehouse connected as the read-only ``warehouse_bi`` login.

    python -m runner.bi.superset.start [--port 8088] [--home runner/bi/superset/.home]

Runs with the runtime's Python (it reads the warehouse's configuration, runner/config.py)
and drives Superset's own virtual environment (runner/bi/superset/.venv, installed by
``make superset`` from runner/bi/superset/requirements.txt) through its command line:

1. the login ``warehouse_bi`` (member of ``warehouse_reader``: the analytics views only) is
   created without a password when it does not exist; an existing one is left as it is
   (``python -m runner logins`` sets its password);
2. Superset's home: its SQLite metadata database and a secret key made once; an ``admin``
   user whose password is made once and kept in ``<home>/admin_password`` (printed);
3. ``superset db upgrade``, ``superset init``, and ``superset import-dashboards`` of the
   bundle (runner/bi/superset/bundle.py), its connection pointing at the warehouse as
   ``warehouse_bi`` without a password: the embedded cluster trusts its Unix socket; a
   server that asks for a password gets it in Superset (Settings > Database connections);
4. the web server (gunicorn) bound to 127.0.0.1 only.

tests/test_superset.py calls ``prepare`` and ``serve_command`` for a throwaway home.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from runner.bi.superset.bundle import DASHBOARD_SLUG, zip_bundle
from runner.config import load_config
from runner.db import connect, database_url

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
SUPERSET = VENV / "bin" / "superset"
GUNICORN = VENV / "bin" / "gunicorn"
DEFAULT_HOME = HERE / ".home"
READER_LOGIN = "warehouse_bi"
READER_GROUP = "warehouse_reader"
ADMIN = "admin"


@dataclass(frozen=True)
class Superset:
    """A prepared Superset home: where it is, its environment, the admin's password."""

    home: Path
    env: dict[str, str]
    admin_password: str

    def run(self, *args: str) -> str:
        """One ``superset`` command; its output, or an error naming the command."""
        done = subprocess.run([str(SUPERSET), *args], env=self.env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"superset {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done.stdout + done.stderr


def superset_uri(warehouse_url: str, login: str = READER_LOGIN) -> str:
    """The warehouse's URL for Superset: psycopg2 driver, the reader login, no password."""
    url = make_url(warehouse_url).set(drivername="postgresql+psycopg2", username=login,
                                      password=None)
    return url.render_as_string(hide_password=False)


def ensure_reader_login(warehouse_url: str) -> str:
    """Create the login ``warehouse_bi`` (no password, member of warehouse_reader) when it
    does not exist; say what was done."""
    with closing(connect(warehouse_url, autocommit=True)) as conn, conn.cursor() as cur:
        cur.execute("select 1 from pg_roles where rolname = %s", (READER_LOGIN,))
        if cur.fetchone():
            return f"login {READER_LOGIN} exists: left as it is"
        cur.execute(f"create role {READER_LOGIN} login nosuperuser nocreatedb nocreaterole "
                    f"noreplication inherit in role {READER_GROUP}")
    return f"login {READER_LOGIN} created (no password), member of {READER_GROUP}"


def _secret(path: Path) -> str:
    """A random secret kept in ``path`` (made on first use, readable by the owner only)."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32), encoding="ascii")
        path.chmod(0o600)
    return path.read_text(encoding="ascii").strip()


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "SUPERSET_HOME": str(home), "FLASK_APP": "superset",
            "SUPERSET_CONFIG_PATH": str(HERE / "superset_config.py"),
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def prepare(home: Path, warehouse_url: str) -> Superset:
    """Steps 1 to 3 of the module's docstring, in ``home``."""
    if not SUPERSET.exists():
        raise FileNotFoundError(
            f"{SUPERSET} not found: install Superset into its own environment with "
            f"`make superset` (python3 -m venv {VENV} && {VENV}/bin/pip install -r "
            f"{HERE / 'requirements.txt'})")
    log.info(ensure_reader_login(warehouse_url))
    home.mkdir(parents=True, exist_ok=True)
    _secret(home / "secret_key")
    superset = Superset(home, environment(home), _secret(home / "admin_password"))
    superset.run("db", "upgrade")
    superset.run("fab", "create-admin", "--username", ADMIN, "--firstname", "Warehouse",
                 "--lastname", "Admin", "--email", "admin@localhost",
                 "--password", superset.admin_password)  # says so when it exists
    superset.run("init")
    bundle = zip_bundle(home / "bundle.zip", superset_uri(warehouse_url))
    superset.run("import-dashboards", "--path", str(bundle), "--username", ADMIN)
    return superset


def serve_command(port: int) -> list[str]:
    """The web server, on 127.0.0.1 only."""
    return [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
            "--timeout", "120", "--limit-request-line", "0", "--limit-request-field_size", "0",
            "superset.app:create_app()"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.bi.superset.start",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8088, help="port on 127.0.0.1 (8088)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help=f"Superset's home folder ({DEFAULT_HOME})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    superset = prepare(args.home.resolve(), database_url(load_config()))
    print(f"Superset: http://127.0.0.1:{args.port}/superset/dashboard/{DASHBOARD_SLUG}/\n"
          f"  user {ADMIN}, password in {superset.home / 'admin_password'}: "
          f"{superset.admin_password}\n  stop with Ctrl-C", flush=True)
    os.execve(str(GUNICORN), serve_command(args.port), superset.env)
    return 0  # not reached: the server replaces this process


if __name__ == "__main__":
    sys.exit(main())
