"""Issue 17, micro-batches: warehouse.agg_delta is emptied by TRUNCATE and never autovacuumed.

warehouse.agg_delta is a queue: the fact step records an order's changes, the aggregate step
applies them and empties the table, every batch. Emptied by DELETE, it held the dead rows of
each batch (773,000 after a status feed at 5M orders), autovacuum came to clean them, and
the next batch's apply, which locks the table against concurrent recording, waited for the
autovacuum it met: a waiter cancels an autovacuum only once deadlock_timeout (1 s) has
passed. The 5M benchmark's daily batch_0007 paid that second in both runs of session 5
(aggregates 1.29 and 1.31 s against 0.28-0.38 s for the other daily batches; the server's
log: "canceling autovacuum task ... of relation warehouse.agg_delta"), and a micro-batch
stream meets it whenever autovacuum's round falls on a run.

- ``warehouse.apply_agg_delta`` empties the table with TRUNCATE (a new, empty file: no dead
  rows, nothing for a vacuum to do, no bloat from rolled-back recordings either).
- ``autovacuum_enabled = false`` on the table and its TOAST table: inserts alone would
  still start an autovacuum (autovacuum_vacuum_insert_threshold), to no use on rows that
  live until the batch's aggregate step. A table truncated at every batch never ages
  towards transaction id wraparound (its relfrozenxid is renewed by each TRUNCATE), and the
  planner sizes it from its current number of pages.

Downgrade: autovacuum's defaults again (apply_agg_delta, a routine in procedures/, is
whatever the checkout's procedures say).

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table warehouse.agg_delta set "
               "(autovacuum_enabled = false, toast.autovacuum_enabled = false)")
    op.execute("comment on table warehouse.agg_delta is "
               "'Pending changes of the aggregates: an order''s completed lines per product "
               "before (sign -1) and after (sign +1) load_fact_sales changed it; emptied "
               "(truncated) when applied'")


def downgrade() -> None:
    op.execute("alter table warehouse.agg_delta reset "
               "(autovacuum_enabled, toast.autovacuum_enabled)")
    op.execute("comment on table warehouse.agg_delta is "
               "'Pending changes of the aggregates: an order''s completed lines per product "
               "before (sign -1) and after (sign +1) load_fact_sales changed it; deleted when "
               "applied'")
