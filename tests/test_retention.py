"""Retention (docs/privacy.md): etl.retention says how many days processed staging rows and
the raw values of final rejects are kept; the pipeline's step apply_retention applies it,
exactly: older rows go, younger ones, open orphans and unset settings keep theirs, and the
reconciliation views keep their counts."""

from __future__ import annotations

import psycopg2.extensions

from tests.staging_data import call, create_batch, customer, fetch, hold_no_batch, transaction

Conn = psycopg2.extensions.connection


def load_aged_batches(conn: Conn) -> tuple[int, int]:
    """Two processed batches, each with a final reject, an open orphan and a malformed
    record: the first processed and rejected 40 days ago, the second 5 days ago."""
    hold_no_batch(conn)  # each rejects 2 of its 3 customers
    batches = []
    for name, ids in (("ret_0001", (1, 2, 3)), ("ret_0002", (11, 12, 13))):
        good, bad, _ = ids
        batches.append(create_batch(conn, {
            "customers.csv": [customer(good), customer(bad, email="not-an-address")],
            "transactions.csv": [transaction(ids[2] * 10, customer_id="999")],
        }, malformed={"customers.csv": [(9, f"{bad},Mal,Formed")]}, name=name))
    call(conn, "etl.process_pending")
    with conn.cursor() as cur:
        for batch_id, age in zip(batches, ("40 days", "5 days"), strict=True):
            cur.execute("update etl.batch set processed_at = now() - %s::interval "
                        "where batch_id = %s", (age, batch_id))
            cur.execute("update etl.rejected_row set rejected_at = now() - %s::interval "
                        "where batch_id = %s", (age, batch_id))
    return batches[0], batches[1]


def control_views(conn: Conn) -> tuple[list[tuple], list[tuple]]:
    return (fetch(conn, "select * from etl.v_batch_reconciliation order by 1, 2, 3"),
            fetch(conn, "select * from etl.v_reject_summary order by 1, 2, 3, 4"))


def raw_state(conn: Conn) -> list[tuple]:
    return fetch(conn, """
        select batch_id, file_name, line_no, rules, raw is not null, raw_text is not null,
               raw_purged_at is not null
        from etl.rejected_row order by batch_id, file_name, line_no""")


def staged(conn: Conn) -> list[tuple]:
    return fetch(conn, "select batch_id, count(*) from staging.customers group by 1 order by 1")


def test_without_settings_the_pipeline_keeps_everything(conn: Conn) -> None:
    old, young = load_aged_batches(conn)
    before = (staged(conn), raw_state(conn))
    call(conn, "etl.process_pending")
    assert fetch(conn, "select step, status from etl.step_run where step = 'apply_retention' "
                       "order by step_run_id desc limit 1") == [("apply_retention", "succeeded")]
    assert (staged(conn), raw_state(conn)) == before
    assert staged(conn) == [(old, 2), (young, 2)]


def test_retention_purges_exactly_what_its_settings_say(conn: Conn) -> None:
    old, young = load_aged_batches(conn)
    views = control_views(conn)
    with conn.cursor() as cur:
        cur.execute("update etl.retention set staging_days = 30, reject_raw_days = 10")
    call(conn, "etl.process_pending")  # no batch pending: the run's retention step alone

    assert staged(conn) == [(young, 2)]
    assert raw_state(conn) == [
        (old, "customers.csv", 3, ["invalid_email"], False, False, True),   # final: blanked
        (old, "customers.csv", 9, ["malformed_row"], False, False, True),   # final: blanked
        (old, "transactions.csv", 2, ["unknown_customer"], True, False, False),  # orphan
        (young, "customers.csv", 3, ["invalid_email"], True, False, False),  # younger
        (young, "customers.csv", 9, ["malformed_row"], False, True, False),
        (young, "transactions.csv", 2, ["unknown_customer"], True, False, False)]
    assert control_views(conn) == views


def test_retention_twice_changes_nothing_more(conn: Conn) -> None:
    load_aged_batches(conn)
    with conn.cursor() as cur:
        cur.execute("update etl.retention set staging_days = 0, reject_raw_days = 0")
    call(conn, "etl.apply_retention")
    after = (staged(conn), raw_state(conn))
    assert after[0] == []
    notices = call(conn, "etl.apply_retention")
    assert (staged(conn), raw_state(conn)) == after
    assert notices[-1].endswith("0 deleted; raw values of final rejects older than 0 "
                                "day(s): 0 row(s) blanked")
