"""Customers: who signs up when, who they are, and who moves or changes e-mail later.

Customer ids follow signup order, so the customers of a batch are one range of ids and the
customers who may order on a day are ids 1..n. A quarter of them signed up in the two years
before the period (delivered in the first batch); the rest sign up over the period, more
as the shop grows. Current details (place, e-mail) change only when a change row is
accepted, so every change row differs from what production holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.contract import CUSTOMERS
from generator.encoding import DateColumn, IntColumn, Pool, PoolColumn, TextColumn, TimestampColumn
from generator.layout import Table, inverse_popularity
from generator.options import EARLIEST_DATE
from generator.pools import Pools
from generator.timeline import SECONDS_PER_DAY, Timeline, seconds_of_day

PRE_PERIOD_SHARE = 0.25
PRE_PERIOD_DAYS = 730
MOVE_RATE_PER_YEAR = 0.08
EMAIL_CHANGE_RATE_PER_YEAR = 0.05
EMAIL_FORMS = 4


@dataclass(frozen=True)
class CustomerPools:
    """Pools of customer text with their CSV bytes encoded once."""

    texts: Pools
    first_names: Pool
    last_names: Pool
    phones: Pool
    cities: Pool
    states: Pool
    countries: Pool

    @classmethod
    def of(cls, pools: Pools) -> CustomerPools:
        return cls(
            texts=pools,
            first_names=Pool(pools.first_names),
            last_names=Pool(pools.last_names),
            phones=Pool(pools.phones),
            cities=Pool(pools.cities),
            states=Pool(pools.states),
            countries=Pool(pools.countries),
        )


@dataclass
class CustomerBase:
    """Every customer by id (index 0 unused); `location`, `domain`, `version` are current."""

    signup_day: np.ndarray  # day number, negative before the period
    signup_second: np.ndarray  # since the epoch: updated_at of the first row
    first: np.ndarray
    last: np.ndarray
    email_form: np.ndarray
    domain: np.ndarray
    version: np.ndarray  # batch number of the last accepted e-mail change, 0 for none
    phone: np.ndarray
    location: np.ndarray
    weight: np.ndarray  # popularity: relative chance to place an order
    weight_cumsum: np.ndarray  # over ids 1..n, for picking who orders
    signed_up_by_day: np.ndarray  # customers signed up on or before each day of the period
    batch_last_id: np.ndarray  # highest id of each batch's new customers

    @property
    def count(self) -> int:
        return len(self.signup_day) - 1


@dataclass(frozen=True)
class CustomerChanges:
    """The change rows of a batch: the first rows of its table."""

    ids: np.ndarray
    location: np.ndarray
    domain: np.ndarray
    version: np.ndarray


def create_customers(
    rng: np.random.Generator,
    count: int,
    timeline: Timeline,
    daily_weight: np.ndarray,
    pools: Pools,
) -> CustomerBase:
    """Draw every customer's signup and details."""
    signup_day = _signup_days(rng, count, timeline, daily_weight)
    signup_second = (
        (timeline.start_day + signup_day) * SECONDS_PER_DAY + seconds_of_day(rng, count)
    )
    weights = rng.pareto(1.6, size=count) + 0.3
    by_day = np.searchsorted(signup_day, np.arange(timeline.days), side="right")
    batch_of = timeline.batch_of_days(signup_day)
    last_ids = np.searchsorted(batch_of, np.arange(timeline.batches), side="right")
    return CustomerBase(
        signup_day=_with_unused_zero(signup_day),
        signup_second=_with_unused_zero(signup_second),
        first=_with_unused_zero(rng.integers(len(pools.first_names), size=count)),
        last=_with_unused_zero(rng.integers(len(pools.last_names), size=count)),
        email_form=_with_unused_zero(rng.integers(EMAIL_FORMS, size=count)),
        domain=_with_unused_zero(_skewed(rng, len(pools.domains), count)),
        version=np.zeros(count + 1, dtype=np.int64),
        phone=_with_unused_zero(rng.integers(len(pools.phones), size=count)),
        location=_with_unused_zero(_skewed(rng, len(pools.cities), count)),
        weight=_with_unused_zero(weights),
        weight_cumsum=np.cumsum(weights),
        signed_up_by_day=by_day.astype(np.int64),
        batch_last_id=last_ids.astype(np.int64),
    )


def _signup_days(
    rng: np.random.Generator, count: int, timeline: Timeline, daily_weight: np.ndarray
) -> np.ndarray:
    """Sorted signup days: a share before the period (at least one), the rest during it."""
    earliest = max((EARLIEST_DATE - timeline.start).days, -PRE_PERIOD_DAYS)
    before = max(1, round(count * PRE_PERIOD_SHARE))
    if earliest < 0:
        early = rng.integers(earliest, 0, size=before)
    else:
        early = np.zeros(before, dtype=np.int64)
    during = rng.multinomial(count - before, daily_weight / daily_weight.sum())
    days = np.concatenate([early, np.repeat(np.arange(timeline.days), during)])
    return np.sort(days).astype(np.int64)


