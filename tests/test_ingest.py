"""Ingestion: CSV batches into staging exactly once, every line accounted for.

Each test writes the smallest files that show a rule, ingests them into a fresh database
(real PostgreSQL, the real COPY) and checks exact rows, line numbers, ledger and quarantine.
"""

from __future__ import annotations

import json
import os
import random
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner import csvstream
from runner.config import PROJECT_ROOT, RetryPolicy
from runner.contract import FILE_SPECS
from runner.exitcodes import EXIT_REFUSED
from runner.ingest import BatchRefused, FileResult, IngestError, ingest_batch, ingest_paths
from runner.pipeline import RunOptions, run_pipeline

CUSTOMERS = "customer_id,first_name,last_name,email,phone,city,state,country,signup_date,updated_at"
PRODUCTS = "product_id,product_name,category,brand,unit_price,cost,updated_at"
TRANSACTIONS = "transaction_id,customer_id,transaction_ts,payment_method,status"
ITEMS = "item_id,transaction_id,product_id,quantity,unit_price,discount"


def customer(i: int) -> str:
    return f"{i},Ann{i},Lee,ann{i}@example.com,555-{i:04d},Oslo,,Norway,2024-01-0{i % 9 + 1},"


def write_batch(root: Path, name: str, files: dict[str, str | bytes]) -> Path:
    batch = root / name
    batch.mkdir(parents=True, exist_ok=True)
    for file_name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (batch / file_name).write_bytes(data)
    return batch


def clean_batch(root: Path, name: str = "batch_0001", customers: int = 3) -> Path:
    return write_batch(root, name, {
        "customers.csv": CUSTOMERS + "\n" + "".join(customer(i) + "\n"
                                                    for i in range(1, customers + 1)),
        "products.csv": PRODUCTS + "\n10,Lamp,Home,Acme,19.90,7.50,\n11,Desk,Home,,120,80,\n",
        "transactions.csv": TRANSACTIONS + "\n100,1,2024-02-01T10:00:00Z,paypal,completed\n",
        "transaction_items.csv": ITEMS + "\n1000,100,10,2,19.90,0\n1001,100,11,1,120,\n",
    })


def rows(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def value(conn, sql: str, params: tuple = ()):
    return rows(conn, sql, params)[0][0]


def staged(conn, table: str, columns: str) -> list[tuple]:
    return rows(conn, f"select line_no, {columns} from staging.{table} order by line_no")


def ledger(conn) -> list[tuple]:
    return rows(conn, """
        select b.batch_name, f.file_name, f.rows_in_file, f.rows_staged, f.rows_malformed
        from etl.batch_file f join etl.batch b using (batch_id)
        order by f.batch_id, f.file_id""")


def malformed(conn) -> list[tuple]:
    return rows(conn, "select file_name, line_no, rules, raw_text from etl.rejected_row "
                      "order by file_name, line_no")


def nothing_staged(conn) -> bool:
    counts = [value(conn, f"select count(*) from staging.{s.table}") for s in FILE_SPECS]
    return counts == [0, 0, 0, 0] and value(conn, "select count(*) from etl.batch_file") == 0


def run_cli(db_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "ingest", *args], cwd=PROJECT_ROOT,
                          env={**os.environ, "DATABASE_URL": db_url}, capture_output=True,
                          text=True, timeout=timeout, check=False)


# -- loading -----------------------------------------------------------------------------------


def test_clean_batch_stages_every_row_with_its_line_and_ledger(db_url, conn, tmp_path):
    batch = ingest_batch(db_url, clean_batch(tmp_path))

    assert batch.status == "loaded" and batch.batch_name == "batch_0001"
    assert [(f.file_name, f.status, f.rows_in_file, f.rows_staged, f.rows_malformed)
            for f in batch.files] == [
        ("customers.csv", "loaded", 3, 3, 0), ("products.csv", "loaded", 2, 2, 0),
        ("transactions.csv", "loaded", 1, 1, 0), ("transaction_items.csv", "loaded", 2, 2, 0)]
    assert rows(conn, "select batch_id, batch_name, status, processed_at from etl.batch") == [
        (batch.batch_id, "batch_0001", "ingested", None)]
    assert staged(conn, "products", "batch_id, product_id, brand, unit_price, updated_at") == [
        (2, batch.batch_id, "10", "Acme", "19.90", None),
        (3, batch.batch_id, "11", None, "120", None)]
    assert staged(conn, "transaction_items", "item_id, discount") == [
        (2, "1000", "0"), (3, "1001", None)]
    sha = value(conn, "select sha256 from etl.batch_file where file_name = 'customers.csv'")
    assert sha == batch.files[0].sha256 and len(sha) == 64
    assert rows(conn, "select header, extra_columns, absent_optional, size_bytes "
                      "from etl.batch_file where file_name = 'transactions.csv'") == [
        (TRANSACTIONS.split(","), [], [], len(TRANSACTIONS) + 1 + 44)]


def test_values_are_staged_as_delivered_untrimmed(db_url, conn, tmp_path):
    write_batch(tmp_path, "b", {"products.csv": PRODUCTS + "\n 10 ,  Lamp\t,Home,,19.90 ,7.50,\n"})
    ingest_batch(db_url, tmp_path / "b")
    assert staged(conn, "products", "product_id, product_name, unit_price") == [
        (2, " 10 ", "  Lamp\t", "19.90 ")]


