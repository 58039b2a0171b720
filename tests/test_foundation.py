"""Foundation: migrations, repeatable routines, roles, the embedded cluster, deployment files."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
import yaml
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from runner import localdb, migrate
from runner.cli import command_names
from runner.config import PROJECT_ROOT, load_config, parse_duration
from runner.db import libpq_url, sqlalchemy_url
from runner.logins import LOGINS
from runner.routines import PROCEDURES_DIR, apply_routines, files_to_apply, routine_files

CONTRACT_TABLES = {
    "staging": {"customers", "products", "transactions", "transaction_items"},
    "etl": {
        "batch", "batch_file", "batch_refusal", "rejected_row", "dq_result", "pipeline_run",
        "step_run", "watermark", "routine_checksum", "batch_step",
    },
    "production": {
        "customers", "categories", "products", "payment_methods", "transaction_statuses",
        "transactions", "transaction_items",
    },
    "warehouse": {
        "dim_date", "dim_customer", "dim_product", "dim_payment_method", "fact_sales",
        "agg_daily_sales", "agg_product_monthly", "agg_payment_method_monthly",
        "agg_customer_monthly",
    },
}
CONTROL_VIEWS = {"v_batch_reconciliation", "v_reject_summary", "v_freshness"}


def fetch(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(url) as connection, connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
    connection.close()
    return rows


def head_revision() -> str:
    script = ScriptDirectory.from_config(migrate.alembic_config("postgresql://unused"))
    (head,) = script.get_heads()
    return head


def tables_by_schema(url: str) -> dict[str, set[str]]:
    rows = fetch(
        url,
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('staging', 'etl', 'production', 'warehouse', 'analytics') "
        "and table_type = 'BASE TABLE'",
    )
    result: dict[str, set[str]] = {}
    for schema, table in rows:
        result.setdefault(schema, set()).add(table)
    return result


def test_upgrade_head_creates_every_contract_table_and_view(db_url: str) -> None:
    tables = tables_by_schema(db_url)
    for schema, expected in CONTRACT_TABLES.items():
        assert expected <= tables.get(schema, set()), schema
    views = {r[0] for r in fetch(db_url, "select viewname from pg_views where schemaname='etl'")}
    assert CONTROL_VIEWS <= views
    assert fetch(db_url, "select version_num from alembic_version") == [(head_revision(),)]


def test_second_upgrade_changes_nothing(db_url: str) -> None:
    before = fetch(db_url, "select path, sha256, applied_at from etl.routine_checksum order by 1")
    version = fetch(db_url, "select version_num from alembic_version")
    migrate.upgrade(db_url)
    assert fetch(db_url, "select path, sha256, applied_at from etl.routine_checksum order by 1") \
        == before
    assert fetch(db_url, "select version_num from alembic_version") == version


def test_checksum_table_matches_the_files(db_url: str) -> None:
    recorded = dict(fetch(db_url, "select path, sha256 from etl.routine_checksum"))
    on_disk = {
        path.relative_to(PROCEDURES_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in PROCEDURES_DIR.rglob("*.sql")
    }
    assert recorded == on_disk
    assert len(on_disk) >= 2


def test_downgrade_to_base_then_upgrade_to_head(db_url: str) -> None:
    migrate.downgrade(db_url, "base")
    schemas = fetch(
        db_url,
        "select nspname from pg_namespace where nspname in "
        "('staging','etl','production','warehouse','analytics')",
    )
    assert schemas == []
    assert fetch(db_url, "select count(*) from alembic_version") == [(0,)]
    migrate.upgrade(db_url)
    tables = tables_by_schema(db_url)
    for schema, expected in CONTRACT_TABLES.items():
        assert expected <= tables[schema]
    assert fetch(db_url, "select count(*) from etl.routine_checksum") == [
        (len(routine_files()),)
    ]


def order_table_indexes(url: str) -> list[tuple[str, str]]:
    return fetch(url, "select indrelid::regclass::text, indexrelid::regclass::text "
                      "from pg_index where indrelid in ('production.transactions'::regclass, "
                      "'production.transaction_items'::regclass) order by 1, 2")


def test_orders_and_lines_keep_the_indexes_the_pipeline_reads_and_their_foreign_keys(
        db_url: str) -> None:
    """Revision 0024 drops the customer index of transactions and the product index of
    items (nothing reads them; every batch wrote them); the foreign keys still hold, checked
    by a scan; the downgrade builds the two indexes again."""
    kept = [("production.transaction_items", "production.transaction_items_pkey"),
            ("production.transaction_items", "production.transaction_items_source_batch_idx"),
            ("production.transaction_items", "production.transaction_items_transaction_idx"),
            ("production.transactions", "production.transactions_pkey"),
            ("production.transactions", "production.transactions_ts_idx")]
    assert order_table_indexes(db_url) == kept
    with psycopg2.connect(db_url) as connection, connection.cursor() as cur:
        cur.execute("insert into etl.batch (batch_name, source_path) values ('b', '/x') "
                    "returning batch_id")
        (batch,) = cur.fetchone()
        cur.execute("""
            insert into production.categories (category_name) values ('Lamps');
            insert into production.customers (customer_id, first_name, last_name, email,
                country, signup_date, source_batch_id, delivered_batch_id)
            values (1, 'A', 'B', 'a@example.com', 'NO', '2025-01-01', %(b)s, %(b)s);
            insert into production.products (product_id, product_name, category_id,
                unit_price, cost, source_batch_id, delivered_batch_id)
            select p, 'Lamp ' || p, category_id, 10, 4, %(b)s, %(b)s
            from production.categories, generate_series(1, 2) p;
            insert into production.transactions (transaction_id, customer_id, transaction_ts,
                payment_method_code, status_code, source_batch_id, delivered_batch_id)
            values (10, 1, '2025-02-01 10:00+00', 'paypal', 'completed', %(b)s, %(b)s);
            insert into production.transaction_items (item_id, transaction_id, product_id,
                quantity, unit_price, discount, source_batch_id, delivered_batch_id)
            values (100, 10, 1, 1, 10, 0, %(b)s, %(b)s);
            delete from production.products where product_id = 2""", {"b": batch})
        for statement in ("delete from production.products where product_id = 1",
                          "delete from production.customers where customer_id = 1"):
            cur.execute("savepoint attempt")
            with pytest.raises(psycopg2.errors.ForeignKeyViolation):
                cur.execute(statement)
            cur.execute("rollback to savepoint attempt")
        cur.execute("select product_id from production.products")
        assert cur.fetchall() == [(1,)]
    connection.close()
    migrate.downgrade(db_url, "0023")
    assert order_table_indexes(db_url) == sorted(
        [*kept, ("production.transaction_items", "production.transaction_items_product_idx"),
         ("production.transactions", "production.transactions_customer_idx")])
    migrate.upgrade(db_url)
    assert order_table_indexes(db_url) == kept


def test_upgrade_with_the_routines_in_place_widens_the_sums(db_url: str) -> None:
    """The hardening revision changes column types that views and SQL functions of
    procedures/ read: it drops them and the same upgrade recreates them."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config(db_url))
    (hardening,) = [r for r in scripts.walk_revisions() if "hardening" in r.module.__name__]
    migrate.downgrade(db_url, hardening.down_revision)
    engine = create_engine(sqlalchemy_url(db_url), poolclass=NullPool)
    with engine.begin() as connection:  # a deployment before the hardening has its routines
        for routine in routine_files():  # in place: every file that applies at that revision
            attempt = connection.begin_nested()  # (not those of objects added after it)
            try:
                with connection.connection.cursor() as cursor:
                    cursor.execute(routine.text)
                attempt.commit()
            except psycopg2.Error:
                attempt.rollback()
    engine.dispose()
    assert fetch(db_url, "select count(*) from pg_proc "
                         "where proname = 'record_fact_change'") == [(1,)]
    assert fetch(db_url, "select count(*) from pg_views where viewname in "
                         "('v_monthly_sales', 'v_daily_sales')") == [(2,)]
    migrate.upgrade(db_url)
    assert fetch(db_url, "select format_type(atttypid, atttypmod) from pg_attribute "
                         "where attrelid = 'warehouse.agg_daily_sales'::regclass "
                         "and attname = 'revenue'") == [("numeric",)]
    assert fetch(db_url, "select count(*) from pg_views where viewname = 'v_monthly_sales'"
                 ) == [(1,)]
    assert fetch(db_url, "select count(*) from etl.routine_checksum") == [
        (len(routine_files()),)]


