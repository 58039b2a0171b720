"""Benchmark of the warehouse: initial load, a 1 % incremental batch, BI queries.

``python -m bench.bench_warehouse [--transactions N] [--keep] [--write-docs]``

In a database of its own (``<database>_bench_warehouse`` next to the configured one: DATABASE_URL or
the embedded cluster), migrated from scratch, production is populated directly with
``INSERT ... SELECT generate_series`` (no CSV, no validation: this measures the warehouse
part alone), then:

1. batch 1, the initial load: ``load_dimensions``, ``load_fact_sales``,
   ``refresh_batch_aggregates`` timed one by one (``check_reconciliation`` timed apart);
2. batch 2, 1 % of that volume: new and moved customers, products whose price changed a
   fortnight back (their later facts are re-pointed), new transactions, status changes and
   changed items of recent transactions; the same steps timed;
3. one typical BI query per contract view (a month, a category, a year), median of five
   warm runs.

Targets (issue 6): initial load within 30 s, the 1 % batch within 5 % of it, every view
query within 100 ms. ``--write-docs`` records the figures in docs/figures/warehouse.json,
rendered into the "## Warehouse" section of docs/performance.md (bench/figures.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.extensions

from bench import figures
from runner import migrate
from runner.config import Config, load_config
from runner.db import connect, database_url

log = logging.getLogger("bench.warehouse")

SECTION_TITLE = "## Warehouse"
INITIAL_TARGET_S = 30.0
INCREMENTAL_SHARE = 0.05
QUERY_TARGET_MS = 100.0
QUERY_RUNS = 5

STEPS = ("load_dimensions", "load_fact_sales", "refresh_batch_aggregates")


@dataclass(frozen=True)
class Volume:
    transactions: int
    items_per_transaction: int = 3
    customers: int = 100_000
    products: int = 5_000
    categories: int = 20

    @property
    def items(self) -> int:
        return self.transactions * self.items_per_transaction

    @property
    def increment(self) -> int:
        """Transactions (and a hundredth of everything else) of the 1 % batch."""
        return max(self.transactions // 100, 10)


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float | None  # CPU seconds of the database backend (None: server not local)


@dataclass
class Results:
    volume: Volume
    initial: dict[str, Timing] = field(default_factory=dict)
    incremental: dict[str, Timing] = field(default_factory=dict)
    incremental_rows: dict[str, int] = field(default_factory=dict)
    queries: dict[str, float] = field(default_factory=dict)
    load_average: list[float] = field(default_factory=list)  # 1-minute, around each phase

    @staticmethod
    def total(timings: dict[str, Timing], cpu: bool = False) -> float | None:
        values = [timings[step].cpu if cpu else timings[step].wall for step in STEPS]
        return None if None in values else sum(values)

    @property
    def initial_total(self) -> float:
        return self.total(self.initial)

    @property
    def incremental_total(self) -> float:
        return self.total(self.incremental)


# -- the data -------------------------------------------------------------------------------

INITIAL_LOAD_SQL = """
select setseed(0.11);
insert into etl.batch (batch_name, source_path, load_ts)
values ('bench_0001', 'bench', '2026-01-01 00:00+00');

insert into production.categories (category_name)
select 'Category ' || g from generate_series(1, %(categories)s) g;

insert into production.products (
    product_id, product_name, category_id, brand, unit_price, cost, source_batch_id)
select g, 'Product ' || g, 1 + g %% %(categories)s, 'Brand ' || (g %% 97),
       price, round(price * (0.4 + 0.3 * random())::numeric, 2), 1
from (select g, round((5 + 495 * random())::numeric, 2) as price
      from generate_series(1, %(products)s) g) p;

insert into production.customers (
    customer_id, first_name, last_name, email, phone, city, state, country, signup_date,
    source_batch_id)
select g, 'First' || g, 'Last' || g, 'c' || g || '@example.com', '+49 30 ' || g,
       'City ' || (g %% 500), 'State ' || (g %% 16), 'Country ' || (g %% 12),
       date '2022-01-01' + (random() * 1460)::int, 1
from generate_series(1, %(customers)s) g;

