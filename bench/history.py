"""``python -m bench --preset history``: three years of a growing shop (issue 17).

The generator's ``--customers 300000 --products 20000 --transactions 5000000 --start
2023-01-01 --days 1064 --batches 11 --initial-share 0.99`` (``--orders N`` scales customers,
products and orders together, for the growth figures at 1M and 2.5M orders): the initial
load of 1,053 days, then ten increments of about one day each, of which ``batch_0002``
carries the status changes of the whole history (pending to completed, refunds).

1. A fresh database on the chosen server (bench/servers.py: ``durable`` by default, the
   compose settings; ``fast``, the embedded cluster's; ``url``, DATABASE_URL's).
2. The initial batch through every stage, beside the bare COPY + typed INSERT floor of the
   same files and rows in the same run; database size, staging's share of it.
3. ``batch_0002`` (the status feed) to ``batch_0007`` as daily runs, each timed per step.
   Before ``batch_0007``'s fact step, the drill-down indexes' cost: its ``load_fact_sales``
   in a rolled-back transaction with and without them (transactional DDL), alternated.
4. ``batch_0008`` to ``batch_0011`` cut into 1,000-order micro-batches (the first 20),
   delivered one after the other into a landing folder watched by a real
   ``python -m runner watch`` process: each written under a hidden name, renamed, then
   marked with ``_READY``; the latency is from the marker to the batch's ``processed_at``
   (after its aggregates committed, so visible in ``analytics.v_daily_sales``).
5. BI queries, drill-downs, docs/bi.md's examples and the line floors of the questions over
   100 ms (median of five, or two for the examples and floors, after a warm-up; drill-downs
   also as delivered by COPY), the staging purge (sizes
   before and after ``etl.purge_staging`` and VACUUM), the machine's load before and after.

Results go to stdout and ``bench/out/history-<server>-<orders>.json``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg2.extensions import connection

from bench import servers
from runner import migrate
from runner.config import PROJECT_ROOT
from runner.db import connect
from runner.ingest import ingest_batch
from runner.steps import INGEST_STEP, read_steps

OUT = PROJECT_ROOT / "bench" / "out"
HISTORY_ORDERS = 5_000_000
HISTORY = {"customers": 300_000, "products": 20_000, "start": "2023-01-01", "days": 1064,
           "batches": 11, "initial-share": 0.99}
DAILY = slice(1, 7)  # batch_0002 (status feed) .. batch_0007
MICRO = slice(7, 11)  # batch_0008 .. batch_0011, cut into micro-batches
MICRO_ORDERS = 1_000
MICRO_BATCHES = 20
DRILLDOWN_INDEXES = ("warehouse.fact_sales_customer_idx",
                     "warehouse.fact_sales_product_date_idx")
FILES = ("customers", "products", "transactions", "transaction_items")

DRILL_DOWNS = {
    "v_sales: one customer": "select * from analytics.v_sales where customer_id = %(customer)s",
    "v_sales: one order": "select * from analytics.v_sales where transaction_id = %(order)s",
    "v_sales: one product over a month": (
        "select * from analytics.v_sales where product_id = %(product)s "
        "and sales_date >= %(month)s and sales_date < %(month)s::date + interval '1 month'"),
    "v_sales: one day": "select * from analytics.v_sales where sales_date = %(day)s",
}
# The other examples of docs/bi.md ("Example SQL"), on the drill-downs' month, its quarter
# and the month's best-selling category (the quarter is the three months from the month).
BI_EXAMPLES = {
    "bi.md: top 10 products of a month": (
        "select product_id, product_name, category, brand, orders, units, revenue, margin, "
        "revenue_rank_in_category from analytics.v_product_performance "
        "where month = %(month)s order by revenue desc, product_id limit 10"),
    "bi.md: best seller of every category, month by month": (
        "select month, category, product_id, product_name, revenue "
        "from analytics.v_category_best_sellers order by month, category"),
    "bi.md: revenue and margin by category over six months": (
        "select category, sum(units), sum(revenue), sum(margin) "
        "from analytics.v_product_performance "
        "where month between %(month)s and %(month)s::date + interval '5 months' "
        "group by category order by 3 desc"),
    "bi.md: active customers of a quarter": (
        "select count(distinct customer_id) from analytics.v_customer_activity "
        "where month between %(month)s and %(month)s::date + interval '2 months'"),
    "bi.md: revenue by category of a month": (
        "select category, sum(revenue), sum(margin) from analytics.v_product_performance "
        "where month = %(month)s group by category order by 2 desc"),
    "bi.md: the orders behind one day": (
        "select transaction_id, customer_id, payment_method, count(*), sum(quantity), "
        "sum(line_amount), sum(line_margin) from analytics.v_sales "
        "where sales_date = %(day)s and status = 'completed' "
        "group by transaction_id, customer_id, payment_method order by 6 desc"),
    "bi.md: the lines behind one product's month": (
        "select transaction_id, transaction_ts, customer_id, country, quantity, unit_price, "
        "discount, line_amount, line_margin from analytics.v_sales "
        "where product_id = %(product)s and sales_month = %(month)s "
        "and status = 'completed' order by transaction_ts"),
    "bi.md: status mix of a month": (
        "select status, count(distinct transaction_id), sum(line_amount) "
        "from analytics.v_sales where sales_month = %(month)s group by status order by 3 desc"),
    "bi.md: one category and payment method over a quarter": (
        "select sum(orders), sum(revenue) from analytics.v_daily_category_sales "
        "where category = %(category)s and payment_method = 'paypal' "
        "and sales_date >= %(month)s and sales_date < %(month)s::date + interval '3 months'"),
    "bi.md: active customers of a category over a quarter": (
        "select count(distinct customer_id) from analytics.v_order_categories "
        "where category = %(category)s and sales_date >= %(month)s "
        "and sales_date < %(month)s::date + interval '3 months'"),
    "bi.md: products of a category paid by card over a quarter": (
        "select product_id, product_name, sum(revenue) as revenue, "
        "rank() over (order by sum(revenue) desc) "
        "from analytics.v_product_payment_monthly "
        "where category = %(category)s and payment_method = 'credit_card' "
        "and month between %(month)s and %(month)s::date + interval '2 months' "
        "group by product_id, product_name order by revenue desc"),
}


# The last month with sales: bench/__main__.py's BI queries read it, and the line floor of
# the one of them that stays over 100 ms
LAST_MONTH_SQL = "select max(month) from analytics.v_monthly_sales where orders > 0"

# The least time a reading of the lines can take for each typical question that stays over
# 100 ms at 5M (docs/performance.md, "Session 13: why the BI target is blocked on two
# cores"): the question's lines read straight from the fact through its date_key and
# (product_key, date_key) indexes, with no order status (which every one of them needs:
# metrics count completed orders), no calendar and no view. A question whose floor is over
# 100 ms cannot be answered within it by any view over the lines, only by an aggregate; one
# under it only through a way to the orders' status that costs nothing per line. Same
# parameters as BI_EXAMPLES; the v_sales question of bench/__main__.py's BI_QUERIES reads
# the last month (``last_month``).


def _lines(month: str, span: str, category: bool = False, joins: str = "") -> str:
    """FROM and WHERE of the fact lines of ``span`` from the month parameter ``month``
    (through the date_key index), of the current category's products when ``category``
    (through the product index)."""
    period = (f"f.date_key >= warehouse.date_key(%({month})s::date) and f.date_key < "
              f"warehouse.date_key((%({month})s::date + interval '{span}')::date)")
    if not category:
        return f"from warehouse.fact_sales f {joins}where {period}"
    return ("from warehouse.dim_product cur "
            "join warehouse.dim_product p on p.product_id = cur.product_id "
            "join warehouse.fact_sales f on f.product_key = p.product_key "
            f"where cur.is_current and cur.category = %(category)s and {period}")


def _paid_by(method: str) -> str:
    return (" and f.payment_method_key = (select payment_method_key from "
            f"warehouse.dim_payment_method where payment_method_code = '{method}')")


LINE_FLOORS = {
    "floor: v_sales revenue by category of the last month (no status)": (
        "select p.category, sum(f.line_amount) "
        + _lines("last_month", "1 month",
                 joins="join warehouse.dim_product p on p.product_key = f.product_key ")
        + " group by p.category"),
    "floor: bi.md status mix of a month (no status)": (
        "select count(distinct f.transaction_id), sum(f.line_amount) "
        + _lines("month", "1 month")),
    "floor: bi.md one category and payment method over a quarter (no status)": (
        "select count(*), sum(f.line_amount) " + _lines("month", "3 months", category=True)
        + _paid_by("paypal")),
    "floor: bi.md active customers of a category over a quarter (no status)": (
        "select count(distinct f.customer_key) " + _lines("month", "3 months", category=True)),
    "floor: bi.md products of a category paid by card over a quarter (no status)": (
        "select cur.product_id, sum(f.line_amount) "
        + _lines("month", "3 months", category=True) + _paid_by("credit_card")
        + " group by cur.product_id"),
}

# -- data -----------------------------------------------------------------------------------

def generate(orders: int) -> Path:
    """The history's files for ``orders`` orders (customers and products scaled alike);
    reused when generated before with the same options."""
    share = orders / HISTORY_ORDERS
    args = ["--customers", str(round(HISTORY["customers"] * share)),
            "--products", str(round(HISTORY["products"] * share)),
            "--transactions", str(orders), "--start", HISTORY["start"],
            "--days", str(HISTORY["days"]), "--batches", str(HISTORY["batches"]),
            "--initial-share", str(HISTORY["initial-share"]), "--seed", "2026", "--quiet"]
    out = OUT / f"history-{orders}"
    stamp = out / "options.json"
    if stamp.exists() and json.loads(stamp.read_text()) == args:
        print(f"reusing generated files in {out}")
        return out
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "generator", *args, "--out", str(out)], check=True)
    print(f"generated {' '.join(args)} in {time.perf_counter() - started:.1f} s")
    stamp.write_text(json.dumps(args))
    return out


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def micro_batches(batches: list[Path], target: Path) -> list[Path]:
    """The batches cut into batches of MICRO_ORDERS orders each (items with their order;
    customers, products and items of earlier orders with the first), in order; the first
    MICRO_BATCHES, written under ``target``."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    made: list[Path] = []
    for batch in batches:
        _, transactions = read_csv(batch / "transactions.csv")
        items_header, items = read_csv(batch / "transaction_items.csv")
        txn_header, _ = read_csv(batch / "transactions.csv")
        by_order = defaultdict(list)
        for item in items:
            by_order[item[items_header.index("transaction_id")]].append(item)
        chunks = [transactions[i:i + MICRO_ORDERS]
                  for i in range(0, len(transactions), MICRO_ORDERS)]
        placed = {t[txn_header.index("transaction_id")] for t in transactions}
        for number, chunk in enumerate(chunks):
            if len(made) == MICRO_BATCHES:
                return made
            folder = target / f"{batch.name}_{number:03d}"
            folder.mkdir()
            ids = [t[txn_header.index("transaction_id")] for t in chunk]
            chunk_items = [item for order in ids for item in by_order[order]]
            if number == 0:
                for name in ("customers", "products"):
                    if (batch / f"{name}.csv").exists():
                        shutil.copy(batch / f"{name}.csv", folder / f"{name}.csv")
                chunk_items += [item for order, lines in by_order.items()
                                if order not in placed for item in lines]
            write_csv(folder / "transactions.csv", txn_header, chunk)
            write_csv(folder / "transaction_items.csv", items_header, chunk_items)
            made.append(folder)
    return made