def test_edited_routine_file_is_reapplied_on_next_upgrade(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "procedures"
    shutil.copytree(PROCEDURES_DIR, root)
    target = root / "30_warehouse" / "ensure_dim_date.sql"
    text = target.read_text()
    marker = "'Adds the missing calendar days between two dates to dim_date; returns how many'"
    assert marker in text
    target.write_text(text.replace(marker, "'edited by the test'"))

    engine = create_engine(sqlalchemy_url(db_url), poolclass=NullPool)
    with engine.begin() as connection:
        applied = apply_routines(connection, root)
    with engine.begin() as connection:
        again = apply_routines(connection, root)
    engine.dispose()

    later = [f.path for f in routine_files(root) if f.path >= "30_warehouse/ensure_dim_date.sql"]
    assert applied == later
    assert again == []
    comment = fetch(
        db_url,
        "select obj_description('warehouse.ensure_dim_date(date,date)'::regprocedure)",
    )
    assert comment == [("edited by the test",)]
    recorded = dict(fetch(db_url, "select path, sha256 from etl.routine_checksum"))
    assert recorded["30_warehouse/ensure_dim_date.sql"] == hashlib.sha256(
        target.read_bytes()
    ).hexdigest()


def test_files_to_apply_takes_first_changed_and_all_after() -> None:
    files = routine_files()
    recorded = {f.path: f.sha256 for f in files}
    assert files_to_apply(files, recorded) == []
    recorded[files[0].path] = "0" * 64
    assert files_to_apply(files, recorded) == files


def test_warehouse_reader_reads_analytics_but_not_production_or_staging(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("create view analytics.v_probe as select 42 as answer")
        cur.execute("set role warehouse_reader")
        cur.execute("select answer from analytics.v_probe")
        assert cur.fetchall() == [(42,)]
        for table in ("production.customers", "staging.customers", "warehouse.fact_sales",
                      "etl.batch"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"select 1 from {table}")
        cur.execute("reset role")


def test_warehouse_etl_role_can_write_pipeline_tables(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("set role warehouse_etl")
        cur.execute(
            "insert into etl.batch (batch_name, source_path) values ('b', '/x') returning batch_id"
        )
        assert cur.fetchone()[0] == 1
        cur.execute("select warehouse.ensure_dim_date('2031-01-01', '2031-01-03')")
        assert cur.fetchone() == (3,)
        cur.execute("reset role")


@pytest.mark.parametrize("table, statement", [
    ("etl.routine_checksum", "update etl.routine_checksum set sha256 = repeat('0', 64)"),
    ("etl.routine_checksum", "delete from etl.routine_checksum"),
    ("etl.routine_checksum",
     "insert into etl.routine_checksum (path, sha256) values ('x.sql', repeat('0', 64))"),
    ("etl.routine_checksum", "truncate etl.routine_checksum"),
    ("etl.pipeline_step",
     "update etl.pipeline_step set procedure = 'etl.discard_batch' where step = 'validate'"),
    ("etl.pipeline_step", "delete from etl.pipeline_step"),
    ("etl.retry_policy", "update etl.retry_policy set attempts = 1000"),
    ("etl.transient_sqlstate", "truncate etl.transient_sqlstate"),
])
def test_only_the_migration_owner_writes_the_migration_bookkeeping(conn, table, statement
                                                                   ) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(f"select md5(string_agg(t::text, ',' order by t::text)) from {table} t")
        (before,) = cur.fetchone()
        cur.execute("set role warehouse_etl")
        try:
            cur.execute(f"select count(*) from {table}")  # reading stays allowed
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
        finally:
            cur.execute("reset role")
        cur.execute(f"select md5(string_agg(t::text, ',' order by t::text)) from {table} t")
        assert cur.fetchone() == (before,)


def test_dim_date_filler_has_no_fixed_range(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("select warehouse.ensure_dim_date('2031-12-30', '2032-01-03')")
        assert cur.fetchone() == (5,)
        cur.execute("select warehouse.ensure_dim_date('2031-12-30', '2032-01-03')")
        assert cur.fetchone() == (0,)
        cur.execute(
            "select date_key, day_of_week, iso_week, iso_year, quarter, is_weekend, month_start "
            "from warehouse.dim_date where full_date = '2032-01-03'"
        )
        assert cur.fetchone() == (20320103, 6, 1, 2032, 1, True, date(2032, 1, 1))


def test_alembic_cli_uses_database_url(empty_db_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_db_url}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert fetch(empty_db_url, "select version_num from alembic_version") == [(head_revision(),)]
    assert fetch(empty_db_url, "select count(*) from etl.routine_checksum")[0][0] == len(
        routine_files()
    )


def test_runner_migrate_and_db_url_use_database_url(empty_db_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_db_url}
    url = subprocess.run(
        [sys.executable, "-m", "runner", "db", "url"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert url == libpq_url(empty_db_url)
    migrated = subprocess.run(
        [sys.executable, "-m", "runner", "migrate"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert fetch(empty_db_url, "select count(*) from production.payment_methods") == [(6,)]


def test_url_forms_are_normalised() -> None:
    assert libpq_url("postgres://u@h/db") == "postgresql://u@h/db"
    assert libpq_url("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"


def test_config_reads_environment_in_one_place() -> None:
    config = load_config({"DATABASE_URL": "postgresql://x@y/z", "WAREHOUSE_MAX_AGE": "90m"})
    assert config.database_url == "postgresql://x@y/z"
    assert not config.embedded
    assert config.max_age.total_seconds() == 5400
    assert load_config({}).embedded
    assert parse_duration("15m").total_seconds() == 900
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_missing_server_binaries_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localdb.shutil, "which", lambda name: None)
    monkeypatch.setattr(localdb.glob, "glob", lambda pattern: [])
    with pytest.raises(localdb.LocalDbError, match="apt-get install postgresql"):
        localdb.find_bindir()


def test_embedded_cluster_runs_as_unprivileged_user(pg_cluster) -> None:  # noqa: ANN001
    owner = fetch(pg_cluster.url("postgres"), "select current_setting('data_directory')")
    assert owner[0][0] == str(pg_cluster.datadir)
    listen = fetch(pg_cluster.url("postgres"), "show listen_addresses")
    assert listen == [("",)]
    if os.geteuid() == 0:
        assert pg_cluster.user.name in ("postgres", "warehouse")
        assert pg_cluster.datadir.stat().st_uid == pg_cluster.user.uid


def fallback_cluster(tmp_path: Path) -> localdb.LocalCluster:
    """A cluster whose wanted folder makes too long a socket path: it falls back to the
    shared temp directory, under a name anyone can predict."""
    cluster = localdb.LocalCluster(tmp_path / ("x" * 110))
    assert cluster.base.parent == Path(tempfile.gettempdir())
    return cluster


def test_a_fallback_folder_made_by_someone_else_as_a_link_is_refused_not_followed(
        tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    (victim / "file").write_text("mine")
    before = [(p.stat().st_uid, p.stat().st_mode) for p in (victim, victim / "file")]
    cluster = fallback_cluster(tmp_path)
    cluster.base.symlink_to(victim)
    try:
        with pytest.raises(localdb.LocalDbError, match="is not a directory of ours"):
            cluster.start()
    finally:
        cluster.base.unlink()
    assert [(p.stat().st_uid, p.stat().st_mode) for p in (victim, victim / "file")] == before
    assert sorted(os.listdir(victim)) == ["file"]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder of another user needs root")
def test_a_fallback_folder_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    cluster = fallback_cluster(tmp_path)
    cluster.base.mkdir(mode=0o777)
    os.chown(cluster.base, 65534, 65534)  # nobody
    try:
        with pytest.raises(localdb.LocalDbError, match="belongs to uid 65534"):
            cluster.start()
        assert os.listdir(cluster.base) == []
        assert cluster.base.stat().st_uid == 65534
    finally:
        cluster.base.rmdir()


def test_the_embedded_cluster_folder_is_created_private(tmp_path: Path) -> None:
    cluster = fallback_cluster(tmp_path)
    try:
        cluster._prepare_base()  # noqa: SLF001 - the folder alone, without initdb
        info = cluster.base.lstat()
        assert stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == (cluster.user.uid if not cluster.user.is_self else os.geteuid())
    finally:
        cluster.base.rmdir()


def test_compose_commands_exist_in_the_cli() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:15")
    assert "healthcheck" in services["postgres"]
    assert any(v.split(":")[0] for v in services["postgres"]["volumes"])
    assert services["migrate"]["command"] == [
        "sh", "-c", "alembic upgrade head && python -m runner logins"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    runner = services["runner"]
    assert runner["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    names = set(command_names())
    assert runner["command"][:3] == ["python", "-m", "runner"]
    assert runner["command"][3] in names
    health = runner["healthcheck"]["test"]
    assert health[:4] == ["CMD", "python", "-m", "runner"] and health[4] in names
    for service in services.values():
        text = yaml.safe_dump(service)
        assert "POSTGRES_PASSWORD: " not in text or "${" in text
        if "env_file" in service:
            assert service["env_file"] == [".env"]
    example = (PROJECT_ROOT / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=" in example
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "python:3.11" in dockerfile


def test_compose_runs_the_runner_as_its_login_and_the_superuser_only_migrates() -> None:
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    runner_login, bi_login = LOGINS
    superuser_url = ("postgresql://${POSTGRES_USER:-warehouse}:${POSTGRES_PASSWORD}@postgres:5432/"
                     "${POSTGRES_DB:-warehouse}")
    migrate_env = services["migrate"]["environment"]
    assert migrate_env["DATABASE_URL"] == superuser_url
    assert {runner_login.password_variable, bi_login.password_variable} <= set(migrate_env)
    runner = services["runner"]
    assert runner["environment"]["DATABASE_URL"] == (
        f"postgresql://{runner_login.name}:${{{runner_login.password_variable}}}@postgres:5432/"
        "${POSTGRES_DB:-warehouse}")
    assert runner_login.member_of == "warehouse_etl" and bi_login.member_of == "warehouse_reader"
    # the runner sees neither the superuser's password nor .env
    assert "env_file" not in runner
    assert "POSTGRES_PASSWORD" not in yaml.safe_dump(runner)
    example = (PROJECT_ROOT / ".env.example").read_text()
    for login in LOGINS:
        assert f"{login.password_variable}=" in example


def test_db_start_with_another_port_on_a_running_cluster_says_so_and_changes_nothing(
        pg_cluster) -> None:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["WAREHOUSE_PGDATA"] = str(pg_cluster.base)
    done = subprocess.run([sys.executable, "-m", "runner", "db", "start", "--port", "5499"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"error: the embedded cluster in {pg_cluster.base} is already running on port 5432; "
        "stop it first (python -m runner db stop), then start it with --port 5499\n")
    url = subprocess.run([sys.executable, "-m", "runner", "db", "url"], cwd=PROJECT_ROOT,
                         env=env, capture_output=True, text=True, timeout=120).stdout
    assert url == f"{pg_cluster.url('warehouse')}\n"
    assert fetch(pg_cluster.url("postgres"), "show listen_addresses") == [("",)]
