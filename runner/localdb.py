"""The embedded local PostgreSQL cluster used when ``DATABASE_URL`` is unset.

The cluster lives in one folder (``<project>/.pgdata`` by default): ``data/`` is the data
directory, the Unix socket sits in the folder itself, ``postgres.log`` is the server log.
No TCP port is opened unless asked. PostgreSQL refuses to run as root, so when this process
is root the server binaries (never Python) run as the ``postgres`` system user, or as an
unprivileged ``warehouse`` user created for it. When that user cannot reach the folder (the
project under ``/root``, say) or the socket path would be too long, the cluster goes to a
folder under the system temp directory named after the project, and the log says where.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import psycopg2

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
DEFAULT_DBNAME = "warehouse"
SOCKET_PORT = 5432  # only names the socket file while no TCP port is opened
_MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes; keep a margin

# Settings fit for a warehouse on a small machine; measured in docs/performance.md.
WAREHOUSE_SETTINGS: dict[str, str] = {
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "8GB",
    "max_wal_size": "8GB",
    "min_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "synchronous_commit": "off",
    "wal_compression": "lz4",  # pglz (on) cost 9x more CPU on random updates here
    "max_parallel_workers_per_gather": "2",
    "max_parallel_maintenance_workers": "2",
    "random_page_cost": "1.1",
    "jit": "off",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "unix_socket_permissions": "0700",
}

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH, through "
    "`pg_config --bindir`, or under /usr/lib/postgresql/*/bin. Install them, e.g. "
    "`sudo apt-get install postgresql postgresql-contrib` (Debian/Ubuntu), "
    "`sudo dnf install postgresql-server postgresql-contrib` (Fedora/RHEL) or "
    "`brew install postgresql@15` (macOS), or set DATABASE_URL to an existing server."
)


class LocalDbError(RuntimeError):
    """The embedded cluster could not be created, started or stopped."""


def find_bindir() -> Path:
    """Directory holding initdb and pg_ctl: pg_config's bindir, then the Debian layout."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in versions), key=_major_version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise LocalDbError(INSTALL_HINT)


def _major_version(path: Path) -> int:
    try:
        return int(path.parent.name.split(".")[0])
    except ValueError:
        return 0


@dataclass(frozen=True)
class ServerUser:
    """The OS user that runs the server binaries (None fields: this process's own user)."""

    name: str | None = None
    uid: int | None = None
    gid: int | None = None

    @property
    def is_self(self) -> bool:
        return self.uid is None