# -- database -------------------------------------------------------------------------------

def fresh_database(base: str, name: str) -> str:
    admin = connect(base, autocommit=True)
    with admin.cursor() as cur:
        cur.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = %s", (name,))
        cur.execute(f"drop database if exists {name}")
        cur.execute(f"create database {name}")
    admin.close()
    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    migrate.upgrade(url)
    return url


def fetch(url: str, sql: str, params: dict | tuple = ()) -> list[tuple]:
    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def sizes(url: str) -> dict[str, int]:
    ((database, staging),) = fetch(url, """
        select pg_database_size(current_database()),
               coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'staging' and c.relkind in ('r', 'm')""")
    return {"database_bytes": database, "staging_bytes": staging}


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# -- stages ---------------------------------------------------------------------------------

def run_steps(url: str, batch_id: int, *, before_fact=None) -> dict[str, float]:  # noqa: ANN001
    """Every step of the chain for the batch, timed; ``before_fact(conn)`` runs first."""
    timings: dict[str, float] = {}
    conn = connect(url, autocommit=True)
    try:
        for step in read_steps(conn):
            if step.name == "load_fact_sales" and before_fact is not None:
                before_fact(conn, batch_id)
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(step.sql, {"batch_id": batch_id})
            timings[step.name] = time.perf_counter() - started
    finally:
        conn.close()
    return timings


