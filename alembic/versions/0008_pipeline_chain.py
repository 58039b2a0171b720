"""etl: the pipeline's chain and its retry policy as data, read by both runners.

The Python runner (runner/pipeline.py through runner/steps.py and runner/retry.py) and
``etl.process_pending()`` used to hold a copy each of the step list and of the retry policy
(and the copies disagreed: 5 attempts on 11 SQLSTATEs against 3 on 3). Both now read:

- etl.pipeline_step: the steps in order (step_order leaves gaps of 10, so that a new step
  slots in between two as one row plus its procedure), the procedure each calls and whether
  it runs per batch (``call procedure(batch_id)`` for every pending batch) or once per run
  (``call procedure()`` after the batches).
- etl.retry_policy (one row) and etl.transient_sqlstate: which errors are transient and how
  often and how long apart they are retried. The policy kept is the Python runner's, the
  documented one: 5 attempts in all, exponential backoff with full jitter from 0.5 s,
  capped at 30 s, on serialization failures, deadlocks, lock timeouts, server shutdown or
  start-up, too many connections and the connection errors.

A DBA reads the whole pipeline with ``select * from etl.pipeline_step order by step_order``.

Revision ID: 0008
Revises: 0007
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
create table etl.pipeline_step (
    step_order  integer primary key check (step_order > 0),
    step        text not null unique check (step ~ '^[a-z]+(_[a-z]+)*$'),
    procedure   text not null unique check (procedure ~ '^[a-z_]+\\.[a-z_]+$'),
    per_batch   boolean not null default true,
    description text not null
);
comment on table etl.pipeline_step is
    'The pipeline''s steps in order: what both runners (python -m runner run and '
    'etl.process_pending) call, each in its own transaction';
comment on column etl.pipeline_step.step_order is
    'Position in the chain (gaps of 10: a new step slots in as one row)';
comment on column etl.pipeline_step.step is 'Step name, as recorded in etl.step_run.step';
comment on column etl.pipeline_step.procedure is 'Schema-qualified procedure the step calls';
comment on column etl.pipeline_step.per_batch is
    'true: call procedure(batch_id) for each pending batch in batch_id order; '
    'false: call procedure() once per run, after the batches';
comment on column etl.pipeline_step.description is 'What the step does';
insert into etl.pipeline_step (step_order, step, procedure, per_batch, description) values
    (10, 'validate', 'staging.validate_batch', true,
     'Checks the staged rows against the contract''s rules; rejects go to etl.rejected_row'),
    (20, 'merge', 'production.merge_batch', true,
     'Upserts the accepted rows into production'),
    (30, 'reprocess_rejects', 'etl.reprocess_rejects', true,
     'Re-validates earlier orphans whose parent has arrived since; merges those now valid'),
    (40, 'load_dimensions', 'warehouse.load_dimensions', true,
     'Customer and product dimensions (SCD2 versions), dates'),
    (50, 'load_fact_sales', 'warehouse.load_fact_sales', true,
     'Fact rows of the orders the batch changed, with aggregate deltas'),
    (60, 'refresh_aggregates', 'warehouse.refresh_batch_aggregates', true,
     'Applies the aggregate deltas and recomputes queued days'),
    (70, 'check_reconciliation', 'warehouse.check_reconciliation', true,
     'Fails the run when a day touched by the batch differs between production and fact'),
    (80, 'mark_processed', 'etl.mark_batch_processed', true,
     'Marks the batch processed (the chain''s last per-batch step)');

create table etl.retry_policy (
    policy       text primary key default 'default' check (policy = 'default'),
    attempts     integer not null check (attempts >= 1),
    base_delay_s double precision not null check (base_delay_s >= 0),
    max_delay_s  double precision not null check (max_delay_s >= 0)
);
comment on table etl.retry_policy is
    'How transient errors are retried by both runners (one row): before retry n, a random '
    'wait between 0 and least(max_delay_s, base_delay_s * 2^(n-1))';
comment on column etl.retry_policy.policy is 'Always ''default'' (the table holds one row)';
comment on column etl.retry_policy.attempts is 'Calls in all, the first one included';
comment on column etl.retry_policy.base_delay_s is 'Cap of the first wait, in seconds';
comment on column etl.retry_policy.max_delay_s is 'Largest cap of a wait, in seconds';
insert into etl.retry_policy (attempts, base_delay_s, max_delay_s) values (5, 0.5, 30);

create table etl.transient_sqlstate (
    sqlstate  text primary key check (sqlstate ~ '^[0-9A-Z]{5}$'),
    condition text not null unique check (condition ~ '^[a-z]+(_[a-z]+)*$')
);
comment on table etl.transient_sqlstate is
    'SQLSTATEs retried as transient by both runners (etl.retry_policy); any other error '
    'fails the run at once. A lost or refused connection (no SQLSTATE) is transient too';
comment on column etl.transient_sqlstate.sqlstate is 'Five-character SQLSTATE';
comment on column etl.transient_sqlstate.condition is 'PostgreSQL''s condition name for it';
insert into etl.transient_sqlstate (sqlstate, condition) values
    ('40001', 'serialization_failure'),
    ('40P01', 'deadlock_detected'),
    ('55P03', 'lock_not_available'),
    ('57P01', 'admin_shutdown'),
    ('57P02', 'crash_shutdown'),
    ('57P03', 'cannot_connect_now'),
    ('53300', 'too_many_connections'),
    ('08000', 'connection_exception'),
    ('08001', 'sqlclient_unable_to_establish_sqlconnection'),
    ('08003', 'connection_does_not_exist'),
    ('08006', 'connection_failure');
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
drop table etl.transient_sqlstate cascade;
drop table etl.retry_policy cascade;
drop table etl.pipeline_step cascade;
"""
    )
