"""staging.validate_batch: every rule of docs/data-contract.md, at its boundaries.

Each test stages the smallest batch that shows a rule (tests/staging_data.py), runs the real
procedure, and checks the rules recorded for each line (every rule a row broke, each once;
a row without rules is accepted). The batch's load time is 2025-06-01 12:00:00 UTC.
"""

from __future__ import annotations

import collections
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg2
import psycopg2.extensions
import pytest

from runner import migrate
from tests.conftest import url_for
from tests.staging_data import (
    call,
    create_batch,
    customer,
    fetch,
    item,
    product,
    rejects,
    run_batch,
    transaction,
)

Conn = psycopg2.extensions.connection


def validate(conn: Conn, files: dict, **options: object) -> int:
    batch_id = create_batch(conn, files, **options)
    call(conn, "staging.validate_batch", batch_id)
    return batch_id


def rules_by_value(conn: Conn, batch_id: int, file_name: str, values: list[str]
                   ) -> dict[str, list[str]]:
    """Rules of each staged row (line 2 + i holds values[i]); [] when accepted."""
    found = rejects(conn, batch_id, file_name)
    return {value: found.get(index + 2, []) for index, value in enumerate(values)}


def base_batch(conn: Conn) -> None:
    """Customer 1, product 100, transaction 10 in production (batch of 2025-05-01)."""
    batch_id = create_batch(
        conn,
        {"customers.csv": [customer(1)], "products.csv": [product(100)],
         "transactions.csv": [transaction(10)]},
        load_ts=datetime(2025, 5, 2, tzinfo=UTC),
    )
    run_batch(conn, batch_id)


def test_keys_empty_is_missing_required_and_non_digits_zero_or_overflow_invalid_integer(
        conn: Conn) -> None:
    keys = ["1", "007", " 12 ", "\t13\r\n", "9223372036854775807", "9223372036854775808",
            "00000000000000000000042", "0", "000", "-1", "+1", "1.0", "1e3", "12a", "",
            "   ", "99999999999999999999"]
    batch = validate(conn, {"customers.csv": [
        customer(key, email=f"k{i}@example.com") for i, key in enumerate(keys)]})
    assert rules_by_value(conn, batch, "customers.csv", keys) == {
        "1": [], "007": [], " 12 ": [], "\t13\r\n": [], "9223372036854775807": [],
        "9223372036854775808": ["invalid_integer"], "00000000000000000000042": [],
        "0": ["invalid_integer"], "000": ["invalid_integer"], "-1": ["invalid_integer"],
        "+1": ["invalid_integer"], "1.0": ["invalid_integer"], "1e3": ["invalid_integer"],
        "12a": ["invalid_integer"], "": ["missing_required"], "   ": ["missing_required"],
        "99999999999999999999": ["invalid_integer"],
    }
    assert fetch(conn, "select customer_id from staging.validated_customers "
                       "where rules is null order by line_no") == [
        (1,), (7,), (12,), (13,), (9223372036854775807,), (42,)]


def test_missing_required_text_values_and_empty_optional_values_accepted(conn: Conn) -> None:
    batch = validate(conn, {
        "customers.csv": [
            customer(1, phone="", city=None, state="  ", updated_at=""),
            customer(2, first_name=" "), customer(3, last_name=""), customer(4, country=None),
            customer(5, email=""), customer(6, signup_date="\t"),
            customer(7, first_name="", last_name="", country=""),
        ],
        "products.csv": [
            product(100, brand="", updated_at=None), product(101, product_name=""),
            product(102, category=" "), product(103, unit_price=""), product(104, cost=None),
        ],
    })
    assert rejects(conn, batch, "customers.csv") == {
        3: ["missing_required"], 4: ["missing_required"], 5: ["missing_required"],
        6: ["missing_required"], 7: ["missing_required"], 8: ["missing_required"]}
    assert rejects(conn, batch, "products.csv") == {
        3: ["missing_required"], 4: ["missing_required"], 5: ["missing_required"],
        6: ["missing_required"]}
    assert fetch(conn, "select phone, city, state, source_updated_at "
                       "from staging.validated_customers where customer_id = 1") == [
        (None, None, None, None)]