def run_batch(url: str, batch_dir: Path, *, before_fact=None) -> tuple[int, dict[str, float]]:  # noqa: ANN001
    started = time.perf_counter()
    result = ingest_batch(url, batch_dir)
    assert result.batch_id is not None, f"{batch_dir} loaded nothing"
    ingest = time.perf_counter() - started
    return result.batch_id, {INGEST_STEP: ingest,
                             **run_steps(url, result.batch_id, before_fact=before_fact)}


def index_cost(conn, batch_id: int, rounds: int = 3) -> dict[str, float]:  # noqa: ANN001
    """load_fact_sales of the batch with and without the drill-down indexes, each in a
    rolled-back transaction, alternated; medians in seconds."""
    conn.autocommit = False
    timings: dict[str, list[float]] = {"with": [], "without": []}
    try:
        for _ in range(rounds):
            for label in ("with", "without"):
                with conn.cursor() as cur:
                    if label == "without":
                        cur.execute(f"drop index {', '.join(DRILLDOWN_INDEXES)}")
                    started = time.perf_counter()
                    cur.execute("call warehouse.load_fact_sales(%s)", (batch_id,))
                    timings[label].append(time.perf_counter() - started)
                conn.rollback()
    finally:
        conn.autocommit = True
    return {label: statistics.median(values) for label, values in timings.items()}


