"""tdbctl bookkeeping: the domains a database runs

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.schema import types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from tdbctl.migrate.ledger import applied_by
    from tdbctl.migrate.scope import domains_in_scope

    table = op.create_table('domains',
        sa.Column('domain', sa.String(length=32), nullable=False),
        sa.Column('installed_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('installed_by', sa.String(length=255), nullable=True),
        sa.Column('revision', sa.String(length=64), nullable=True,
                  comment='The revision the database was at when the domain was installed.'),
        sa.PrimaryKeyConstraint('domain', name=op.f('domains_pkey')),
        schema='tdbctl',
        comment='The domains installed in this database; migrate and every command look after these only.'
    )
    # A database migrated before this revision holds all four domains; a new one, those asked for.
    op.bulk_insert(table, [{'domain': name, 'installed_by': applied_by(), 'revision': '0011'} for name in domains_in_scope()])


def downgrade() -> None:
    op.drop_table('domains', schema='tdbctl')
