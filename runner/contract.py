"""The contract's files (docs/data-contract.md, "Files and batches"): each file's name, the
staging table it loads and its columns, in the order the files of a batch are loaded.

The whitelist of ingestion (runner/ingest.py): names read from files are matched against
it, and only these identifiers reach SQL. The file order is also the order in which reports
list a batch's files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileSpec:
    """One contract file: the staging table it loads and its columns (fixed identifiers)."""

    file_name: str
    table: str  # staging.<table>
    columns: tuple[str, ...]
    optional: frozenset[str] = frozenset()

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.optional)


FILE_SPECS: tuple[FileSpec, ...] = (  # the order files of a batch are loaded in
    FileSpec(
        "customers.csv", "customers",
        ("customer_id", "first_name", "last_name", "email", "phone", "city", "state",
         "country", "signup_date", "updated_at"),
        frozenset({"phone", "city", "state", "updated_at"}),
    ),
    FileSpec(
        "products.csv", "products",
        ("product_id", "product_name", "category", "brand", "unit_price", "cost",
         "updated_at"),
        frozenset({"brand", "updated_at"}),
    ),
    FileSpec(
        "transactions.csv", "transactions",
        ("transaction_id", "customer_id", "transaction_ts", "payment_method", "status"),
    ),
    FileSpec(
        "transaction_items.csv", "transaction_items",
        ("item_id", "transaction_id", "product_id", "quantity", "unit_price", "discount"),
        frozenset({"discount"}),
    ),
)
FILE_NAMES: tuple[str, ...] = tuple(spec.file_name for spec in FILE_SPECS)