def test_invalid_email_pattern_and_lower_cased_storage(conn: Conn) -> None:
    emails = ["a@b.co", " Mixed.Case@Example.COM ", "a@b", "a b@c.de", "@b.co", "a@@b.co",
              "a@b.", "a@.co", "plain", "a@b.c@d.e", "a\t@b.co"]
    batch = validate(conn, {"customers.csv": [
        customer(i + 1, email=email) for i, email in enumerate(emails)]})
    assert rules_by_value(conn, batch, "customers.csv", emails) == {
        "a@b.co": [], " Mixed.Case@Example.COM ": [], "a@b": ["invalid_email"],
        "a b@c.de": ["invalid_email"], "@b.co": ["invalid_email"],
        "a@@b.co": ["invalid_email"], "a@b.": ["invalid_email"], "a@.co": ["invalid_email"],
        "plain": ["invalid_email"], "a@b.c@d.e": ["invalid_email"],
        "a\t@b.co": ["invalid_email"],
    }
    assert fetch(conn, "select email from staging.validated_customers where customer_id = 2") \
        == [("mixed.case@example.com",)]


@pytest.fixture
def c_ctype_conn(pg_cluster):  # noqa: ANN001, ANN201
    """A migrated database whose lc_ctype is C, as on a cluster made with --no-locale."""
    name = f"c_ctype_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(url_for("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}" template template0 encoding \'UTF8\' '
                    "lc_collate 'C' lc_ctype 'C'")
    migrate.upgrade(url_for(name))
    conn = psycopg2.connect(url_for(name), options="-c timezone=UTC")
    conn.autocommit = True
    yield conn
    conn.close()
    with admin.cursor() as cur:
        cur.execute(f'drop database "{name}"')
    admin.close()


def test_the_test_cluster_has_a_utf8_character_type(conn: Conn) -> None:
    assert fetch(conn, "select datctype ilike '%%utf%%8' from pg_database "
                       "where datname = current_database()") == [(True,)]


@pytest.mark.parametrize("database", ["utf8_ctype", "c_ctype"])
def test_emails_are_lower_cased_the_same_whatever_the_servers_ctype(request, database) -> None:  # noqa: ANN001
    conn = request.getfixturevalue("conn" if database == "utf8_ctype" else "c_ctype_conn")
    batch = create_batch(conn, {"customers.csv": [customer(1, email="ÉMILE@BÜCHER.DE"),
                                                  customer(2, email="émile@bücher.de")]})
    call(conn, "staging.validate_batch", batch)
    assert fetch(conn, "select customer_id, email from staging.validated_customers "
                       "order by customer_id") == [(1, "émile@bücher.de"), (2, "émile@bücher.de")]
    assert rejects(conn, batch, "customers.csv") == {3: ["email_conflict"]}  # line 3


def test_signup_date_must_be_a_real_day_between_2000_and_the_load_date(conn: Conn) -> None:
    dates = ["2024-02-29", "2000-01-01", "2025-06-01", " 2025-05-31 ", "2023-02-29",
             "2025-02-30", "2025-04-31", "2025-13-01", "2025-00-10", "2025-01-00", "2025-1-01",
             "01/02/2025", "20250101", "0000-01-01", "2025-01-01T00:00:00", "1999-12-31",
             "2025-06-02", "2999-12-31"]
    batch = validate(conn, {"customers.csv": [
        customer(i + 1, signup_date=value) for i, value in enumerate(dates)]},
        load_ts=datetime(2025, 6, 1, 23, 59, 59, tzinfo=UTC))
    invalid = ["invalid_date"]
    assert rules_by_value(conn, batch, "customers.csv", dates) == {
        "2024-02-29": [], "2000-01-01": [], "2025-06-01": [], " 2025-05-31 ": [],
        "2023-02-29": invalid, "2025-02-30": invalid, "2025-04-31": invalid,
        "2025-13-01": invalid, "2025-00-10": invalid, "2025-01-00": invalid,
        "2025-1-01": invalid, "01/02/2025": invalid, "20250101": invalid,
        "0000-01-01": invalid, "2025-01-01T00:00:00": invalid,
        "1999-12-31": ["out_of_range"], "2025-06-02": ["out_of_range"],
        "2999-12-31": ["out_of_range"],
    }