def server_user() -> ServerUser:
    """This process's user, or when root an unprivileged one (created when missing)."""
    if os.geteuid() != 0:
        return ServerUser()
    for name in ("postgres", "warehouse"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "warehouse"],
        check=True,
    )
    entry = pwd.getpwnam("warehouse")
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in one folder, managed with initdb and pg_ctl."""

    base: Path
    dbname: str = DEFAULT_DBNAME
    settings: Mapping[str, str] = field(default_factory=lambda: dict(WAREHOUSE_SETTINGS))
    tcp_port: int | None = None
    fast_init: bool = False
    user: ServerUser = field(default_factory=server_user)

    def __post_init__(self) -> None:
        self.base = self._reachable_base(Path(self.base).resolve())

    # -- places ---------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base

    @property
    def logfile(self) -> Path:
        return self.base / "postgres.log"

    @property
    def port(self) -> int:
        """The port the socket is named after: the running server's, else the one to start on."""
        return self.running_port() or self.tcp_port or SOCKET_PORT

    def running_port(self) -> int | None:
        """The running server's port (line 4 of postmaster.pid), None when it is not running."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        if len(lines) < 4 or not lines[3].strip().isdigit() or not self.is_running():
            return None
        return int(lines[3])

    def url(self, dbname: str | None = None) -> str:
        """libpq / SQLAlchemy URL of a database of this cluster, through its Unix socket."""
        return (
            f"postgresql://{SUPERUSER}@/{dbname or self.dbname}"
            f"?host={self.socket_dir}&port={self.port}"
        )

    def _reachable_base(self, wanted: Path) -> Path:
        socket_len = len(str(wanted)) + len(f"/.s.PGSQL.{self.tcp_port or SOCKET_PORT}")
        if socket_len <= _MAX_SOCKET_PATH and self._user_can_reach(wanted):
            return wanted
        digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:10]
        fallback = Path(tempfile.gettempdir()) / f"warehouse-pg-{digest}"
        log.warning(
            "the database folder %s is not reachable by user %s (or its socket path is too "
            "long); the embedded cluster lives in %s instead",
            wanted,
            self.user.name or "self",
            fallback,
        )
        return fallback

    def _user_can_reach(self, path: Path) -> bool:
        if self.user.is_self:
            return True
        existing = path
        while not existing.exists():
            existing = existing.parent
        probe = subprocess.run(
            ["test", "-x", str(existing)], **self._as_server_user(), capture_output=True
        )
        return probe.returncode == 0

    # -- running the binaries --------------------------------------------------------------

    def _as_server_user(self) -> dict:
        if self.user.is_self:
            return {}
        return {"user": self.user.uid, "group": self.user.gid, "extra_groups": [], "cwd": "/"}

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        binary = str(find_bindir() / args[0])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        result = subprocess.run(
            [binary, *args[1:]],
            capture_output=True,
            text=True,
            env=env,
            start_new_session=True,
            **self._as_server_user(),
        )
        if check and result.returncode != 0:
            raise LocalDbError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}"
                f" -- see {self.logfile}"
            )
        return result

    def _prepare_base(self) -> None:
        """The folder, created private (0700) or checked to be: a directory, not a link,
        owned by this process's user or the server's. The fallback folder's name under the
        shared temp directory is predictable; one that another user made first (as a link to
        files root would then chown, say) is refused, never followed."""
        self.base.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(self.base, 0o700)
        except FileExistsError:
            pass
        try:
            fd = os.open(self.base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as error:
            raise LocalDbError(f"{self.base} is not a directory of ours ({error.strerror}: a "
                               "link or a file): refusing to use it; remove it, or set "
                               "WAREHOUSE_PGDATA to another folder") from None
        try:
            info = os.fstat(fd)
            ours = {os.geteuid()} | ({self.user.uid} if not self.user.is_self else set())
            if info.st_uid not in ours:
                raise LocalDbError(
                    f"{self.base} belongs to uid {info.st_uid}, not to this user or the "
                    "server's: refusing to use it (someone else may have created it); remove "
                    "it, or set WAREHOUSE_PGDATA to another folder")
            if not self.user.is_self and info.st_uid != self.user.uid:
                os.fchown(fd, self.user.uid, self.user.gid)
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.initialized:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.datadir), check=False).returncode == 0

    def init(self) -> None:
        """initdb with trust on the Unix socket only (the folder is private to the user)."""
        self._prepare_base()
        args = [
            "initdb", "-D", str(self.datadir), "-U", SUPERUSER, "-E", "UTF8", *locale_options(),
            "--auth-local=trust", "--auth-host=scram-sha-256",
        ]
        if self.fast_init:
            args.append("--no-sync")
        self._run(*args)
        log.info("initialised a PostgreSQL cluster in %s", self.datadir)

    def _write_settings(self) -> None:
        settings = dict(self.settings)
        settings["listen_addresses"] = "'localhost'" if self.tcp_port else "''"
        if settings.get("wal_compression") == "lz4" and not _built_with("--with-lz4"):
            settings["wal_compression"] = "on"
        if _has_extension("pg_stat_statements"):
            settings["shared_preload_libraries"] = "'pg_stat_statements'"
        lines = [f"{key} = {_quote(value)}" for key, value in sorted(settings.items())]
        text = "# written by runner/localdb.py on every start\n" + "\n".join(lines) + "\n"
        with _open_no_link(self.datadir / "warehouse.conf", "w") as conf:
            conf.write(text)
            if not self.user.is_self:
                os.fchown(conf.fileno(), self.user.uid, self.user.gid)
        include = "include_if_exists = 'warehouse.conf'"
        with _open_no_link(self.datadir / "postgresql.conf", "a+") as main:
            main.seek(0)
            if include not in main.read():
                main.write(f"\n{include}\n")

    def start(self) -> None:
        """Start the server (initdb first when needed) and create the database."""
        self._prepare_base()
        with self._lock():
            if not self.initialized:
                self.init()
            running = self.running_port()
            if running and self.tcp_port and running != self.tcp_port:
                raise LocalDbError(
                    f"the embedded cluster in {self.base} is already running on port {running}; "
                    f"stop it first (python -m runner db stop), then start it with --port "
                    f"{self.tcp_port}"
                )
            if not running:
                self._write_settings()
                options = f"-k {self.socket_dir} -p {self.tcp_port or SOCKET_PORT}"
                self._run(
                    "pg_ctl", "start", "-D", str(self.datadir), "-l", str(self.logfile),
                    "-w", "-t", "120", "-o", options,
                )
                log.info("started PostgreSQL in %s", self.base)
            self._create_database()

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        if not self.is_running():
            return False
        self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "120")
        return True

    def ensure_running(self) -> str:
        """Start when needed and return the database's URL."""
        if not self.is_running():
            self.start()
        return self.url()

    def _create_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(self.url("postgres"))
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("select 1 from pg_database where datname = %s", (self.dbname,))
                if cur.fetchone() is None:
                    cur.execute(f'create database "{self.dbname}"')
        finally:
            conn.close()

    def _lock(self) -> _FileLock:
        return _FileLock(self.base / ".start.lock")


