"""Issue 17, status feeds: warehouse.agg_delta rows without a surrogate key.

warehouse.agg_delta is a queue that the fact step fills and the aggregate step sums and
empties (revision 0020); nothing reads its rows one by one. Its ``delta_id`` (an identity
column) drew a sequence number for every row: a status feed at 5M orders records about
718,000 rows, and inserting 720,000 such rows took 1.10 and 1.15 s with the column against
0.88 and 0.92 s without it (durable server, the AMD EPYC machine of session 9,
docs/performance.md).

- ``delta_id`` and its identity sequence are dropped.

Downgrade: the column again, an identity (numbered from 1, after the other columns).

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table warehouse.agg_delta drop column delta_id")


def downgrade() -> None:
    op.execute("alter table warehouse.agg_delta "
               "add column delta_id bigint generated always as identity")
    op.execute("comment on column warehouse.agg_delta.delta_id is "
               "'Surrogate key, in recording order'")