VALID_TIMESTAMPS = {
    "2025-01-02 03:04:05": "2025-01-02 03:04:05+00",
    "2025-01-02T03:04:05": "2025-01-02 03:04:05+00",
    "2025-01-02T03:04:05Z": "2025-01-02 03:04:05+00",
    "2025-01-02 03:04:05Z": "2025-01-02 03:04:05+00",
    "2025-01-02T03:04:05.5": "2025-01-02 03:04:05.5+00",
    "2025-01-02T03:04:05.000000": "2025-01-02 03:04:05+00",
    "2025-01-02T03:04:05.123456Z": "2025-01-02 03:04:05.123456+00",
    "2025-01-02T03:04:05+05:30": "2025-01-01 21:34:05+00",
    "2025-01-02T03:04:05-0800": "2025-01-02 11:04:05+00",
    "2025-01-02T03:04:05.25+0130": "2025-01-02 01:34:05.25+00",
    "2025-01-02T03:04:05+14:00": "2025-01-01 13:04:05+00",
    "2025-01-02T03:04:05-14:59": "2025-01-02 18:03:05+00",
    "2024-02-29 23:59:59": "2024-02-29 23:59:59+00",
    " 2025-01-02 03:04:05\t": "2025-01-02 03:04:05+00",
}
INVALID_TIMESTAMPS = [
    "2025-01-02", "2025-01-02 24:00:00", "2025-01-02T03:60:05", "2025-01-02 03:04:60",
    "2025-01-02t03:04:05", "2025-01-02T03:04:05z", "2023-02-29 03:04:05", "now",
    "01/02/2025 03:04", "2025-01-02T03:04:05+15:00", "2025-01-02T03:04:05+05:60",
    "2025-01-02 03:04:05.1234567", "2025-01-02 03:04", "2025-01-02  03:04:05",
    "2025-01-02T03:04:05 +01:00", "2025-01-02T03:04:05.", "2025-01-02T03:04:05+05",
    "2025-01-02T03:04:05+0", "0000-01-01 00:00:00", "2025-1-02 03:04:05",
    "2025-01-02T03:04:05Z+01:00", "2025-01-02T3:04:05", "2025--1-02 03:04:05",
]


def test_timestamp_grammar_of_the_contract(conn: Conn) -> None:
    values = list(VALID_TIMESTAMPS) + INVALID_TIMESTAMPS
    batch = validate(conn, {
        "customers.csv": [customer(1)],
        "transactions.csv": [transaction(i + 1, transaction_ts=value)
                             for i, value in enumerate(values)],
    })
    expected = {value: [] for value in VALID_TIMESTAMPS}
    expected |= {value: ["invalid_timestamp"] for value in INVALID_TIMESTAMPS}
    assert rules_by_value(conn, batch, "transactions.csv", values) == expected
    stored = fetch(conn, "select line_no, transaction_ts from staging.validated_transactions "
                         "where transaction_ts is not null order by line_no")
    assert [ts for _, ts in stored] == [
        datetime.fromisoformat(text) for text in VALID_TIMESTAMPS.values()]


def test_timestamps_out_of_range_before_2000_or_after_the_load_time(conn: Conn) -> None:
    load = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    values = ["2000-01-01 00:00:00", "1999-12-31 23:59:59", "2000-01-01T00:30:00+01:00",
              "2025-06-01 12:00:00", "2025-06-01T13:00:00+01:00", "2025-06-01 12:00:01",
              "2025-06-01T12:00:00.000001Z", "2025-06-01T12:00:00-00:01", "2099-01-01 00:00:00"]
    batch = validate(conn, {
        "customers.csv": [customer(1)],
        "transactions.csv": [transaction(i + 1, transaction_ts=value)
                             for i, value in enumerate(values)],
        "products.csv": [product(i + 1, updated_at=value) for i, value in enumerate(values)],
    }, load_ts=load)
    out = ["out_of_range"]
    expected = {"2000-01-01 00:00:00": [], "1999-12-31 23:59:59": out,
                "2000-01-01T00:30:00+01:00": out, "2025-06-01 12:00:00": [],
                "2025-06-01T13:00:00+01:00": [], "2025-06-01 12:00:01": out,
                "2025-06-01T12:00:00.000001Z": out, "2025-06-01T12:00:00-00:01": out,
                "2099-01-01 00:00:00": out}
    assert rules_by_value(conn, batch, "transactions.csv", values) == expected
    assert rules_by_value(conn, batch, "products.csv", values) == expected


