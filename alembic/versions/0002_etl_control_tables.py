"""etl: batches, files (the SHA-256 ledger), refusals, quarantine, data-quality results,
pipeline runs and steps, watermarks, routine checksums.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FILE_NAMES = "('customers.csv', 'products.csv', 'transactions.csv', 'transaction_items.csv')"
FILE_ARRAY = "['customers.csv', 'products.csv', 'transactions.csv', 'transaction_items.csv']"


def upgrade() -> None:
    op.execute(
        f"""
create table etl.batch (
    batch_id             bigint generated always as identity primary key,
    batch_name           text not null,
    source_path          text not null,
    load_ts              timestamptz not null default now(),
    status               text not null default 'ingested'
        check (status in ('ingested', 'processed')),
    processed_at         timestamptz,
    check ((status = 'processed') = (processed_at is not null))
);
create index batch_pending_idx on etl.batch (batch_id) where processed_at is null;
comment on table etl.batch is
    'One row per ingested delivery (a batch directory) that brought at least one new file';
comment on column etl.batch.batch_name is 'The batch directory''s name';
comment on column etl.batch.load_ts is
    'UTC instant the batch was ingested: the "load time" of the contract''s range rules';
comment on column etl.batch.status is
    'ingested until every pipeline step has run for the batch, then processed';

create table etl.batch_step (
    batch_id     bigint not null references etl.batch (batch_id) on delete cascade,
    step         text not null,
    rows         bigint not null default 0,
    completed_at timestamptz not null default clock_timestamp(),
    primary key (batch_id, step)
);
comment on table etl.batch_step is
    'Pipeline steps completed per batch, with the rows each step wrote (last call wins)';

create table etl.batch_file (
    file_id         bigint generated always as identity primary key,
    batch_id        bigint not null references etl.batch (batch_id) on delete cascade,
    file_name       text not null check (file_name in {FILE_NAMES}),
    sha256          text not null unique check (sha256 ~ '^[0-9a-f]{{64}}$'),
    size_bytes      bigint not null check (size_bytes >= 0),
    header          text[] not null,
    extra_columns   text[] not null default '{{}}',
    absent_optional text[] not null default '{{}}',
    rows_in_file    bigint not null check (rows_in_file >= 0),
    rows_staged     bigint not null check (rows_staged >= 0),
    rows_malformed  bigint not null check (rows_malformed >= 0),
    rows_accepted   bigint check (rows_accepted >= 0),
    loaded_at       timestamptz not null default now(),
    unique (batch_id, file_name),
    check (rows_in_file = rows_staged + rows_malformed)
);
comment on table etl.batch_file is
    'Ledger of loaded files: a file (by SHA-256 of its bytes) is loaded exactly once';
comment on column etl.batch_file.sha256 is
    'SHA-256 of the file''s bytes: its identity; a file with a known hash is skipped';
comment on column etl.batch_file.header is 'Header names as delivered (trimmed), in file order';
comment on column etl.batch_file.extra_columns is
    'Header names that are not contract columns: ignored, not staged';
comment on column etl.batch_file.absent_optional is
    'Optional contract columns missing from the header: null in every staged row';
comment on column etl.batch_file.rows_in_file is
    'Records after the header (empty lines not counted) = rows_staged + rows_malformed';
comment on column etl.batch_file.rows_staged is 'Records copied into staging.<file>';
comment on column etl.batch_file.rows_malformed is
    'Records without the header''s number of fields: in etl.rejected_row as malformed_row';
comment on column etl.batch_file.rows_accepted is
    'Rows accepted by validation (null until validated); resolved orphans are counted apart';

create table etl.batch_refusal (
    refusal_id  bigint generated always as identity primary key,
    batch_name  text not null,
    source_path text not null,
    file_name   text,
    problem     text not null check (problem in ('missing_header', 'missing_column',
        'duplicate_column', 'invalid_utf8', 'nul_byte', 'record_too_long')),
    line_no     bigint,
    byte_offset bigint,
    message     text not null,
    refused_at  timestamptz not null default now()
);
comment on table etl.batch_refusal is
    'Batches refused whole (missing or repeated header column, empty file, not UTF-8)';
comment on column etl.batch_refusal.problem is
    'missing_header, missing_column, duplicate_column, invalid_utf8, nul_byte (PostgreSQL '
    'text cannot hold 0x00) or record_too_long (a record over 256 MiB)';
comment on column etl.batch_refusal.line_no is 'Physical line of the problem (header = 1)';
comment on column etl.batch_refusal.byte_offset is
    'Byte offset of the problem in the file (0-based), where one applies';
comment on column etl.batch_refusal.message is 'What is wrong, naming the file';

