"""staging: one table per file, every column text, plus batch id and source line number.

No keys, foreign keys or indexes, so COPY runs near the speed of a bare COPY. A BRIN index
on batch_id was measured and dropped: PostgreSQL 15 reads the BRIN metapage and revmap for
every inserted row, which cost ~30% more server time on a 3M-row COPY
(docs/performance.md, "Ingestion"), and once etl.purge_staging frees pages, new batches
land anywhere in the heap, so the index would no longer narrow a scan. Staging holds the
pending batches plus recently processed ones; validation reads a batch with one
sequential scan.

Values are stored as delivered (not trimmed); an empty field, quoted or not, is NULL.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = {
    "customers": (
        "customer_id", "first_name", "last_name", "email", "phone", "city", "state",
        "country", "signup_date", "updated_at",
    ),
    "products": ("product_id", "product_name", "category", "brand", "unit_price", "cost",
                 "updated_at"),
    "transactions": ("transaction_id", "customer_id", "transaction_ts", "payment_method",
                     "status"),
    "transaction_items": ("item_id", "transaction_id", "product_id", "quantity", "unit_price",
                          "discount"),
}


def upgrade() -> None:
    for table, columns in TABLES.items():
        column_sql = ",\n    ".join(f"{column} text" for column in columns)
        op.execute(
            f"""
create table staging.{table} (
    batch_id bigint not null,
    line_no  bigint not null,
    {column_sql}
);
comment on table staging.{table} is
    'Raw rows of {table}.csv as delivered (trimmed of nothing, empty fields null), one per '
    'record that has the header''s number of fields';
comment on column staging.{table}.batch_id is 'etl.batch that delivered the row';
comment on column staging.{table}.line_no is
    'Physical line (1-based, header = 1) where the record starts in its file';
"""
        )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    for table in reversed(list(TABLES)):
        op.execute(f"drop table staging.{table} cascade")