def test_customer_updated_at_is_optional_but_checked_when_present(conn: Conn) -> None:
    batch = validate(conn, {"customers.csv": [
        customer(1, updated_at=""), customer(2, updated_at="2025-05-01T10:00:00Z"),
        customer(3, updated_at="yesterday"), customer(4, updated_at="1999-01-01 00:00:00")]})
    assert rejects(conn, batch, "customers.csv") == {
        4: ["invalid_timestamp"], 5: ["out_of_range"]}


def test_money_unit_price_above_zero_cost_zero_or_more_pattern_and_ten_digits(
        conn: Conn) -> None:
    prices = ["0.01", "19.9", "019.90", " 20 ", "1234567890.99", "0", "0.00", "-0.00",
              "-5.00", "12345678901", "1.555", "1.", ".5", "$5", "5 EUR", "1,5", "1.2.3",
              "--1", "1e2"]
    costs = ["0", "-0.00", "0.00", "7.5", "-0.01", "-1", "abc", "1234567890", "12345678901.00"]
    batch = validate(conn, {"products.csv": [
        *(product(i + 1, unit_price=value) for i, value in enumerate(prices)),
        *(product(100 + i, cost=value, _line=str(100 + i)) for i, value in enumerate(costs)),
    ]})
    bad = ["invalid_amount"]
    assert rules_by_value(conn, batch, "products.csv", prices) == {
        "0.01": [], "19.9": [], "019.90": [], " 20 ": [], "1234567890.99": [], "0": bad,
        "0.00": bad, "-0.00": bad, "-5.00": bad, "12345678901": bad, "1.555": bad, "1.": bad,
        ".5": bad, "$5": bad, "5 EUR": bad, "1,5": bad, "1.2.3": bad, "--1": bad, "1e2": bad,
    }
    found = rejects(conn, batch, "products.csv")
    assert {value: found.get(100 + i, []) for i, value in enumerate(costs)} == {
        "0": [], "-0.00": [], "0.00": [], "7.5": [], "-0.01": bad, "-1": bad, "abc": bad,
        "1234567890": [], "12345678901.00": bad,
    }
    assert fetch(conn, "select unit_price, cost from staging.validated_products "
                       "where product_id in (2, 101) order by product_id") == [
        (Decimal("19.90"), Decimal("7.50")), (Decimal("19.90"), Decimal("0.00"))]


def test_item_quantity_one_to_thousand_digits_only(conn: Conn) -> None:
    quantities = ["1", "1000", "0001", " 7 ", "0", "1001", "2.5", "1e2", "1 2", "abc", "-1",
                  "99999999999", ""]
    base_batch(conn)
    batch = validate(conn, {"transaction_items.csv": [
        item(i + 1, quantity=value) for i, value in enumerate(quantities)]})
    bad = ["invalid_quantity"]
    assert rules_by_value(conn, batch, "transaction_items.csv", quantities) == {
        "1": [], "1000": [], "0001": [], " 7 ": [], "0": bad, "1001": bad, "2.5": bad,
        "1e2": bad, "1 2": bad, "abc": bad, "-1": bad, "99999999999": bad,
        "": ["missing_required"],
    }


