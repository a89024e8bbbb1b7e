"""tdbctl bookkeeping: claims (which run may change the database), leftover archive batches

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.schema import types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

STATUSES = "'writing', 'verified', 'archived', 'discarded', 'restored'"


def upgrade() -> None:
    op.create_table('claims',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token', sa.String(length=36), nullable=False),
        sa.Column('command', sa.String(length=32), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False, comment='schema, data or reindex: what it excludes.'),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('process_start', sa.BigInteger(), nullable=True,
                  comment="The process's start time (Linux clock ticks): tells a reused pid."),
        sa.Column('acquired_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('lease_until', sa.Float(precision=53), nullable=True,
                  comment='Server clock, seconds since the epoch; NULL: while its process lives.'),
        sa.PrimaryKeyConstraint('id', name=op.f('claims_pkey')),
        sa.UniqueConstraint('token', name=op.f('claims_token_key')),
        schema='tdbctl',
        comment='Runs holding a claim on this database (cleanup, archive, migrate, seed, reindex).'
    )
    _statuses(f"{STATUSES}, 'leftover'")


def downgrade() -> None:
    op.execute("UPDATE tdbctl.archive_batches SET status = 'discarded' WHERE status = 'leftover'")
    _statuses(STATUSES)
    op.drop_table('claims', schema='tdbctl')


def _statuses(allowed: str) -> None:
    # copy_from: SQLite rebuilds the table from this definition instead of reflecting it, which
    # `migrate down` needs to plan its SQL offline.
    from tdbctl.schema.bookkeeping import archive_batches

    with op.batch_alter_table('archive_batches', schema='tdbctl', copy_from=archive_batches) as batch:
        batch.drop_constraint('archive_batches_status_check', type_='check')
        batch.create_check_constraint('archive_batches_status_check', f"status IN ({allowed})")
