"""voice: initial schema

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.ddl import migration_ops
from tdbctl.schema import types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Views, functions and triggers as of this revision (a later change gets a migration of its own).
OBJECTS = {
    'voice.conversation_success_rate': {
        'postgresql': """
        CREATE VIEW voice.conversation_success_rate AS
        SELECT
         DATE_TRUNC('day', started_at) as date,
         COUNT(*) FILTER (WHERE status = 'completed') * 100.0 / COUNT(*) as success_rate,
         COUNT(*) as total_conversations
        FROM voice.conversations
        WHERE started_at >= NOW() - INTERVAL '30 days'
        GROUP BY DATE_TRUNC('day', started_at)
        ORDER BY date DESC
        """,
        'sqlite': """
        CREATE VIEW voice.conversation_success_rate AS
        SELECT
         date(started_at) as date,
         COUNT(*) FILTER (WHERE status = 'completed') * 100.0 / COUNT(*) as success_rate,
         COUNT(*) as total_conversations
        FROM conversations
        WHERE started_at >= datetime('now', '-30 days')
        GROUP BY date(started_at)
        ORDER BY date DESC
        """,
    },
    'voice.avg_duration_by_state': {
        'postgresql': """
        CREATE VIEW voice.avg_duration_by_state AS
        SELECT
         final_state,
         AVG(duration_seconds) as avg_duration_seconds,
         COUNT(*) as conversation_count
        FROM voice.conversations
        WHERE status = 'completed'
        GROUP BY final_state
        """,
        'sqlite': """
        CREATE VIEW voice.avg_duration_by_state AS
        SELECT
         final_state,
         AVG(duration_seconds) as avg_duration_seconds,
         COUNT(*) as conversation_count
        FROM conversations
        WHERE status = 'completed'
        GROUP BY final_state
        """,
    },
    'voice.error_rate_by_type': {
        'postgresql': """
        CREATE VIEW voice.error_rate_by_type AS
        SELECT
         error_type,
         COUNT(*) as error_count,
         COUNT(*) FILTER (WHERE severity = 'critical') as critical_count
        FROM voice.error_logs
        WHERE created_at >= NOW() - INTERVAL '7 days'
        GROUP BY error_type
        ORDER BY error_count DESC
        """,
        'sqlite': """
        CREATE VIEW voice.error_rate_by_type AS
        SELECT
         error_type,
         COUNT(*) as error_count,
         COUNT(*) FILTER (WHERE severity = 'critical') as critical_count
        FROM error_logs
        WHERE created_at >= datetime('now', '-7 days')
        GROUP BY error_type
        ORDER BY error_count DESC
        """,
    },
    'voice.slot_extraction_accuracy': {
        'postgresql': """
        CREATE VIEW voice.slot_extraction_accuracy AS
        SELECT
         slot_name,
         AVG(confidence_score) as avg_confidence,
         COUNT(*) as total_extractions,
         COUNT(*) FILTER (WHERE validated = TRUE) as validated_count
        FROM voice.extracted_slots
        WHERE created_at >= NOW() - INTERVAL '30 days'
        GROUP BY slot_name
        """,
        'sqlite': """
        CREATE VIEW voice.slot_extraction_accuracy AS
        SELECT
         slot_name,
         AVG(confidence_score) as avg_confidence,
         COUNT(*) as total_extractions,
         COUNT(*) FILTER (WHERE validated = TRUE) as validated_count
        FROM extracted_slots
        WHERE created_at >= datetime('now', '-30 days')
        GROUP BY slot_name
        """,
    },
    'voice.system_metrics': {
        'postgresql': """
        SELECT create_hypertable('voice.system_metrics', 'time', if_not_exists => TRUE)
        """,
    },
}

DROPS = {
    'voice.conversation_success_rate': {'postgresql': 'DROP VIEW IF EXISTS voice.conversation_success_rate', 'sqlite': 'DROP VIEW IF EXISTS voice.conversation_success_rate'},
    'voice.avg_duration_by_state': {'postgresql': 'DROP VIEW IF EXISTS voice.avg_duration_by_state', 'sqlite': 'DROP VIEW IF EXISTS voice.avg_duration_by_state'},
    'voice.error_rate_by_type': {'postgresql': 'DROP VIEW IF EXISTS voice.error_rate_by_type', 'sqlite': 'DROP VIEW IF EXISTS voice.error_rate_by_type'},
    'voice.slot_extraction_accuracy': {'postgresql': 'DROP VIEW IF EXISTS voice.slot_extraction_accuracy', 'sqlite': 'DROP VIEW IF EXISTS voice.slot_extraction_accuracy'},
    'voice.system_metrics': {},
}


def upgrade() -> None:
    migration_ops.create_schema('voice')
    op.create_table('conversations',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('session_id', sa.String(length=255), nullable=False),
        sa.Column('room_name', sa.String(length=255), nullable=False),
        sa.Column('user_id', sa.String(length=255), nullable=True),
        sa.Column('status', sa.String(length=50), nullable=False),
        sa.Column('started_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('ended_at', types.TIMESTAMPTZ, nullable=True),
        sa.Column('duration_seconds', sa.Integer(), nullable=True),
        sa.Column('final_state', sa.String(length=100), nullable=True),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('conversations_pkey')),
        sa.UniqueConstraint('session_id', name=op.f('conversations_session_id_key')),
        schema='voice'
    )
    op.create_index('idx_conversations_session_id', 'conversations', ['session_id'], unique=False, schema='voice')
    op.create_index('idx_conversations_started_at', 'conversations', ['started_at'], unique=False, schema='voice')
    op.create_index('idx_conversations_status', 'conversations', ['status'], unique=False, schema='voice')
    op.create_index('idx_conversations_user_id', 'conversations', ['user_id'], unique=False, schema='voice')
    op.create_table('conversations_archive',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('session_id', sa.String(length=255), nullable=False),
        sa.Column('room_name', sa.String(length=255), nullable=False),
        sa.Column('user_id', sa.String(length=255), nullable=True),
        sa.Column('status', sa.String(length=50), nullable=False),
        sa.Column('started_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('ended_at', types.TIMESTAMPTZ, nullable=True),
        sa.Column('duration_seconds', sa.Integer(), nullable=True),
        sa.Column('final_state', sa.String(length=100), nullable=True),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('conversations_archive_pkey')),
        sa.UniqueConstraint('session_id', name=op.f('conversations_archive_session_id_key')),
        schema='voice'
    )
    op.create_index('conversations_archive_session_id_idx', 'conversations_archive', ['session_id'], unique=False, schema='voice')
    op.create_index('conversations_archive_started_at_idx', 'conversations_archive', ['started_at'], unique=False, schema='voice')
    op.create_index('conversations_archive_status_idx', 'conversations_archive', ['status'], unique=False, schema='voice')
    op.create_index('conversations_archive_user_id_idx', 'conversations_archive', ['user_id'], unique=False, schema='voice')
    op.create_table('appointments',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('conversation_id', types.UUID, nullable=False),
        sa.Column('user_name', sa.String(length=255), nullable=True),
        sa.Column('appointment_date', sa.Date(), nullable=False),
        sa.Column('appointment_time', sa.Time(), nullable=False),
        sa.Column('appointment_type', sa.String(length=100), nullable=True),
        sa.Column('contact_info', sa.String(length=255), nullable=True),
        sa.Column('status', sa.String(length=50), server_default=sa.text("'confirmed'"), nullable=False),
        sa.Column('confirmation_code', sa.String(length=50), nullable=True),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['voice.conversations.id'], name=op.f('appointments_conversation_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('appointments_pkey')),
        sa.UniqueConstraint('confirmation_code', name=op.f('appointments_confirmation_code_key')),
        schema='voice'
    )
    op.create_index('idx_appointments_confirmation_code', 'appointments', ['confirmation_code'], unique=False, schema='voice')
    op.create_index('idx_appointments_conversation_id', 'appointments', ['conversation_id'], unique=False, schema='voice')
    op.create_index('idx_appointments_date', 'appointments', ['appointment_date'], unique=False, schema='voice')
    op.create_index('idx_appointments_status', 'appointments', ['status'], unique=False, schema='voice')
    op.create_table('conversation_turns',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('conversation_id', types.UUID, nullable=False),
        sa.Column('turn_number', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('audio_url', sa.Text(), nullable=True),
        sa.Column('transcribed_text', sa.Text(), nullable=True),
        sa.Column('llm_response', sa.Text(), nullable=True),
        sa.Column('state_at_turn', sa.String(length=100), nullable=True),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['voice.conversations.id'], name=op.f('conversation_turns_conversation_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('conversation_turns_pkey')),
        schema='voice'
    )
    op.create_index('idx_turns_conversation_id', 'conversation_turns', ['conversation_id'], unique=False, schema='voice')
    op.create_index('idx_turns_created_at', 'conversation_turns', ['created_at'], unique=False, schema='voice')
    op.create_index('idx_turns_role', 'conversation_turns', ['role'], unique=False, schema='voice')
    op.create_table('error_logs',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('conversation_id', types.UUID, nullable=True),
        sa.Column('error_type', sa.String(length=100), nullable=False),
        sa.Column('error_message', sa.Text(), nullable=False),
        sa.Column('stack_trace', sa.Text(), nullable=True),
        sa.Column('context', types.JSONB, nullable=True),
        sa.Column('severity', sa.String(length=20), nullable=False),
        sa.Column('resolved', sa.Boolean(), server_default=sa.text('false'), nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['voice.conversations.id'], name=op.f('error_logs_conversation_id_fkey'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('error_logs_pkey')),
        schema='voice'
    )
    op.create_index('idx_errors_created_at', 'error_logs', ['created_at'], unique=False, schema='voice')
    op.create_index('idx_errors_resolved', 'error_logs', ['resolved'], unique=False, schema='voice')
    op.create_index('idx_errors_severity', 'error_logs', ['severity'], unique=False, schema='voice')
    op.create_index('idx_errors_type', 'error_logs', ['error_type'], unique=False, schema='voice')
    op.create_table('state_transitions',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('conversation_id', types.UUID, nullable=False),
        sa.Column('from_state', sa.String(length=100), nullable=True),
        sa.Column('to_state', sa.String(length=100), nullable=False),
        sa.Column('trigger_type', sa.String(length=50), nullable=True),
        sa.Column('trigger_data', types.JSONB, nullable=True),
        sa.Column('transition_time', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column('latency_ms', sa.Integer(), nullable=True),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.ForeignKeyConstraint(['conversation_id'], ['voice.conversations.id'], name=op.f('state_transitions_conversation_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('state_transitions_pkey')),
        schema='voice'
    )
    op.create_index('idx_transitions_conversation_id', 'state_transitions', ['conversation_id'], unique=False, schema='voice')
    op.create_index('idx_transitions_to_state', 'state_transitions', ['to_state'], unique=False, schema='voice')
    op.create_index('idx_transitions_transition_time', 'state_transitions', ['transition_time'], unique=False, schema='voice')
    op.create_table('system_metrics',
        sa.Column('time', types.TIMESTAMPTZ, nullable=False),
        sa.Column('metric_name', sa.String(length=100), nullable=False),
        sa.Column('metric_value', sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column('tags', types.JSONB, nullable=True),
        sa.Column('conversation_id', types.UUID, nullable=True),
        sa.ForeignKeyConstraint(['conversation_id'], ['voice.conversations.id'], name=op.f('system_metrics_conversation_id_fkey')),
        schema='voice'
    )
    op.create_index('idx_metrics_name_time', 'system_metrics', ['metric_name', sa.literal_column('time DESC')], unique=False, schema='voice')
    op.create_table('user_feedback',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('conversation_id', types.UUID, nullable=False),
        sa.Column('rating', sa.Integer(), nullable=True),
        sa.Column('feedback_text', sa.Text(), nullable=True),
        sa.Column('feedback_type', sa.String(length=50), nullable=True),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint('rating >= 1 AND rating <= 5', name='user_feedback_rating_check'),
        sa.ForeignKeyConstraint(['conversation_id'], ['voice.conversations.id'], name=op.f('user_feedback_conversation_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('user_feedback_pkey')),
        schema='voice'
    )
    op.create_index('idx_feedback_conversation_id', 'user_feedback', ['conversation_id'], unique=False, schema='voice')
    op.create_index('idx_feedback_rating', 'user_feedback', ['rating'], unique=False, schema='voice')
    op.create_table('extracted_slots',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('conversation_id', types.UUID, nullable=False),
        sa.Column('turn_id', types.UUID, nullable=True),
        sa.Column('slot_name', sa.String(length=100), nullable=False),
        sa.Column('slot_value', sa.Text(), nullable=False),
        sa.Column('confidence_score', sa.Numeric(precision=3, scale=2), nullable=True),
        sa.Column('extraction_method', sa.String(length=50), nullable=True),
        sa.Column('validated', sa.Boolean(), server_default=sa.text('false'), nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['voice.conversations.id'], name=op.f('extracted_slots_conversation_id_fkey'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['turn_id'], ['voice.conversation_turns.id'], name=op.f('extracted_slots_turn_id_fkey'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('extracted_slots_pkey')),
        schema='voice'
    )
    op.create_index('idx_slots_conversation_id', 'extracted_slots', ['conversation_id'], unique=False, schema='voice')
    op.create_index('idx_slots_slot_name', 'extracted_slots', ['slot_name'], unique=False, schema='voice')
    if migration_ops.is_postgresql():
        op.create_index('idx_metrics_tags', 'system_metrics', ['tags'], unique=False, schema='voice', postgresql_using='gin')
    migration_ops.run_for_dialect(OBJECTS['voice.conversation_success_rate'])
    migration_ops.run_for_dialect(OBJECTS['voice.avg_duration_by_state'])
    migration_ops.run_for_dialect(OBJECTS['voice.error_rate_by_type'])
    migration_ops.run_for_dialect(OBJECTS['voice.slot_extraction_accuracy'])
    migration_ops.run_for_dialect(OBJECTS['voice.system_metrics'], requires_extension='timescaledb')


def downgrade() -> None:
    migration_ops.run_for_dialect(DROPS['voice.system_metrics'])
    migration_ops.run_for_dialect(DROPS['voice.slot_extraction_accuracy'])
    migration_ops.run_for_dialect(DROPS['voice.error_rate_by_type'])
    migration_ops.run_for_dialect(DROPS['voice.avg_duration_by_state'])
    migration_ops.run_for_dialect(DROPS['voice.conversation_success_rate'])
    op.drop_table('extracted_slots', schema='voice')
    op.drop_table('user_feedback', schema='voice')
    op.drop_table('system_metrics', schema='voice')
    op.drop_table('state_transitions', schema='voice')
    op.drop_table('error_logs', schema='voice')
    op.drop_table('conversation_turns', schema='voice')
    op.drop_table('appointments', schema='voice')
    op.drop_table('conversations_archive', schema='voice')
    op.drop_table('conversations', schema='voice')
    migration_ops.drop_schema('voice')

