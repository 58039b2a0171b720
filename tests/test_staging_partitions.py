"""Raw staging tables partitioned by batch (revision 0016): ingestion creates a batch's
partitions in its own transaction, validation reads that batch's partition alone (plans
through EXPLAIN), the purge drops the partitions of purged batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.ingest import BatchRefused, ingest_batch
from tests.test_ingest import TRANSACTIONS, clean_batch, rows, value, write_batch


def partitions(conn, table: str) -> list[str]:  # noqa: ANN001
    return [name for (name,) in rows(conn, """
        select c.relname::text from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = %s::regclass order by 1""", (f"staging.{table}",))]


def test_each_ingested_batch_gets_its_own_partition_and_the_default_stays_empty(
        conn, tmp_path: Path) -> None:  # noqa: ANN001
    first = ingest_batch(conn, clean_batch(tmp_path, "batch_0001")).batch_id
    second = ingest_batch(conn, clean_batch(tmp_path, "batch_0002", customers=4)).batch_id
    assert partitions(conn, "customers") == [
        f"customers_{first}", f"customers_{second}", "customers_default"]
    assert value(conn, f"select count(*) from staging.customers_{first}") == 3
    assert value(conn, f"select count(*) from staging.customers_{second}") == 4
    assert value(conn, "select count(*) from staging.customers_default") == 0
    assert partitions(conn, "transaction_items") == [
        f"transaction_items_{first}", "transaction_items_default"]


def test_validation_reads_only_the_partition_of_its_batch(conn, tmp_path: Path) -> None:  # noqa: ANN001
    ingest_batch(conn, clean_batch(tmp_path, "batch_0001"))
    second = ingest_batch(conn, write_batch(tmp_path, "batch_0002", {
        "transactions.csv": TRANSACTIONS + "\n101,1,2024-02-02T10:00:00Z,paypal,pending\n",
    })).batch_id
    plan = "\n".join(line for (line,) in rows(conn, f"""
        explain (costs off)
        select * from staging.typed_transactions({second}, '{{paypal}}'::text[],
                                                 '{{pending}}'::text[], now())"""))
    assert f"on transactions_{second} " in plan
    assert "transactions_1 " not in plan and "transactions_default" not in plan


def test_a_refused_batch_leaves_no_partition(conn, tmp_path: Path) -> None:  # noqa: ANN001
    batch = clean_batch(tmp_path, "batch_0001")
    (batch / "transaction_items.csv").write_bytes(b"item_id,transaction_id,product_id,"
                                                  b"quantity,unit_price,discount\n"
                                                  b"1,100,10,2,19.90,\xff\n")
    with pytest.raises(BatchRefused):
        ingest_batch(conn, batch)
    assert partitions(conn, "customers") == ["customers_default"]
    assert partitions(conn, "transactions") == ["transactions_default"]


def test_the_purge_drops_the_partitions_of_the_batches_it_purges(conn, tmp_path: Path) -> None:  # noqa: ANN001
    first = ingest_batch(conn, clean_batch(tmp_path, "batch_0001")).batch_id
    second = ingest_batch(conn, clean_batch(tmp_path, "batch_0002", customers=4)).batch_id
    with conn.cursor() as cur:
        cur.execute("update etl.batch set status = 'processed', processed_at = now() "
                    "where batch_id = %s", (first,))
        cur.execute("call etl.purge_staging(interval '0', null)")
        assert cur.fetchone() == (3 + 2 + 1 + 2,)
    assert partitions(conn, "customers") == [f"customers_{second}", "customers_default"]
    # batch_0002's products.csv repeats batch_0001's bytes: skipped, so no partition
    assert partitions(conn, "products") == ["products_default"]
    assert value(conn, "select count(*) from staging.customers") == 4
