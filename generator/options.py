"""What the user asked for: sizes, period, batches, seed, defect rate, bursts, and their checks.

Options are read once by the command line (`generator/__main__.py`) and passed down as one
frozen value; no other module reads arguments or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from generator.defects import burst_rules

EARLIEST_DATE = date(2000, 1, 1)
DEFAULT_START = date(2025, 1, 1)
DEFAULT_DAYS = 365
DEFAULT_SEED = 42
DEFAULT_ITEMS_PER_ORDER = 3.0
MAX_DIRTY = 0.05
MAX_ITEMS_PER_ORDER = 50.0


@dataclass(frozen=True)
class Scale:
    """Sizes of one preset: customers, products and transactions (orders)."""

    customers: int
    products: int
    transactions: int


SCALES = {
    "small": Scale(customers=1_000, products=200, transactions=10_000),
    "medium": Scale(customers=20_000, products=2_000, transactions=200_000),
    "large": Scale(customers=100_000, products=5_000, transactions=1_000_000),
}
DEFAULT_SCALE = "small"


@dataclass(frozen=True)
class Burst:
    """A mass defect: in one batch, about `share` of one file's rows break one rule."""

    file_name: str
    rule: str
    share: float
    batch: int | None = None  # 1-based; None: the last batch

    @classmethod
    def parse(cls, text: str) -> Burst:
        """`FILE:RULE:SHARE[:BATCH]`, e.g. `transaction_items.csv:invalid_amount:0.9`."""
        parts = text.split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"--defect-burst {text!r}: write FILE:RULE:SHARE[:BATCH], e.g. "
                             "transaction_items.csv:invalid_amount:0.9")
        try:
            share = float(parts[2])
            batch = int(parts[3]) if len(parts) == 4 else None
        except ValueError:
            raise ValueError(f"--defect-burst {text!r}: SHARE is a number between 0 and 1, "
                             "BATCH a batch number") from None
        return cls(parts[0], parts[1], share, batch)

    def batch_index(self, batches: int) -> int:
        """0-based index of the batch it is written into."""
        return (self.batch or batches) - 1


@dataclass(frozen=True)
class Options:
    """Everything that decides the output: the same options give the same bytes."""

    out: Path
    customers: int = SCALES[DEFAULT_SCALE].customers
    products: int = SCALES[DEFAULT_SCALE].products
    transactions: int = SCALES[DEFAULT_SCALE].transactions
    items_per_order: float = DEFAULT_ITEMS_PER_ORDER
    start: date = DEFAULT_START
    days: int = DEFAULT_DAYS
    batches: int = 1
    initial_share: float | None = None
    seed: int = DEFAULT_SEED
    dirty: float = 0.0
    bursts: tuple[Burst, ...] = ()
    locale: str = "en_US"
    quiet: bool = False

    def check(self, today: date) -> None:
        """Raise ValueError, saying what to change, when the options cannot be honoured.

        `today` is the current UTC date: no generated value may lie after it.
        """
        problems = []
        if self.customers < 1:
            problems.append("--customers must be at least 1")
        if self.products < 1:
            problems.append("--products must be at least 1")
        if self.transactions < 0:
            problems.append("--transactions must not be negative")
        if not 1.0 <= self.items_per_order <= MAX_ITEMS_PER_ORDER:
            problems.append(f"--items-per-order must be between 1 and {MAX_ITEMS_PER_ORDER:g}")
        if self.days < 1:
            problems.append("--days must be at least 1")
        if not 1 <= self.batches <= max(self.days, 1):
            problems.append("--batches must be between 1 and --days (a batch spans whole days)")
        if self.initial_share is not None and not 0.0 < self.initial_share < 1.0:
            problems.append("--initial-share must be between 0 and 1 (exclusive)")
        if not 0.0 <= self.dirty <= MAX_DIRTY:
            problems.append(f"--dirty must be between 0 and {MAX_DIRTY} (a rate per rule)")
        problems += [problem for burst in self.bursts
                     for problem in burst_problems(burst, self.batches)]
        if self.seed < 0:
            problems.append("--seed must not be negative")
        if self.start < EARLIEST_DATE:
            problems.append(f"--start must not be before {EARLIEST_DATE.isoformat()}")
        if self.end > today:
            problems.append(
                f"the period ends {self.end.isoformat()} (exclusive), after today "
                f"{today.isoformat()} UTC; the pipeline rejects future values: choose an "
                "earlier --start or fewer --days"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def end(self) -> date:
        """First day after the period (exclusive end)."""
        return date.fromordinal(self.start.toordinal() + self.days)


def burst_problems(burst: Burst, batches: int) -> list[str]:
    """What is wrong with a --defect-burst (the file, rule and share it names)."""
    rules = burst_rules()
    where = f"--defect-burst {burst.file_name}:{burst.rule}"
    if burst.file_name not in rules:
        return [f"{where}: the file is one of {', '.join(rules)}"]
    problems = []
    if burst.rule not in rules[burst.file_name]:
        problems.append(f"{where}: the rule is one of {', '.join(rules[burst.file_name])}")
    if not 0.0 < burst.share <= 1.0:
        problems.append(f"{where}: SHARE must be above 0 and at most 1")
    if burst.batch is not None and not 1 <= burst.batch <= batches:
        problems.append(f"{where}: BATCH must be between 1 and --batches ({batches})")
    return problems
