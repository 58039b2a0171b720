"""etl.purge_staging: staging rows of batches processed long enough ago are deleted; nothing
else is."""

from __future__ import annotations

import subprocess
import sys

import psycopg2
import psycopg2.errors
import pytest

from runner.config import PROJECT_ROOT, RetryPolicy
from runner.pipeline import RunOptions, run_pipeline
from tests.staging_data import hold_no_batch

STAGING_TABLES = ("customers", "products", "transactions", "transaction_items")


def add_batch(cur, name: str, processed_ago: str | None) -> int:  # noqa: ANN001
    """A batch with one staged row in each staging table; processed ``processed_ago`` ago
    (None: still ingested)."""
    cur.execute(
        "insert into etl.batch (batch_name, source_path, status, processed_at)"
        " values (%s, %s, %s, now() - %s::interval) returning batch_id",
        (name, f"/landing/{name}", "ingested" if processed_ago is None else "processed",
         processed_ago),
    )
    (batch_id,) = cur.fetchone()
    for table in STAGING_TABLES:
        cur.execute(
            f"insert into staging.{table} (batch_id, line_no) values (%s, 2), (%s, 3)",
            (batch_id, batch_id),
        )
    cur.execute(
        "insert into etl.rejected_row (batch_id, file_name, line_no, rules, raw_text)"
        " values (%s, 'customers.csv', 3, '{malformed_row}', 'a,b')",
        (batch_id,),
    )
    return batch_id


def staged_batches(cur) -> dict[str, list[int]]:  # noqa: ANN001
    result = {}
    for table in STAGING_TABLES:
        cur.execute(f"select distinct batch_id from staging.{table} order by 1")
        result[table] = [row[0] for row in cur.fetchall()]
    return result


def purge(cur, older_than: str | None = None) -> int:  # noqa: ANN001
    if older_than is None:
        cur.execute("call etl.purge_staging()")
    else:
        cur.execute("call etl.purge_staging(%s::interval)", (older_than,))
    (deleted,) = cur.fetchone()
    return deleted


def test_purge_deletes_only_batches_processed_before_the_default_seven_days(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        old = add_batch(cur, "batch_0001", "10 days")
        recent = add_batch(cur, "batch_0002", "1 day")
        pending = add_batch(cur, "batch_0003", None)

        assert purge(cur) == 8  # 2 rows in each of the 4 tables of the old batch

        expected = [recent, pending]
        assert staged_batches(cur) == dict.fromkeys(STAGING_TABLES, expected)
        cur.execute("select batch_id from etl.rejected_row order by 1")
        assert [row[0] for row in cur.fetchall()] == [old, recent, pending]
        cur.execute("select count(*) from etl.batch")
        assert cur.fetchone() == (3,)


def test_purge_twice_deletes_nothing_the_second_time(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        add_batch(cur, "batch_0001", "30 days")
        recent = add_batch(cur, "batch_0002", "2 days")
        assert purge(cur, "7 days") == 8
        before = staged_batches(cur)
        assert purge(cur, "7 days") == 0
        assert staged_batches(cur) == before == dict.fromkeys(STAGING_TABLES, [recent])


def test_purge_with_zero_interval_takes_every_processed_batch_but_no_pending_one(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        add_batch(cur, "batch_0001", "1 hour")
        pending = add_batch(cur, "batch_0002", None)
        assert purge(cur, "0 seconds") == 8
        assert staged_batches(cur) == dict.fromkeys(STAGING_TABLES, [pending])


def test_purge_covers_any_staging_table_with_a_batch_id(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("create table staging.accepted_example (batch_id bigint, value text)")
        old = add_batch(cur, "batch_0001", "8 days")
        recent = add_batch(cur, "batch_0002", "1 day")
        cur.execute(
            "insert into staging.accepted_example (batch_id, value) values (%s, 'a'), (%s, 'b')",
            (old, recent),
        )
        assert purge(cur) == 9
        cur.execute("select batch_id from staging.accepted_example")
        assert cur.fetchall() == [(recent,)]


def test_purge_reports_each_table_and_the_batches_in_notices(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        first = add_batch(cur, "batch_0001", "9 days")
        second = add_batch(cur, "batch_0002", "8 days")
        del conn.notices[:]
        purge(cur)
    notices = " ".join(conn.notices)
    assert "staging.transaction_items: 4 rows deleted" in notices
    assert f"16 rows deleted for 2 processed batch(es) (ids {first} to {second})" in notices


@pytest.mark.parametrize("value", [None, "-1 day"])
def test_purge_refuses_a_null_or_negative_interval(conn, value: str | None) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        add_batch(cur, "batch_0001", "10 days")
        with pytest.raises(psycopg2.errors.InvalidParameterValue, match="p_older_than"):
            cur.execute("call etl.purge_staging(%s::interval)", (value,))
        assert staged_batches(cur)["customers"] != []


def test_warehouse_etl_role_may_call_purge(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        add_batch(cur, "batch_0001", "10 days")
        cur.execute("create role purge_test_user login in role warehouse_etl")
        try:
            cur.execute("set role purge_test_user")
            assert purge(cur) == 8
        finally:
            cur.execute("reset role")
            cur.execute("drop role purge_test_user")


def test_purge_is_callable_from_a_plain_psql_style_call(db_url: str) -> None:
    connection = psycopg2.connect(db_url)
    try:
        with connection.cursor() as cur:
            cur.execute("call etl.purge_staging('7 days')")
            assert cur.fetchone() == (0,)
        connection.commit()
    finally:
        connection.close()


CONTRACT_VIEWS = (
    "etl.v_batch_reconciliation", "etl.v_reject_summary", "analytics.v_daily_sales",
    "analytics.v_monthly_sales", "analytics.v_product_performance",
    "analytics.v_customer_growth", "analytics.v_payment_methods",
)


def view_rows(cur) -> dict[str, list[tuple]]:  # noqa: ANN001
    result = {}
    for view in CONTRACT_VIEWS:
        cur.execute(f"select * from {view} order by 1, 2, 3")
        result[view] = cur.fetchall()
    return result


def test_purge_after_a_real_run_changes_no_control_or_analytics_view(
    db_url: str, conn, tmp_path  # noqa: ANN001
) -> None:
    landing = tmp_path / "landing"
    subprocess.run(
        [sys.executable, "-m", "generator", "--out", str(landing), "--batches", "2",
         "--seed", "5", "--quiet", "--customers", "40", "--products", "15",
         "--transactions", "150", "--dirty", "0.02"],
        check=True, cwd=PROJECT_ROOT,
    )
    hold_no_batch(conn)  # 4 of batch 2's 6 products are rejected
    result = run_pipeline(db_url, RunOptions(landing=landing, retry=RetryPolicy(attempts=2)))
    assert result.status == "succeeded", result.error
    with conn.cursor() as cur:
        before = view_rows(cur)
        cur.execute("select count(*) from staging.transaction_items")
        (staged_items,) = cur.fetchone()
        assert staged_items > 0
        deleted = purge(cur, "0 seconds")
        assert deleted >= staged_items
        for table in STAGING_TABLES:
            cur.execute(f"select count(*) from staging.{table}")
            assert cur.fetchone() == (0,), table
        assert view_rows(cur) == before
        cur.execute("select bool_and(balanced) from etl.v_batch_reconciliation")
        assert cur.fetchone() == (True,)