def _skewed(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """Indexes into a pool, some entries far more common than others."""
    weights = 1.0 / np.arange(1, size + 1) ** 0.8
    return rng.choice(size, size=count, p=weights / weights.sum())


def _with_unused_zero(values: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros(1, dtype=values.dtype), values])


def email_address(
    pools: Pools, customer: int, first: int, last: int, form: int, domain: int, version: int
) -> str:
    """An e-mail address; unique because it ends in the id (and the change's batch)."""
    first_part, last_part = pools.first_email[first], pools.last_email[last]
    if form == 0:
        local = f"{first_part}.{last_part}"
    elif form == 1:
        local = f"{first_part[0]}{last_part}"
    elif form == 2:
        local = f"{last_part}.{first_part}"
    else:
        local = f"{first_part}{last_part[0]}"
    suffix = f".{customer}.{version}" if version else f".{customer}"
    return f"{local}{suffix}@{pools.domains[domain]}"


def customers_table(
    rng: np.random.Generator,
    base: CustomerBase,
    pools: CustomerPools,
    timeline: Timeline,
    batch: int,
    known: np.ndarray,
    resent: np.ndarray,
) -> tuple[Table, CustomerChanges]:
    """The batch's change rows (customers accepted before who moved or changed e-mail),
    the `resent` customers rejected earlier and sent again corrected, then its new ones."""
    changes = _changes(rng, base, pools.texts, timeline, batch, known)
    first_new = int(base.batch_last_id[batch - 1]) + 1 if batch else 1
    new_ids = np.arange(first_new, int(base.batch_last_id[batch]) + 1, dtype=np.int64)
    fresh = np.concatenate([resent, new_ids])
    ids = np.concatenate([changes.ids, fresh])
    location = np.concatenate([changes.location, base.location[fresh]])
    domain = np.concatenate([changes.domain, base.domain[fresh]])
    version = np.concatenate([changes.version, base.version[fresh]])
    low, high = timeline.batch_seconds(batch)
    updated = np.concatenate(
        [rng.integers(low, high, size=len(changes.ids) + len(resent)),
         base.signup_second[new_ids]]
    )  # fmt: skip
    emails = _emails(base, pools.texts, ids, domain, version)
    columns = {
        "customer_id": IntColumn(ids),
        "first_name": PoolColumn(base.first[ids], pools.first_names),
        "last_name": PoolColumn(base.last[ids], pools.last_names),
        "email": TextColumn(emails),
        "phone": PoolColumn(base.phone[ids], pools.phones),
        "city": PoolColumn(location, pools.cities),
        "state": PoolColumn(location, pools.states),
        "country": PoolColumn(location, pools.countries),
        "signup_date": DateColumn(timeline.start_day + base.signup_day[ids]),
        "updated_at": TimestampColumn(updated),
    }
    weight = inverse_popularity(base.weight, ids, len(changes.ids))
    return Table(CUSTOMERS, columns, ids, emails=emails, edit_weight=weight), changes


def _changes(
    rng: np.random.Generator,
    base: CustomerBase,
    pools: Pools,
    timeline: Timeline,
    batch: int,
    known: np.ndarray,
) -> CustomerChanges:
    candidates = np.flatnonzero(known)
    share = _batch_years(timeline, batch)
    movers = int(rng.binomial(len(candidates), min(1.0, MOVE_RATE_PER_YEAR * share)))
    if len(pools.cities) < 2:
        movers = 0
    switchers = int(rng.binomial(len(candidates), min(1.0, EMAIL_CHANGE_RATE_PER_YEAR * share)))
    chosen = rng.choice(candidates, size=min(len(candidates), movers + switchers), replace=False)
    moving = np.zeros(len(chosen), dtype=bool)
    moving[:movers] = True
    order = np.argsort(chosen)
    ids, moving = chosen[order].astype(np.int64), moving[order]
    location = base.location[ids].copy()
    location[moving] = (location[moving] + rng.integers(1, len(pools.cities), size=moving.sum()))
    location[moving] %= len(pools.cities)
    domain = base.domain[ids].copy()
    domain[~moving] = rng.integers(len(pools.domains), size=(~moving).sum())
    version = base.version[ids].copy()
    version[~moving] = batch + 1
    return CustomerChanges(ids=ids, location=location, domain=domain, version=version)


def _batch_years(timeline: Timeline, batch: int) -> float:
    bounds = timeline.bounds()
    return float(bounds[batch + 1] - bounds[batch]) / 365.0


def _emails(
    base: CustomerBase, pools: Pools, ids: np.ndarray, domain: np.ndarray, version: np.ndarray
) -> list[str]:
    return [
        email_address(pools, *parts)
        for parts in zip(
            ids.tolist(),
            base.first[ids].tolist(),
            base.last[ids].tolist(),
            base.email_form[ids].tolist(),
            domain.tolist(),
            version.tolist(),
            strict=True,
        )
    ]


def apply_accepted(base: CustomerBase, changes: CustomerChanges, accepted: np.ndarray) -> None:
    """Make accepted change rows the customers' current details (`accepted` per table row)."""
    taken = accepted[: len(changes.ids)]
    ids = changes.ids[taken]
    base.location[ids] = changes.location[taken]
    base.domain[ids] = changes.domain[taken]
    base.version[ids] = changes.version[taken]