insert into production.transactions (
    transaction_id, customer_id, transaction_ts, payment_method_code, status_code,
    source_batch_id)
select g, 1 + (random() * (%(customers)s - 1))::bigint,
       -- ids grow with time, as a shop assigns them: three years, jittered
       timestamptz '2023-01-01 00:00+00'
           + (g - 1 + random()) / %(transactions)s * interval '1095 days',
       (array['credit_card', 'debit_card', 'paypal', 'bank_transfer', 'cash_on_delivery',
              'gift_card'])[1 + (random() * 5)::int],
       case when r < 0.85 then 'completed' when r < 0.92 then 'pending'
            when r < 0.97 then 'cancelled' else 'refunded' end,
       1
from (select g, random() as r from generate_series(1, %(transactions)s) g) t;

insert into production.transaction_items (
    item_id, transaction_id, product_id, quantity, unit_price, discount, source_batch_id)
select i.item_id, i.transaction_id, i.product_id, i.quantity, p.unit_price,
       case when random() < 0.2 then round(i.quantity * p.unit_price * 0.1, 2) else 0 end, 1
from (select g as item_id, 1 + (g - 1) / %(items_per_transaction)s as transaction_id,
             1 + (random() * (%(products)s - 1))::bigint as product_id,
             1 + (random() * 4)::int as quantity
      from generate_series(1, %(items)s) g) i
join production.products p on p.product_id = i.product_id;
"""

INCREMENT_SQL = """
select setseed(0.22);
insert into etl.batch (batch_name, source_path, load_ts)
values ('bench_0002', 'bench', '2026-01-02 00:00+00');

-- customers: half new (signed up in December), half moved (a new SCD2 version)
insert into production.customers (
    customer_id, first_name, last_name, email, phone, city, state, country, signup_date,
    source_batch_id)
select %(customers)s + g, 'First', 'New' || g, 'new' || g || '@example.com', null,
       'City 1', 'State 1', 'Country 1', date '2025-12-01' + (g %% 31), 2
from generate_series(1, %(new_customers)s) g;
update production.customers
set city = city || ' (moved)', source_batch_id = 2, updated_at = now()
where customer_id in (select 1 + (random() * (%(customers)s - 1))::bigint
                      from generate_series(1, %(new_customers)s));

-- products: a price and cost change dated a fortnight back (later facts re-pointed)
update production.products
set unit_price = unit_price + 1, cost = cost + 0.5,
    source_updated_at = '2025-12-17 00:00+00', source_batch_id = 2, updated_at = now()
where product_id in (select 1 + (random() * (%(products)s - 1))::bigint
                     from generate_series(1, %(changed_products)s));

-- transactions: new ones on the load day, status changes of recent ones
insert into production.transactions (
    transaction_id, customer_id, transaction_ts, payment_method_code, status_code,
    source_batch_id)
select %(transactions)s + g, 1 + (random() * (%(customers)s - 1))::bigint,
       timestamptz '2026-01-01 00:00+00' + random() * interval '23 hours',
       'paypal', case when random() < 0.9 then 'completed' else 'pending' end, 2
from generate_series(1, %(new_transactions)s) g;
update production.transactions
set status_code = case status_code when 'pending' then 'completed' else 'refunded' end,
    source_batch_id = 2, updated_at = now()
where transaction_id in (
    select transaction_id from production.transactions
    where transaction_ts >= '2025-12-01' and source_batch_id = 1
    order by transaction_id limit %(changed_transactions)s);

-- items: three per new transaction, plus quantity changes of recent items
insert into production.transaction_items (
    item_id, transaction_id, product_id, quantity, unit_price, discount, source_batch_id)
select %(items)s + g, %(transactions)s + 1 + (g - 1) / 3, p.product_id, 2, p.unit_price, 0, 2
from generate_series(1, %(new_transactions)s * 3) g
join production.products p on p.product_id = 1 + (g * 7919) %% %(products)s;
update production.transaction_items
set quantity = quantity + 1, source_batch_id = 2, updated_at = now()
where item_id in (
    select i.item_id from production.transaction_items i
    join production.transactions t on t.transaction_id = i.transaction_id
    where t.transaction_ts >= '2025-11-15' and t.transaction_ts < '2025-12-01'
    order by i.item_id limit %(changed_items)s);
