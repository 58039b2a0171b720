"""Personal data, readers: no routine is executable by PUBLIC, and every column that holds a
direct identifier of a customer says so in its COMMENT (docs/data-contract.md, "Personal data").

warehouse_reader reads analytics and nothing else (0001: no USAGE on the other schemas, no
privilege on their tables, so pg_stats shows it no statistics of them either). What this
revision adds is defence in depth for routines: PostgreSQL grants EXECUTE on every new
function to PUBLIC, so a routine created later in analytics, or a schema USAGE granted by
mistake, would open a path. The migrating role's default privileges now grant EXECUTE to
PUBLIC on nothing, and the routines already created lose it; warehouse_etl keeps the
EXECUTE that 0001's schema default privileges give it. The analytics views call no routine,
so readers need none.

The comments mark the identifier columns in every layer (raw staging text, the typed rows
of validation, the quarantine's raw values, production, every dim_customer version); the
data dictionary shows them. docs/privacy.md says who reads what.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ROUTINE_SCHEMAS = ("staging", "etl", "production", "warehouse", "analytics")
IDENTIFIERS = {"first_name": "first name", "last_name": "last name",
               "email": "e-mail address", "phone": "phone number"}
PERSONAL = "Personal data (direct identifier): "
ERASURE = "; blanked by etl.erase_customer, never readable by warehouse_reader"

# (table, column prefix, what the column holds beyond the identifier)
IDENTIFIER_COLUMNS = (
    ("staging.customers", "", "as delivered"),
    ("staging.validated_customers", "", "trimmed (e-mail lower-case)"),
    ("staging.validated_customers", "raw_", "raw value as delivered"),
    ("production.customers", "", "latest delivery (e-mail lower-case)"),
    ("warehouse.dim_customer", "", "of this version (e-mail lower-case)"),
)

# comments of warehouse.dim_customer before this revision (0005), restored by the downgrade
DIM_CUSTOMER_COMMENTS = {"first_name": "First name", "last_name": "Last name",
                         "email": "E-mail address, lower-case",
                         "phone": "Phone number as delivered"}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute("alter default privileges revoke execute on routines from public")
    for schema in ROUTINE_SCHEMAS:
        op.execute(f"revoke execute on all routines in schema {schema} from public")

    for table, prefix, detail in IDENTIFIER_COLUMNS:
        for column, meaning in IDENTIFIERS.items():
            op.execute(f"comment on column {table}.{prefix}{column} is "
                       f"{_quote(f'{PERSONAL}{meaning}, {detail}{ERASURE}')}")
    op.execute(
        "comment on column etl.rejected_row.raw is "
        + _quote("Raw field values by column name (json). Personal data (direct identifiers) "
                 "for rows of customers.csv: first_name, last_name, email, phone"
                 + ERASURE)
    )
    op.execute(
        "comment on column etl.rejected_row.raw_text is "
        + _quote("Raw text of a malformed record. Personal data (direct identifiers) when "
                 "the record is a customer's" + ERASURE)
    )
    op.execute(
        "comment on column warehouse.dim_customer.attr_hash is "
        + _quote("Hash of the tracked attributes (identifiers included, so it is computed "
                 "again when a customer is erased)")
    )


def downgrade() -> None:
    op.execute(
        "comment on column warehouse.dim_customer.attr_hash is "
        "'Hash of the tracked attributes'"
    )
    op.execute("comment on column etl.rejected_row.raw_text is 'Raw text of a malformed record'")
    op.execute(
        "comment on column etl.rejected_row.raw is 'Raw field values by column name (json)'"
    )
    for table, prefix, _ in IDENTIFIER_COLUMNS:
        for column in IDENTIFIERS:
            old = DIM_CUSTOMER_COMMENTS[column] if table == "warehouse.dim_customer" else None
            op.execute(f"comment on column {table}.{prefix}{column} is "
                       f"{_quote(old) if old else 'null'}")
    for schema in ROUTINE_SCHEMAS:
        op.execute(f"grant execute on all routines in schema {schema} to public")
    op.execute("alter default privileges grant execute on routines to public")