create table etl.rejected_row (
    reject_id         bigint generated always as identity primary key,
    batch_id          bigint not null references etl.batch (batch_id) on delete cascade,
    file_name         text not null check (file_name in {FILE_NAMES}),
    line_no           bigint not null check (line_no >= 2),
    record_key        text,
    rules             text[] not null check (cardinality(rules) > 0),
    raw               jsonb,
    raw_text          text,
    rejected_at       timestamptz not null default now(),
    resolved_batch_id bigint references etl.batch (batch_id),
    resolved_at       timestamptz,
    resolution        text check (resolution in ('merged', 'superseded', 'reprocessed')),
    unique (batch_id, file_name, line_no),
    check ((resolved_batch_id is null) = (resolution is null)),
    check ((resolved_at is null) = (resolution is null))
);
create index rejected_row_open_orphans_idx on etl.rejected_row (file_name, batch_id)
    where resolved_at is null
      and rules <@ array['unknown_customer', 'unknown_transaction', 'unknown_product'];
comment on table etl.rejected_row is
    'Quarantine: every rejected input row with every rule it broke and its raw values';
comment on column etl.rejected_row.rules is 'Contract rule ids broken by the row, each once';
comment on column etl.rejected_row.raw is 'Raw field values by column name (json)';
comment on column etl.rejected_row.raw_text is 'Raw text of a malformed record';
comment on column etl.rejected_row.resolved_batch_id is
    'Batch whose arrival resolved this orphan (null while rejected)';
comment on column etl.rejected_row.line_no is
    'Physical line (1-based, header = 1) where the record starts in its file';
comment on column etl.rejected_row.record_key is
    'The row''s own key as delivered (customer_id, product_id, transaction_id or item_id)';
comment on column etl.rejected_row.resolved_at is 'When the orphan was resolved';
comment on column etl.rejected_row.resolution is
    'merged (accepted late), superseded (a later batch delivered the key), reprocessed';

create table etl.dq_rule (
    rule        text primary key check (rule ~ '^[a-z]+(_[a-z]+)*$'),
    sort_order  smallint not null unique,
    file_names  text[] not null,
    is_orphan   boolean not null default false,
    description text not null
);
comment on table etl.dq_rule is
    'The contract''s validation rules (docs/data-contract.md): id, files it applies to, meaning';
comment on column etl.dq_rule.rule is 'Rule id, as in docs/data-contract.md';
comment on column etl.dq_rule.description is 'What breaks the rule';
comment on column etl.dq_rule.sort_order is 'Order of the rules in etl.rejected_row.rules';
comment on column etl.dq_rule.file_names is 'Files whose rows the rule checks';
comment on column etl.dq_rule.is_orphan is
    'An unknown parent: rows whose only rules are these are re-validated after each batch';
insert into etl.dq_rule (rule, sort_order, file_names, is_orphan, description) values
    ('malformed_row', 1, array{FILE_ARRAY}, false,
     'The record does not have the header''s number of fields'),
    ('duplicate_key', 2, array{FILE_ARRAY}, false,
     'Not the last row (highest line) of its key in the batch'),
    ('missing_required', 3, array{FILE_ARRAY}, false, 'A required value is empty'),
    ('invalid_integer', 4, array{FILE_ARRAY}, false,
     'A key is not digits, is zero, or is beyond 9223372036854775807'),
    ('invalid_email', 5, array['customers.csv'], false,
     'The email is not one @ between non-blank parts, with a dot after the @'),
    ('invalid_date', 6, array['customers.csv'], false,
     'signup_date is not YYYY-MM-DD naming a real calendar day'),
    ('invalid_timestamp', 7, array['customers.csv', 'products.csv', 'transactions.csv'], false,
     'Not a timestamp of the contract''s form, or a day or time that does not exist'),
    ('out_of_range', 8, array['customers.csv', 'products.csv', 'transactions.csv'], false,
     'A date or timestamp after the batch''s load time or before 2000-01-01'),
    ('invalid_amount', 9, array['products.csv', 'transaction_items.csv'], false,
     'Money not -?digits (1 to 10) with 0 to 2 decimals, or outside its range'),
    ('invalid_payment_method', 10, array['transactions.csv'], false,
     'Not a known payment method after normalisation'),
    ('invalid_status', 11, array['transactions.csv'], false,
     'Not a known status after normalisation'),
    ('invalid_quantity', 12, array['transaction_items.csv'], false,
     'quantity is not digits or not 1 to 1000'),
    ('invalid_discount', 13, array['transaction_items.csv'], false,
     'discount not money, negative, or above quantity * unit_price'),
    ('email_conflict', 14, array['customers.csv'], false,
     'The email belongs to another customer id (production, or an earlier accepted line)'),
    ('unknown_customer', 15, array['transactions.csv'], true,
     'customer_id is neither in production nor accepted in the batch'),
    ('unknown_transaction', 16, array['transaction_items.csv'], true,
     'transaction_id is neither in production nor accepted in the batch'),
    ('unknown_product', 17, array['transaction_items.csv'], true,
     'product_id is neither in production nor accepted in the batch');

