"""Reconciliation that follows the change (issue 17; procedures/30_warehouse/
check_reconciliation.sql, procedures/00_common/unverified_write.sql).

A batch's check compares the orders the batch changed with production: their statuses
(warehouse.fact_order_status) and the lines the batch wrote or whose order keys moved; a
write outside the pipeline's procedures is logged and makes batch checks read their days
whole; the full check reads every day and clears the log when balanced.

The Shop writes production as merge_batch would; here it says so (``warehouse.writer``),
as merge_batch's own definition does, so its writes are not logged as hand changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from runner.scheduler import Schedule
from tests import test_warehouse
from tests.test_runner_stubs import run_cli
from tests.test_warehouse import Shop

shop = test_warehouse.shop  # the fixture, shared

DAY_ONE, DAY_TWO = "2025-02-10", "2025-02-11"


def as_pipeline(shop: Shop) -> None:
    shop.cur.execute("set warehouse.writer = 'test: as merge_batch'")


def by_hand(shop: Shop) -> None:
    shop.cur.execute("reset warehouse.writer")


def two_days_loaded(shop: Shop) -> None:
    """Batch 1, loaded and checked: order 100 on day one (item 1000, 2 units), order 101 on
    day two (item 1001, 1 unit), product 10 at price 10."""
    as_pipeline(shop)
    b1 = shop.batch("2025-03-01 00:00+00")
    shop.customer(b1, 1)
    shop.product(b1, 10)
    shop.transaction(b1, 100, 1, f"{DAY_ONE} 12:00")
    shop.item(b1, 1000, 100, 10, quantity=2)
    shop.transaction(b1, 101, 1, f"{DAY_TWO} 12:00")
    shop.item(b1, 1001, 101, 10, quantity=1)
    shop.load(b1)


def new_order_on_day_one(shop: Shop) -> int:
    """Batch 2 (not loaded): order 102 on day one with item 1002."""
    as_pipeline(shop)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 102, 1, f"{DAY_ONE} 15:00")
    shop.item(b2, 1002, 102, 10, quantity=1)
    return b2


def order_100_refunded(shop: Shop) -> int:
    """After two_days_loaded, batch 2 (loaded but not checked): order 100 refunded, its
    status alone."""
    two_days_loaded(shop)
    as_pipeline(shop)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.transaction(b2, 100, 1, f"{DAY_ONE} 12:00", status="refunded")
    for step in ("load_dimensions", "load_fact_sales", "refresh_batch_aggregates"):
        shop.call(step, b2)
    return b2


def differ(batch: int, count: int, days: int, text: str) -> str:
    """The batch check's message for differences found order by order."""
    return (f"check_reconciliation batch {batch}: {count} line(s) or order status(es) on "
            f"{days} day(s) differ between production and fact_sales or fact_order_status: "
            f"{text}")


def check_error(shop: Shop, call: str) -> str:
    with pytest.raises(psycopg2.errors.RaiseException) as raised:
        shop.cur.execute(call)
    shop.cur.connection.rollback()
    return raised.value.diag.message_primary


def unverified(shop: Shop) -> list[tuple]:
    return shop.rows("select table_name, operation from etl.unverified_write order by write_id")


def test_batch_check_compares_orders_when_nothing_wrote_outside_the_pipeline(
        shop: Shop) -> None:
    two_days_loaded(shop)
    b2 = new_order_on_day_one(shop)
    shop.load(b2)
    assert unverified(shop) == []
    assert shop.rows("select step, rows from etl.batch_step where batch_id = %s "
                     "and step = 'check_reconciliation'", (b2,)) == [("check_reconciliation", 1)]
    notices = [n for n in shop.cur.connection.notices if "check_reconciliation batch" in n]
    assert notices[-1].strip() == (
        f"NOTICE:  check_reconciliation batch {b2}: the batch's orders on 1 day(s) match "
        "production line by line")


def test_batch_check_catches_a_line_of_its_orders_the_fact_got_wrong(shop: Shop) -> None:
    two_days_loaded(shop)
    b2 = new_order_on_day_one(shop)
    for step in ("load_dimensions", "load_fact_sales", "refresh_batch_aggregates"):
        shop.call(step, b2)
    # a loader bug, as the pipeline would write it (not logged): a wrong quantity
    shop.cur.execute("update warehouse.fact_sales set quantity = 5 where item_id = 1002")
    assert unverified(shop) == []
    assert check_error(shop, f"call warehouse.check_reconciliation({b2})") == differ(
        b2, 1, 1, f"{DAY_ONE}: item 1002 of order 102: fact_sales differs from production")


