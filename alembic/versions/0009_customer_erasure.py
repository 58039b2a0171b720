"""Erasure of a customer (docs/data-contract.md, "Personal data"): etl.erasure records each one,
and production.customers may hold a customer without identifiers.

- etl.erasure: one row per erased customer id (the request's reference, when, rows changed,
  by whom). It holds no identifier. etl.erase_customer writes it; the merge reads it so that
  a later delivery of an erased id stores no identifier (procedures/20_production/).
- production.customers: first_name, last_name and email may be null, all three together
  (an erased customer keeps its row, its key and its non-identifying attributes, so foreign
  keys, facts and history stay as they are). The unique e-mail allows any number of nulls.

The downgrade cannot give identifiers back: an erased customer's row gets the visible marker
'erased' and the address erased-<id>@erased.invalid (RFC 2606's reserved domain), which the
older schema's NOT NULL and e-mail CHECK accept.

Revision ID: 0009
Revises: 0008
"""

from alembic import op
from runner.routines import FORGET_ROUTINES_SQL

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
create table etl.erasure (
    customer_id  bigint primary key check (customer_id > 0),
    reference    text not null check (btrim(reference) <> ''),
    erased_at    timestamptz not null default now(),
    rows_changed bigint not null check (rows_changed >= 0),
    erased_by    text not null default current_user
);
comment on table etl.erasure is
    'Erased customers (etl.erase_customer): one row per customer id; no identifier';
comment on column etl.erasure.customer_id is
    'The erased customer id: its identifiers are stored nowhere, now or in later deliveries';
comment on column etl.erasure.reference is
    'The request''s ticket or reference, free text without personal data';
comment on column etl.erasure.erased_at is 'When the erasure committed (transaction start)';
comment on column etl.erasure.rows_changed is 'Stored rows the erasure changed, all tables';
comment on column etl.erasure.erased_by is 'Database role that called etl.erase_customer';
-- the pipeline reads it; only etl.erase_customer (security definer, the owner) writes it
revoke insert, update, delete, truncate on etl.erasure from warehouse_etl;

alter table production.customers
    alter column first_name drop not null,
    alter column last_name drop not null,
    alter column email drop not null,
    add constraint customers_identifiers_all_or_none check (
        (first_name is null) = (last_name is null) and (first_name is null) = (email is null));
"""
    )


def downgrade() -> None:
    op.execute(FORGET_ROUTINES_SQL)
    op.execute(
        """
update production.customers
set first_name = 'erased', last_name = 'erased',
    email = 'erased-' || customer_id || '@erased.invalid'
where first_name is null;
alter table production.customers
    drop constraint customers_identifiers_all_or_none,
    alter column first_name set not null,
    alter column last_name set not null,
    alter column email set not null;
drop table etl.erasure cascade;
"""
    )