def test_header_matched_case_insensitively_in_any_order_extra_columns_ignored_and_reported(
        db_url, conn, tmp_path):
    header = " EMAIL ,Customer_ID,loyalty_tier,First_Name,last_name,COUNTRY,signup_date,Notes"
    write_batch(tmp_path, "b", {"customers.csv": header + "\n"
                                "a@x.io,7,gold,Ann,Lee,Norway,2024-01-01,hello\n"})
    (result,) = ingest_batch(db_url, tmp_path / "b").files

    assert result.extra_columns == ("loyalty_tier", "Notes")
    assert result.absent_optional == ("phone", "city", "state", "updated_at")
    assert staged(conn, "customers", "customer_id, first_name, last_name, email, phone, "
                                     "country, signup_date, updated_at") == [
        (2, "7", "Ann", "Lee", "a@x.io", None, "Norway", "2024-01-01", None)]
    assert rows(conn, "select header, extra_columns, absent_optional from etl.batch_file") == [
        (["EMAIL", "Customer_ID", "loyalty_tier", "First_Name", "last_name", "COUNTRY",
          "signup_date", "Notes"], ["loyalty_tier", "Notes"],
         ["phone", "city", "state", "updated_at"])]
    assert result.summary("b").startswith(
        "b/customers.csv: 1 rows, 1 staged, 0 malformed, 2 extra columns (loyalty_tier, Notes)"
        " ignored, absent optional (phone, city, state, updated_at) left empty, ")


def test_extra_columns_are_dropped_from_quoted_and_plain_records_alike(db_url, conn, tmp_path):
    write_batch(tmp_path, "b", {"transactions.csv":
        "note,transaction_id,customer_id,transaction_ts,payment_method,status\n"
        '"a, b",100,1,2024-02-01 10:00:00,"Credit, Card",completed\n'
        "plain,101,1,2024-02-01 11:00:00,paypal,pending\n"})
    ingest_batch(db_url, tmp_path / "b")
    assert staged(conn, "transactions", "transaction_id, payment_method, status") == [
        (2, "100", "Credit, Card", "completed"), (3, "101", "paypal", "pending")]


def test_byte_order_mark_and_crlf_line_ends_are_accepted(db_url, conn, tmp_path):
    text = (ITEMS + "\r\n1,100,10,2,19.90,0\r\n2,100,11,1,120,\r\n").encode()
    write_batch(tmp_path, "b", {"transaction_items.csv": csvstream.BOM + text})
    (result,) = ingest_batch(db_url, tmp_path / "b").files
    assert (result.rows_in_file, result.rows_staged, result.rows_malformed) == (2, 2, 0)
    assert staged(conn, "transaction_items", "item_id, discount") == [(2, "1", "0"), (3, "2", None)]


def test_quoted_commas_quotes_and_newlines_are_kept_and_later_lines_numbered_physically(
        db_url, conn, tmp_path):
    write_batch(tmp_path, "b", {"products.csv": PRODUCTS + "\r\n"
        '1,"Lamp, tall","Home ""deco""",Acme,19.90,7.50,\r\n'
        '2,"Desk\r\nwith\ndrawers",Home,"",120,80,\r\n'
        "3,Chair,Home,Acme,30,20,\r\n"})
    ingest_batch(db_url, tmp_path / "b")
    assert staged(conn, "products", "product_id, product_name, category, brand") == [
        (2, "1", "Lamp, tall", 'Home "deco"', "Acme"),
        (3, "2", "Desk\r\nwith\ndrawers", "Home", None),
        (6, "3", "Chair", "Home", "Acme")]


def copy_csv_reading(conn, path: Path) -> list[tuple]:
    """The products of ``path`` as PostgreSQL's own COPY CSV reads them (empty = null)."""
    columns = PRODUCTS.replace(",", " text, ") + " text"
    with conn.cursor() as cur, open(path, "rb") as data:
        cur.execute(f"create temp table copy_csv ({columns})")
        cur.copy_expert(f"copy copy_csv from stdin with (format csv, header true, "
                        f"force_null ({PRODUCTS}))", data)
        cur.execute(f"select {PRODUCTS} from copy_csv")
        return sorted(cur.fetchall(), key=lambda r: int(r[0]))


def staged_products(conn) -> list[tuple]:
    return sorted(rows(conn, f"select {PRODUCTS} from staging.products"),
                  key=lambda r: int(r[0]))


def test_backslashes_and_odd_quoting_are_staged_as_copy_csv_reads_them(db_url, conn, tmp_path):
    batch = write_batch(tmp_path, "b", {"products.csv": PRODUCTS + "\n"
        "1,C:\\new\\N,\\.,\\,1,1,\n"
        '2,"a\\,b\\nc",x\ty,"",1,1,\n'
        '3,ab"c,d"e,"say ""hi""","x""",1,1,\n'
        '4,"multi\r\nline, with ""quotes""",\\\\,"\\.",1,1,""\n'})
    ingest_batch(db_url, batch)
    assert staged(conn, "products", "product_id, product_name, category, brand") == [
        (2, "1", "C:\\new\\N", "\\.", "\\"), (3, "2", "a\\,b\\nc", "x\ty", None),
        (4, "3", "abc,de", 'say "hi"', 'x"'),
        (5, "4", 'multi\r\nline, with "quotes"', "\\\\", "\\.")]
    assert staged_products(conn) == copy_csv_reading(conn, batch / "products.csv")


