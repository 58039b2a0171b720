"""staging: one table per file, every column text, plus batch id and source line number.

No keys or foreign keys, so COPY runs near the speed of a bare COPY; a BRIN index on
batch_id (tiny, cheap to maintain, batches arrive in order) finds a batch's rows.

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
create index {table}_batch_brin on staging.{table} using brin (batch_id);
comment on table staging.{table} is
    'Raw rows of {table}.csv as delivered (trimmed of nothing), one per record';
comment on column staging.{table}.line_no is
    'Physical line (1-based, header = 1) where the record starts in its file';
"""
        )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    for table in reversed(list(TABLES)):
        op.execute(f"drop table staging.{table} cascade")