def bare_floor(url: str, batch_dir: Path, batch_id: int) -> float:
    from bench.__main__ import bare_copy_seconds, bare_typed_insert_seconds

    return bare_copy_seconds(url, batch_dir) + bare_typed_insert_seconds(url, batch_id)


def watch_latencies(url: str, micro: list[Path], landing: Path) -> list[float]:
    """Each micro-batch delivered into a watched landing folder; seconds from its marker
    to its processed_at."""
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir(parents=True)
    env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    log_path = OUT / "watch.log"
    with log_path.open("w") as log_file:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "runner", "watch", str(landing), "--settle", "off",
             "--metrics-port", "0"], cwd=PROJECT_ROOT, env=env, stdout=log_file,
            stderr=subprocess.STDOUT)
        latencies = []
        try:
            time.sleep(2)  # watching
            for batch in micro:
                hidden = landing / f".{batch.name}"
                shutil.copytree(batch, hidden)
                final = landing / batch.name
                hidden.rename(final)
                marked = time.time()
                (final / "_READY").write_text("")
                deadline = time.monotonic() + 600
                while True:
                    rows = fetch(url, "select extract(epoch from processed_at) from etl.batch "
                                      "where batch_name = %s and status = 'processed'",
                                 (batch.name,))
                    if rows:
                        latencies.append(float(rows[0][0]) - marked)
                        break
                    if watcher.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"watch did not process {batch.name}: see {log_path}")
                    time.sleep(0.05)
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(timeout=600)
    return latencies


