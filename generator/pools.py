"""Faker pools: every value a person reads, drawn once and sampled in bulk with NumPy.

A Faker call costs microseconds; a million rows cannot afford one per row. So the pools
hold a few thousand names, places, phones and brands, and rows pick indexes into them.
A small share of names and places comes from other locales, so unicode text is normal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from faker import Faker

INTERNATIONAL_LOCALES = ("de_DE", "fr_FR", "es_ES", "pl_PL", "sv_SE", "ja_JP")
INTERNATIONAL_SHARE = 0.1
NAME_POOL = 1_500
PHONE_POOL = 4_000
LOCATION_POOL = 1_200
BRAND_POOL = 400
COLOR_POOL = 100
DOMAIN_POOL = 40


@dataclass(frozen=True)
class Category:
    """A product category: what it sells and its list-price range in whole currency units."""

    name: str
    nouns: tuple[str, ...]
    low: float
    high: float
    weight: float


CATEGORIES = (
    Category("Electronics", ("Headphones", "Speaker", "Smartwatch", "Charger", "Camera",
                             "Earbuds", "Power Bank", "Monitor"), 19, 1200, 1.6),
    Category("Computers", ("Laptop", "Keyboard", "Mouse", "Tablet", "Router", "SSD",
                           "Webcam", "Docking Station"), 15, 2500, 1.0),
    Category("Home & Kitchen", ("Blender", "Kettle", "Pan", "Knife Set", "Toaster",
                                "Coffee Maker", "Lamp", "Cushion"), 8, 400, 1.5),
    Category("Clothing", ("T-Shirt", "Hoodie", "Jacket", "Jeans", "Dress", "Scarf",
                          "Sweater", "Cap"), 8, 220, 1.7),
    Category("Shoes", ("Sneakers", "Boots", "Sandals", "Loafers", "Running Shoes"), 25, 260, 0.9),
    Category("Beauty", ("Shampoo", "Face Cream", "Perfume", "Lipstick", "Serum",
                        "Body Lotion"), 4, 120, 1.2),
    Category("Sports & Outdoors", ("Yoga Mat", "Tent", "Backpack", "Dumbbells", "Bike Helmet",
                                   "Water Bottle"), 7, 650, 1.0),
    Category("Toys", ("Puzzle", "Building Set", "Doll", "Board Game", "RC Car",
                      "Plush Bear"), 6, 160, 0.8),
    Category("Books", ("Novel", "Cookbook", "Notebook", "Travel Guide", "Comic"), 4, 60, 0.9),
    Category("Grocery", ("Coffee Beans", "Olive Oil", "Tea", "Chocolate", "Pasta",
                         "Honey"), 2, 45, 1.1),
    Category("Garden", ("Hose", "Planter", "Pruner", "Grill", "Garden Chair"), 9, 520, 0.6),
)  # fmt: skip

MATERIALS = ("Classic", "Pro", "Eco", "Deluxe", "Compact", "Smart", "Premium", "Essential",
             "Ultra", "Travel", "Organic", "Wireless", "Vintage", "Sport", "Mini")  # fmt: skip


@dataclass(frozen=True)
class Pools:
    """Texts rows pick by index. Parallel tuples share an index (a location's parts)."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    first_email: tuple[str, ...]  # ASCII e-mail part of each first name
    last_email: tuple[str, ...]
    domains: tuple[str, ...]
    phones: tuple[str, ...]
    cities: tuple[str, ...]
    states: tuple[str, ...]
    countries: tuple[str, ...]
    brands: tuple[str, ...]
    colors: tuple[str, ...]


@lru_cache(maxsize=4)
def build_pools(locale: str, seed: int) -> Pools:
    """Draw every pool from Faker, seeded so that the same seed gives the same pools.

    Pools are immutable, so repeated runs in one process (tests) share them.
    """
    main = _faker(locale, seed)
    abroad = [_faker(name, seed + i + 1) for i, name in enumerate(INTERNATIONAL_LOCALES)]
    firsts = _mixed(main, abroad, NAME_POOL, lambda f: f.first_name())
    lasts = _mixed(main, abroad, NAME_POOL, lambda f: f.last_name())
    locations = _mixed(main, abroad, LOCATION_POOL, _location)
    unique_locations = tuple(dict.fromkeys(locations))
    return Pools(
        first_names=firsts,
        last_names=lasts,
        first_email=tuple(email_part(name) for name in firsts),
        last_email=tuple(email_part(name) for name in lasts),
        domains=tuple(sorted({main.free_email_domain() for _ in range(DOMAIN_POOL)})),
        phones=tuple(main.phone_number() for _ in range(PHONE_POOL)),
        cities=tuple(loc[0] for loc in unique_locations),
        states=tuple(loc[1] for loc in unique_locations),
        countries=tuple(loc[2] for loc in unique_locations),
        brands=tuple(main.company() for _ in range(BRAND_POOL)),
        colors=tuple(dict.fromkeys(_words(main.color_name()) for _ in range(COLOR_POOL))),
    )


def email_part(name: str) -> str:
    """ASCII letters of a name for an e-mail address (`Zoë` -> `zoe`); `user` if none."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z]", "", folded) or "user"


def _words(name: str) -> str:
    """`MidnightBlue` -> `Midnight Blue`."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)


def _faker(locale: str, seed: int) -> Faker:
    try:
        fake = Faker(locale)
    except AttributeError as error:
        message = f"unknown --locale {locale!r}: use a Faker locale such as en_US"
        raise ValueError(message) from error
    fake.seed_instance(seed)
    return fake


def _mixed(main: Faker, abroad: list[Faker], size: int, draw: Callable[[Faker], object]) -> tuple:
    """`size` values, a share of them from the international locales in turn."""
    every = round(1 / INTERNATIONAL_SHARE)
    values = []
    for i in range(size):
        fake = abroad[(i // every) % len(abroad)] if i % every == every - 1 else main
        values.append(draw(fake))
    return tuple(values)


def _location(fake: Faker) -> tuple[str, str, str]:
    state = ""
    for provider in ("state", "administrative_unit", "region"):
        if hasattr(fake, provider):
            state = getattr(fake, provider)()
            break
    return fake.city(), state, fake.current_country()
