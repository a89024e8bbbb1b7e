"""tdbctl bookkeeping: the progress of tdbctl import, per source table

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.schema import types

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('imports',
        sa.Column('source', sa.String(length=500), nullable=False, comment='The source database, its password left out.'),
        sa.Column('source_table', sa.String(length=255), nullable=False),
        sa.Column('target_table', sa.String(length=255), nullable=False),
        sa.Column('last_key', types.JSONB, nullable=True,
                  comment='The source key of the last row copied (keys are copied in order).'),
        sa.Column('rows_read', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('rows_written', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('rows_skipped', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('skipped', types.JSONB, nullable=True,
                  comment='Why rows were skipped: reason -> rows, and the first key of each.'),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('copying', 'copied', 'verified', 'mismatch')", name='imports_status_check'),
        sa.PrimaryKeyConstraint('source', 'source_table', name=op.f('imports_pkey')),
        schema='tdbctl',
        comment='Progress of tdbctl import, per source table.'
    )


def downgrade() -> None:
    op.drop_table('imports', schema='tdbctl')
