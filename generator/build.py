"""From options to files: the batches in order, each file in the contract's order, then
the manifests.

For every chunk of rows: generate clean columns, write some rows by hand (defects and valid
variants), let the contract and the acceptance model decide what each record breaks, write
the bytes, and let what was accepted shape the next rows (changes only of accepted keys).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from generator.contract import (
    CUSTOMERS,
    FILES,
    ITEMS,
    PRODUCTS,
    TRANSACTIONS,
    FileSpec,
    check_record,
)
from generator.customers import CustomerPools, apply_accepted, create_customers, customers_table
from generator.defects import InjectionContext, plan_burst, plan_edits
from generator.layout import Edit, Records, Table, assemble, rule_mask
from generator.manifest import BatchManifest
from generator.model import UNKNOWN_BITS, AcceptanceModel, Outcome
from generator.options import Burst, Options
from generator.orders import (
    CodePools,
    Transactions,
    chunks,
    items_table,
    make_transactions,
    plan_orders,
    schedule_status_changes,
    status_change_rows,
    transactions_table,
)
from generator.pools import build_pools
from generator.products import PriceBook, create_catalogue, price_book, products_table
from generator.progress import Progress
from generator.timeline import Timeline, daily_weights
from generator.writer import CsvWriter, FileFormat, add_extra_column, file_format

logger = logging.getLogger(__name__)
REFERENCED_INDEX = {"customers": 0, "products": 1, "transactions": 2}

# Independent random streams, so that one part's draws never shift another's.
STREAM_CUSTOMERS, STREAM_CATALOGUE, STREAM_ORDER_BOOK = 1, 2, 3
STREAM_FORMATS, STREAM_CUSTOMER_ROWS, STREAM_PRODUCT_ROWS, STREAM_ORDERS = range(10, 14)
STREAM_EDITS, STREAM_RESEND = 14, 15
NEVER_DELIVERED_SPAN = 1_000_000
FUTURE_SHARE, REJECTED_SHARE = 0.45, 0.25
# Share of rejected new rows the source sends again, corrected, in the next batch.
RESEND_SHARE = {"customers": 0.8, "products": 0.8, "transactions": 0.5}


@dataclass
class Report:
    """What was written, and where the time went."""

    out: Path
    batches: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: {spec.name: 0 for spec in FILES})
    rejected: dict[str, int] = field(default_factory=lambda: {spec.name: 0 for spec in FILES})
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # wall clock
    cpu_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def generate(options: Options, now: datetime | None = None) -> Report:
    """Write every batch of `options` under `options.out`; returns a Report.

    `now` (default: the current UTC time) only serves to refuse periods that end after it.
    """
    options.check((now or datetime.now(UTC)).date())
    return Generation(options).run()


class Generation:
    """One run: the population, the acceptance model, and the batches written so far."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.report = Report(out=options.out)
        self.timeline = Timeline(
            options.start, options.days, options.batches, options.initial_share
        )
        weights = daily_weights(self.timeline)
        with self.timed("pools"):
            self.pools = build_pools(options.locale, options.seed)
            self.customer_pools = CustomerPools.of(self.pools)
        with self.timed("customers"):
            self.customers = create_customers(
                self.rng(STREAM_CUSTOMERS), options.customers, self.timeline, weights, self.pools
            )
        with self.timed("products"):
            self.catalogue = create_catalogue(
                self.rng(STREAM_CATALOGUE), options.products, self.timeline, self.pools
            )
        with self.timed("orders"):
            self.orders = plan_orders(
                self.rng(STREAM_ORDER_BOOK), options.transactions, self.timeline, weights
            )
        self.model = AcceptanceModel(
            totals={
                "customers": options.customers,
                "products": options.products,
                "transactions": options.transactions,
            },
            last_ids={
                "customers": self.customers.batch_last_id,
                "products": self.catalogue.batch_last_id,
                "transactions": self.orders.batch_last_id,
            },
        )
        self.schedule: defaultdict[int, list[Transactions]] = defaultdict(list)
        self.resent_ids: dict[str, defaultdict[int, list[np.ndarray]]] = {
            entity: defaultdict(list) for entity in ("customers", "products")
        }
        self.resent_transactions: defaultdict[int, list[Transactions]] = defaultdict(list)
        self.codes = CodePools()
        self.next_item_id = 1
        self.manifests: list[BatchManifest] = []
        expected = (
            options.customers + options.products
            + options.transactions * (1 + options.items_per_order)
        )  # fmt: skip
        self.progress = Progress(int(expected), enabled=not options.quiet)

    def rng(self, *path: int) -> np.random.Generator:
        return np.random.default_rng([self.options.seed, *path])

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the wall-clock and CPU time of the block to the report's stage."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.report.seconds[stage] += time.perf_counter() - wall
            self.report.cpu_seconds[stage] += time.process_time() - cpu

    def run(self) -> Report:
        self.warn_about_stale_batches()
        for batch in range(self.options.batches):
            self.write_batch(batch)
        with self.timed("manifests"):
            for batch, manifest in enumerate(self.manifests):
                manifest.write(self.directory(batch) / "manifest.json")
        self.progress.finish()
        return self.report

    def warn_about_stale_batches(self) -> None:
        """Batch directories of an earlier run would be ingested with ours: say so."""
        ours = {self.directory(batch) for batch in range(self.options.batches)}
        if not self.options.out.is_dir():
            return
        stale = sorted(
            path.name
            for path in self.options.out.glob("batch_*")
            if path.is_dir() and path not in ours
        )
        if stale:
            logger.warning(
                "%s already holds %s from an earlier run; remove them before ingesting",
                self.options.out, ", ".join(stale[:5]) + (" ..." if len(stale) > 5 else ""),
            )  # fmt: skip

    def directory(self, batch: int) -> Path:
        if self.options.batches == 1:
            return self.options.out
        return self.options.out / f"batch_{batch + 1:04d}"

    def write_batch(self, batch: int) -> None:
        directory = self.directory(batch)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = BatchManifest(
            name=directory.name,
            seed=self.options.seed,
            load_not_before=self.timeline.batch_end(batch),
        )
        self.manifests.append(manifest)
        variants = self.options.dirty > 0
        format_rng = self.rng(STREAM_FORMATS, batch)
        formats = {spec.name: file_format(spec, format_rng, variants) for spec in FILES}
        batch_run = BatchRun(self, batch, directory, formats, manifest)

        with self.timed("customers"):
            table, changes = customers_table(
                self.rng(STREAM_CUSTOMER_ROWS, batch), self.customers, self.customer_pools,
                self.timeline, batch, self.model.known["customers"],
                self.resent("customers", batch),
            )  # fmt: skip
            rules = batch_run.write_whole_file(CUSTOMERS, table)
            apply_accepted(self.customers, changes, rules == 0)
            fresh = slice(len(changes.ids), None)
            self.resend("customers", batch, table.keys[fresh][rules[fresh] != 0])
        with self.timed("products"):
            table, price_changes = products_table(
                self.rng(STREAM_PRODUCT_ROWS, batch), self.catalogue, self.timeline, batch,
                self.model.known["products"], self.resent("products", batch),
            )  # fmt: skip
            rules = batch_run.write_whole_file(PRODUCTS, table)
            prices = price_book(self.catalogue, price_changes, rules == 0)
            fresh = slice(len(price_changes.ids), None)
            self.resend("products", batch, table.keys[fresh][rules[fresh] != 0])
        with self.timed("orders"):
            self.write_orders(batch_run, prices)

        for orphan in self.model.resolve(batch):
            self.manifests[orphan.batch].resolved[(orphan.file, orphan.line)] = directory.name
        for name, defects in manifest.files.items():
            self.report.rows[name] += defects.rows
            self.report.rejected[name] += defects.rejected
        self.report.batches.append(directory.name)
        self.progress.clear()
        logger.info(
            "%s: %s rows, %s rejected",
            directory,
            f"{sum(d.rows for d in manifest.files.values()):,}",
            f"{manifest.defect_count:,}",
        )

    def resent(self, entity: str, batch: int) -> np.ndarray:
        """Ids rejected as new rows earlier that the source sends again in this batch."""
        parts = self.resent_ids[entity].pop(batch, [])
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def resend(self, entity: str, batch: int, rejected: np.ndarray) -> np.ndarray:
        """Choose which rejected new keys come again next batch; tell the model."""
        if batch + 1 >= self.options.batches or len(rejected) == 0:
            return np.zeros(len(rejected), dtype=bool)
        rng = self.rng(STREAM_RESEND, batch, REFERENCED_INDEX[entity], int(rejected[0]))
        chosen = rng.random(len(rejected)) < RESEND_SHARE[entity]
        self.model.expect(entity, rejected[chosen], batch + 1)
        if entity in self.resent_ids:
            self.resent_ids[entity][batch + 1].append(rejected[chosen])
        return chosen

    def write_orders(self, batch_run: BatchRun, prices: PriceBook) -> None:
        batch = batch_run.batch
        options = self.options
        item_format = batch_run.formats[ITEMS.name]
        with_discount = "discount" in item_format.header.columns
        rng = self.rng(STREAM_ORDERS, batch)
        with (
            batch_run.open(TRANSACTIONS) as transactions_out,
            batch_run.open(ITEMS) as items_out,
        ):
            settled = status_change_rows(
                self.schedule.pop(batch, []), self.model.known["transactions"]
            )
            changes = transactions_table(settled, self.codes, updates=True)
            batch_run.write_chunk(TRANSACTIONS, changes, transactions_out)
            late = Transactions.join(self.resent_transactions.pop(batch, []))
            self.write_transactions(batch_run, late, transactions_out)
            for days in chunks(self.orders, self.timeline, batch):
                txn = make_transactions(rng, self.orders, self.timeline, days, self.customers)
                schedule_status_changes(rng, txn, batch, options.batches, self.schedule)
                self.write_transactions(batch_run, txn, transactions_out)
                items = items_table(
                    rng, txn, self.timeline, self.catalogue, prices, self.next_item_id,
                    options.items_per_order, with_discount,
                )  # fmt: skip
                self.next_item_id += len(items)
                batch_run.write_chunk(ITEMS, items, items_out)


    def write_transactions(
        self, batch_run: BatchRun, txn: Transactions, out: CsvWriter
    ) -> None:
        """Write new transaction rows; some rejected ones (not orphans) come again later."""
        rules = batch_run.write_chunk(TRANSACTIONS, transactions_table(txn, self.codes), out)
        lost = (rules & ~UNKNOWN_BITS) != 0
        chosen = self.resend("transactions", batch_run.batch, txn.ids[lost])
        if chosen.any():
            self.resent_transactions[batch_run.batch + 1].append(
                txn.take(np.flatnonzero(lost)[chosen])
            )


