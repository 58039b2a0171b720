"""Batch checks, holds and their two exits, in the database (docs/data-contract.md, "Batch checks,
holds and alerts"): every check at its boundaries, calling etl.check_batch on batches staged
by tests/staging_data.py and validated by the real staging.validate_batch."""

from __future__ import annotations

from decimal import Decimal

import psycopg2
import psycopg2.extensions
import pytest

from tests.staging_data import call, create_batch, customer, fetch, product

EVENTS_SQL = """
select file_name, "check", rule, severity, observed, threshold
from etl.v_dq_events where batch_name = %s order by event_id
"""


def products_batch(conn: psycopg2.extensions.connection, rows: int, bad: int, *,
                   name: str, first_id: int = 1, bad_rule: str = "invalid_amount") -> int:
    """A validated batch of ``rows`` products, the first ``bad`` of them breaking one rule."""
    broken = {"invalid_amount": {"unit_price": "12,50"}, "missing_required": {"category": ""}}
    batch = create_batch(conn, {"products.csv": [
        product(first_id + n, **(broken[bad_rule] if n < bad else {})) for n in range(rows)]},
        name=name)
    call(conn, "staging.validate_batch", batch)
    return batch


def check(conn: psycopg2.extensions.connection, batch: int) -> list[tuple]:
    call(conn, "etl.check_batch", batch)
    name = fetch(conn, "select batch_name from etl.batch where batch_id = %s", (batch,))[0][0]
    return fetch(conn, EVENTS_SQL, (name,))


def status(conn: psycopg2.extensions.connection, batch: int) -> str:
    return fetch(conn, "select status from etl.v_batch_status where batch_id = %s",
                 (batch,))[0][0]


def test_the_migration_seeds_the_contracts_threshold(conn) -> None:  # noqa: ANN001
    assert fetch(conn, "select file_name, rule, warn_ratio, error_ratio from etl.dq_threshold"
                 ) == [(None, None, Decimal("0.05"), Decimal("0.50"))]


def test_reject_ratio_equal_to_the_warning_threshold_does_not_fire_one_row_more_does(
        conn) -> None:  # noqa: ANN001
    at_threshold = products_batch(conn, 20, 1, name="b1")  # 1 / 20 = 0.05
    assert check(conn, at_threshold) == []
    above = products_batch(conn, 20, 2, name="b2", first_id=100)  # 2 / 20 = 0.10
    assert check(conn, above) == [
        ("products.csv", "reject_ratio", None, "warn", Decimal("0.100000"), Decimal("0.05"))]
    assert status(conn, above) == "pending"


def test_reject_ratio_equal_to_the_error_threshold_warns_one_row_more_holds(
        conn) -> None:  # noqa: ANN001
    at_threshold = products_batch(conn, 20, 10, name="b1")  # 0.50: a warning only
    assert check(conn, at_threshold) == [
        ("products.csv", "reject_ratio", None, "warn", Decimal("0.500000"), Decimal("0.05"))]
    assert status(conn, at_threshold) == "pending"
    above = products_batch(conn, 20, 11, name="b2", first_id=100)  # 0.55
    assert check(conn, above) == [
        ("products.csv", "reject_ratio", None, "error", Decimal("0.550000"), Decimal("0.50"))]
    assert status(conn, above) == "held"
    (message,) = fetch(conn, "select message from etl.v_dq_events where batch_name = 'b2'")[0]
    assert message == (f"batch {above} (b2): products.csv: 11 of 20 rows rejected for any rule "
                       "(ratio 0.5500), above the error threshold 0.50")