class _FileLock:
    """An exclusive flock, so two commands starting the cluster at once do not collide."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None

    def __enter__(self) -> _FileLock:
        self.handle = _open_no_link(self.path, "a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.handle is not None
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


UTF8_CTYPES = ("C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8")


def locale_options() -> list[str]:
    """initdb's locale: C sorting (fast, byte order) with a UTF-8 character type, so that
    upper/lower and character classes know non-ASCII letters; ``--no-locale`` where the
    machine has no UTF-8 locale (the procedures lower-case e-mails with ICU either way)."""
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout
    except OSError:
        listed = ""
    available = {name.strip() for name in listed.splitlines()}
    for ctype in UTF8_CTYPES:
        if ctype in available:
            return ["--locale=C", f"--lc-ctype={ctype}"]
    log.warning("no UTF-8 locale (%s) on this machine: the cluster is initialised with "
                "--no-locale", ", ".join(UTF8_CTYPES))
    return ["--no-locale"]


def _open_no_link(path: Path, mode: str) -> TextIO:
    """``open(path, mode)`` that refuses a symbolic link (the server's user can write in the
    folders where this process, maybe root, writes)."""
    flags = {"w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND}[mode]
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise LocalDbError(f"cannot write {path}: {error.strerror} (a link there is "
                           "refused)") from None
    return os.fdopen(fd, mode)


def _quote(value: str) -> str:
    if value.startswith("'") or value.replace(".", "").isdigit():
        return value
    return f"'{value}'"


def _built_with(option: str) -> bool:
    """True when the server binaries were configured with ``option`` (e.g. --with-lz4)."""
    try:
        configure = subprocess.run(
            [str(find_bindir() / "pg_config"), "--configure"], capture_output=True, text=True
        ).stdout
    except (OSError, LocalDbError):
        return False
    return option in configure


def _has_extension(name: str) -> bool:
    try:
        sharedir = subprocess.run(
            [str(find_bindir() / "pg_config"), "--sharedir"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, LocalDbError):
        return False
    return (Path(sharedir) / "extension" / f"{name}.control").exists()