def test_item_unit_price_zero_allowed_negative_or_malformed_invalid_amount(conn: Conn) -> None:
    prices = ["0", "0.00", "-0.00", "10.5", "-0.01", "1.234", "$1", ""]
    base_batch(conn)
    batch = validate(conn, {"transaction_items.csv": [
        item(i + 1, unit_price=value, discount="") for i, value in enumerate(prices)]})
    bad = ["invalid_amount"]
    assert rules_by_value(conn, batch, "transaction_items.csv", prices) == {
        "0": [], "0.00": [], "-0.00": [], "10.5": [], "-0.01": bad, "1.234": bad, "$1": bad,
        "": ["missing_required"],
    }


def test_discount_empty_is_zero_and_at_most_quantity_times_unit_price(conn: Conn) -> None:
    base_batch(conn)
    rows = [  # quantity 2 x 19.90 = 39.80
        ("", "2", "19.90", []), (None, "2", "19.90", []), ("0", "2", "19.90", []),
        ("-0.00", "2", "19.90", []), ("39.80", "2", "19.90", []),
        ("39.81", "2", "19.90", ["invalid_discount"]),
        ("-0.01", "2", "19.90", ["invalid_discount"]),
        ("10%", "2", "19.90", ["invalid_discount"]),
        ("1.234", "2", "19.90", ["invalid_discount"]),
        ("5,00", "2", "19.90", ["invalid_discount"]),
        ("100", "0", "19.90", ["invalid_quantity"]),  # no comparison with a broken quantity
        ("100", "2", "x", ["invalid_amount"]),
        ("0.01", "1", "0", ["invalid_discount"]),
    ]
    batch = validate(conn, {"transaction_items.csv": [
        item(i + 1, discount=discount, quantity=quantity, unit_price=price)
        for i, (discount, quantity, price, _) in enumerate(rows)]})
    found = rejects(conn, batch, "transaction_items.csv")
    assert [found.get(i + 2, []) for i in range(len(rows))] == [r[3] for r in rows]
    call(conn, "production.merge_batch", batch)
    assert fetch(conn, "select discount from production.transaction_items "
                       "where item_id in (1, 2) order by item_id") == [
        (Decimal("0.00"),), (Decimal("0.00"),)]


def test_payment_method_and_status_normalised_spellings_accepted(conn: Conn) -> None:
    methods = ["credit_card", "Credit Card", " credit-card ", "credit__card", "CREDIT_CARD",
               "credit - card", "Cash On Delivery", "gift-card", "PayPal", "Pay Pal",
               "creditcard", "bitcoin", "credit\tcard", ""]
    statuses = ["COMPLETED", " Cancelled ", "refunded", "Pending", "complete", "canceled",
                "on hold", "-completed-", ""]
    batch = validate(conn, {
        "customers.csv": [customer(1)],
        "transactions.csv": [
            *(transaction(i + 1, payment_method=value) for i, value in enumerate(methods)),
            *(transaction(100 + i, status=value, _line=str(100 + i))
              for i, value in enumerate(statuses)),
        ],
    })
    bad = ["invalid_payment_method"]
    assert rules_by_value(conn, batch, "transactions.csv", methods) == {
        "credit_card": [], "Credit Card": [], " credit-card ": [], "credit__card": [],
        "CREDIT_CARD": [], "credit - card": [], "Cash On Delivery": [], "gift-card": [],
        "PayPal": [], "Pay Pal": bad, "creditcard": bad, "bitcoin": bad, "credit\tcard": bad,
        "": ["missing_required"],
    }
    found = rejects(conn, batch, "transactions.csv")
    assert {value: found.get(100 + i, []) for i, value in enumerate(statuses)} == {
        "COMPLETED": [], " Cancelled ": [], "refunded": [], "Pending": [],
        "complete": ["invalid_status"], "canceled": ["invalid_status"],
        "on hold": ["invalid_status"], "-completed-": ["invalid_status"],
        "": ["missing_required"],
    }
    assert fetch(conn, "select distinct payment_method_code from staging.validated_transactions"
                       " where rules is null order by 1") == [
        ("cash_on_delivery",), ("credit_card",), ("gift_card",), ("paypal",)]