def test_random_records_are_staged_exactly_as_copy_csv_reads_them(db_url, conn, tmp_path):
    rng = random.Random(20241130)
    alphabet = ["a", "Z", " ", ",", '"', "\\", "\n", "\r\n", "\t", "é", "€", ".", "N", "0"]

    def field() -> str:
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        if rng.random() < 0.5 or any(c in value for c in ',"\n\r'):
            return '"' + value.replace('"', '""') + '"'
        return value

    records = [",".join([str(i)] + [field() for _ in range(6)]) for i in range(1, 3001)]
    batch = write_batch(tmp_path, "b", {"products.csv": PRODUCTS + "\n" + "\n".join(records)
                                        + "\n"})
    (result,) = ingest_batch(db_url, batch).files
    assert (result.rows_in_file, result.rows_staged, result.rows_malformed) == (3000, 3000, 0)
    assert staged_products(conn) == copy_csv_reading(conn, batch / "products.csv")


def test_empty_lines_are_skipped_and_not_counted_but_a_line_of_spaces_is_a_record(
        db_url, conn, tmp_path):
    write_batch(tmp_path, "b", {"products.csv": PRODUCTS + "\n\n1,Lamp,Home,,1,1,\n\r\n"
                                "   \n2,Desk,Home,,2,1,\n\n"})
    (result,) = ingest_batch(db_url, tmp_path / "b").files
    assert (result.rows_in_file, result.rows_staged, result.rows_malformed) == (3, 2, 1)
    assert staged(conn, "products", "product_id") == [(3, "1"), (6, "2")]
    assert malformed(conn) == [("products.csv", 5, ["malformed_row"], "   ")]


def test_a_header_with_no_rows_is_a_valid_file(db_url, conn, tmp_path):
    write_batch(tmp_path, "b", {"transactions.csv": TRANSACTIONS})
    (result,) = ingest_batch(db_url, tmp_path / "b").files
    assert (result.status, result.rows_in_file) == ("loaded", 0)
    assert ledger(conn) == [("b", "transactions.csv", 0, 0, 0)]


# -- malformed records -------------------------------------------------------------------------


def test_records_with_too_few_or_too_many_fields_are_quarantined_raw_with_their_line(
        db_url, conn, tmp_path):
    write_batch(tmp_path, "b", {"transaction_items.csv": ITEMS + "\r\n"
        "1,100,10,2,19.90,0\r\n"
        "2,100,10,2\r\n"
        '3,100,10,2,19.90,0,"x,\r\ny"\r\n'
        "4,100,10,2,19.90,0\r\n"
        "5,100,10,2,\r9.90,0\n"
        "6,100,10,1,1,0"})
    (result,) = ingest_batch(db_url, tmp_path / "b").files

    assert (result.rows_in_file, result.rows_staged, result.rows_malformed) == (6, 3, 3)
    assert staged(conn, "transaction_items", "item_id") == [(2, "1"), (6, "4"), (8, "6")]
    assert malformed(conn) == [
        ("transaction_items.csv", 3, ["malformed_row"], "2,100,10,2"),
        ("transaction_items.csv", 4, ["malformed_row"], '3,100,10,2,19.90,0,"x,\r\ny"'),
        ("transaction_items.csv", 7, ["malformed_row"], "5,100,10,2,\r9.90,0")]
    assert value(conn, "select count(*) from etl.rejected_row where record_key is null "
                       "and raw is null") == 3


def test_a_quote_left_open_at_the_end_makes_one_malformed_record(db_url, conn, tmp_path):
    write_batch(tmp_path, "b", {"products.csv": PRODUCTS + '\n1,Lamp,Home,,1,1,\n2,"Desk,Home,,'
                                "1,1,\n3,Chair,Home,,1,1,\n"})
    (result,) = ingest_batch(db_url, tmp_path / "b").files
    assert (result.rows_in_file, result.rows_staged, result.rows_malformed) == (2, 1, 1)
    assert malformed(conn) == [
        ("products.csv", 3, ["malformed_row"], '2,"Desk,Home,,1,1,\n3,Chair,Home,,1,1,')]


def test_a_file_spanning_many_chunks_keeps_exact_lines_across_chunk_boundaries(
        db_url, conn, tmp_path):
    lines, expected, bad, line_no = [ITEMS], [], [], 1
    for i in range(1, 40_001):
        if i % 997 == 0:
            record = f'{i},100,10,2,"19.9\n0",0'  # a quoted newline: the record spans 2 lines
        elif i % 1999 == 0:
            record = f"{i},100,10,2,19.90"  # one field short
        else:
            record = f"{i},{i * 7},10,2,19.90,{i % 3}"
        line_no += 1
        (bad if i % 1999 == 0 and i % 997 else expected).append((line_no, str(i)))
        line_no += record.count("\n")
        lines.append(record)
    data = "\n".join(lines) + "\n"
    assert len(data) > 3 * csvstream.READ_SIZE
    write_batch(tmp_path, "b", {"transaction_items.csv": data})

    (result,) = ingest_batch(db_url, tmp_path / "b").files
    assert (result.rows_in_file, result.rows_staged, result.rows_malformed) == (
        40_000, len(expected), len(bad))
    assert staged(conn, "transaction_items", "item_id") == expected
    assert rows(conn, "select line_no, split_part(raw_text, ',', 1) from etl.rejected_row "
                      "order by line_no") == bad
    assert value(conn, "select unit_price from staging.transaction_items where item_id = '997'"
                 ) == "19.9\n0"


@pytest.mark.parametrize("record", ["1," + "x" * 9000 + ",Home,,1,1,",
                                    '1,"Desk' + "\nx" * 3000 + '",Home,,1,1,'])
