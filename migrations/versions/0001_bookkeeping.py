"""tdbctl bookkeeping: the migration ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.schema.types import TIMESTAMPTZ

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("script", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("applied_at", TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("applied_by", sa.String(length=255), nullable=True),
        sa.Column("execution_ms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="migration_ledger_pkey"),
        sa.UniqueConstraint("version", name="migration_ledger_version_key"),
        schema="tdbctl",
        comment="Applied migrations with the checksum of each script as applied.",
    )


def downgrade() -> None:
    op.drop_table("migration_ledger", schema="tdbctl")
