"""production: the 3NF system of record, with keys, foreign keys and business-rule CHECKs;
and staging.validated_*, the typed rows validation hands to the merge.

Lookup tables hold the constants (payment methods, statuses); categories are created as
products arrive. Every table records created_at, updated_at (moved only when a business
value changed), source_batch_id (the batch that last changed the row, or that resolved it
as an orphan: what the warehouse loaders follow) and delivered_batch_id (the batch whose
delivery the values come from: an orphan merged late keeps its own batch, so an older
delivery never overwrites a newer one).

staging.validated_<file> holds every staged row of a batch, typed, with the facts validation
needs (was each value given, is each reference known), its raw values (for the quarantine)
and the rules it broke (rules null = accepted). It is partitioned by batch: each partition
is an UNLOGGED table that validation creates with a parallel CREATE TABLE AS and drops once
the batch is merged (no WAL; a crash empties it, and production.merge_batch then validates
the batch again). The merge reads the accepted rows; staging.resolved_<file> holds the
orphans etl.reprocess_rejects accepts until they are merged.
The warehouse_etl role may SET session_replication_role, which the merge uses to skip the
per-row foreign-key triggers for rows whose references validation has proved (see
procedures/20_production/merge_batch.sql).

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PRODUCTION_TABLES = ("customers", "products", "transactions", "transaction_items")

# Typed rows of each staged file after validation (rules null = accepted), one partition per
# batch (created by validation with a parallel CREATE TABLE AS, attached, dropped when the
# batch is merged); orphans accepted late by etl.reprocess_rejects.
VALIDATED_TABLES_SQL = """
create table staging.validated_customers (
    batch_id          bigint,
    line_no           bigint,
    customer_id       bigint,
    first_name        text,
    last_name         text,
    email             text,
    phone             text,
    city              text,
    state             text,
    country           text,
    signup_date       date,
    source_updated_at timestamptz,
    customer_id_given boolean,
    email_given       boolean,
    signup_date_given boolean,
    updated_at_given  boolean,
    raw_customer_id   text,
    raw_first_name    text,
    raw_last_name     text,
    raw_email         text,
    raw_phone         text,
    raw_city          text,
    raw_state         text,
    raw_country       text,
    raw_signup_date   text,
    raw_updated_at    text,
    rules             text[]
) partition by list (batch_id);

create table staging.validated_products (
    batch_id          bigint,
    line_no           bigint,
    product_id        bigint,
    product_name      text,
    category          text,
    brand             text,
    unit_price        numeric,
    cost              numeric,
    source_updated_at timestamptz,
    product_id_given  boolean,
    unit_price_given  boolean,
    cost_given        boolean,
    updated_at_given  boolean,
    raw_product_id    text,
    raw_product_name  text,
    raw_category      text,
    raw_brand         text,
    raw_unit_price    text,
    raw_cost          text,
    raw_updated_at    text,
    rules             text[]
) partition by list (batch_id);

create table staging.validated_transactions (
    batch_id             bigint,
    line_no              bigint,
    transaction_id       bigint,
    customer_id          bigint,
    transaction_ts       timestamptz,
    payment_method_code  text,
    status_code          text,
    transaction_id_given boolean,
    customer_id_given    boolean,
    transaction_ts_given boolean,
    payment_method_given boolean,
    status_given         boolean,
    customer_known       boolean,
    raw_transaction_id   text,
    raw_customer_id      text,
    raw_transaction_ts   text,
    raw_payment_method   text,
    raw_status           text,
    rules                text[]
) partition by list (batch_id);

create table staging.validated_transaction_items (
    batch_id             bigint,
    line_no              bigint,
    item_id              bigint,
    transaction_id       bigint,
    product_id           bigint,
    quantity             integer,
    unit_price           numeric,
    discount             numeric,
    item_id_given        boolean,
    transaction_id_given boolean,
    product_id_given     boolean,
    quantity_given       boolean,
    unit_price_given     boolean,
    discount_given       boolean,
    transaction_known    boolean,
    product_known        boolean,
    raw_item_id          text,
    raw_transaction_id   text,
    raw_product_id       text,
    raw_quantity         text,
    raw_unit_price       text,
    raw_discount         text,
    rules                text[]
) partition by list (batch_id);