def test_a_null_threshold_is_never_exceeded(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("update etl.dq_threshold set warn_ratio = null, error_ratio = null")
    batch = products_batch(conn, 10, 10, name="b1")  # every row rejected
    assert check(conn, batch) == []
    with conn.cursor() as cur:
        cur.execute("update etl.dq_threshold set error_ratio = 0.9")
    again = products_batch(conn, 10, 10, name="b2", first_id=100)
    assert [e[3] for e in check(conn, again)] == ["error"]


def test_per_file_and_per_rule_rows_are_each_checked_on_their_own(conn) -> None:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute("""
            insert into etl.dq_threshold (file_name, rule, warn_ratio, error_ratio) values
                ('products.csv', 'invalid_amount', 0.10, null),
                ('customers.csv', null, 0.01, null),
                (null, 'missing_required', 0.0, 0.9)""")
    batch = create_batch(conn, {
        # 20 products: 3 invalid_amount, 1 missing_required
        "products.csv": [product(n, unit_price="12,50") for n in range(1, 4)]
                        + [product(4, category="")]
                        + [product(n) for n in range(5, 21)],
        # 10 customers: none rejected
        "customers.csv": [customer(n) for n in range(1, 11)],
    }, name="b1")
    call(conn, "staging.validate_batch", batch)
    assert check(conn, batch) == [
        # any rule, any file: 4 / 20 = 0.2 > 0.05
        ("products.csv", "reject_ratio", None, "warn", Decimal("0.200000"), Decimal("0.05")),
        # invalid_amount in products: 3 / 20 = 0.15 > 0.10
        ("products.csv", "reject_ratio", "invalid_amount", "warn", Decimal("0.150000"),
         Decimal("0.10")),
        # missing_required, any file: 1 / 20 = 0.05 > 0.0 (customers: 0, equal: no event)
        ("products.csv", "reject_ratio", "missing_required", "warn", Decimal("0.050000"),
         Decimal("0.0")),
    ]


def test_checking_twice_records_nothing_twice(conn) -> None:  # noqa: ANN001
    batch = products_batch(conn, 20, 12, name="b1")
    first = check(conn, batch)
    alerts = fetch(conn, "select alert_key, kind, severity, title from etl.alert")
    assert check(conn, batch) == first
    assert fetch(conn, "select alert_key, kind, severity, title from etl.alert") == alerts
    assert alerts == [(f"event:{fetch(conn, 'select min(event_id) from etl.dq_event')[0][0]}",
                       "dq_event", "failure",
                       f"warehouse: error reject_ratio in batch {batch} (b1), products.csv")]
    assert fetch(conn, "select rows from etl.batch_step where step = 'check'") == [(1,)]


# -- volume ----------------------------------------------------------------------------------

def processed_history(conn: psycopg2.extensions.connection, sizes: list[int]) -> None:
    """Processed batches holding products.csv with these rows_in_file (ledger only)."""
    for index, size in enumerate(sizes):
        create_batch(conn, {"products.csv": [product(10_000 * (index + 1) + n)
                                             for n in range(size)]}, name=f"h{index}")
    with conn.cursor() as cur:
        cur.execute("update etl.batch set status = 'processed', processed_at = now()")


def volume_events(conn: psycopg2.extensions.connection, rows: int, name: str) -> list[tuple]:
    batch = products_batch(conn, rows, 0, name=name, first_id=900_000 + rows)
    return [e for e in check(conn, batch) if e[1] == "volume"]


def test_volume_needs_five_processed_batches_of_history(conn) -> None:  # noqa: ANN001
    processed_history(conn, [9, 9, 9, 9])
    assert volume_events(conn, 100, "four") == []  # 4 batches of history: not checked


def test_volume_at_a_third_and_three_times_the_median_does_not_fire(conn) -> None:  # noqa: ANN001
    processed_history(conn, [6, 30, 9, 9, 3])  # median 9
    assert volume_events(conn, 3, "third") == []
    assert volume_events(conn, 27, "thrice") == []
    assert volume_events(conn, 2, "below") == [
        ("products.csv", "volume", None, "warn", Decimal("2"), Decimal("3"))]
    assert volume_events(conn, 28, "above") == [
        ("products.csv", "volume", None, "warn", Decimal("28"), Decimal("27"))]
    assert fetch(conn, "select message from etl.v_dq_events where batch_name = 'above'")[0][0] \
        .endswith("products.csv: 28 rows, above three times the median 9 of the previous 5 "
                  "processed batches holding it")


def test_volume_takes_the_median_of_the_last_ten_processed_batches(conn) -> None:  # noqa: ANN001
    # 12 batches: the two oldest (1000 rows) are out of the window; the last ten have the
    # median (4 + 6) / 2 = 5, so 16 rows (> 15) warn and 15 do not
    processed_history(conn, [1000, 1000, 2, 2, 2, 4, 4, 6, 6, 8, 8, 8])
    assert volume_events(conn, 15, "fifteen") == []
    assert volume_events(conn, 16, "sixteen") == [
        ("products.csv", "volume", None, "warn", Decimal("16"), Decimal("15"))]


# -- schema change ---------------------------------------------------------------------------

def header_batch(conn: psycopg2.extensions.connection, name: str, header: list[str],
                 processed: bool) -> int:
    batch = create_batch(conn, {"products.csv": [product(len(name) * 1000 + 1)]}, name=name)
    with conn.cursor() as cur:
        cur.execute("update etl.batch_file set header = %s where batch_id = %s", (header, batch))
        if processed:
            cur.execute("update etl.batch set status = 'processed', processed_at = now() "
                        "where batch_id = %s", (batch,))
    return batch


SCHEMA_SQL = """
select "check", observed, message from etl.v_dq_events
where batch_name = %s and "check" = 'schema_change'
"""


def test_schema_change_ignores_order_and_names_added_and_removed_columns(
        conn) -> None:  # noqa: ANN001
    columns = ["product_id", "product_name", "category", "brand", "unit_price", "cost",
               "updated_at"]
    header_batch(conn, "first", columns, processed=True)
    reordered = header_batch(conn, "reordered", [c.upper() for c in reversed(columns)], True)
    call(conn, "etl.check_batch", reordered)
    assert fetch(conn, SCHEMA_SQL, ("reordered",)) == []
    changed = header_batch(conn, "changed", [*columns[:3], " Colour ", *columns[4:]], False)
    call(conn, "etl.check_batch", changed)
    assert fetch(conn, SCHEMA_SQL, ("changed",)) == [(
        "schema_change", Decimal("2"),
        f"batch {changed} (changed): products.csv: header columns changed since batch "
        f"{reordered} (reordered): added colour; removed brand")]


def test_a_first_delivery_has_nothing_to_compare_with(conn) -> None:  # noqa: ANN001
    batch = header_batch(conn, "only", ["product_id", "product_name"], processed=False)
    call(conn, "etl.check_batch", batch)
    assert fetch(conn, SCHEMA_SQL, ("only",)) == []


# -- the two exits ---------------------------------------------------------------------------

def test_release_and_discard_refuse_a_batch_that_is_not_held(conn) -> None:  # noqa: ANN001
    batch = products_batch(conn, 10, 0, name="clean")
    check(conn, batch)
    for procedure in ("etl.release_batch", "etl.discard_batch"):
        with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState) as raised:
            call(conn, procedure, batch)
        assert raised.value.diag.message_primary == (
            f"{procedure}: batch {batch} (clean) is pending, not held: nothing changed")
    with pytest.raises(psycopg2.errors.NoDataFound):
        call(conn, "etl.release_batch", 999)
    assert status(conn, batch) == "pending"


