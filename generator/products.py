"""The catalogue: products, their prices by category, and price changes over time.

Product ids follow the day a product is introduced: most are on sale from day 0, the rest
arrive over the period. Popularity is heavy-tailed (a fifth of the products sell most).
`price` and `cost` hold the version production has accepted; a batch's accepted change
rows take effect at their `updated_at`, and items sold after that pay the new price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.contract import PRODUCTS
from generator.encoding import IntColumn, MoneyColumn, Pool, PoolColumn, TextColumn, TimestampColumn
from generator.layout import Table, inverse_popularity
from generator.pools import CATEGORIES, MATERIALS, Pools
from generator.timeline import SECONDS_PER_DAY, Timeline, seconds_of_day

INITIAL_SHARE = 0.7
LOSS_LEADER_SHARE = 0.03
PRICE_CHANGE_RATE_PER_YEAR = 0.3
COST_CHANGE_SHARE = 0.5
PRICE_ENDINGS = np.array([99, 49, 0, 95])
PRICE_ENDING_WEIGHTS = np.array([0.55, 0.2, 0.15, 0.1])
NO_CHANGE = np.iinfo(np.int64).max


@dataclass
class Catalogue:
    """Every product by id (index 0 unused); `price` and `cost` are the accepted version."""

    intro_second: np.ndarray
    category: np.ndarray
    names: list[str]
    brand: np.ndarray
    price: np.ndarray  # cents
    cost: np.ndarray  # cents
    weight: np.ndarray  # popularity: relative chance to be bought
    weight_cumsum: np.ndarray  # over ids 1..n
    on_sale_by_day: np.ndarray  # products introduced on or before each day
    batch_last_id: np.ndarray
    category_pool: Pool
    brand_pool: Pool

    @property
    def count(self) -> int:
        return len(self.category) - 1


@dataclass(frozen=True)
class PriceChanges:
    """A batch's product change rows (the first rows of its table)."""

    ids: np.ndarray
    price: np.ndarray
    cost: np.ndarray
    updated: np.ndarray


@dataclass(frozen=True)
class PriceBook:
    """Prices during one batch: `before` until `change_at`, then `after`."""

    before: np.ndarray
    after: np.ndarray
    change_at: np.ndarray

    def prices(self, products: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        changed = seconds >= self.change_at[products]
        return np.where(changed, self.after[products], self.before[products])


def create_catalogue(
    rng: np.random.Generator, count: int, timeline: Timeline, pools: Pools
) -> Catalogue:
    initial = max(1, round(count * INITIAL_SHARE))
    intro_day = np.sort(
        np.concatenate(
            [np.zeros(initial, dtype=np.int64),
             rng.integers(0, timeline.days, size=count - initial)]
        )
    )  # fmt: skip
    intro_second = (timeline.start_day + intro_day) * SECONDS_PER_DAY + seconds_of_day(rng, count)
    category_weight = np.array([c.weight for c in CATEGORIES])
    category = rng.choice(len(CATEGORIES), size=count, p=category_weight / category_weight.sum())
    brand = rng.integers(len(pools.brands), size=count)
    price = _list_prices(rng, category)
    cost = _costs(rng, price)
    batch_of = timeline.batch_of_days(intro_day)
    popularity = rng.pareto(1.16, size=count) + 0.05
    return Catalogue(
        intro_second=_pad(intro_second),
        category=_pad(category),
        names=["", *_names(rng, category, pools)],
        brand=_pad(brand),
        price=_pad(price),
        cost=_pad(cost),
        weight=_pad(popularity),
        weight_cumsum=np.cumsum(popularity),
        on_sale_by_day=np.searchsorted(intro_day, np.arange(timeline.days), side="right"),
        batch_last_id=np.searchsorted(batch_of, np.arange(timeline.batches), side="right"),
        category_pool=Pool(tuple(c.name for c in CATEGORIES)),
        brand_pool=Pool(pools.brands),
    )


def _pad(values: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros(1, dtype=values.dtype), values])