def test_a_status_change_writes_only_the_order_row_and_the_check_compares_it(
        shop: Shop) -> None:
    b2 = order_100_refunded(shop)
    # the status change wrote the order row alone: the line keeps its batch
    assert shop.rows("select os.status_code, os.source_batch_id, f.source_batch_id "
                     "from warehouse.fact_sales f "
                     "join warehouse.fact_order_status os using (transaction_id) "
                     "where f.item_id = 1000") == [("refunded", b2, 1)]
    # a loader bug, as the pipeline would write it (not logged): the old status kept
    shop.cur.execute("update warehouse.fact_order_status set status_code = 'completed' "
                     "where transaction_id = 100")
    assert check_error(shop, f"call warehouse.check_reconciliation({b2})") == differ(
        b2, 1, 1, f"{DAY_ONE}: order 100: status completed in fact_order_status, refunded in "
        "production")


def test_a_status_change_whose_lines_disagree_with_the_order_is_checked_line_by_line(
        shop: Shop) -> None:
    b2 = order_100_refunded(shop)
    # a loader bug, as the pipeline would write it (not logged): the order's status row
    # is right, but its line holds another time than production's
    shop.cur.execute("update warehouse.fact_sales set transaction_ts = transaction_ts "
                     "+ interval '1 hour' where item_id = 1000")
    assert check_error(shop, f"call warehouse.check_reconciliation({b2})") == differ(
        b2, 1, 1, f"{DAY_ONE}: item 1000 of order 100: fact_sales differs from production")


def test_batch_check_catches_a_line_left_on_the_customer_version_before(shop: Shop) -> None:
    two_days_loaded(shop)
    as_pipeline(shop)
    b2 = shop.batch("2025-03-02 00:00+00")
    shop.customer(b2, 1, city="Paris", updated_at=f"{DAY_TWO} 00:00+00")  # order 101 moves
    for step in ("load_dimensions", "load_fact_sales", "refresh_batch_aggregates"):
        shop.call(step, b2)
    # a re-pointing bug, as the pipeline would write it: order 101 back on the old version
    shop.cur.execute("update warehouse.fact_sales set customer_key = (select customer_key "
                     "from warehouse.dim_customer where customer_id = 1 and not is_current) "
                     "where item_id = 1001")
    assert check_error(shop, f"call warehouse.check_reconciliation({b2})") == differ(
        b2, 1, 1, f"{DAY_TWO}: item 1001 of order 101: fact_sales differs from production")


@pytest.mark.parametrize(("change", "table", "fact_figures"), [
    ("update warehouse.fact_sales set line_amount = 25.00 where item_id = 1000",
     "warehouse.fact_sales",
     "fact 35.00 aggregate 30.00, units production 3 fact 3 aggregate 3, items production 2 "
     "fact 2, orders production 2 fact 2 aggregate 2"),
    ("update warehouse.fact_order_status set status_code = 'pending' where transaction_id = 100",
     "warehouse.fact_order_status",
     "fact 10.00 aggregate 30.00, units production 3 fact 1 aggregate 3, items production 2 "
     "fact 1, orders production 2 fact 1 aggregate 2"),
], ids=["a fact line", "an order's status row"])
def test_batch_check_catches_a_hand_change_on_a_day_the_batch_touched(
        shop: Shop, change: str, table: str, fact_figures: str) -> None:
    two_days_loaded(shop)
    by_hand(shop)
    # order 100 is not the batch's, but it lies on day one, which the batch touches
    shop.cur.execute(change)
    assert unverified(shop) == [(table, "UPDATE")]
    b2 = new_order_on_day_one(shop)
    for step in ("load_dimensions", "load_fact_sales", "refresh_batch_aggregates"):
        shop.call(step, b2)
    assert check_error(shop, f"call warehouse.check_reconciliation({b2})") == (
        f"check_reconciliation batch {b2}: 1 of 1 day(s) differ between production, "
        f"fact_sales and agg_daily_sales: {DAY_ONE}: revenue production 30.00 {fact_figures}")


