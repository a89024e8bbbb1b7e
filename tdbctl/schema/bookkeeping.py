"""The ``tdbctl`` schema: the tool's own bookkeeping.

The migration ledger keeps ChatTrain's schema_migrations idea (version, applied_at, checksum)
next to Alembic's version table: what was applied, when, by whom, and the checksum of the script
as it was, so an edited migration is caught before it does harm (Flyway's validate).
"""

import sqlalchemy as sa

from tdbctl.schema.base import TOOL_SCHEMA, metadata
from tdbctl.schema.types import TIMESTAMPTZ, now

migration_ledger = sa.Table(
    "migration_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.String(64), nullable=False, unique=True),
    sa.Column("script", sa.String(255), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("applied_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Column("applied_by", sa.String(255)),
    sa.Column("execution_ms", sa.Integer),
    schema=TOOL_SCHEMA,
    comment="Applied migrations with the checksum of each script as applied.",
)