@contextmanager
def reading(url: str, conn: connection | None = None) -> Iterator[connection]:
    """The connection a read measurement runs on: ``conn`` when given (the caller's
    transaction, left open), else a new autocommit connection to ``url``, closed after."""
    if conn is not None:
        yield conn
        return
    own = connect(url, autocommit=True)
    try:
        yield own
    finally:
        own.close()


def drill_down_ms(url: str, queries: dict[str, str] = DRILL_DOWNS, repeats: int = 5,
                  conn: connection | None = None) -> dict[str, dict[str, float]]:
    """Median milliseconds and rows of each query (the drill-downs, docs/bi.md's examples
    or the line floors), after a warm-up run, for a typical customer, order and product (the
    middle ids: a line picked at random would favour the heaviest buyers and bestsellers),
    the middle month, its middle day, the month's best-selling category and the last month
    with sales (bench/__main__.py's BI queries read that one). Two times: ``ms``
    fetches the rows into Python objects (psycopg2 makes a Decimal, datetime or date of
    every value), ``delivered_ms`` has the server run the query and send its rows as text
    (COPY to the client): what the server and the connection take, whatever the client.
    ``conn``: measure inside that connection's transaction (see bench/drill_downs.py)."""
    with reading(url, conn) as reader, reader.cursor() as cur:
        cur.execute("""
            select (select customer_id from warehouse.dim_customer
                    where customer_id is not null
                    order by customer_id offset (select count(*) / 2
                                                 from warehouse.dim_customer) limit 1),
                   (select max(transaction_id) / 2 from warehouse.fact_sales),
                   (select product_id from warehouse.dim_product
                    where product_id is not null
                    order by product_id offset (select count(*) / 2
                                                from warehouse.dim_product) limit 1),
                   (select min(full_date) + (max(full_date) - min(full_date)) / 2
                    from warehouse.dim_date where date_key > 0)""")
        customer, order, product, day = cur.fetchone()
        cur.execute("select category from analytics.v_product_performance "
                    "where month = %s group by category order by sum(revenue) desc "
                    "limit 1", (day.replace(day=1),))
        category = cur.fetchone()[0]
        cur.execute(LAST_MONTH_SQL)
        params = {"customer": customer, "order": order, "product": product,
                  "month": day.replace(day=1), "day": day, "category": category,
                  "last_month": cur.fetchone()[0]}
        timings = {}
        for label, sql in queries.items():
            runs, delivered = [], []
            for _ in range(repeats + 1):
                started = time.perf_counter()
                cur.execute(sql, params)
                rows = len(cur.fetchall())
                runs.append(time.perf_counter() - started)
                started = time.perf_counter()
                cur.copy_expert(f"copy ({cur.mogrify(sql, params).decode()}) to stdout",
                                _Discard())
                delivered.append(time.perf_counter() - started)
            timings[label] = {"ms": statistics.median(runs[1:]) * 1000,
                              "delivered_ms": statistics.median(delivered[1:]) * 1000,
                              "rows": rows}
        return timings


class _Discard:
    """A file that forgets what COPY writes into it."""

    def write(self, data: bytes) -> int:
        return len(data)


def purge(url: str) -> dict[str, int]:
    before = sizes(url)
    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("call etl.purge_staging(interval '0')")
            cur.execute("vacuum staging.customers, staging.products, staging.transactions, "
                        "staging.transaction_items")
    finally:
        conn.close()
    after = sizes(url)
    return {"before_bytes": before["database_bytes"], "after_bytes": after["database_bytes"],
            "staging_before_bytes": before["staging_bytes"],
            "staging_after_bytes": after["staging_bytes"]}


# -- the run --------------------------------------------------------------------------------