create unlogged table staging.resolved_transactions (
    batch_id            bigint not null,
    line_no             bigint not null,
    transaction_id      bigint not null,
    customer_id         bigint not null,
    transaction_ts      timestamptz not null,
    payment_method_code text not null,
    status_code         text not null,
    resolved_batch_id   bigint not null
);
create index resolved_transactions_batch_idx on staging.resolved_transactions
    (resolved_batch_id);

create unlogged table staging.resolved_transaction_items (
    batch_id          bigint not null,
    line_no           bigint not null,
    item_id           bigint not null,
    transaction_id    bigint not null,
    product_id        bigint not null,
    quantity          integer not null,
    unit_price        numeric(12,2) not null,
    discount          numeric(12,2) not null,
    resolved_batch_id bigint not null
);
create index resolved_transaction_items_batch_idx on staging.resolved_transaction_items
    (resolved_batch_id);
"""


def validated_comments_sql() -> str:
    """Comments of the staging.validated_* and staging.resolved_* tables."""
    parts = [
        f"""
comment on table staging.validated_{table} is
    'Every staged row of {table}.csv, typed and trimmed, with the rules it broke (null: '
    'accepted): one UNLOGGED partition per batch, written by validation, read by the merge';
comment on column staging.validated_{table}.rules is
    'Rules the row broke (as in etl.rejected_row); null when accepted';
"""
        for table in PRODUCTION_TABLES
    ]
    parts += [
        f"""
comment on table staging.resolved_{table} is
    'Orphans of {table}.csv accepted by etl.reprocess_rejects, typed, until merged';
comment on column staging.resolved_{table}.resolved_batch_id is
    'The batch whose reprocessing accepted the orphan';
"""
        for table in ("transactions", "transaction_items")
    ]
    return "".join(parts)


def upgrade() -> None:
    op.execute(
        r"""
create table production.payment_methods (
    payment_method_code text primary key check (payment_method_code ~ '^[a-z]+(_[a-z]+)*$'),
    display_name        text not null,
    sort_order          smallint not null
);
comment on table production.payment_methods is 'Lookup: the accepted payment method codes';
insert into production.payment_methods (payment_method_code, display_name, sort_order) values
    ('credit_card', 'Credit card', 1),
    ('debit_card', 'Debit card', 2),
    ('paypal', 'PayPal', 3),
    ('bank_transfer', 'Bank transfer', 4),
    ('cash_on_delivery', 'Cash on delivery', 5),
    ('gift_card', 'Gift card', 6);

create table production.transaction_statuses (
    status_code  text primary key check (status_code ~ '^[a-z]+(_[a-z]+)*$'),
    display_name text not null,
    is_sale      boolean not null
);
comment on table production.transaction_statuses is
    'Lookup: transaction statuses; is_sale marks the one that counts in every metric';
insert into production.transaction_statuses (status_code, display_name, is_sale) values
    ('completed', 'Completed', true),
    ('pending', 'Pending', false),
    ('cancelled', 'Cancelled', false),
    ('refunded', 'Refunded', false);