def test_unknown_references_only_for_well_formed_ids(conn: Conn) -> None:
    base_batch(conn)  # customer 1, product 100, transaction 10 in production
    batch = validate(conn, {
        "customers.csv": [customer(2), customer(3, email="bad")],
        "products.csv": [product(200)],
        "transactions.csv": [
            transaction(20, customer_id="2"),     # accepted earlier in the batch
            transaction(21, customer_id="1"),     # in production
            transaction(22, customer_id="3"),     # rejected earlier in the batch
            transaction(23, customer_id="99"),    # never seen
            transaction(24, customer_id="x9"),    # not an id: no unknown_customer
            transaction(25, customer_id=""),
        ],
        "transaction_items.csv": [
            item(1, transaction_id="20", product_id="200"),
            item(2, transaction_id="10", product_id="100"),
            item(3, transaction_id="22", product_id="100"),
            item(4, transaction_id="10", product_id="999"),
            item(5, transaction_id="77", product_id="888"),
            item(6, transaction_id="-4", product_id="100"),
            item(7, transaction_id="10", product_id=" 0100 "),
        ],
    })
    assert rejects(conn, batch, "transactions.csv") == {
        4: ["unknown_customer"], 5: ["unknown_customer"], 6: ["invalid_integer"],
        7: ["missing_required"]}
    assert rejects(conn, batch, "transaction_items.csv") == {
        4: ["unknown_transaction"], 5: ["unknown_product"],
        6: ["unknown_product", "unknown_transaction"], 7: ["invalid_integer"]}


def test_duplicate_key_last_row_wins_even_when_it_is_invalid(conn: Conn) -> None:
    batch = validate(conn, {"customers.csv": [
        customer("5", first_name="First"),
        customer("005", email="not-an-email"),   # a duplicate with its own defect
        customer(" 5 ", first_name="Last", email="five@example.com"),  # the last row wins
        customer("6", city="Old"),
        customer("6", signup_date="2025-02-30"),  # the last row of key 6 is invalid
        customer("x", email="x1@example.com"), customer("x", email="x2@example.com"),
        customer("", email="e1@example.com"), customer("", email="e2@example.com"),
    ]}, malformed={"customers.csv": [(12, "5,too,few")]})
    assert rejects(conn, batch, "customers.csv") == {
        2: ["duplicate_key"], 3: ["duplicate_key"], 5: ["duplicate_key"],
        6: ["invalid_date"], 7: ["invalid_integer"], 8: ["invalid_integer"],
        9: ["missing_required"], 10: ["missing_required"], 12: ["malformed_row"]}
    assert fetch(conn, "select customer_id, first_name from staging.validated_customers "
                       "where rules is null") == [(5, "Last")]


def test_duplicate_transaction_last_row_decides_what_items_may_refer_to(conn: Conn) -> None:
    batch = validate(conn, {
        "customers.csv": [customer(1)],
        "transactions.csv": [transaction(10), transaction(10, status="lost"),
                             transaction(11, status="lost"), transaction(11)],
        "transaction_items.csv": [item(1, transaction_id="10"), item(2, transaction_id="11")],
        "products.csv": [product(100)],
    })
    assert rejects(conn, batch, "transactions.csv") == {
        2: ["duplicate_key"], 3: ["invalid_status"], 4: ["duplicate_key"]}
    assert rejects(conn, batch, "transaction_items.csv") == {2: ["unknown_transaction"]}


def test_email_conflict_within_a_batch_first_accepted_line_claims(conn: Conn) -> None:
    batch = validate(conn, {"customers.csv": [
        customer(1, email="same@example.com"),
        customer(2, email=" SAME@example.com"),                   # conflict with line 2
        customer(3, email="other@example.com", country=""),       # rejected: claims nothing
        customer(4, email="Other@Example.com"),                   # accepted
        customer(5, email="dup@example.com"),                     # duplicate row: no claim
        customer(6, email="dup@example.com"),
        customer(5, email="five@example.com"),
        customer("bad", email="same@example.com"),                # invalid key, conflict too
        customer(7, email="same@example.com", signup_date="x"),   # other rule and conflict
    ]})
    assert rejects(conn, batch, "customers.csv") == {
        3: ["email_conflict"], 4: ["missing_required"], 6: ["duplicate_key"],
        9: ["email_conflict", "invalid_integer"], 10: ["email_conflict", "invalid_date"]}