"""

QUERIES: dict[str, str] = {
    "v_daily_sales: one month": (
        "select * from analytics.v_daily_sales "
        "where sales_date >= '2025-03-01' and sales_date < '2025-04-01'"
    ),
    "v_monthly_sales: one year": (
        "select * from analytics.v_monthly_sales "
        "where month >= '2025-01-01' and month < '2026-01-01'"
    ),
    "v_product_performance: a month, one category": (
        "select * from analytics.v_product_performance "
        "where month = '2025-03-01' and category = 'Category 3' "
        "order by revenue_rank_in_category"
    ),
    "v_product_performance: a year, top 10 products": (
        "select product_id, product_name, sum(revenue) as revenue "
        "from analytics.v_product_performance "
        "where month >= '2025-01-01' and month < '2026-01-01' "
        "group by product_id, product_name order by revenue desc limit 10"
    ),
    "v_customer_growth: one year": (
        "select * from analytics.v_customer_growth "
        "where month >= '2025-01-01' and month < '2026-01-01'"
    ),
    "v_payment_methods: one year": (
        "select * from analytics.v_payment_methods "
        "where month >= '2025-01-01' and month < '2026-01-01'"
    ),
    "v_sales: one day, by category": (
        "select category, count(*), sum(line_amount) from analytics.v_sales "
        "where sales_date = '2025-03-15' and status = 'completed' group by category"
    ),
    "v_sales: one month, one category, by brand": (
        "select brand, sum(line_amount), sum(line_margin) from analytics.v_sales "
        "where sales_date >= '2025-03-01' and sales_date < '2025-04-01' "
        "and category = 'Category 3' and status = 'completed' group by brand"
    ),
}

# Measured and shown, but not a target: the fact has no index on customer_key (each new row
# would land on a random index page, a full-page write per row after every checkpoint), so
# one customer's drill-down reads the whole fact.
INFORMATIONAL_QUERIES: dict[str, str] = {
    "v_sales: one customer's orders (not a target)": (
        "select transaction_id, transaction_ts, product_name, line_amount "
        "from analytics.v_sales where customer_id = 4242 order by transaction_ts"
    ),
}


# -- running --------------------------------------------------------------------------------

def bench_url(config: Config) -> str:
    """URL of the bench database, a sibling of the configured one."""
    base = database_url(config)
    name = base.split("?")[0].rsplit("/", 1)[-1] or "warehouse"
    return base.replace(f"/{name}", f"/{name}_bench_warehouse", 1)


def recreate_database(url: str) -> None:
    name = url.split("?")[0].rsplit("/", 1)[-1]
    admin = connect(url.replace(f"/{name}", "/postgres", 1), autocommit=True)
    with admin.cursor() as cur:
        cur.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
        )
        cur.execute(f'drop database if exists "{name}"')
        cur.execute(f'create database "{name}"')
    admin.close()


class BackendClock:
    """CPU seconds used by the connection's server process, read from /proc when the server
    runs on this machine (the embedded cluster); on a shared machine this shows the work a
    step did whatever other processes took from the wall clock."""

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        with conn.cursor() as cur:
            cur.execute("select pg_backend_pid()")
            self.stat = Path(f"/proc/{cur.fetchone()[0]}/stat")
        self.ticks = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float | None:
        try:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.ticks


def timed(action: Callable[[], object], clock: BackendClock) -> Timing:
    cpu_before, start = clock.cpu(), time.perf_counter()
    action()
    wall, cpu_after = time.perf_counter() - start, clock.cpu()
    return Timing(wall, None if cpu_before is None else cpu_after - cpu_before)


def run_sql(conn: psycopg2.extensions.connection, sql: str, params: dict) -> None:
    with conn.cursor() as cur:
        cur.execute(sql, params)


def call(conn: psycopg2.extensions.connection, procedure: str, batch_id: int) -> None:
    with conn.cursor() as cur:
        cur.execute(f"call warehouse.{procedure}(%s)", (batch_id,))


def analyze(conn: psycopg2.extensions.connection, schema: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "select format('%%I.%%I', schemaname, tablename) from pg_tables "
            "where schemaname = %s", (schema,)
        )
        for (table,) in cur.fetchall():
            cur.execute(f"vacuum analyze {table}")


def load_batch(conn: psycopg2.extensions.connection, batch_id: int) -> dict[str, Timing]:
    clock = BackendClock(conn)
    timings = {}
    for step in (*STEPS, "check_reconciliation"):
        timings[step] = timed(lambda step=step: call(conn, step, batch_id), clock)
        log.info("batch %d %s: %.2f s (backend CPU %s s)", batch_id, step, timings[step].wall,
                 "?" if timings[step].cpu is None else f"{timings[step].cpu:.2f}")
    return timings


def step_rows(conn: psycopg2.extensions.connection, batch_id: int) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("select step, rows from etl.batch_step where batch_id = %s", (batch_id,))
        return dict(cur.fetchall())


def time_query(conn: psycopg2.extensions.connection, sql: str) -> float:
    runs = []
    with conn.cursor() as cur:
        for _ in range(QUERY_RUNS + 1):  # the first run warms the cache and is dropped
            start = time.perf_counter()
            cur.execute(sql)
            cur.fetchall()
            runs.append(time.perf_counter() - start)
    return statistics.median(runs[1:]) * 1000


def explain_slow_statements(conn: psycopg2.extensions.connection, min_ms: int) -> None:
    """Print the plan of every statement slower than ``min_ms`` (auto_explain, this session)."""
    with conn.cursor() as cur:
        cur.execute("load 'auto_explain'")
        cur.execute(f"set auto_explain.log_min_duration = {int(min_ms)}")
        cur.execute("set auto_explain.log_nested_statements = on")
        cur.execute("set auto_explain.log_analyze = on")
        cur.execute("set auto_explain.log_timing = off")  # row counts, no per-node clock
        cur.execute("set auto_explain.log_level = notice")
    conn.notices = _PrintingNotices()


class _PrintingNotices(list):
    def append(self, notice: str) -> None:  # psycopg2 appends each server notice
        print(notice, end="")


def run_bench(config: Config, volume: Volume, keep: bool, explain_ms: int | None = None,
              explain_initial_ms: int | None = None) -> Results:
    url = bench_url(config)
    log.info("bench database %s", url)
    recreate_database(url)
    migrate.upgrade(url)
    conn = connect(url, autocommit=True)
    results = Results(volume)
    try:
        params = {
            "categories": volume.categories, "products": volume.products,
            "customers": volume.customers, "transactions": volume.transactions,
            "items": volume.items, "items_per_transaction": volume.items_per_transaction,
        }
        log.info("populating production: %d transactions, %d items", volume.transactions,
                 volume.items)
        run_sql(conn, INITIAL_LOAD_SQL, params)
        analyze(conn, "production")
        if explain_initial_ms is not None:
            explain_slow_statements(conn, explain_initial_ms)
        results.load_average.append(os.getloadavg()[0])
        results.initial = load_batch(conn, 1)
        results.load_average.append(os.getloadavg()[0])
        analyze(conn, "warehouse")

        share = volume.increment
        run_sql(conn, INCREMENT_SQL, {
            **params,
            "new_customers": volume.customers // 200,
            "changed_products": volume.products // 100,
            "new_transactions": share * 9 // 10,
            "changed_transactions": share // 10,
            "changed_items": share * 3 // 10,
        })
        analyze(conn, "production")
        if explain_ms is not None:
            explain_slow_statements(conn, explain_ms)
        results.incremental = load_batch(conn, 2)
        results.load_average.append(os.getloadavg()[0])
        results.incremental_rows = step_rows(conn, 2)

        for name, sql in {**QUERIES, **INFORMATIONAL_QUERIES}.items():
            results.queries[name] = time_query(conn, sql)
            log.info("%s: %.1f ms", name, results.queries[name])
    finally:
        conn.close()
        if not keep:
            recreate_database(url)
    return results


# -- reporting ------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def seconds(timing: Timing, digits: int) -> str:
    cpu = "" if timing.cpu is None else f" ({timing.cpu:.{digits}f})"
    return f"{timing.wall:.{digits}f}{cpu}"


def report(results: Results) -> str:
    v = results.volume
    budget = results.initial_total * INCREMENTAL_SHARE
    initial_cpu = results.total(results.initial, cpu=True)
    incremental_cpu = results.total(results.incremental, cpu=True)
    loads = ", ".join(f"{load:.1f}" for load in results.load_average)
    lines = [
        f"Measured with `python -m bench.bench_warehouse --write-docs` on {platform.node()} "
        f"({os.cpu_count()} CPUs, {platform.machine()}, PostgreSQL settings of "
        f"runner/localdb.py), {time.strftime('%Y-%m-%d', time.gmtime())}. Production "
        f"populated directly (INSERT ... SELECT generate_series): {v.transactions:,} "
        f"transactions, {v.items:,} items, {v.customers:,} customers, {v.products:,} "
        "products; then a batch of 1 % of that volume (new and moved customers, 1 % of the "
        "products with a price change dated a fortnight back, new orders on the load day, "
        "status changes of December orders, quantity changes of November lines: three "
        "months touched). The warehouse steps are timed one by one: wall seconds, and in "
        "brackets the CPU seconds of the database backend (the same work without the other "
        f"processes of a shared machine; load average around the phases: {loads}).",
        "",
        "| step | initial load (s) | 1 % batch (s) |",
        "|---|---:|---:|",
    ]
    for step in (*STEPS, "check_reconciliation"):
        lines.append(f"| {step} | {seconds(results.initial[step], 2)} | "
                     f"{seconds(results.incremental[step], 3)} |")
    total_initial = Timing(results.initial_total, initial_cpu)
    total_incremental = Timing(results.incremental_total, incremental_cpu)
    lines += [
        f"| **dimensions + fact + aggregates** | **{seconds(total_initial, 2)}** | "
        f"**{seconds(total_incremental, 3)}** |",
        "",
        f"- Initial load within {INITIAL_TARGET_S:.0f} s: "
        f"{verdict(results.initial_total <= INITIAL_TARGET_S)}.",
        f"- 1 % batch within 5 % of the initial load ({budget:.2f} s): "
        f"{verdict(results.incremental_total <= budget)} "
        f"({100 * results.incremental_total / results.initial_total:.1f} %"
        + ("" if initial_cpu is None else
           f"; in backend CPU {100 * incremental_cpu / initial_cpu:.1f} %") + "). "
        "The batch wrote "
        + ", ".join(f"{rows:,} rows in {step}" for step, rows in
                    sorted(results.incremental_rows.items())) + ".",
        "",
        f"Typical BI queries, median of {QUERY_RUNS} warm runs (target {QUERY_TARGET_MS:.0f} ms):",
        "",
        "| query | ms | within target |",
        "|---|---:|---|",
    ]
    for name, ms in results.queries.items():
        within = verdict(ms <= QUERY_TARGET_MS) if name in QUERIES else "(no target)"
        lines.append(f"| {name} | {ms:.1f} | {within} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_warehouse",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--explain", type=int, metavar="MS",
                        help="print plans of the 1 %% batch's statements slower than MS")
    parser.add_argument("--explain-initial", type=int, metavar="MS",
                        help="print plans of the initial load's statements slower than MS")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the figures into docs/performance.md (## Warehouse)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    results = run_bench(load_config(), Volume(args.transactions), args.keep, args.explain,
                        args.explain_initial)
    block = report(results)
    print(f"{SECTION_TITLE}\n\n{block}")
    if args.write_docs:
        figures.publish("warehouse", {
            "command": "python -m bench.bench_warehouse --write-docs"
                       + (f" --transactions {args.transactions}"
                          if args.transactions != 1_000_000 else ""),
            "machine": f"{platform.node()} ({os.cpu_count()} CPUs, {platform.machine()})",
            "load_average": ", ".join(f"{load:.1f}" for load in results.load_average),
            "markdown": block})
        log.info("recorded in docs/figures/warehouse.json; docs/performance.md rendered")
    ok = (results.initial_total <= INITIAL_TARGET_S
          and results.incremental_total <= results.initial_total * INCREMENTAL_SHARE
          and all(results.queries[name] <= QUERY_TARGET_MS for name in QUERIES))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