def test_full_check_catches_an_order_row_changed_by_hand_on_any_day(shop: Shop) -> None:
    two_days_loaded(shop)
    by_hand(shop)
    shop.cur.execute("update warehouse.fact_order_status set status_code = 'cancelled' "
                     "where transaction_id = 101")
    b2 = new_order_on_day_one(shop)
    shop.load(b2)  # day one only: balanced, read whole because of the hand change
    by_hand(shop)
    assert check_error(shop, "call warehouse.check_full_reconciliation()") == (
        "check_full_reconciliation: 1 of 2 day(s) differ between production, fact_sales and "
        f"agg_daily_sales (the first 20: {DAY_TWO}: revenue production 10.00 fact 0 "
        "aggregate 10.00, units production 1 fact 0 aggregate 1, items production 1 fact 0, "
        "orders production 1 fact 0 aggregate 1)")


def test_full_check_catches_a_difference_on_any_day_and_clears_the_log_once_balanced(
        shop: Shop) -> None:
    two_days_loaded(shop)
    by_hand(shop)
    shop.cur.execute("update warehouse.fact_sales set quantity = 4 where item_id = 1001")
    b2 = new_order_on_day_one(shop)
    shop.load(b2)  # day one only: balanced, read whole because of the hand change
    by_hand(shop)
    assert check_error(shop, "call warehouse.check_full_reconciliation()") == (
        "check_full_reconciliation: 1 of 2 day(s) differ between production, fact_sales and "
        f"agg_daily_sales (the first 20: {DAY_TWO}: revenue production 10.00 fact 10.00 "
        "aggregate 10.00, units production 1 fact 4 aggregate 1, items production 1 fact 1, "
        "orders production 1 fact 1 aggregate 1)")
    assert unverified(shop) == [("warehouse.fact_sales", "UPDATE")]  # kept: not balanced

    shop.cur.execute("update warehouse.fact_sales set quantity = 1 where item_id = 1001")
    shop.cur.execute("call warehouse.check_full_reconciliation()")
    assert unverified(shop) == []
    assert shop.rows("select days_checked, writes_cleared from etl.full_reconciliation") == [
        (2, 2)]


def test_pipeline_procedures_are_not_logged_but_a_write_after_them_is(shop: Shop) -> None:
    two_days_loaded(shop)
    by_hand(shop)
    b2 = new_order_on_day_one(shop)
    by_hand(shop)
    shop.cur.connection.autocommit = False
    shop.call("load_dimensions", b2)
    shop.call("load_fact_sales", b2)  # sets warehouse.writer while it runs
    shop.cur.execute("delete from warehouse.fact_sales where item_id = 1002")  # same transaction
    shop.cur.connection.commit()
    assert unverified(shop) == [("warehouse.fact_sales", "DELETE")]


def test_reconcile_command_runs_the_full_check_under_the_lock_and_records_it(
        shop: Shop, db_url: str) -> None:
    two_days_loaded(shop)
    shop.cur.execute("update etl.batch set status = 'processed', processed_at = now()")
    by_hand(shop)
    shop.cur.execute("update warehouse.fact_sales set quantity = 4 where item_id = 1001")
    failed = run_cli(db_url, "reconcile")
    assert failed.returncode == 1, failed.stderr
    assert ("step full_reconciliation: SQLSTATE P0001: check_full_reconciliation: 1 of 2 "
            "day(s) differ") in failed.stderr
    shop.cur.execute("update warehouse.fact_sales set quantity = 1 where item_id = 1001")
    passed = run_cli(db_url, "reconcile")
    assert passed.returncode == 0, passed.stderr
    assert shop.rows("select r.trigger, r.status, s.step, s.status, s.batch_id "
                     "from etl.pipeline_run r join etl.step_run s using (run_id) "
                     "where s.step = 'full_reconciliation' order by s.step_run_id") == [
        ("reconcile", "failed", "full_reconciliation", "failed", None),
        ("reconcile", "succeeded", "full_reconciliation", "succeeded", None)]
    assert unverified(shop) == []


def test_schedule_runs_the_full_check_weekly_on_sunday_night_unless_off() -> None:
    weekly = Schedule(every=timedelta(minutes=15))
    fire = weekly.full_check_trigger().get_next_fire_time(
        None, datetime(2026, 12, 3, 12, 0, tzinfo=UTC))
    assert fire == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)  # the next Sunday, 03:00 UTC
    assert Schedule(every=timedelta(minutes=15), full_check_cron=None).full_check_trigger() \
        is None
