"""Issue 17, drill-downs: warehouse.agg_product_monthly leaves two fifths of each page free.

Revision 0015 left a fifth of each page free so a changed product-month is rewritten in its
own page (a HOT update) and a month's rows stay in key order for a year of
``analytics.v_product_performance`` (182,000 product-months at 5M orders, read through the
(month, product_id) key). A status feed changes more than a fifth of a page at once:
the 5M benchmark's feed batches rewrote 134,567 and 36,582 of the 508,369 product-months,
about 17 of a page's 65 rows on average, and every row beyond the free room moved to the
end of the table. After them each month had about 1,500 of its rows there, the year's read
visited 35,926 buffers for 2,844 pages, and the top 10 products of a year took 105.8-107.1 ms
against 82.9-83.5 ms for the same rows laid out as this revision leaves them (a copy on the
coordinator's 5M database, rolled back; docs/performance.md, "Drill-downs at 5M").

- ``fillfactor = 60``: room for two fifths of a page's rows to be rewritten by one batch
  (the space of the old versions is reclaimed when the page is next read, before the next
  batch). The table is a third larger (about 77 MB at 5M orders); the key index is
  unchanged, and fewer moved rows mean fewer key entries.
- The table is rewritten once in key order (CLUSTER, a few seconds at 5M orders) so a
  warehouse loaded before gets the room and the order at once.

Downgrade: revision 0015's fill factor; the layout stays as it is.

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table warehouse.agg_product_monthly set (fillfactor = 60)")
    op.execute("cluster warehouse.agg_product_monthly using agg_product_monthly_pkey")
    op.execute("analyze warehouse.agg_product_monthly")


def downgrade() -> None:
    op.execute("alter table warehouse.agg_product_monthly set (fillfactor = 80)")
