"""dispatch: initial schema

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.ddl import migration_ops
from tdbctl.schema import types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Views, functions and triggers as of this revision (a later change gets a migration of its own).
OBJECTS = {
}

DROPS = {
}


def upgrade() -> None:
    migration_ops.create_schema('dispatch')
    op.create_table('training_scenarios',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False, comment='Unique identifier'),
        sa.Column('name', sa.String(length=200), nullable=False, comment='Scenario name'),
        sa.Column('description', sa.Text(), nullable=False, comment='Detailed description'),
        sa.Column('caller_profile', types.JSONB, nullable=False, comment='Personality, background, emotional state'),
        sa.Column('scenario_script', types.JSONB, nullable=False, comment='Initial conditions, expected flow'),
        sa.Column('difficulty_level', sa.Enum('easy', 'medium', 'hard', name='difficulty_level_enum', create_constraint=True, schema='dispatch'), nullable=False, comment='easy, medium, hard'),
        sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False, comment='Availability flag'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False, comment='Last update timestamp'),
        sa.PrimaryKeyConstraint('id', name=op.f('training_scenarios_pkey')),
        schema='dispatch',
        comment='Pre-configured training scenarios for operator practice.'
    )
    op.create_index('ix_training_scenarios_difficulty_active', 'training_scenarios', ['difficulty_level', 'is_active'], unique=False, schema='dispatch')
    op.create_table('call_sessions',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False, comment='Unique identifier'),
        sa.Column('operator_id', sa.String(length=100), nullable=False, comment='Operator trainee ID'),
        sa.Column('scenario_id', types.UUID, nullable=False, comment='Reference to training_scenarios'),
        sa.Column('started_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False, comment='Session start time'),
        sa.Column('ended_at', types.TIMESTAMPTZ, nullable=True, comment='Session end time'),
        sa.Column('duration_ms', sa.Integer(), nullable=True, comment='Call duration in milliseconds'),
        sa.Column('status', sa.Enum('active', 'completed', 'terminated', 'error', name='call_session_status_enum', create_constraint=True, schema='dispatch'), server_default=sa.text("'active'"), nullable=False, comment='active, completed, terminated, error'),
        sa.Column('metadata', types.JSONB, nullable=True, comment='Flexible session data'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False, comment='Record creation'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False, comment='Record update'),
        sa.ForeignKeyConstraint(['scenario_id'], ['dispatch.training_scenarios.id'], name=op.f('call_sessions_scenario_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('call_sessions_pkey')),
        schema='dispatch',
        comment='Training call session records.'
    )
    op.create_index('ix_call_sessions_operator_id', 'call_sessions', ['operator_id'], unique=False, schema='dispatch')
    op.create_index('ix_call_sessions_operator_started', 'call_sessions', ['operator_id', 'started_at'], unique=False, schema='dispatch')
    op.create_index('ix_call_sessions_scenario_id', 'call_sessions', ['scenario_id'], unique=False, schema='dispatch')
    op.create_table('call_transcripts',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False, comment='Unique identifier'),
        sa.Column('session_id', types.UUID, nullable=False, comment='Reference to call_sessions'),
        sa.Column('timestamp_ms', sa.BigInteger(), nullable=False, comment='Milliseconds from call start'),
        sa.Column('speaker', sa.Enum('operator', 'caller', name='speaker_enum', create_constraint=True, schema='dispatch'), nullable=False, comment='operator, caller'),
        sa.Column('text', sa.Text(), nullable=False, comment='Transcribed dialogue'),
        sa.Column('audio_url', sa.String(length=500), nullable=True, comment='S3 audio URL'),
        sa.Column('emotional_state', sa.String(length=20), nullable=True, comment='calm, anxious, panicked, hysterical'),
        sa.Column('confidence_score', sa.Float(), nullable=True, comment='Transcription confidence (0.0-1.0)'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False, comment='Record creation'),
        sa.ForeignKeyConstraint(['session_id'], ['dispatch.call_sessions.id'], name=op.f('call_transcripts_session_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('call_transcripts_pkey')),
        schema='dispatch',
        comment='Individual dialogue entries during calls.'
    )
    op.create_index('ix_call_transcripts_session_timestamp', 'call_transcripts', ['session_id', 'timestamp_ms'], unique=False, schema='dispatch')
    op.create_table('performance_metrics',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False, comment='Unique identifier'),
        sa.Column('session_id', types.UUID, nullable=False, comment='Reference to call_sessions'),
        sa.Column('metric_name', sa.String(length=100), nullable=False, comment='Metric name (response_time, empathy_score, etc.)'),
        sa.Column('metric_value', sa.Float(), nullable=False, comment='Numeric metric value'),
        sa.Column('measured_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False, comment='Measurement timestamp'),
        sa.ForeignKeyConstraint(['session_id'], ['dispatch.call_sessions.id'], name=op.f('performance_metrics_session_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('performance_metrics_pkey')),
        schema='dispatch',
        comment='Operator performance tracking.'
    )
    op.create_index('ix_performance_metrics_session', 'performance_metrics', ['session_id'], unique=False, schema='dispatch')
    op.create_table('extracted_entities',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False, comment='Unique identifier'),
        sa.Column('transcript_id', types.UUID, nullable=False, comment='Reference to call_transcripts'),
        sa.Column('entity_type', sa.String(length=50), nullable=False, comment='WEAPON, INJURY, LOCATION, PERSON, VEHICLE, TIME_REFERENCE'),
        sa.Column('entity_value', sa.Text(), nullable=False, comment='Extracted text value'),
        sa.Column('confidence_score', sa.Float(), nullable=False, comment='Extraction confidence (0.0-1.0)'),
        sa.Column('start_char', sa.Integer(), nullable=False, comment='Starting position in text'),
        sa.Column('end_char', sa.Integer(), nullable=False, comment='Ending position in text'),
        sa.Column('metadata', types.JSONB, nullable=True, comment='Additional entity data'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=False, comment='Record creation'),
        sa.ForeignKeyConstraint(['transcript_id'], ['dispatch.call_transcripts.id'], name=op.f('extracted_entities_transcript_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('extracted_entities_pkey')),
        schema='dispatch',
        comment='Named entities extracted from transcripts.'
    )
    op.create_index('ix_extracted_entities_transcript_type', 'extracted_entities', ['transcript_id', 'entity_type'], unique=False, schema='dispatch')


def downgrade() -> None:
    op.drop_table('extracted_entities', schema='dispatch')
    op.drop_table('performance_metrics', schema='dispatch')
    op.drop_table('call_transcripts', schema='dispatch')
    op.drop_table('call_sessions', schema='dispatch')
    op.drop_table('training_scenarios', schema='dispatch')
    migration_ops.drop_types('dispatch', 'call_session_status_enum', 'difficulty_level_enum', 'speaker_enum')
    migration_ops.drop_schema('dispatch')

