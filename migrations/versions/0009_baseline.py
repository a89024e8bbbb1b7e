"""tdbctl bookkeeping: the ledger says how each revision got there (applied, or baselined)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.schema import types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

HOW_COMMENT = ('applied: run by tdbctl migrate; baselined: recorded by tdbctl migrate baseline over a schema '
               'built otherwise.')


def upgrade() -> None:
    op.add_column('migration_ledger',
                  sa.Column('how', sa.String(length=16), server_default='applied', nullable=False,
                            comment=HOW_COMMENT),
                  schema='tdbctl')


def downgrade() -> None:
    # copy_from: SQLite rebuilds the table from this definition (the ledger as 0009 leaves it)
    # instead of reflecting it, so that `migrate down` can plan its SQL offline.
    ledger = sa.Table(
        'migration_ledger', sa.MetaData(),
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('script', sa.String(length=255), nullable=False),
        sa.Column('description', sa.Text()),
        sa.Column('checksum', sa.String(length=64), nullable=False),
        sa.Column('applied_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('applied_by', sa.String(length=255)),
        sa.Column('execution_ms', sa.Integer()),
        sa.Column('how', sa.String(length=16), server_default='applied', nullable=False),
        sa.PrimaryKeyConstraint('id', name='migration_ledger_pkey'),
        sa.UniqueConstraint('version', name='migration_ledger_version_key'),
        schema='tdbctl',
        comment='Applied migrations with the checksum of each script as applied.',
    )
    with op.batch_alter_table('migration_ledger', schema='tdbctl', copy_from=ledger) as batch:
        batch.drop_column('how')