def test_email_conflict_against_production_before_the_batch(conn: Conn) -> None:
    first = create_batch(conn, {"customers.csv": [
        customer(1, email="one@example.com"), customer(2, email="two@example.com")]})
    run_batch(conn, first)
    batch = validate(conn, {"customers.csv": [
        customer(3, email="ONE@example.com"),                 # owned by customer 1
        customer(1, email="one@example.com", city="Moved"),   # its owner: an update
        customer(2, email="new-two@example.com"),              # 2 moves away ...
        customer(4, email="two@example.com"),                  # ... still owned before
    ]})
    assert rejects(conn, batch, "customers.csv") == {
        2: ["email_conflict"], 5: ["email_conflict"]}


def test_a_row_breaking_several_rules_records_each_once_with_raw_values(conn: Conn) -> None:
    batch = validate(conn, {"customers.csv": [
        customer(" x1 ", first_name="", last_name=" ", email="nope", signup_date="2025-02-30",
                 updated_at="later")]})
    assert fetch(conn, "select line_no, record_key, rules, raw from etl.rejected_row "
                       "where batch_id = %s", (batch,)) == [(
        2, " x1 ",
        ["missing_required", "invalid_integer", "invalid_email", "invalid_date",
         "invalid_timestamp"],
        {"customer_id": " x1 ", "first_name": "", "last_name": " ", "email": "nope",
         "phone": "555-0100", "city": "Springfield", "state": "IL", "country": "US",
         "signup_date": "2025-02-30", "updated_at": "later"},
    )]


def test_counts_per_file_and_rule_balance_the_reconciliation(conn: Conn) -> None:
    batch = validate(conn, {
        "customers.csv": [customer(1), customer(2, email="x"), customer(3, email="y",
                                                                          country="")],
        "transactions.csv": [transaction(10), transaction(11, customer_id="99")],
    }, malformed={"customers.csv": [(5, '"broken')]})
    assert fetch(conn, "select file_name, rows_in_file, rows_accepted, rows_rejected, "
                       "rows_pending, balanced from etl.v_batch_reconciliation "
                       "where batch_id = %s order by file_name", (batch,)) == [
        ("customers.csv", 4, 1, 3, 0, True), ("transactions.csv", 2, 1, 1, 1, True)]
    counts = dict(((f, r), n) for f, r, n in fetch(
        conn, "select file_name, rule, rows from etl.dq_result where batch_id = %s", (batch,)))
    assert counts[("customers.csv", "invalid_email")] == 2
    assert counts[("customers.csv", "missing_required")] == 1
    assert counts[("customers.csv", "malformed_row")] == 1
    assert counts[("customers.csv", "email_conflict")] == 0
    assert counts[("transactions.csv", "unknown_customer")] == 1
    assert ("transactions.csv", "invalid_email") not in counts
    assert fetch(conn, "select rule, rows from etl.v_reject_summary where batch_id = %s "
                       "and file_name = 'customers.csv' order by rule", (batch,)) == [
        ("invalid_email", 2), ("malformed_row", 1), ("missing_required", 1)]
    assert fetch(conn, "select step, rows from etl.batch_step where batch_id = %s",
                 (batch,)) == [("validate", 6)]


def test_validate_twice_leaves_the_same_state(conn: Conn) -> None:
    batch = create_batch(conn, {
        "customers.csv": [customer(1), customer(1), customer(2, email="bad")],
        "transactions.csv": [transaction(10), transaction(11, customer_id="5")],
    }, malformed={"transactions.csv": [(9, "x")]})

    def state() -> tuple:
        return (
            fetch(conn, "select file_name, line_no, record_key, rules, raw, raw_text "
                        "from etl.rejected_row order by 1, 2"),
            fetch(conn, "select file_name, rule, rows from etl.dq_result order by 1, 2"),
            fetch(conn, "select file_name, rows_accepted from etl.batch_file order by 1"),
            fetch(conn, "select line_no, customer_id, email, rules "
                        "from staging.validated_customers order by 1"),
            fetch(conn, "select line_no, transaction_id, rules "
                        "from staging.validated_transactions order by 1"),
        )

    call(conn, "staging.validate_batch", batch)
    first = state()
    call(conn, "staging.validate_batch", batch)
    assert state() == first