def test_a_record_longer_than_the_limit_refuses_the_batch(db_url, conn, tmp_path, monkeypatch,
                                                         record):
    monkeypatch.setattr(csvstream, "MAX_RECORD_BYTES", 4096)  # 256 MiB in production
    monkeypatch.setattr(csvstream, "READ_SIZE", 1024)  # below the limit, as in production
    write_batch(tmp_path, "b", {"products.csv": PRODUCTS + "\n2,Lamp,Home,,1,1,\n" + record
                                + "\n3,Chair,Home,,1,1,\n"})
    with pytest.raises(BatchRefused) as refused:
        ingest_batch(db_url, tmp_path / "b")
    assert (refused.value.refusal.problem, refused.value.refusal.line_no) == (
        "record_too_long", 3)
    assert nothing_staged(conn)


# -- already loaded ----------------------------------------------------------------------------


def test_second_ingest_changes_nothing_and_reports_already_loaded(db_url, conn, tmp_path):
    clean_batch(tmp_path)
    first = ingest_paths(db_url, [tmp_path])
    before = (ledger(conn), value(conn, "select count(*) from staging.customers"))

    again = ingest_paths(db_url, [tmp_path])

    (batch,) = again.batches
    assert batch.status == "already_loaded" and batch.batch_id is None
    assert {(f.status, f.loaded_in_batch_id) for f in batch.files} == {
        ("already_loaded", first.batches[0].batch_id)}
    assert (ledger(conn), value(conn, "select count(*) from staging.customers")) == before
    assert value(conn, "select count(*) from etl.batch") == 1


def test_a_batch_whose_one_file_changed_loads_only_that_file(db_url, conn, tmp_path):
    first = ingest_batch(db_url, clean_batch(tmp_path / "v1"))
    changed = clean_batch(tmp_path / "v2")
    (changed / "products.csv").write_text(PRODUCTS + "\n10,Lamp,Home,Acme,21.00,7.50,\n")

    again = ingest_batch(db_url, changed)

    assert again.status == "loaded" and again.batch_id != first.batch_id
    assert [(f.file_name, f.status) for f in again.files] == [
        ("customers.csv", "already_loaded"), ("products.csv", "loaded"),
        ("transactions.csv", "already_loaded"), ("transaction_items.csv", "already_loaded")]
    assert rows(conn, "select batch_id, file_name from etl.batch_file order by file_id") == [
        (first.batch_id, "customers.csv"), (first.batch_id, "products.csv"),
        (first.batch_id, "transactions.csv"), (first.batch_id, "transaction_items.csv"),
        (again.batch_id, "products.csv")]
    assert value(conn, "select count(*) from staging.customers") == 3
    assert rows(conn, "select batch_id, unit_price from staging.products where product_id='10'"
                " order by batch_id") == [(first.batch_id, "19.90"), (again.batch_id, "21.00")]


# -- refusals ----------------------------------------------------------------------------------

