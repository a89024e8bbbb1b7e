"""tdbctl bookkeeping: run history and the archive catalog

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.schema import types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('command', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('started_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('finished_at', types.TIMESTAMPTZ, nullable=True),
        sa.Column('user_host', sa.String(length=255), nullable=True),
        sa.Column('pid', sa.Integer(), nullable=True),
        sa.Column('tdbctl_version', sa.String(length=32), nullable=True),
        sa.Column('options', types.JSONB, nullable=True),
        sa.Column('rows', types.JSONB, nullable=True, comment='Rows affected per table.'),
        sa.Column('message', sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'stopped', 'dry_run', 'killed')", name='runs_status_check'),
        sa.PrimaryKeyConstraint('id', name=op.f('runs_pkey')),
        schema='tdbctl',
        comment='History of tdbctl runs that change data.'
    )
    op.create_index('idx_runs_command_started', 'runs', ['command', 'started_at'], unique=False, schema='tdbctl')
    op.create_table('archive_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('policy', sa.String(length=100), nullable=False),
        sa.Column('source_table', sa.String(length=255), nullable=False),
        sa.Column('destination', sa.Text(), nullable=False, comment='Archive table or file path.'),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('row_count', sa.BigInteger(), nullable=True),
        sa.Column('child_rows', types.JSONB, nullable=True, comment='Rows per child table archived with the batch.'),
        sa.Column('key_min', sa.Text(), nullable=True),
        sa.Column('key_max', sa.Text(), nullable=True),
        sa.Column('time_min', types.TIMESTAMPTZ, nullable=True),
        sa.Column('time_max', types.TIMESTAMPTZ, nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('bytes', sa.BigInteger(), nullable=True),
        sa.Column('manifest', types.JSONB, nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('completed_at', types.TIMESTAMPTZ, nullable=True),
        sa.CheckConstraint("status IN ('writing', 'verified', 'archived', 'discarded', 'restored')", name='archive_batches_status_check'),
        sa.ForeignKeyConstraint(['run_id'], ['tdbctl.runs.id'], name=op.f('archive_batches_run_id_fkey'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('archive_batches_pkey')),
        schema='tdbctl',
        comment='Catalog of archive batches and their verification state.'
    )
    op.create_index('idx_archive_batches_policy_created', 'archive_batches', ['policy', 'created_at'], unique=False, schema='tdbctl')
    op.create_index('idx_archive_batches_status', 'archive_batches', ['status'], unique=False, schema='tdbctl')


def downgrade() -> None:
    op.drop_table('archive_batches', schema='tdbctl')
    op.drop_table('runs', schema='tdbctl')