create table production.customers (
    customer_id       bigint primary key check (customer_id > 0),
    first_name        text not null check (first_name <> ''),
    last_name         text not null check (last_name <> ''),
    email             text not null unique
        check (email = lower(email) and email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    phone             text,
    city              text,
    state             text,
    country           text not null check (country <> ''),
    signup_date       date not null check (signup_date >= date '2000-01-01'),
    source_updated_at timestamptz check (source_updated_at >= timestamptz '2000-01-01 00:00+00'),
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    source_batch_id   bigint not null references etl.batch (batch_id),
    delivered_batch_id bigint
);
comment on table production.customers is 'Customers, one row per customer id (latest version)';

create table production.categories (
    category_id   integer generated always as identity primary key,
    category_name text not null unique check (category_name <> ''),
    created_at    timestamptz not null default now()
);
comment on table production.categories is 'Product categories, created as products arrive';

create table production.products (
    product_id        bigint primary key check (product_id > 0),
    product_name      text not null check (product_name <> ''),
    category_id       integer not null references production.categories (category_id),
    brand             text,
    unit_price        numeric(12,2) not null check (unit_price > 0),
    cost              numeric(12,2) not null check (cost >= 0),
    source_updated_at timestamptz check (source_updated_at >= timestamptz '2000-01-01 00:00+00'),
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    source_batch_id   bigint not null references etl.batch (batch_id),
    delivered_batch_id bigint
);
create index products_category_idx on production.products (category_id);
comment on table production.products is 'Products, one row per product id (latest version)';

create table production.transactions (
    transaction_id      bigint primary key check (transaction_id > 0),
    customer_id         bigint not null references production.customers (customer_id),
    transaction_ts      timestamptz not null
        check (transaction_ts >= timestamptz '2000-01-01 00:00+00'),
    payment_method_code text not null references production.payment_methods,
    status_code         text not null references production.transaction_statuses,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    source_batch_id     bigint not null references etl.batch (batch_id),
    delivered_batch_id  bigint
);
create index transactions_customer_idx on production.transactions (customer_id);
create index transactions_ts_idx on production.transactions (transaction_ts);
comment on table production.transactions is 'Orders: one row per transaction id (latest status)';

create table production.transaction_items (
    item_id         bigint primary key check (item_id > 0),
    transaction_id  bigint not null references production.transactions (transaction_id),
    product_id      bigint not null references production.products (product_id),
    quantity        integer not null check (quantity between 1 and 1000),
    unit_price      numeric(12,2) not null check (unit_price >= 0),
    discount        numeric(12,2) not null default 0
        check (discount >= 0 and discount <= quantity * unit_price),
    line_amount     numeric(18,2) generated always as (quantity * unit_price - discount) stored,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    source_batch_id bigint not null references etl.batch (batch_id),
    delivered_batch_id bigint
);
create index transaction_items_transaction_idx on production.transaction_items (transaction_id);
create index transaction_items_product_idx on production.transaction_items (product_id);
comment on table production.transaction_items is 'Order lines: one row per item id';
comment on column production.transaction_items.line_amount is
    'quantity * unit_price - discount';
"""
    )
    for table in PRODUCTION_TABLES:
        op.execute(
            f"""
comment on column production.{table}.created_at is 'When the row was first merged';
comment on column production.{table}.updated_at is
    'When a business value of the row last changed (a re-delivery of equal values keeps it)';
comment on column production.{table}.source_batch_id is
    'Batch that last changed the row, or that resolved it as an orphan (warehouse loads '
    'follow it)';
comment on column production.{table}.delivered_batch_id is
    'Batch whose delivery the values come from (an orphan resolved late keeps its own '
    'batch; null: source_batch_id); an older delivery never overwrites a newer one'
"""
        )
    op.execute(VALIDATED_TABLES_SQL)
    op.execute(validated_comments_sql())
    op.execute(
        """
do $$ begin
  grant set on parameter session_replication_role to warehouse_etl;
exception when insufficient_privilege then
  raise notice 'session_replication_role not granted to warehouse_etl (needs a superuser): '
               'the merge then checks foreign keys row by row';
end $$
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    # the SET privilege on session_replication_role is cluster-wide; it goes with the role
    # (0001's downgrade: drop owned by warehouse_etl)
    op.execute(
        """
drop table staging.resolved_transaction_items cascade;
drop table staging.resolved_transactions cascade;
drop table staging.validated_transaction_items cascade;
drop table staging.validated_transactions cascade;
drop table staging.validated_products cascade;
drop table staging.validated_customers cascade;
drop table production.transaction_items cascade;
drop table production.transactions cascade;
drop table production.products cascade;
drop table production.categories cascade;
drop table production.customers cascade;
drop table production.transaction_statuses cascade;
drop table production.payment_methods cascade;
"""
    )
