"""Roles and schemas: staging, etl, production, warehouse, analytics.

warehouse_etl (NOLOGIN) runs the pipeline; warehouse_reader (NOLOGIN) reads analytics and
nothing else. Default privileges make objects created later by the migrating role inherit
the grants. Roles are cluster-wide: they are created only when missing, and the downgrade
drops them only when no other database still refers to them.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMAS = ("staging", "etl", "production", "warehouse", "analytics")
PIPELINE_SCHEMAS = ("staging", "etl", "production", "warehouse")


def upgrade() -> None:
    for role in ("warehouse_etl", "warehouse_reader"):
        op.execute(
            f"""
            do $$ begin
              if not exists (select 1 from pg_roles where rolname = '{role}') then
                create role {role} nologin;
              end if;
            exception when duplicate_object then null;  -- created meanwhile by another db
            end $$
            """
        )
    for schema in SCHEMAS:
        op.execute(f"create schema if not exists {schema}")
        op.execute(f"revoke all on schema {schema} from public")
    op.execute("comment on schema staging is 'Raw CSV rows, all text, one table per file'")
    op.execute("comment on schema etl is 'Control plane: batches, files, rejects, runs'")
    op.execute("comment on schema production is '3NF system of record'")
    op.execute("comment on schema warehouse is 'Star schema: dimensions, fact, aggregates'")
    op.execute("comment on schema analytics is 'BI views: the public interface for BI tools'")

    for schema in PIPELINE_SCHEMAS:
        op.execute(f"grant usage on schema {schema} to warehouse_etl")
        op.execute(
            f"alter default privileges in schema {schema} grant select, insert, update, "
            f"delete, truncate on tables to warehouse_etl"
        )
        op.execute(
            f"alter default privileges in schema {schema} grant usage, select, update "
            f"on sequences to warehouse_etl"
        )
        op.execute(
            f"alter default privileges in schema {schema} grant execute on routines "
            f"to warehouse_etl"
        )
    op.execute("grant usage on schema analytics to warehouse_etl, warehouse_reader")
    op.execute(
        "alter default privileges in schema analytics grant select on tables "
        "to warehouse_etl, warehouse_reader"
    )
    op.execute("revoke execute on all functions in schema analytics from public")


def downgrade() -> None:
    for schema in reversed(SCHEMAS):
        op.execute(f"drop schema if exists {schema} cascade")
    for role in ("warehouse_reader", "warehouse_etl"):
        op.execute(
            f"""
            do $$ begin
              if exists (select 1 from pg_roles where rolname = '{role}') then
                execute 'drop owned by {role}';
                begin
                  drop role {role};
                exception when dependent_objects_still_exist then
                  raise notice 'role {role} kept: other databases still grant it privileges';
                end;
              end if;
            end $$
            """
        )
