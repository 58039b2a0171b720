"""Issue 17, daily batches and the initial load: production's two indexes nothing reads.

``production.transactions (customer_id)`` and ``production.transaction_items (product_id)``
(revision 0004) index the referencing side of two foreign keys. Nothing the pipeline runs
reads them: orders and lines are found by their own keys, their batch and their order
(``transaction_id``); a customer's or a product's lines are read in the warehouse
(``fact_sales_customer_idx``, ``fact_sales_product_date_idx``); erasure keeps the
customer's row (no identifiers) and no step deletes a customer or a product. They served
only a DELETE of a customer or product row, which would then check the foreign key by an
index instead of a scan. Yet every batch kept them up to date: a daily batch's new orders
and lines land all over both (customers and products are spread over their key ranges),
so each batch dirtied thousands of their pages. On the 5M history's database, a daily
batch replayed after a checkpoint (``python -m bench.feed_replay --daily``): merge
0.40-0.51 s with them, 0.21-0.23 s without; the 1M initial load rebuilt them in about
1.5 s (docs/performance.md).

- Both indexes are dropped; the foreign keys stay. A DBA who deletes a customer or a
  product row pays one scan of transactions or transaction_items for the check (and the
  delete fails if any order or line refers to it, as before).

Downgrade: both indexes again.

Revision ID: 0024
Revises: 0023
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("drop index production.transactions_customer_idx, "
               "production.transaction_items_product_idx")


def downgrade() -> None:
    op.execute("create index transactions_customer_idx "
               "on production.transactions (customer_id)")
    op.execute("create index transaction_items_product_idx "
               "on production.transaction_items (product_id)")
