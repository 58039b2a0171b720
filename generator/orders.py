"""Orders: transactions and their items, in chunks of whole days, and later status changes.

The number of orders of each day is drawn once (seasonality, holidays, growth), so
transaction ids follow time and every batch's ids are known in advance. A chunk of days is
generated at once: times of day, the customer (signed up on or before the day, popular ones
more often), payment method, status, items (popular products more often, the price of the
day, discounts on a minority of lines). Pending orders settle and a few completed orders are
refunded in later batches: those rows repeat the transaction with its new status.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from generator.contract import ITEMS, PAYMENT_METHODS, STATUSES, TRANSACTIONS
from generator.customers import CustomerBase
from generator.encoding import IntColumn, MoneyColumn, Pool, PoolColumn, TimestampColumn
from generator.layout import Table
from generator.products import Catalogue, PriceBook
from generator.timeline import SECONDS_PER_DAY, Timeline, seconds_of_day

PAYMENT_SHARES = np.array([0.44, 0.2, 0.18, 0.06, 0.04, 0.08])
STATUS_SHARES = np.array([0.86, 0.05, 0.05, 0.04])
COMPLETED, PENDING, CANCELLED, REFUNDED = range(4)
SETTLE_SHARE = 0.8  # pending orders that settle in the next batch
SETTLE_CANCEL_SHARE = 0.15  # of those, cancelled rather than completed
REFUND_LATER_SHARE = 0.02  # completed orders refunded in one of the next two batches
DISCOUNT_SHARE = 0.12
DISCOUNT_PERCENTS = np.array([5, 10, 15, 20, 25, 30])
QUANTITY_P = 0.68  # geometric: most lines hold one unit
MAX_LINE_QUANTITY = 12
CHUNK_TRANSACTIONS = 100_000


@dataclass(frozen=True)
class OrderBook:
    """How many orders each day has, hence which ids each day and batch holds."""

    day_counts: np.ndarray
    first_id_of_day: np.ndarray  # day d holds ids first_id_of_day[d] .. first_id_of_day[d+1]-1
    batch_last_id: np.ndarray

    @property
    def count(self) -> int:
        return int(self.first_id_of_day[-1]) - 1


@dataclass(frozen=True)
class Transactions:
    """Transaction rows as columns (payment and status as codes)."""

    ids: np.ndarray
    customers: np.ndarray
    seconds: np.ndarray
    payments: np.ndarray
    statuses: np.ndarray

    def take(self, mask: np.ndarray, statuses: np.ndarray | None = None) -> Transactions:
        """The rows where `mask` holds, with new `statuses` if given."""
        return Transactions(
            ids=self.ids[mask],
            customers=self.customers[mask],
            seconds=self.seconds[mask],
            payments=self.payments[mask],
            statuses=self.statuses[mask] if statuses is None else statuses,
        )

    @classmethod
    def join(cls, parts: list[Transactions]) -> Transactions:
        """All rows of `parts`, ordered by id."""
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, empty)
        ids = np.concatenate([part.ids for part in parts])
        order = np.argsort(ids, kind="stable")

        def column(name: str) -> np.ndarray:
            values = np.concatenate([getattr(part, name) for part in parts])
            return values[order].astype(np.int64)

        return cls(*(column(name) for name in ("ids", "customers", "seconds", "payments",
                                                 "statuses")))  # fmt: skip


@dataclass(frozen=True)
class CodePools:
    payments: Pool = field(default_factory=lambda: Pool(PAYMENT_METHODS))
    statuses: Pool = field(default_factory=lambda: Pool(STATUSES))


def plan_orders(
    rng: np.random.Generator, count: int, timeline: Timeline, daily_weight: np.ndarray
) -> OrderBook:
    day_counts = rng.multinomial(count, daily_weight / daily_weight.sum())
    first_id = np.ones(timeline.days + 1, dtype=np.int64)
    np.cumsum(day_counts, out=first_id[1:])
    first_id[1:] += 1
    bounds = timeline.bounds()
    return OrderBook(
        day_counts=day_counts,
        first_id_of_day=first_id,
        batch_last_id=first_id[bounds[1:]] - 1,
    )


def chunks(book: OrderBook, timeline: Timeline, batch: int) -> list[tuple[int, int]]:
    """Ranges of whole days [first, end) of a batch, each with about CHUNK_TRANSACTIONS."""
    bounds = timeline.bounds()
    first, end = int(bounds[batch]), int(bounds[batch + 1])
    ranges = []
    day = first
    while day < end:
        start_id = book.first_id_of_day[day]
        stop = int(np.searchsorted(book.first_id_of_day, start_id + CHUNK_TRANSACTIONS, "right"))
        stop = min(max(stop - 1, day + 1), end)
        ranges.append((day, stop))
        day = stop
    return ranges


def make_transactions(
    rng: np.random.Generator,
    book: OrderBook,
    timeline: Timeline,
    days: tuple[int, int],
    customers: CustomerBase,
) -> Transactions:
    first, end = days
    counts = book.day_counts[first:end]
    day = np.repeat(np.arange(first, end, dtype=np.int64), counts)
    size = len(day)
    seconds = np.sort(day * SECONDS_PER_DAY + seconds_of_day(rng, size))
    seconds += timeline.start_second
    signed_up = customers.signed_up_by_day[day]
    return Transactions(
        ids=np.arange(book.first_id_of_day[first], book.first_id_of_day[end], dtype=np.int64),
        customers=_pick_prefix(rng, customers.weight_cumsum, signed_up),
        seconds=seconds,
        payments=rng.choice(len(PAYMENT_METHODS), size=size, p=PAYMENT_SHARES),
        statuses=rng.choice(len(STATUSES), size=size, p=STATUS_SHARES),
    )


def _pick_prefix(
    rng: np.random.Generator, weight_cumsum: np.ndarray, limit: np.ndarray
) -> np.ndarray:
    """For each row an id in 1..limit, drawn by weight: ids are 1 + index."""
    top = weight_cumsum[limit - 1]
    index = np.searchsorted(weight_cumsum, rng.random(len(limit)) * top, side="right")
    return np.minimum(index, limit - 1).astype(np.int64) + 1


def transactions_table(txn: Transactions, codes: CodePools, updates: bool = False) -> Table:
    columns = {
        "transaction_id": IntColumn(txn.ids),
        "customer_id": IntColumn(txn.customers),
        "transaction_ts": TimestampColumn(txn.seconds),
        "payment_method": PoolColumn(txn.payments, codes.payments),
        "status": PoolColumn(txn.statuses, codes.statuses),
    }
    return Table(
        TRANSACTIONS, columns, txn.ids, refs={"customer_id": txn.customers}, updates=updates
    )


def items_table(
    rng: np.random.Generator,
    txn: Transactions,
    timeline: Timeline,
    catalogue: Catalogue,
    prices: PriceBook,
    first_item_id: int,
    items_per_order: float,
    with_discount: bool,
) -> Table:
    """Items of the transactions: 1 + Poisson lines each, products by popularity."""
    lines = 1 + rng.poisson(items_per_order - 1.0, size=len(txn.ids))
    owner = np.repeat(np.arange(len(txn.ids)), lines)
    seconds = txn.seconds[owner]
    day = (seconds - timeline.start_second) // SECONDS_PER_DAY
    products = _pick_prefix(rng, catalogue.weight_cumsum, catalogue.on_sale_by_day[day])
    quantity = np.minimum(rng.geometric(QUANTITY_P, size=len(owner)), MAX_LINE_QUANTITY)
    unit_price = prices.prices(products, seconds)
    discount = np.zeros(len(owner), dtype=np.int64)
    if with_discount:
        discounted = rng.random(len(owner)) < DISCOUNT_SHARE
        percent = rng.choice(DISCOUNT_PERCENTS, size=int(discounted.sum()))
        discount[discounted] = quantity[discounted] * unit_price[discounted] * percent // 100
    ids = np.arange(first_item_id, first_item_id + len(owner), dtype=np.int64)
    transaction_ids = txn.ids[owner]
    columns = {
        "item_id": IntColumn(ids),
        "transaction_id": IntColumn(transaction_ids),
        "product_id": IntColumn(products),
        "quantity": IntColumn(quantity),
        "unit_price": MoneyColumn(unit_price),
        "discount": MoneyColumn(discount),
    }
    refs = {"transaction_id": transaction_ids, "product_id": products}
    return Table(ITEMS, columns, ids, refs=refs)


def schedule_status_changes(
    rng: np.random.Generator,
    txn: Transactions,
    batch: int,
    batches: int,
    schedule: defaultdict[int, list[Transactions]],
) -> None:
    """Pending orders settle next batch; a few completed ones are refunded later."""
    if batch + 1 >= batches:
        return
    settles = (txn.statuses == PENDING) & (rng.random(len(txn.ids)) < SETTLE_SHARE)
    cancelled = rng.random(int(settles.sum())) < SETTLE_CANCEL_SHARE
    schedule[batch + 1].append(txn.take(settles, np.where(cancelled, CANCELLED, COMPLETED)))
    refunds = (txn.statuses == COMPLETED) & (rng.random(len(txn.ids)) < REFUND_LATER_SHARE)
    later = rng.random(len(txn.ids)) < 0.3
    for target, mask in ((batch + 1, refunds & ~later), (batch + 2, refunds & later)):
        if target < batches:
            schedule[target].append(txn.take(mask, np.full(int(mask.sum()), REFUNDED)))


def status_change_rows(parts: list[Transactions], known: np.ndarray) -> Transactions:
    """The scheduled status changes of transactions that production knows, by id."""
    rows = Transactions.join(parts)
    return rows.take(known[rows.ids])