class BatchRun:
    """Writing one batch: its files, its manifest, and the defects of its chunks."""

    def __init__(
        self,
        generation: Generation,
        batch: int,
        directory: Path,
        formats: dict[str, FileFormat],
        manifest: BatchManifest,
    ) -> None:
        self.generation = generation
        self.batch = batch
        self.directory = directory
        self.formats = formats
        self.manifest = manifest
        self.not_after = generation.timeline.batch_end(batch)
        self.edit_rngs = {
            spec.name: generation.rng(STREAM_EDITS, batch, index)
            for index, spec in enumerate(FILES)
        }

    def open(self, spec: FileSpec) -> CsvWriter:
        self.manifest.file(spec.name)
        return CsvWriter(self.directory / spec.name, self.formats[spec.name])

    def write_whole_file(self, spec: FileSpec, table: Table) -> np.ndarray:
        with self.open(spec) as out:
            return self.write_chunk(spec, table, out)

    def write_chunk(self, spec: FileSpec, table: Table, out: CsvWriter) -> np.ndarray:
        """Write one chunk; returns the rules broken by each table row's record (0: accepted)."""
        header = self.formats[spec.name].header
        rng = self.edit_rngs[spec.name]
        add_extra_column(table, header, rng)
        bursts = [b for b in self.generation.options.bursts if b.file_name == spec.name
                  and b.batch_index(self.generation.options.batches) == self.batch]
        edits = self.plan(spec, table, rng, bursts) \
            if self.generation.options.dirty > 0 or bursts else []
        checks = [
            None if edit.cells is None else check_record(spec, header, edit.cells, self.not_after)
            for edit in edits
        ]
        pieces, records = assemble(table, header, out.fmt.newline, edits, checks, out.next_line)
        outcome = self.generation.model.validate(spec, records, self.batch)
        verify_intent(spec, edits, records, outcome)
        out.write(pieces, records.end_line)
        self.manifest.file(spec.name).add(records, outcome)
        self.generation.progress.advance(len(records), f"{self.directory.name} {spec.name}")
        return outcome.rules[records.row_entry]

    def plan(self, spec: FileSpec, table: Table, rng: np.random.Generator,
             bursts: list[Burst]) -> list[Edit]:
        context = InjectionContext(
            rng=rng,
            spec=spec,
            header=self.formats[spec.name].header,
            table=table,
            untouched=lambda row: True,
            unknown_id=lambda entity: self.unknown_id(rng, entity),
            production_email=self.production_emails(rng, table),
        )
        edits = plan_edits(context, self.generation.options.dirty)
        for burst in bursts:
            edits += plan_burst(context, burst.rule, burst.share)
        return edits

    def unknown_id(self, rng: np.random.Generator, entity: str) -> int:
        """An id that is not known: of a later batch, rejected for good, or never sent."""
        model = self.generation.model
        roll = rng.random()
        if roll < FUTURE_SHARE:
            low, high = model.future_ids(entity, self.batch)
            if low <= high:
                return int(rng.integers(low, high + 1))
        rejected = model.rejected[entity]
        if roll < FUTURE_SHARE + REJECTED_SHARE and rejected:
            return rejected[int(rng.integers(len(rejected)))]
        return model.totals[entity] + 1 + int(rng.integers(NEVER_DELIVERED_SPAN))

    def production_emails(
        self, rng: np.random.Generator, table: Table
    ) -> Callable[[], str | None]:
        """A source of e-mails of customers in production that have no row in `table`."""
        model = self.generation.model
        cache: dict[str, object] = {}

        def email() -> str | None:
            if not cache:
                cache["known"] = np.flatnonzero(model.known["customers"])
                cache["in_table"] = set(table.keys.tolist())
            known, in_table = cache["known"], cache["in_table"]
            for _ in range(10):
                if len(known) == 0:
                    return None
                customer = int(known[rng.integers(len(known))])
                if customer not in in_table:
                    return model.email_of.get(customer)
            return None

        return email


def verify_intent(spec: FileSpec, edits: list[Edit], records: Records, outcome: Outcome) -> None:
    """Every defect breaks what it was written to break; every variant breaks nothing."""
    for index, edit in enumerate(edits):
        if edit.cells is None:
            continue
        entry = records.edit_entry[index]
        wanted = rule_mask(edit.intended)
        if wanted and int(outcome.rules[entry]) & wanted != wanted:
            raise RuntimeError(
                f"generator bug: {edit.action} in {spec.name} line {records.line[entry]} "
                f"was meant to break {sorted(edit.intended)}: {edit.cells!r}"
            )
        if not wanted and records.rules[entry]:
            raise RuntimeError(
                f"generator bug: variant {edit.action} in {spec.name} line {records.line[entry]} "
                f"breaks a rule: {edit.cells!r}"
            )
