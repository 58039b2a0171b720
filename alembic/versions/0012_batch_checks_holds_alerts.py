"""etl: batch checks, holds and alerts (docs/data-contract.md, "Batch checks, holds and
alerts").

- etl.batch.status gains 'held', 'released' and 'discarded' ('ingested' is the contract's
  pending), and status_changed_at.
- etl.dq_threshold: reject-ratio thresholds (null file = every file, null rule = any rule),
  seeded with the contract's row: every file, any rule, warn above 0.05, error above 0.50.
- etl.dq_event: one row per check that fired for a batch and file; a check recorded twice
  for the same batch, file and threshold row is one row (the step is safe to call again).
- etl.discarded_file: the files of discarded batches by batch name and hash, so that an
  unchanged directory of that name is skipped at ingestion.
- etl.alert (the outbox) and etl.alert_delivery (each alert once per channel).
- Two steps slot into etl.pipeline_step between validate and merge: check
  (etl.check_batch: the checks, events, alerts; held on an error) and hold
  (etl.stop_if_held: stops the run before a held batch's merge).

Revision ID: 0012
Revises: 0011
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FILE_NAMES = "('customers.csv', 'products.csv', 'transactions.csv', 'transaction_items.csv')"


def upgrade() -> None:
    op.execute(
        f"""
alter table etl.batch drop constraint batch_status_check;
alter table etl.batch add constraint batch_status_check
    check (status in ('ingested', 'held', 'released', 'processed', 'discarded'));
alter table etl.batch add column status_changed_at timestamptz;
update etl.batch set status_changed_at = coalesce(processed_at, load_ts);
alter table etl.batch alter column status_changed_at set default now();
alter table etl.batch alter column status_changed_at set not null;
comment on column etl.batch.status is
    'ingested (pending) until every pipeline step has run, then processed; held when a batch '
    'check found an error (until etl.release_batch makes it released, or etl.discard_batch '
    'discarded)';
comment on column etl.batch.status_changed_at is 'When the status last changed';
comment on column etl.batch.batch_id is 'Batch id: the argument of every step procedure';
comment on column etl.batch.source_path is 'Directory the batch was ingested from';
comment on column etl.batch.processed_at is 'When the last step marked the batch processed';

create table etl.dq_threshold (
    threshold_id bigint generated always as identity primary key,
    file_name    text check (file_name in {FILE_NAMES}),
    rule         text references etl.dq_rule (rule),
    warn_ratio   numeric check (warn_ratio >= 0),
    error_ratio  numeric check (error_ratio >= 0),
    unique nulls not distinct (file_name, rule)
);
comment on table etl.dq_threshold is
    'Reject-ratio thresholds of the batch checks; each row is checked on its own against '
    'each file of a batch (DBAs change it with plain SQL)';
comment on column etl.dq_threshold.threshold_id is 'Surrogate key (etl.dq_event refers to it)';
comment on column etl.dq_threshold.file_name is 'File the row applies to (null: every file)';
comment on column etl.dq_threshold.rule is
    'Rule whose rejected rows are counted (null: rows rejected for any reason)';
comment on column etl.dq_threshold.warn_ratio is
    'A ratio strictly above it is a warning (null: never)';
comment on column etl.dq_threshold.error_ratio is
    'A ratio strictly above it is an error, and the batch is held (null: never)';
insert into etl.dq_threshold (file_name, rule, warn_ratio, error_ratio)
values (null, null, 0.05, 0.50);

create table etl.dq_event (
    event_id     bigint generated always as identity primary key,
    batch_id     bigint not null references etl.batch (batch_id) on delete cascade,
    file_name    text not null check (file_name in {FILE_NAMES}),
    check_name   text not null check (check_name in ('reject_ratio', 'volume', 'schema_change')),
    threshold_id bigint,
    rule         text,
    severity     text not null check (severity in ('warn', 'error')),
    observed     numeric,
    threshold    numeric,
    message      text not null,
    created_at   timestamptz not null default now(),
    unique nulls not distinct (batch_id, file_name, check_name, threshold_id),
    check ((check_name = 'reject_ratio') = (threshold_id is not null)),
    check (check_name = 'reject_ratio' or (rule is null and severity = 'warn'))
);
comment on table etl.dq_event is
    'Batch checks that fired: one row per batch, file, check (and threshold row)';