def test_stop_if_held_names_batch_file_rule_ratio_threshold_and_both_calls(
        conn) -> None:  # noqa: ANN001
    batch = products_batch(conn, 10, 9, name="dirty")
    check(conn, batch)
    with pytest.raises(psycopg2.Error) as raised:
        call(conn, "etl.stop_if_held", batch)
    assert raised.value.pgcode == "WH001"
    assert raised.value.diag.message_primary == (
        f"batch {batch} (dirty) is held: batch {batch} (dirty): products.csv: 9 of 10 rows "
        "rejected for any rule (ratio 0.9000), above the error threshold 0.50. Nothing of it "
        "is merged and the pipeline stops before it; its rejects are in etl.rejected_row (see "
        "etl.v_dq_events and etl.v_reject_summary). End the hold with CALL "
        f"etl.release_batch({batch}); to merge it as validated, or CALL "
        f"etl.discard_batch({batch}); to drop it (corrected files can then be delivered "
        "again under the same name).")


def test_discard_deletes_staged_and_quarantined_rows_and_forgets_the_hashes(
        conn) -> None:  # noqa: ANN001
    batch = products_batch(conn, 10, 9, name="dirty")
    check(conn, batch)
    hashes = fetch(conn, "select file_name, sha256 from etl.batch_file where batch_id = %s",
                   (batch,))
    call(conn, "etl.discard_batch", batch)
    assert status(conn, batch) == "discarded"
    assert fetch(conn, "select count(*) from staging.products where batch_id = %s",
                 (batch,)) == [(0,)]
    assert fetch(conn, "select count(*) from staging.validated_products where batch_id = %s",
                 (batch,)) == [(0,)]
    assert fetch(conn, "select to_regclass('staging.validated_products_' || %s::text)",
                 (batch,)) == [(None,)]
    for view in ("etl.v_batch_reconciliation", "etl.v_reject_summary"):
        assert fetch(conn, f"select count(*) from {view} where batch_name = 'dirty'") == [(0,)]
    assert fetch(conn, "select count(*) from etl.batch_file where batch_id = %s",
                 (batch,)) == [(0,)]
    assert fetch(conn, "select file_name, sha256 from etl.discarded_file where batch_name = "
                       "'dirty'") == hashes
    assert [e[3] for e in fetch(conn, EVENTS_SQL, ("dirty",))] == ["error"]  # events stay
    with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState, match="is discarded"):
        call(conn, "etl.release_batch", batch)