def run_history(server: str, orders: int) -> dict:
    from bench.__main__ import bi_query_ms, machine, maintenance, peak_rss_mb

    data = generate(orders)
    batches = sorted(p for p in data.iterdir() if p.name.startswith("batch_"))
    url = fresh_database(servers.server_url(server), "warehouse_history")
    results: dict = {"server": server, "orders": orders, "machine": machine(url),
                     "load_before": load()}
    results["settings"] = {row[0]: row[1] for row in fetch(url, """
        select name, current_setting(name) from pg_settings
        where name in ('wal_level', 'synchronous_commit', 'fsync', 'full_page_writes',
                       'shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_wal_size')
        order by name""")}
    print(f"server {server}: {results['settings']}; load {results['load_before']}", flush=True)

    batch_id, initial = run_batch(url, batches[0])
    initial["vacuum"] = maintenance(url).seconds
    results["initial"] = initial
    results["initial_seconds"] = sum(initial.values())
    results["bare_floor_seconds"] = bare_floor(url, batches[0], batch_id)
    results["sizes_after_initial"] = sizes(url)
    results["orders_in_fact"] = fetch(url, "select count(distinct transaction_id) "
                                           "from warehouse.fact_sales")[0][0]
    # the fact's rows in date order (1.0) or not: what date-range plans read (bulk_load.sql)
    results["fact_date_correlation"] = fetch(
        url, "select max(correlation) from pg_stats where schemaname = 'warehouse' "
             "and tablename = 'fact_sales' and attname = 'date_key'")[0][0]  # null: not analyzed
    print(f"initial {results['initial_seconds']:.1f} s (floor "
          f"{results['bare_floor_seconds']:.1f} s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in initial.items()), flush=True)

    results["daily"] = []
    daily = batches[DAILY]
    for number, batch_dir in enumerate(daily):
        probe = None
        if number == len(daily) - 1:
            def probe(conn, batch, results=results) -> None:  # noqa: ANN001
                results["index_cost"] = index_cost(conn, batch)
        _, timings = run_batch(url, batch_dir, before_fact=probe)
        rows = fetch(url, "select count(*) from etl.batch_step b join etl.batch e "
                          "using (batch_id) where e.batch_name = %s", (batch_dir.name,))
        results["daily"].append({"batch": batch_dir.name, "seconds": sum(timings.values()),
                                 "steps": timings, "step_rows": rows[0][0]})
        print(f"{batch_dir.name}: {sum(timings.values()):.2f} s: "
              + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()), flush=True)
    print(f"index cost: {results.get('index_cost')}", flush=True)

    micro = micro_batches(batches[MICRO], OUT / f"micro-{orders}")
    results["watch_latencies"] = watch_latencies(url, micro, OUT / f"landing-{orders}")
    results["watch_median"] = statistics.median(results["watch_latencies"])
    print(f"watch: median {results['watch_median']:.2f} s over "
          f"{len(results['watch_latencies'])} micro-batches: "
          + ", ".join(f"{s:.2f}" for s in results["watch_latencies"]), flush=True)

    results["bi_queries_ms"] = bi_query_ms(url)
    results["drill_downs_ms"] = drill_down_ms(url)
    # the examples that scan months of lines take seconds at 5M: two runs after a warm-up
    results["bi_examples_ms"] = drill_down_ms(url, BI_EXAMPLES, repeats=2)
    results["line_floors_ms"] = drill_down_ms(url, LINE_FLOORS, repeats=2)
    for label, ms in results["bi_queries_ms"].items():
        print(f"  {ms:8.1f} ms  {label}")
    for label, drill in {**results["drill_downs_ms"], **results["bi_examples_ms"],
                         **results["line_floors_ms"]}.items():
        print(f"  {drill['ms']:8.1f} ms  {label} ({drill['rows']:,} rows; delivered in "
              f"{drill['delivered_ms']:.1f} ms)")
    results["purge"] = purge(url)
    results["peak_rss_mb"] = peak_rss_mb()
    results["load_after"] = load()
    print(f"purge: {results['purge']}; peak RSS {results['peak_rss_mb']:.0f} MB; load "
          f"{results['load_after']}", flush=True)
    target = OUT / f"history-{server}-{orders}.json"
    target.write_text(json.dumps(results, indent=2, default=str))
    print(f"results written to {target}")
    return results