def test_validate_after_the_merge_keeps_the_results(conn: Conn) -> None:
    batch = create_batch(conn, {"customers.csv": [
        customer(1, email="a@example.com"), customer(2, email="a@example.com")]})
    run_batch(conn, batch)
    notices = call(conn, "staging.validate_batch", batch)
    assert any("already merged" in notice for notice in notices)
    assert rejects(conn, batch) == {3: ["email_conflict"]}


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_session_time_zone_gives_the_same_result(conn: Conn, zone: str) -> None:
    load = datetime(2025, 6, 1, 23, 30, tzinfo=UTC)  # already June 2 in Tokyo
    files = {
        "customers.csv": [customer(1, signup_date="2025-06-01"),
                          customer(2, signup_date="2025-06-02"),
                          customer(3, updated_at="2025-06-01 23:30:00"),
                          customer(4, updated_at="2025-06-02T08:00:00+09:00"),
                          customer(5, updated_at="2025-06-02T08:31:00+09:00")],
        "transactions.csv": [transaction(10, transaction_ts="2025-06-01T16:30:00-07:00"),
                             transaction(11, transaction_ts="2025-06-01 23:30:01")],
    }
    utc_batch = validate(conn, files, load_ts=load)
    with conn.cursor() as cur:
        cur.execute("set timezone = %s", (zone,))
    zone_batch = validate(conn, files, load_ts=load)
    for file_name, expected in (("customers.csv", {3: ["out_of_range"], 6: ["out_of_range"]}),
                                ("transactions.csv", {3: ["out_of_range"]})):
        assert rejects(conn, zone_batch, file_name) == expected
        assert rejects(conn, utc_batch, file_name) == expected
    query = ("select line_no, extract(epoch from transaction_ts) "
             "from staging.validated_transactions where batch_id = %s order by 1")
    assert fetch(conn, query, (zone_batch,)) == fetch(conn, query, (utc_batch,))


def test_typed_partitions_of_a_batch_without_statistics_are_built_by_hash_joins(
        conn: Conn) -> None:
    """A new batch's staged rows have no statistics (estimated at one row); joined by nested
    loop, a 150,000-row increment took minutes. The plans must not hold one."""
    first = create_batch(conn, {
        "customers.csv": [customer(1)], "products.csv": [product(100)],
        "transactions.csv": [transaction(t) for t in range(10, 60)],
        "transaction_items.csv": [item(i, transaction_id=str(10 + i % 50))
                                  for i in range(1000, 1200)],
    })
    run_batch(conn, first)
    with conn.cursor() as cur:
        cur.execute("analyze staging.transactions, staging.transaction_items")
    second = create_batch(conn, {
        "transactions.csv": [transaction(t) for t in range(60, 110)],
        "transaction_items.csv": [item(i, transaction_id=str(60 + i % 50))
                                  for i in range(2000, 2200)],
    })
    notices = collections.deque()  # every notice (psycopg2 keeps the last 50 of a list)
    saved, conn.notices = conn.notices, notices
    try:
        with conn.cursor() as cur:
            cur.execute("load 'auto_explain'")
            cur.execute("set auto_explain.log_min_duration = 0")
            cur.execute("set auto_explain.log_nested_statements = on")
            cur.execute("set auto_explain.log_level = notice")
            cur.execute("call staging.validate_batch(%s)", (second,))
            cur.execute("set auto_explain.log_min_duration = -1")
        if not conn.autocommit:
            conn.commit()
    finally:
        conn.notices = saved
    builds = [n for n in notices if "create unlogged table staging.validated_transaction" in n]
    assert len(builds) == 2
    assert [("Nested Loop" in plan, "Hash" in plan) for plan in builds] == [(False, True)] * 2
    assert rejects(conn, second, "transaction_items.csv") == {}
