"""time-partitioned logs on PostgreSQL: system_metrics, error_logs, conversation_logs, user_activity_logs

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.ddl import migration_ops
from tdbctl.schema import types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# As of this revision (docs/schema.md, Partitioned tables); the old rows move after the
# migration commits (tdbctl/partitions/convert.py), in batches a killed run continues.
TABLES = [
    dict(schema='voice', table='system_metrics', column='time', interval='month', key=(), nullable=False),
    dict(schema='voice', table='error_logs', column='created_at', interval='month', key=('id', 'created_at'),
         nullable=True),
    dict(schema='academy', table='conversation_logs', column='created_at', interval='month',
         key=('id', 'created_at'), nullable=True),
    dict(schema='chattrain', table='user_activity_logs', column='timestamp', interval='month',
         key=('id', 'timestamp'), nullable=True),
]


def _specs():
    from tdbctl.partitions.convert import Spec

    return [Spec(**table) for table in TABLES]


def upgrade() -> None:
    op.create_table('partition_conversions',
        sa.Column('table_name', sa.String(length=255), nullable=False, comment='Schema-qualified partitioned table.'),
        sa.Column('old_table', sa.String(length=255), nullable=False, comment='The plain table its rows come from.'),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('rows_total', sa.BigInteger(), nullable=True),
        sa.Column('checksum_total', sa.Numeric(precision=40, scale=0), nullable=True),
        sa.Column('rows_moved', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('checksum_moved', sa.Numeric(precision=40, scale=0), server_default='0', nullable=False),
        sa.Column('started_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('finished_at', types.TIMESTAMPTZ, nullable=True),
        sa.CheckConstraint("status IN ('swapped', 'moving', 'done', 'mismatch')",
                           name='partition_conversions_status_check'),
        sa.PrimaryKeyConstraint('table_name', name=op.f('partition_conversions_pkey')),
        schema='tdbctl',
        comment='Plain tables converted to partitioned ones: progress and verification of the row move.'
    )
    op.create_table('partition_conversion_changes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('table_name', sa.String(length=255), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('checksum', sa.Numeric(precision=40, scale=0), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('partition_conversion_changes_pkey')),
        schema='tdbctl',
        comment="Changes to a converting table's old rows made meanwhile by foreign key actions."
    )
    if not migration_ops.is_postgresql():
        return
    if op.get_context().as_sql:
        op.execute("-- 0010 reads the catalogs to partition voice.system_metrics, voice.error_logs, "
                   "academy.conversation_logs and chattrain.user_activity_logs: run it with tdbctl migrate")
        return
    from tdbctl.ops.durations import utcnow
    from tdbctl.partitions.convert import swap

    for spec in _specs():
        swap(op.get_bind(), spec, utcnow())


def downgrade() -> None:
    if migration_ops.is_postgresql():
        if op.get_context().as_sql:
            op.execute("-- 0010 down copies each partitioned table back into a plain one: run it with tdbctl migrate down")
        else:
            from tdbctl.partitions.convert import unswap

            for spec in reversed(_specs()):
                unswap(op.get_bind(), spec)
        op.execute('DROP FUNCTION IF EXISTS tdbctl.partition_conversion_adjust()')
    op.drop_table('partition_conversion_changes', schema='tdbctl')
    op.drop_table('partition_conversions', schema='tdbctl')
