"""Time: the period, its batches, and when people shop (weekdays, seasons, holidays).

Days are counted from the period's first day (day 0). Instants are whole seconds since the
Unix epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

SECONDS_PER_DAY = 86_400
EPOCH = date(1970, 1, 1)

# Monday first: a web shop sells a little more at the end of the week.
WEEKDAY_FACTOR = np.array([1.00, 0.97, 0.98, 1.02, 1.08, 1.20, 1.12])
# Share of the day's orders by hour (UTC): quiet nights, a lunch bump, busy evenings.
HOUR_WEIGHT = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 3.2, 3.8, 4.2, 4.6,
     5.2, 5.0, 4.6, 4.4, 4.5, 4.9, 5.6, 6.4, 6.8, 6.0, 4.2, 2.2]
)  # fmt: skip
YEARLY_AMPLITUDE = 0.12  # +-12 % around the year, highest in December
GROWTH_PER_YEAR = 0.45  # the shop grows: 45 % more orders a year later


@dataclass(frozen=True)
class Timeline:
    """The period [start, start + days) cut into batches of whole days."""

    start: date
    days: int
    batches: int
    initial_share: float | None = None  # share of the days in batch 1; the rest split evenly

    @property
    def start_day(self) -> int:
        """Days from the Unix epoch to day 0."""
        return (self.start - EPOCH).days

    @property
    def start_second(self) -> int:
        return self.start_day * SECONDS_PER_DAY

    def bounds(self) -> np.ndarray:
        """First day of each batch, then the period's end: batches + 1 day numbers."""
        if self.initial_share is None or self.batches == 1:
            return (np.arange(self.batches + 1, dtype=np.int64) * self.days) // self.batches
        later = self.batches - 1
        first = min(max(1, round(self.days * self.initial_share)), self.days - later)
        rest = first + (np.arange(self.batches, dtype=np.int64) * (self.days - first)) // later
        return np.concatenate(([0], rest)).astype(np.int64)

    def batch_of_days(self, days: np.ndarray) -> np.ndarray:
        """Batch index (0-based) of each day; days before day 0 belong to the first batch."""
        index = np.searchsorted(self.bounds()[1:-1], days, side="right")
        return index.astype(np.int64)

    def batch_end(self, batch: int) -> datetime:
        """Exclusive end of a batch's period as an aware UTC datetime."""
        day = int(self.bounds()[batch + 1])
        return datetime.combine(self.start + timedelta(days=day), datetime.min.time(), UTC)

    def batch_seconds(self, batch: int) -> tuple[int, int]:
        """The batch's period as [first second, end second) since the epoch."""
        bounds = self.bounds()
        first = self.start_second + int(bounds[batch]) * SECONDS_PER_DAY
        return first, self.start_second + int(bounds[batch + 1]) * SECONDS_PER_DAY


def daily_weights(timeline: Timeline) -> np.ndarray:
    """Relative order volume of each day: weekday x season x holidays x growth."""
    days = np.arange(timeline.days)
    dates = [timeline.start + timedelta(days=int(d)) for d in days]
    weekday = WEEKDAY_FACTOR[[d.weekday() for d in dates]]
    day_of_year = np.array([d.timetuple().tm_yday for d in dates])
    season = 1 + YEARLY_AMPLITUDE * np.cos(2 * np.pi * (day_of_year - 355) / 365.25)
    holiday = np.array([holiday_factor(d) for d in dates])
    growth = 1 + GROWTH_PER_YEAR * days / 365.0
    return weekday * season * holiday * growth


def holiday_factor(day: date) -> float:
    """Extra traffic of sales days: Black Friday, Cyber Monday, Christmas, January sales."""
    black_friday = _fourth_thursday_of_november(day.year) + timedelta(days=1)
    if day == black_friday:
        return 3.0
    if day == black_friday + timedelta(days=3):
        return 2.4
    if black_friday < day < black_friday + timedelta(days=3):
        return 1.6
    if day.month == 12 and day.day <= 22:
        return 1.35
    if day.month == 12 and 24 <= day.day <= 26:
        return 0.7
    if day.month == 1 and 2 <= day.day <= 7:
        return 1.25
    if day.month == 2 and 7 <= day.day <= 13:
        return 1.15
    return 1.0


def _fourth_thursday_of_november(year: int) -> date:
    first = date(year, 11, 1)
    return first + timedelta(days=(3 - first.weekday()) % 7 + 21)


def seconds_of_day(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random times of day, following HOUR_WEIGHT."""
    hours = rng.choice(24, size=size, p=HOUR_WEIGHT / HOUR_WEIGHT.sum())
    return hours * 3600 + rng.integers(0, 3600, size=size)


def iso_date(day_since_epoch: int) -> str:
    return (EPOCH + timedelta(days=day_since_epoch)).isoformat()


def iso_second(second_since_epoch: int) -> str:
    """`YYYY-MM-DD HH:MM:SS`, the generator's plain timestamp form (UTC)."""
    return datetime.fromtimestamp(second_since_epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