def _list_prices(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    """Cents: log-spread within the category's range, with shop endings (.99, .49 ...)."""
    low = np.array([c.low for c in CATEGORIES])[category]
    high = np.array([c.high for c in CATEGORIES])[category]
    position = rng.beta(1.2, 3.0, size=len(category))
    whole = np.floor(low * (high / low) ** position).astype(np.int64)
    ending = rng.choice(PRICE_ENDINGS, size=len(category), p=PRICE_ENDING_WEIGHTS)
    return np.maximum(whole * 100 + ending, 99)


def _costs(rng: np.random.Generator, price: np.ndarray) -> np.ndarray:
    """Unit cost: 35-80 % of the price, above it for a few loss leaders."""
    ratio = rng.uniform(0.35, 0.8, size=len(price))
    leaders = rng.random(len(price)) < LOSS_LEADER_SHARE
    ratio[leaders] = rng.uniform(1.0, 1.15, size=leaders.sum())
    return np.maximum(np.round(price * ratio).astype(np.int64), 1)


def _names(rng: np.random.Generator, category: np.ndarray, pools: Pools) -> list[str]:
    colors = rng.integers(len(pools.colors), size=len(category))
    materials = rng.integers(len(MATERIALS), size=len(category))
    nouns = rng.integers(1 << 30, size=len(category))
    models = rng.integers(100, 1000, size=len(category))
    with_model = rng.random(len(category)) < 0.35
    names = []
    for cat, color, material, noun, model, numbered in zip(
        category.tolist(), colors.tolist(), materials.tolist(), nouns.tolist(),
        models.tolist(), with_model.tolist(), strict=True,
    ):  # fmt: skip
        choices = CATEGORIES[cat].nouns
        name = f"{pools.colors[color]} {MATERIALS[material]} {choices[noun % len(choices)]}"
        names.append(f"{name} {model}" if numbered else name)
    return names


def products_table(
    rng: np.random.Generator,
    catalogue: Catalogue,
    timeline: Timeline,
    batch: int,
    known: np.ndarray,
    resent: np.ndarray,
) -> tuple[Table, PriceChanges]:
    """The batch's price and cost changes of known products, the `resent` products rejected
    earlier and sent again corrected, then its new products."""
    changes = _changes(rng, catalogue, timeline, batch, known)
    first_new = int(catalogue.batch_last_id[batch - 1]) + 1 if batch else 1
    new_ids = np.arange(first_new, int(catalogue.batch_last_id[batch]) + 1, dtype=np.int64)
    low, high = timeline.batch_seconds(batch)
    resent_at = rng.integers(low, high, size=len(resent))
    new_ids = np.concatenate([resent, new_ids])
    ids = np.concatenate([changes.ids, new_ids])
    columns = {
        "product_id": IntColumn(ids),
        "product_name": TextColumn([catalogue.names[i] for i in ids.tolist()]),
        "category": PoolColumn(catalogue.category[ids], catalogue.category_pool),
        "brand": PoolColumn(catalogue.brand[ids], catalogue.brand_pool),
        "unit_price": MoneyColumn(np.concatenate([changes.price, catalogue.price[new_ids]])),
        "cost": MoneyColumn(np.concatenate([changes.cost, catalogue.cost[new_ids]])),
        "updated_at": TimestampColumn(
            np.concatenate(
                [changes.updated, resent_at, catalogue.intro_second[new_ids[len(resent) :]]]
            )
        ),
    }
    weight = inverse_popularity(catalogue.weight, ids, len(changes.ids))
    return Table(PRODUCTS, columns, ids, edit_weight=weight), changes


def _changes(
    rng: np.random.Generator, catalogue: Catalogue, timeline: Timeline, batch: int,
    known: np.ndarray,
) -> PriceChanges:  # fmt: skip
    candidates = np.flatnonzero(known)
    bounds = timeline.bounds()
    years = float(bounds[batch + 1] - bounds[batch]) / 365.0
    count = int(rng.binomial(len(candidates), min(1.0, PRICE_CHANGE_RATE_PER_YEAR * years)))
    ids = np.sort(rng.choice(candidates, size=count, replace=False)).astype(np.int64)
    old_price, old_cost = catalogue.price[ids], catalogue.cost[ids]
    factor = rng.uniform(0.85, 1.2, size=count)
    whole = np.maximum(np.floor(old_price * factor / 100).astype(np.int64), 0)
    price = whole * 100 + rng.choice(PRICE_ENDINGS, size=count, p=PRICE_ENDING_WEIGHTS)
    price = np.maximum(price, 99)
    price = np.where(price == old_price, old_price + 100, price)
    cost = old_cost.copy()
    moves_cost = rng.random(count) < COST_CHANGE_SHARE
    cost[moves_cost] = np.maximum(np.round(old_cost * price / old_price)[moves_cost], 1)
    low, high = timeline.batch_seconds(batch)
    updated = rng.integers(low, high, size=count)
    return PriceChanges(ids=ids, price=price, cost=cost.astype(np.int64), updated=updated)


def price_book(catalogue: Catalogue, changes: PriceChanges, accepted: np.ndarray) -> PriceBook:
    """Apply the accepted change rows (`accepted` per table row) and return the batch's
    prices over time."""
    taken = accepted[: len(changes.ids)]
    before = catalogue.price.copy()
    ids = changes.ids[taken]
    change_at = np.full(len(before), NO_CHANGE, dtype=np.int64)
    change_at[ids] = changes.updated[taken]
    catalogue.price[ids] = changes.price[taken]
    catalogue.cost[ids] = changes.cost[taken]
    return PriceBook(before=before, after=catalogue.price.copy(), change_at=change_at)