create table etl.dq_result (
    batch_id   bigint not null references etl.batch (batch_id) on delete cascade,
    file_name  text not null check (file_name in {FILE_NAMES}),
    rule       text not null references etl.dq_rule (rule),
    rows       bigint not null check (rows >= 0),
    checked_at timestamptz not null default now(),
    primary key (batch_id, file_name, rule)
);
comment on table etl.dq_result is
    'Data-quality results: rows breaking each rule per batch and file, at validation '
    '(every rule of the file, 0 included)';

create table etl.pipeline_run (
    run_id            bigint generated always as identity primary key,
    started_at        timestamptz not null default clock_timestamp(),
    ended_at          timestamptz,
    status            text not null default 'running'
        check (status in ('running', 'succeeded', 'failed', 'cancelled')),
    trigger           text not null default 'cli',
    hostname          text,
    pid               integer,
    backend_pid       integer,
    batches_processed integer not null default 0,
    error_step        text,
    error_batch_id    bigint,
    error             text,
    check ((status = 'running') = (ended_at is null))
);
create index pipeline_run_ended_idx on etl.pipeline_run (ended_at desc);
create index pipeline_run_running_idx on etl.pipeline_run (run_id) where status = 'running';
comment on table etl.pipeline_run is
    'History of pipeline runs (run, schedule ticks, demo, etl.process_pending)';
comment on column etl.pipeline_run.status is
    'running, then succeeded, failed, or cancelled (stopped by a signal between two steps)';
comment on column etl.pipeline_run.trigger is
    'What started the run: cli, schedule, demo, process_pending';
comment on column etl.pipeline_run.hostname is 'Host of the process that ran it';
comment on column etl.pipeline_run.pid is 'OS process id of the runner on that host';
comment on column etl.pipeline_run.backend_pid is
    'Server process (pg_backend_pid) of the session holding the pipeline advisory lock';
comment on column etl.pipeline_run.batches_processed is 'Batches marked processed by the run';
comment on column etl.pipeline_run.error_step is 'Step that failed (null on success)';
comment on column etl.pipeline_run.error_batch_id is 'Batch whose step failed';
comment on column etl.pipeline_run.error is
    'Why the run failed: the database message with its SQLSTATE, or the refusal';

create table etl.step_run (
    step_run_id bigint generated always as identity primary key,
    run_id      bigint not null references etl.pipeline_run (run_id) on delete cascade,
    step        text not null,
    batch_id    bigint,
    started_at  timestamptz not null default clock_timestamp(),
    ended_at    timestamptz,
    status      text not null default 'running'
        check (status in ('running', 'succeeded', 'failed', 'cancelled')),
    attempts    integer not null default 1 check (attempts >= 1),
    rows        bigint,
    sqlstate    text,
    error       text,
    check ((status = 'running') = (ended_at is null))
);
create index step_run_run_idx on etl.step_run (run_id);
create index step_run_done_idx on etl.step_run (batch_id, step) where status = 'succeeded';
comment on table etl.step_run is 'One row per step of a run: timing, attempts, rows, error';
comment on column etl.step_run.step is
    'Step name (runner/steps.py): ingest, validate, merge, ..., mark_processed';
comment on column etl.step_run.batch_id is 'Batch the step processed (null for ingest)';
comment on column etl.step_run.status is
    'running, then succeeded (recorded in the step''s own transaction), failed or cancelled';
comment on column etl.step_run.attempts is 'Calls made, retries of transient errors included';
comment on column etl.step_run.rows is
    'Rows the step wrote, as its procedure reported in etl.batch_step (null: not reported)';
comment on column etl.step_run.sqlstate is 'SQLSTATE of the error that failed the step';
comment on column etl.step_run.error is 'The database''s message (last attempt)';

create table etl.watermark (
    name       text primary key,
    value_ts   timestamptz,
    value_id   bigint,
    updated_at timestamptz not null default now()
);
comment on table etl.watermark is 'High-water marks of incremental steps';

create table etl.routine_checksum (
    path       text primary key,
    sha256     text not null check (sha256 ~ '^[0-9a-f]{{64}}$'),
    applied_at timestamptz not null default now()
);
comment on table etl.routine_checksum is
    'SHA-256 of each procedures/ file as last applied by alembic upgrade';
"""
    )


def downgrade() -> None:
    op.execute(
        """
drop table etl.routine_checksum cascade;
drop table etl.watermark cascade;
drop table etl.step_run cascade;
drop table etl.pipeline_run cascade;
drop table etl.dq_result cascade;
drop table etl.dq_rule cascade;
drop table etl.rejected_row cascade;
drop table etl.batch_refusal cascade;
drop table etl.batch_step cascade;
drop table etl.batch_file cascade;
drop table etl.batch cascade;
"""
    )