comment on column etl.dq_event.check_name is 'reject_ratio, volume or schema_change';
comment on column etl.dq_event.threshold_id is
    'The etl.dq_threshold row a reject_ratio event compared with (no key: the row may go)';
comment on column etl.dq_event.rule is 'Rule counted by a reject_ratio event (null: any)';
comment on column etl.dq_event.severity is 'warn, or error (the batch is held)';
comment on column etl.dq_event.observed is
    'reject_ratio: rejected rows / rows in the file; volume: rows in the file; '
    'schema_change: columns added plus removed';
comment on column etl.dq_event.threshold is
    'reject_ratio: the ratio exceeded; volume: the bound crossed (a third or three times '
    'the median); schema_change: null';
comment on column etl.dq_event.message is 'What was found, naming batch, file and numbers';
comment on column etl.dq_event.created_at is 'When the check recorded it';

create table etl.discarded_file (
    batch_id     bigint not null references etl.batch (batch_id) on delete cascade,
    batch_name   text not null,
    file_name    text not null check (file_name in {FILE_NAMES}),
    sha256       text not null check (sha256 ~ '^[0-9a-f]{{64}}$'),
    discarded_at timestamptz not null default now(),
    primary key (batch_id, file_name)
);
create index discarded_file_name_idx on etl.discarded_file (batch_name);
comment on table etl.discarded_file is
    'Files of discarded batches: a directory of that name with these files is skipped';
comment on column etl.discarded_file.sha256 is 'SHA-256 of the discarded file''s bytes';

create table etl.alert (
    alert_id   bigint generated always as identity primary key,
    alert_key  text not null unique,
    kind       text not null
        check (kind in ('run_failed', 'refusal', 'hold', 'dq_event', 'freshness')),
    severity   text not null check (severity in ('info', 'warning', 'failure')),
    batch_id   bigint references etl.batch (batch_id) on delete set null,
    title      text not null,
    body       text not null,
    created_at timestamptz not null default now()
);
comment on table etl.alert is
    'Outbox of alerts: each is sent once to every channel of WAREHOUSE_ALERT_URLS';
comment on column etl.alert.alert_key is
    'What the alert is about, once: run:<run_id>, event:<event_id>, freshness:<since>';
comment on column etl.alert.kind is 'run_failed, refusal, hold, dq_event or freshness';
comment on column etl.alert.severity is 'info, warning or failure (Apprise notification type)';
comment on column etl.alert.title is 'One line';
comment on column etl.alert.body is 'What happened and what to do, naming batch and file';

create table etl.alert_delivery (
    alert_id        bigint not null references etl.alert (alert_id) on delete cascade,
    channel         text not null,
    channel_label   text not null,
    attempts        integer not null default 0 check (attempts >= 0),
    delivered_at    timestamptz,
    last_attempt_at timestamptz,
    last_error      text,
    primary key (alert_id, channel)
);
comment on table etl.alert_delivery is
    'Deliveries of alerts per channel: delivered, or failed attempts to retry on later runs';
comment on column etl.alert_delivery.channel is
    'SHA-256 of the channel''s Apprise URL (the URL itself may hold a secret)';
comment on column etl.alert_delivery.channel_label is 'The URL with secrets masked';
comment on column etl.alert_delivery.delivered_at is 'When the channel accepted it (null: not)';

insert into etl.pipeline_step (step_order, step, procedure, per_batch, description) values
    (13, 'check', 'etl.check_batch', true,
     'Batch checks (reject ratio, volume, schema change): events and alerts; a batch with '
     'an error is held'),
    (16, 'hold', 'etl.stop_if_held', true,
     'Stops the run before the merge of a held batch (etl.release_batch or '
     'etl.discard_batch ends the hold)');
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
delete from etl.pipeline_step where step in ('check', 'hold');
drop table etl.alert_delivery cascade;
drop table etl.alert cascade;
drop table etl.discarded_file cascade;
drop table etl.dq_event cascade;
drop table etl.dq_threshold cascade;
drop trigger if exists batch_status_changed on etl.batch;
drop function if exists etl.note_batch_status_change() cascade;
update etl.batch set status = 'ingested' where status in ('held', 'released', 'discarded');
alter table etl.batch drop column status_changed_at cascade;
alter table etl.batch drop constraint batch_status_check;
alter table etl.batch add constraint batch_status_check
    check (status in ('ingested', 'processed'));
"""
    )