REFUSALS = {
    "missing_column": (TRANSACTIONS.replace(",status", "") + "\n1,1,2024-01-01,cash\n",
                       "missing_column", 1, None,
                       "transactions.csv: the header (line 1) lacks the required column status"),
    "duplicate_column": (TRANSACTIONS + ", Status \n1,1,2024-01-01,cash,completed,x\n",
                         "duplicate_column", 1, None,
                         "transactions.csv: the header (line 1) names column 'status' twice"),
    "zero_bytes": (b"", "missing_header", 1, None,
                   "transactions.csv has no header: the file is empty (0 bytes)"),
    "bom_only": (csvstream.BOM, "missing_header", 1, 3,
                 "transactions.csv has no header: the file holds only a byte-order mark"),
    "first_line_empty": ("\n" + TRANSACTIONS + "\n", "missing_header", 1, 0,
                         "transactions.csv has no header: its first line is empty (line 1)"),
    "not_utf8": (TRANSACTIONS.encode() + b"\n1,1,2024-01-01,caf\xe9,completed\n",
                 "invalid_utf8", 2, len(TRANSACTIONS) + 19,
                 f"transactions.csv is not valid UTF-8: byte(s) 0xe9 at byte offset "
                 f"{len(TRANSACTIONS) + 19} (line 2)"),
    "nul_byte": (TRANSACTIONS.encode() + b"\n1,1,2024\x00,cash,completed\n",
                 "nul_byte", 2, len(TRANSACTIONS) + 9,
                 f"transactions.csv holds a NUL byte (0x00) at byte offset {len(TRANSACTIONS) + 9}"
                 " (line 2), which PostgreSQL text cannot store"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_file_refuses_its_whole_batch_and_records_why(db_url, conn, tmp_path, case):
    content, problem, line_no, offset, message = REFUSALS[case]
    batch = clean_batch(tmp_path)
    (batch / "transactions.csv").write_bytes(
        content.encode() if isinstance(content, str) else content)

    with pytest.raises(BatchRefused) as refused:
        ingest_batch(db_url, batch)

    refusal = refused.value.refusal
    assert (refusal.batch_name, refusal.file_name, refusal.problem, refusal.line_no,
            refusal.byte_offset) == ("batch_0001", "transactions.csv", problem, line_no, offset)
    assert refusal.message.startswith(message)
    assert nothing_staged(conn)  # customers and products came first: rolled back too
    assert value(conn, "select count(*) from etl.batch") == 0
    assert rows(conn, "select batch_name, source_path, file_name, problem, line_no, "
                      "byte_offset, message from etl.batch_refusal") == [
        ("batch_0001", str(batch.resolve()), "transactions.csv", problem, line_no, offset,
         refusal.message)]


def test_invalid_utf8_deep_in_a_streamed_file_rolls_back_what_was_copied(db_url, conn,
                                                                         tmp_path):
    good = "".join(f"{i},100,10,2,19.90,0\n" for i in range(1, 60_001)).encode()
    data = ITEMS.encode() + b"\n" + good + b"60001,100,10,2,19.90,\xff\xfe\n"
    write_batch(tmp_path, "b", {"transaction_items.csv": data})

    with pytest.raises(BatchRefused) as refused:
        ingest_batch(db_url, tmp_path / "b")

    offset = len(ITEMS) + 1 + len(good) + len("60001,100,10,2,19.90,")
    assert offset > 4 * csvstream.READ_SIZE
    assert (refused.value.refusal.problem, refused.value.refusal.byte_offset,
            refused.value.refusal.line_no) == ("invalid_utf8", offset, 60_002)
    assert f"byte offset {offset} (line 60002)" in refused.value.refusal.message
    assert nothing_staged(conn)
    assert value(conn, "select count(*) from etl.rejected_row") == 0


def test_cli_refusal_keeps_earlier_batches_takes_no_later_one_and_exits_non_zero(
        db_url, conn, tmp_path):
    clean_batch(tmp_path, "batch_0001")
    bad = clean_batch(tmp_path, "batch_0002", customers=4)
    (bad / "customers.csv").write_bytes(CUSTOMERS.encode() + b"\n1,Ren\xe9e,Lee\n")
    clean_batch(tmp_path, "batch_0003", customers=5)

    done = run_cli(db_url, str(tmp_path))

    assert done.returncode == EXIT_REFUSED, done.stderr
    assert "batch_0001/transaction_items.csv: 2 rows, 2 staged, 0 malformed" in done.stdout
    assert "REFUSED batch batch_0002" in done.stderr
    offset = len(CUSTOMERS) + 1 + len("1,Ren")
    assert f"customers.csv is not valid UTF-8: byte(s) 0xe9 at byte offset {offset} (line 2)" in (
        done.stderr)
    assert rows(conn, "select batch_name from etl.batch") == [("batch_0001",)]
    assert value(conn, "select count(*) from staging.customers") == 3
    assert rows(conn, "select batch_name, problem from etl.batch_refusal") == [
        ("batch_0002", "invalid_utf8")]

    (bad / "customers.csv").write_text(CUSTOMERS + "\n1,Renée,Lee,r@x.io,,,,FR,2024-01-01,\n")
    fixed = run_cli(db_url, str(tmp_path))

    assert fixed.returncode == 0, fixed.stderr
    assert rows(conn, "select batch_name from etl.batch order by batch_id") == [
        ("batch_0001",), ("batch_0002",), ("batch_0003",)]
    assert "batch_0001: every file already loaded, nothing new" in fixed.stdout


# -- exactly once ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_process_killed_during_copy_leaves_nothing_and_the_next_ingest_loads_it_whole(
        db_url, conn, tmp_path):
    lines = 400_000
    body = "".join(f"{i},{i // 3 + 1},{i % 500 + 1},{i % 5 + 1},{i % 900 + 1}.99,0\n"
                   for i in range(1, lines + 1))
    batch = write_batch(tmp_path, "batch_0001", {"transaction_items.csv": ITEMS + "\n" + body})
    proc = subprocess.Popen([sys.executable, "-m", "runner", "ingest", str(batch)],
                            cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": db_url},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        copied = 0
        deadline = time.monotonic() + 60
        while copied == 0 and proc.poll() is None and time.monotonic() < deadline:
            copied = value(conn, "select coalesce(max(tuples_processed), 0) "
                                 "from pg_stat_progress_copy where datname = current_database()")
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and 0 < copied < lines

    gone = time.monotonic() + 30  # the server ends the dead client's session and rolls back
    while value(conn, "select count(*) from pg_stat_activity where datname = current_database()"
                      " and application_name = 'warehouse-runner'") and time.monotonic() < gone:
        time.sleep(0.05)
    assert nothing_staged(conn) and value(conn, "select count(*) from etl.batch") == 0

    (result,) = ingest_batch(db_url, batch).files
    assert (result.rows_in_file, result.rows_staged, result.rows_malformed) == (lines, lines, 0)
    assert value(conn, "select count(*) from staging.transaction_items") == lines
    assert value(conn, "select count(distinct line_no) from staging.transaction_items") == lines
    assert ledger(conn) == [("batch_0001", "transaction_items.csv", lines, lines, 0)]


# -- accounting, safety, order -----------------------------------------------------------------


def test_every_file_balances_rows_in_file_with_staged_plus_malformed_in_the_view(
        db_url, conn, tmp_path):
    batch = clean_batch(tmp_path)
    (batch / "customers.csv").write_text(CUSTOMERS + "\n" + customer(1) + "\n1,2\n\n"
                                         + customer(3) + ",x\n")
    ingest_batch(db_url, batch)
    assert rows(conn, """
        select file_name, rows_in_file, rows_staged, rows_malformed, rows_rejected
        from etl.v_batch_reconciliation order by file_name""") == [
        ("customers.csv", 3, 1, 2, 2), ("products.csv", 2, 2, 0, 0),
        ("transaction_items.csv", 2, 2, 0, 0), ("transactions.csv", 1, 1, 0, 0)]
    assert value(conn, "select bool_and(rows_in_file = rows_staged + rows_malformed) "
                       "from etl.batch_file")


def test_landing_batches_are_taken_in_name_order_and_odd_names_never_reach_sql(
        db_url, conn, tmp_path):
    odd = "batch_0002'); drop table staging.customers; --"
    clean_batch(tmp_path, odd)
    clean_batch(tmp_path, "batch_0001", customers=2)
    (tmp_path / "notes").mkdir()

    report = ingest_paths(db_url, [tmp_path])

    assert [b.batch_name for b in report.batches] == ["batch_0001", odd]
    assert rows(conn, "select batch_name, source_path from etl.batch order by batch_id") == [
        ("batch_0001", str((tmp_path / "batch_0001").resolve())),
        (odd, str((tmp_path / odd).resolve()))]
    assert value(conn, "select count(*) from staging.customers") == 5


def test_a_path_that_is_not_a_directory_is_an_error_naming_it(db_url, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(IngestError, match="nowhere is not a directory"):
        ingest_paths(db_url, [missing])


def test_whitelist_matches_the_staging_tables(conn):
    for spec in FILE_SPECS:
        columns = rows(conn, "select column_name from information_schema.columns "
                             "where table_schema = 'staging' and table_name = %s "
                             "order by ordinal_position", (spec.table,))
        assert [c for (c,) in columns] == ["batch_id", "line_no", *spec.columns]


def test_summary_line_names_rows_malformed_extra_columns_time_and_rate():
    result = FileResult("customers.csv", "loaded", "0" * 64, 10, rows_in_file=1000,
                        rows_staged=998, rows_malformed=2, extra_columns=("foo",), seconds=0.05)
    assert result.summary("batch_0001") == (
        "batch_0001/customers.csv: 1,000 rows, 998 staged, 2 malformed, 1 extra column (foo) "
        "ignored, 0.05 s (20,000 rows/s)")


# -- the generator's output --------------------------------------------------------------------


def test_generator_output_is_staged_as_its_manifest_predicts(db_url, conn, tmp_path):
    out = tmp_path / "landing"
    made = subprocess.run([sys.executable, "-m", "generator", "--out", str(out), "--batches",
                           "3", "--dirty", "0.02", "--seed", "7"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    if made.returncode != 0 and "No module named generator" in made.stderr:
        pytest.skip("the generator is not there yet")
    assert made.returncode == 0, made.stderr

    ingest_paths(db_url, [out])

    for manifest_path in sorted(out.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        for file_name, counts in manifest["files"].items():
            predicted = sorted(d["line"] for d in manifest["defects"]
                               if d["file"] == file_name and d["rules"] == ["malformed_row"])
            assert rows(conn, """
                select f.rows_in_file, f.rows_malformed,
                       (select coalesce(array_agg(r.line_no order by r.line_no), '{}')
                        from etl.rejected_row r
                        where r.batch_id = f.batch_id and r.file_name = f.file_name)
                from etl.batch_file f join etl.batch b using (batch_id)
                where b.batch_name = %s and f.file_name = %s""",
                        (manifest["batch"], file_name)) == [
                (counts["rows"], len(predicted), predicted)], (manifest["batch"], file_name)


# -- hostile deliveries (issue 18) -------------------------------------------------------------


def refusals(conn) -> list[tuple]:
    return rows(conn, "select batch_name, file_name, problem from etl.batch_refusal "
                      "order by refusal_id")


class ChangeFileMidRead:
    """Progress that, after the first chunk of ``file_name``, has another process change it."""

    def __init__(self, path: Path, script: str) -> None:
        self.path, self.script, self.done = path, script, False

    def file_started(self, batch_name: str, file_name: str, size_bytes: int) -> None:
        pass

    def file_advanced(self, bytes_read: int, rows: int) -> None:
        if not self.done:
            self.done = True
            subprocess.run([sys.executable, "-c", self.script, str(self.path)], check=True)

    def file_finished(self, batch_name: str, result: FileResult) -> None:
        pass


@pytest.mark.parametrize("change", [
    "import os, sys; os.truncate(sys.argv[1], 300_000)",
    "import sys; open(sys.argv[1], 'a').write('99999,Late,Row,late@example.com,,,,X,"
    "2024-01-01,\\n' * 50)",
], ids=["truncated", "appended"])
def test_a_file_that_changes_while_it_is_read_is_refused_naming_it_and_nothing_is_staged(
        db_url, conn, tmp_path, change):
    batch = clean_batch(tmp_path, customers=3)
    lines = "".join(customer(i) + "\n" for i in range(4, 30_000))  # ~2.2 MB: several chunks
    with open(batch / "customers.csv", "a") as handle:
        handle.write(lines)
    before = (batch / "customers.csv").stat().st_size
    progress = ChangeFileMidRead(batch / "customers.csv", change)
    with pytest.raises(BatchRefused) as refused:
        ingest_paths(db_url, [tmp_path], progress=progress)
    assert progress.done
    after = (batch / "customers.csv").stat().st_size
    assert refused.value.refusal.message == (
        f"customers.csv changed while it was being read (size {before:,} -> {after:,} bytes, "
        "modified): nothing of the batch was loaded; it is taken again, whole, by the next run "
        "once the file is complete")
    assert nothing_staged(conn)
    assert refusals(conn) == [("batch_0001", "customers.csv", "file_changed")]
    # the file, now complete, loads whole on the next call
    report = ingest_paths(db_url, [tmp_path])
    loaded = report.batches[0].files[0]
    assert loaded.size_bytes == after
    assert loaded.rows_staged == value(conn, "select count(*) from staging.customers") > 3


def test_cr_only_line_ends_refuse_the_batch_and_no_value_is_named_as_a_column(db_url, conn,
                                                                               tmp_path):
    body = "\r".join([CUSTOMERS, customer(1), customer(2).replace("Norway", "United States"),
                      customer(3).replace("Norway", "United States")]) + "\r"
    write_batch(tmp_path, "batch_0001", {"customers.csv": body})
    with pytest.raises(BatchRefused) as refused:
        ingest_paths(db_url, [tmp_path])
    message = refused.value.refusal.message
    assert message == ("customers.csv: the header (line 1) holds a carriage return that is not "
                       "part of a CRLF line end: the line ends are CR only (an old Mac file?); "
                       "convert them to LF or CRLF and deliver the batch again")
    assert refusals(conn) == [("batch_0001", "customers.csv", "cr_line_ends")]
    assert nothing_staged(conn)


def test_cr_only_line_ends_after_the_header_are_reported_as_such(db_url, conn, tmp_path):
    body = CUSTOMERS + "\n" + "\r".join([customer(1), customer(2), customer(3)]) + "\r"
    result = ingest_batch(db_url, write_batch(tmp_path, "batch_0001", {"customers.csv": body}))
    (customers,) = result.files
    assert (customers.rows_in_file, customers.rows_staged, customers.rows_malformed) == (1, 0, 1)
    assert customers.warnings() == [
        "customers.csv: 1 record(s) hold a carriage return that ends no line (CR-only line "
        "ends after the header?), quarantined as malformed: line(s) 2"]


def test_a_stray_quote_is_reported_naming_the_line_where_it_opened(db_url, conn, tmp_path,
                                                                   caplog):
    body = PRODUCTS + "\n" + "".join(
        f'{i},Pipe {i},Home,Acme,1.00,0.50,\n' for i in range(1, 4)) + (
        '4,Pipe 12" long,Home,Acme,1.00,0.50,\n') + "".join(
        f'{i},Pipe {i},Home,Acme,1.00,0.50,\n' for i in range(5, 47))
    batch = write_batch(tmp_path, "batch_0001", {"products.csv": body})
    with caplog.at_level("WARNING", logger="runner.ingest"):
        result = ingest_batch(db_url, batch)
    (products,) = result.files
    assert (products.rows_in_file, products.rows_staged, products.rows_malformed) == (4, 3, 1)
    assert [(r.line_no, r.lines, r.closed) for r in products.long_records] == [(5, 43, False)]
    expected = ("products.csv: the record starting at line 5 spans 43 physical lines to the end "
                'of the file: a quote opened on line 5 (a stray " in a value?) makes the lines '
                "after it one record")
    assert "WARNING " + expected in products.summary("batch_0001")
    assert f"batch_0001/{expected}" in caplog.messages
    assert rows(conn, 'select batch_name, file_name, "check", severity, observed, threshold, '
                      "message from etl.v_dq_events") == [
        ("batch_0001", "products.csv", "long_record", "warn", 43, 5,
         f"batch {result.batch_id} (batch_0001): {expected}")]
    # the batch checks queue it for the alert channels like every event
    run = run_pipeline(db_url, RunOptions(landing=None, retry=RetryPolicy(attempts=1)))
    assert run.status == "succeeded", run.error
    assert rows(conn, "select kind, severity, title from etl.alert where title like "
                      "'%%long_record%%'") == [
        ("dq_event", "warning", f"warehouse: warning long_record in batch {result.batch_id} "
                                "(batch_0001), products.csv")]


def test_records_of_a_few_lines_are_not_reported_as_stray_quotes(db_url, conn, tmp_path):
    body = PRODUCTS + '\n1,"Lamp\nwith\nthree lines",Home,Acme,1.00,0.50,\n'
    result = ingest_batch(db_url, write_batch(tmp_path, "batch_0001", {"products.csv": body}))
    assert result.files[0].long_records == ()
    assert result.files[0].rows_staged == 1


def test_a_batch_name_that_is_not_utf8_is_refused_escaped_after_the_batches_before_it(
        db_url, conn, tmp_path):
    clean_batch(tmp_path, "batch_0001")
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/batch_0002\xff\xfe")
    clean_batch(Path(bad).parent, Path(bad).name)
    clean_batch(tmp_path, "batch_0003")
    done = run_cli(db_url, str(tmp_path))
    assert done.returncode == EXIT_REFUSED, done.stderr
    assert "Traceback" not in done.stderr
    assert ("REFUSED batch batch_0002\\xff\\xfe (" in done.stderr
            and "the batch directory name 'batch_0002\\\\xff\\\\xfe' is not valid UTF-8"
            in done.stderr)
    assert rows(conn, "select batch_name from etl.batch") == [("batch_0001",)]
    assert refusals(conn) == [("batch_0002\\xff\\xfe", None, "bad_batch_name")]


def test_a_newline_in_a_batch_name_cannot_forge_a_log_line(db_url, conn, tmp_path):
    clean_batch(tmp_path, "batch_0001\n2026-01-01 ERROR forged")
    done = run_cli(db_url, str(tmp_path))
    assert done.returncode == EXIT_REFUSED
    assert not any(line.startswith("2026-01-01 ERROR forged") for line in
                   (done.stdout + done.stderr).splitlines())
    assert "batch_0001\\n2026-01-01 ERROR forged" in done.stderr
    assert refusals(conn) == [("batch_0001\\n2026-01-01 ERROR forged", None, "bad_batch_name")]


def test_symbolic_links_in_the_landing_are_refused_and_never_read(db_url, conn, tmp_path):
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text(CUSTOMERS + "\n" + customer(1) + "\n")
    secret.chmod(0o600)
    landing = tmp_path / "landing"
    clean_batch(landing, "batch_0001")
    link_batch = landing / "batch_0002"
    link_batch.mkdir()
    (link_batch / "customers.csv").symlink_to(secret)
    (landing / "batch_0003").symlink_to(clean_batch(tmp_path / "elsewhere", "b"))
    with pytest.raises(BatchRefused) as refused:
        ingest_paths(db_url, [landing])
    assert refused.value.refusal.message == (
        f"customers.csv is a symbolic link (to {secret}): only regular files inside the "
        "landing directory are loaded; copy the file into the batch")
    assert [b.batch_name for b in refused.value.report.batches] == ["batch_0001"]
    (link_batch / "customers.csv").unlink()
    (link_batch / "customers.csv").write_text(CUSTOMERS + "\n" + customer(7) + "\n")
    with pytest.raises(BatchRefused) as refused:
        ingest_paths(db_url, [landing])
    assert refused.value.refusal.message.startswith(
        "the batch directory batch_0003 is a symbolic link (to ")
    assert refusals(conn) == [("batch_0002", "customers.csv", "symlink"),
                              ("batch_0003", None, "symlink")]
    assert rows(conn, "select customer_id from staging.customers order by 1") == [
        ("1",), ("2",), ("3",), ("7",)]


def test_a_landing_or_batch_given_as_a_link_is_followed(db_url, conn, tmp_path):
    clean_batch(tmp_path / "real", "batch_0001")
    (tmp_path / "landing").symlink_to(tmp_path / "real")
    (tmp_path / "batch").symlink_to(tmp_path / "real" / "batch_0001")
    assert [b.batch_name for b in ingest_paths(db_url, [tmp_path / "landing"]).batches] == [
        "batch_0001"]
    assert [b.status for b in ingest_paths(db_url, [tmp_path / "batch"]).batches] == [
        "already_loaded"]


def test_unknown_files_in_a_batch_are_warned_about_names_matched_exactly(db_url, conn,
                                                                        tmp_path):
    batch = clean_batch(tmp_path)
    (batch / "transactions.csv").rename(batch / "TRANSACTIONS.CSV")
    (batch / "notes.txt").write_text("hello")
    (batch / "manifest.json").write_text("{}")
    done = run_cli(db_url, str(batch))
    assert done.returncode == 0, done.stderr
    assert ("batch_0001: not every file was taken (TRANSACTIONS.CSV (not transactions.csv), "
            "notes.txt ignored: file names are matched exactly, case included: customers.csv, "
            "products.csv, transactions.csv, transaction_items.csv)") in done.stderr
    assert value(conn, "select count(*) from staging.transactions") == 0


def test_a_field_over_the_limit_quarantines_its_record_as_malformed(db_url, conn, tmp_path):
    limit = csvstream.MAX_FIELD_BYTES
    at_limit, over = "p" * limit, "q" * (limit + 1)
    body = PRODUCTS + "\n" + "".join([
        f"1,{at_limit},Home,Acme,1.00,0.50,\n",
        f"2,{over},Home,Acme,1.00,0.50,\n",
        f'3,"{over[:-5]}, ""x""",Home,Acme,1.00,0.50,\n',  # quoted: its value is limit + 1
        f'4,"{at_limit[:-3]}, """,Home,Acme,1.00,0.50,\n',  # quoted: its value is the limit
    ])
    result = ingest_batch(db_url, write_batch(tmp_path, "batch_0001", {"products.csv": body}))
    (products,) = result.files
    assert (products.rows_in_file, products.rows_staged, products.rows_malformed) == (4, 2, 2)
    assert [(f.line_no, f.column, f.size) for f in products.long_fields] == [
        (3, "product_name", limit + 1), (4, "product_name", limit + 1)]
    assert staged(conn, "products", "length(product_name)") == [
        (2, limit), (5, limit)]
    assert malformed(conn)[0][:2] == ("products.csv", 3)
    assert (f"WARNING products.csv: line 3, column product_name: a value of {limit + 1:,} "
            f"bytes, over the {limit:,}-byte limit of a field: the record is quarantined as "
            "malformed") in products.summary("batch_0001")


def test_values_at_the_field_limit_pass_every_step(db_url, conn, tmp_path):
    """The longest value ingestion stages goes through validation and the merge into the
    indexed columns (e-mail, category), as random letters that do not compress."""
    limit = csvstream.MAX_FIELD_BYTES
    letters = "".join(random.Random(7).choices(string.ascii_letters, k=limit))
    email = letters[:limit - len("@example.com")] + "@example.com"
    write_batch(tmp_path, "batch_0001", {
        "customers.csv": CUSTOMERS + f"\n1,{letters},Lee,{email},,,,Norway,2024-01-01,\n",
        "products.csv": PRODUCTS + f"\n10,{letters},{letters},{letters},19.90,7.50,\n",
        "transactions.csv": TRANSACTIONS + "\n100,1,2024-02-01T10:00:00Z,paypal,completed\n",
        "transaction_items.csv": ITEMS + "\n1000,100,10,2,19.90,0\n",
    })
    result = run_pipeline(db_url, RunOptions(landing=tmp_path, retry=RetryPolicy(attempts=1)))
    assert result.status == "succeeded", result.error
    assert value(conn, "select length(email) from production.customers") == limit
    assert value(conn, "select length(category_name) from production.categories "
                       "where category_name <> 'Home'") == limit
