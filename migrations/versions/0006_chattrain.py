"""chattrain: initial schema

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.ddl import migration_ops
from tdbctl.schema import types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# Views, functions and triggers as of this revision (a later change gets a migration of its own).
OBJECTS = {
    'chattrain.session_summary': {
        'postgresql': """
        CREATE VIEW chattrain.session_summary AS
        SELECT
            s.id,
            s.scenario_id,
            s.user_id,
            s.status,
            s.started_at,
            s.completed_at,
            EXTRACT(EPOCH FROM (COALESCE(s.completed_at, NOW()) - s.started_at))/60 AS duration_minutes,
            COUNT(DISTINCT m.id) AS message_count,
            COUNT(DISTINCT f.id) AS feedback_count,
            AVG(f.score) AS average_score,
            MAX(f.score) AS max_score,
            MIN(f.score) AS min_score
        FROM chattrain.sessions s
        LEFT JOIN chattrain.messages m ON s.id = m.session_id
        LEFT JOIN chattrain.feedback f ON s.id = f.session_id
        GROUP BY s.id, s.scenario_id, s.user_id, s.status, s.started_at, s.completed_at
        """,
        'sqlite': """
        CREATE VIEW chattrain.session_summary AS
        SELECT
            s.id,
            s.scenario_id,
            s.user_id,
            s.status,
            s.started_at,
            s.completed_at,
            (julianday(COALESCE(s.completed_at, CURRENT_TIMESTAMP)) - julianday(s.started_at)) * 1440.0 AS duration_minutes,
            COUNT(DISTINCT m.id) AS message_count,
            COUNT(DISTINCT f.id) AS feedback_count,
            AVG(f.score) AS average_score,
            MAX(f.score) AS max_score,
            MIN(f.score) AS min_score
        FROM sessions s
        LEFT JOIN messages m ON s.id = m.session_id
        LEFT JOIN feedback f ON s.id = f.session_id
        GROUP BY s.id, s.scenario_id, s.user_id, s.status, s.started_at, s.completed_at
        """,
    },
    'chattrain.scenario_performance': {
        'postgresql': """
        CREATE VIEW chattrain.scenario_performance AS
        SELECT
            sc.id AS scenario_id,
            sc.title,
            sc.domain,
            COUNT(s.id) AS total_sessions,
            COUNT(CASE WHEN s.status = 'completed' THEN 1 END) AS completed_sessions,
            ROUND(
                100.0 * COUNT(CASE WHEN s.status = 'completed' THEN 1 END) / NULLIF(COUNT(s.id), 0),
                2
            ) AS completion_rate,
            AVG(
                CASE WHEN s.status = 'completed'
                THEN EXTRACT(EPOCH FROM (s.completed_at - s.started_at))/60
                END
            ) AS avg_completion_time_minutes,
            (
                SELECT AVG(f.score)
                FROM chattrain.feedback f
                JOIN chattrain.sessions fs ON fs.id = f.session_id
                WHERE fs.scenario_id = sc.id
            ) AS avg_score
        FROM chattrain.scenarios sc
        LEFT JOIN chattrain.sessions s ON sc.id = s.scenario_id
        GROUP BY sc.id, sc.title, sc.domain
        """,
        'sqlite': """
        CREATE VIEW chattrain.scenario_performance AS
        SELECT
            sc.id AS scenario_id,
            sc.title,
            sc.domain,
            COUNT(s.id) AS total_sessions,
            COUNT(CASE WHEN s.status = 'completed' THEN 1 END) AS completed_sessions,
            ROUND(
                100.0 * COUNT(CASE WHEN s.status = 'completed' THEN 1 END) / NULLIF(COUNT(s.id), 0),
                2
            ) AS completion_rate,
            AVG(
                CASE WHEN s.status = 'completed'
                THEN (julianday(s.completed_at) - julianday(s.started_at)) * 1440.0
                END
            ) AS avg_completion_time_minutes,
            (
                SELECT AVG(f.score)
                FROM feedback f
                JOIN sessions fs ON fs.id = f.session_id
                WHERE fs.scenario_id = sc.id
            ) AS avg_score
        FROM scenarios sc
        LEFT JOIN sessions s ON sc.id = s.scenario_id
        GROUP BY sc.id, sc.title, sc.domain
        """,
    },
    'chattrain.update_session_activity': {
        'postgresql': """
        CREATE OR REPLACE FUNCTION chattrain.update_session_activity()
        RETURNS TRIGGER AS $$
        BEGIN
            UPDATE chattrain.sessions
            SET last_activity_at = CURRENT_TIMESTAMP
            WHERE id = NEW.session_id;
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
        """,
    },
    'chattrain.trigger_update_session_activity': {
        'postgresql': """
        CREATE TRIGGER trigger_update_session_activity
            AFTER INSERT ON chattrain.messages
            FOR EACH ROW
            EXECUTE FUNCTION chattrain.update_session_activity()
        """,
        'sqlite': """
        CREATE TRIGGER chattrain.trigger_update_session_activity
            AFTER INSERT ON messages
            FOR EACH ROW
        BEGIN
            UPDATE sessions
            SET last_activity_at = CURRENT_TIMESTAMP
            WHERE id = NEW.session_id;
        END
        """,
    },
    'chattrain.search_documents': {
        'postgresql': """
        CREATE OR REPLACE FUNCTION chattrain.search_documents(
            query_embedding VECTOR(1536),
            scenario_filter VARCHAR(255) DEFAULT NULL,
            limit_count INTEGER DEFAULT 3
        )
        RETURNS TABLE(
            document_id UUID,
            filename VARCHAR(255),
            content TEXT,
            similarity FLOAT
        ) AS $$
        BEGIN
            RETURN QUERY
            SELECT
                d.id,
                d.filename,
                d.content,
                (1 - (d.embedding <=> query_embedding))::FLOAT AS similarity
            FROM chattrain.documents d
            WHERE (scenario_filter IS NULL OR d.scenario_id = scenario_filter)
            ORDER BY d.embedding <=> query_embedding
            LIMIT limit_count;
        END;
        $$ LANGUAGE plpgsql
        """,
    },
}

DROPS = {
    'chattrain.session_summary': {'postgresql': 'DROP VIEW IF EXISTS chattrain.session_summary', 'sqlite': 'DROP VIEW IF EXISTS chattrain.session_summary'},
    'chattrain.scenario_performance': {'postgresql': 'DROP VIEW IF EXISTS chattrain.scenario_performance', 'sqlite': 'DROP VIEW IF EXISTS chattrain.scenario_performance'},
    'chattrain.update_session_activity': {'postgresql': 'DROP FUNCTION IF EXISTS chattrain.update_session_activity CASCADE'},
    'chattrain.trigger_update_session_activity': {'postgresql': 'DROP TRIGGER IF EXISTS trigger_update_session_activity ON chattrain.messages', 'sqlite': 'DROP TRIGGER IF EXISTS chattrain.trigger_update_session_activity'},
    'chattrain.search_documents': {'postgresql': 'DROP FUNCTION IF EXISTS chattrain.search_documents CASCADE'},
}


def upgrade() -> None:
    migration_ops.create_schema('chattrain')
    migration_ops.create_extension('vector')
    op.create_table('scenarios',
        sa.Column('id', sa.String(length=255), nullable=False, comment='e.g. "onboarding.claim_handling.v1"'),
        sa.Column('title', sa.String(length=500), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('domain', sa.String(length=100), nullable=False),
        sa.Column('version', sa.String(length=50), nullable=False, comment='SemVer format'),
        sa.Column('difficulty', sa.String(length=20), server_default=sa.text("'beginner'"), nullable=True),
        sa.Column('duration_minutes', sa.Integer(), nullable=True),
        sa.Column('tags', types.TEXT_ARRAY, nullable=True),
        sa.Column('smart_goals', types.JSONB, nullable=False, comment='Array of SMART goal objects'),
        sa.Column('llm_profile', types.JSONB, nullable=False, comment='LLM configuration'),
        sa.Column('steps', types.JSONB, nullable=False, comment='Array of step definitions'),
        sa.Column('completion_conditions', types.JSONB, nullable=True),
        sa.Column('attachments', types.JSONB, nullable=True, comment='Array of attachment configs'),
        sa.Column('variant', sa.String(length=10), server_default=sa.text("'A'"), nullable=True, comment='A/B testing'),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.Column('status', sa.String(length=20), server_default=sa.text("'active'"), nullable=True),
        sa.Column('created_at', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('updated_at', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('created_by', sa.String(length=255), nullable=True),
        sa.CheckConstraint("difficulty IN ('beginner', 'intermediate', 'advanced')", name='chk_difficulty'),
        sa.CheckConstraint("status IN ('active', 'deprecated', 'archived')", name='chk_status'),
        sa.CheckConstraint("variant IN ('A', 'B')", name='chk_variant'),
        sa.PrimaryKeyConstraint('id', name=op.f('scenarios_pkey')),
        schema='chattrain',
        comment='Training scenario definitions.'
    )
    op.create_index('idx_scenarios_created_at', 'scenarios', ['created_at'], unique=False, schema='chattrain')
    op.create_index('idx_scenarios_domain', 'scenarios', ['domain'], unique=False, schema='chattrain')
    op.create_index('idx_scenarios_status', 'scenarios', ['status'], unique=False, schema='chattrain')
    op.create_index('idx_scenarios_variant', 'scenarios', ['variant'], unique=False, schema='chattrain')
    op.create_table('system_config',
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('value', types.JSONB, nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('updated_at', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('updated_by', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('key', name=op.f('system_config_pkey')),
        schema='chattrain',
        comment='System-wide configuration settings.'
    )
    op.create_table('documents',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('scenario_id', sa.String(length=255), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('chunk_index', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('content_type', sa.String(length=50), nullable=False),
        sa.Column('embedding', types.vector(1536), nullable=True, comment='OpenAI embedding dimension'),
        sa.Column('embedding_model', sa.String(length=100), server_default=sa.text("'text-embedding-ada-002'"), nullable=True),
        sa.Column('chunk_metadata', types.JSONB, nullable=True, comment='Chunk-specific metadata (page numbers, sections)'),
        sa.Column('file_hash', sa.String(length=64), nullable=True, comment='SHA-256 of original file'),
        sa.Column('processed_at', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.CheckConstraint("content_type IN ('pdf', 'markdown', 'text', 'html')", name='chk_content_type'),
        sa.CheckConstraint('chunk_index >= 0', name='chk_chunk_index'),
        sa.ForeignKeyConstraint(['scenario_id'], ['chattrain.scenarios.id'], name=op.f('documents_scenario_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('documents_pkey')),
        schema='chattrain',
        comment='Document chunks for the RAG system.'
    )
    op.create_index('idx_documents_content_type', 'documents', ['content_type'], unique=False, schema='chattrain')
    op.create_index('idx_documents_filename', 'documents', ['filename'], unique=False, schema='chattrain')
    op.create_index('idx_documents_processed_at', 'documents', ['processed_at'], unique=False, schema='chattrain')
    op.create_index('idx_documents_scenario_filename', 'documents', ['scenario_id', 'filename'], unique=False, schema='chattrain')
    op.create_index('idx_documents_scenario_id', 'documents', ['scenario_id'], unique=False, schema='chattrain')
    op.create_table('sessions',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('scenario_id', sa.String(length=255), nullable=False),
        sa.Column('user_id', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=20), server_default=sa.text("'created'"), nullable=True),
        sa.Column('current_step_id', sa.String(length=255), nullable=True),
        sa.Column('variant', sa.String(length=10), server_default=sa.text("'A'"), nullable=True),
        sa.Column('started_at', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('completed_at', types.TIMESTAMP, nullable=True),
        sa.Column('last_activity_at', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('completion_reason', sa.String(length=100), nullable=True),
        sa.Column('session_data', types.JSONB, nullable=True, comment='Custom session state'),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.CheckConstraint("completion_reason IS NULL OR completion_reason IN ('all_steps_finished', 'time_limit', 'user_exit', 'system_error')", name='chk_completion_reason'),
        sa.CheckConstraint("status IN ('created', 'in_progress', 'completed', 'abandoned', 'error', 'archived')", name='chk_session_status'),
        sa.CheckConstraint("variant IN ('A', 'B')", name='chk_session_variant'),
        sa.ForeignKeyConstraint(['scenario_id'], ['chattrain.scenarios.id'], name=op.f('sessions_scenario_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('sessions_pkey')),
        schema='chattrain',
        comment='User training sessions.'
    )
    op.create_index('idx_sessions_completed_at', 'sessions', ['completed_at'], unique=False, schema='chattrain')
    op.create_index('idx_sessions_last_activity', 'sessions', ['last_activity_at'], unique=False, schema='chattrain')
    op.create_index('idx_sessions_scenario_id', 'sessions', ['scenario_id'], unique=False, schema='chattrain')
    op.create_index('idx_sessions_scenario_status', 'sessions', ['scenario_id', 'status'], unique=False, schema='chattrain')
    op.create_index('idx_sessions_started_at', 'sessions', ['started_at'], unique=False, schema='chattrain')
    op.create_index('idx_sessions_status', 'sessions', ['status'], unique=False, schema='chattrain')
    op.create_index('idx_sessions_user_id', 'sessions', ['user_id'], unique=False, schema='chattrain')
    op.create_index('idx_sessions_user_status', 'sessions', ['user_id', 'status'], unique=False, schema='chattrain')
    op.create_table('messages',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('session_id', types.UUID, nullable=False),
        sa.Column('step_id', sa.String(length=255), nullable=True, comment='Reference to scenario step'),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('timestamp', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('token_count', sa.Integer(), nullable=True, comment='For cost tracking'),
        sa.Column('response_time_ms', sa.Integer(), nullable=True, comment='LLM response time'),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.CheckConstraint("role IN ('user', 'assistant', 'system', 'feedback')", name='chk_message_role'),
        sa.CheckConstraint('response_time_ms >= 0', name='chk_response_time'),
        sa.CheckConstraint('token_count >= 0', name='chk_token_count'),
        sa.ForeignKeyConstraint(['session_id'], ['chattrain.sessions.id'], name=op.f('messages_session_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('messages_pkey')),
        schema='chattrain',
        comment='Chat messages within sessions.'
    )
    op.create_index('idx_messages_role', 'messages', ['role'], unique=False, schema='chattrain')
    op.create_index('idx_messages_session_id', 'messages', ['session_id'], unique=False, schema='chattrain')
    op.create_index('idx_messages_session_timestamp', 'messages', ['session_id', 'timestamp'], unique=False, schema='chattrain')
    op.create_index('idx_messages_step_id', 'messages', ['step_id'], unique=False, schema='chattrain')
    op.create_index('idx_messages_timestamp', 'messages', ['timestamp'], unique=False, schema='chattrain')
    op.create_table('user_activity_logs',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('session_id', types.UUID, nullable=True),
        sa.Column('user_id', sa.String(length=255), nullable=False),
        sa.Column('activity_type', sa.String(length=50), nullable=False),
        sa.Column('activity_data', types.JSONB, nullable=True),
        sa.Column('timestamp', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('ip_address', types.INET, nullable=True, comment='For security auditing'),
        sa.Column('user_agent', sa.Text(), nullable=True),
        sa.CheckConstraint("activity_type IN ('session_start', 'session_end', 'message_sent', 'document_viewed', 'feedback_received', 'export_generated', 'error_occurred')", name='chk_activity_type'),
        sa.ForeignKeyConstraint(['session_id'], ['chattrain.sessions.id'], name=op.f('user_activity_logs_session_id_fkey'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('user_activity_logs_pkey')),
        schema='chattrain',
        comment='User activity tracking for analytics.'
    )
    op.create_index('idx_activity_logs_activity_type', 'user_activity_logs', ['activity_type'], unique=False, schema='chattrain')
    op.create_index('idx_activity_logs_session_id', 'user_activity_logs', ['session_id'], unique=False, schema='chattrain')
    op.create_index('idx_activity_logs_timestamp', 'user_activity_logs', ['timestamp'], unique=False, schema='chattrain')
    op.create_index('idx_activity_logs_user_id', 'user_activity_logs', ['user_id'], unique=False, schema='chattrain')
    op.create_index('idx_activity_logs_user_timestamp', 'user_activity_logs', ['user_id', 'timestamp'], unique=False, schema='chattrain')
    op.create_table('feedback',
        sa.Column('id', types.UUID, server_default=types.new_uuid(), nullable=False),
        sa.Column('session_id', types.UUID, nullable=False),
        sa.Column('step_id', sa.String(length=255), nullable=False),
        sa.Column('message_id', types.UUID, nullable=True),
        sa.Column('evaluation_type', sa.String(length=50), nullable=False),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('criteria', types.JSONB, nullable=True, comment='Detailed evaluation criteria'),
        sa.Column('comments', sa.Text(), nullable=True),
        sa.Column('suggestions', types.TEXT_ARRAY, nullable=True, comment='Array of improvement suggestions'),
        sa.Column('evaluator_version', sa.String(length=50), nullable=True, comment='Version of evaluation logic'),
        sa.Column('created_at', types.TIMESTAMP, server_default=sa.func.now(), nullable=True),
        sa.Column('metadata', types.JSONB, nullable=True),
        sa.CheckConstraint("evaluation_type IN ('rule_based', 'gpt_judge', 'hybrid', 'manual')", name='chk_evaluation_type'),
        sa.CheckConstraint('score >= 0 AND score <= 100', name='feedback_score_check'),
        sa.ForeignKeyConstraint(['message_id'], ['chattrain.messages.id'], name=op.f('feedback_message_id_fkey'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['session_id'], ['chattrain.sessions.id'], name=op.f('feedback_session_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('feedback_pkey')),
        schema='chattrain',
        comment='Evaluation feedback for user responses.'
    )
    op.create_index('idx_feedback_created_at', 'feedback', ['created_at'], unique=False, schema='chattrain')
    op.create_index('idx_feedback_evaluation_type', 'feedback', ['evaluation_type'], unique=False, schema='chattrain')
    op.create_index('idx_feedback_session_id', 'feedback', ['session_id'], unique=False, schema='chattrain')
    op.create_index('idx_feedback_session_step', 'feedback', ['session_id', 'step_id'], unique=False, schema='chattrain')
    op.create_index('idx_feedback_step_id', 'feedback', ['step_id'], unique=False, schema='chattrain')
    if migration_ops.is_postgresql():
        op.create_index('idx_scenarios_search', 'scenarios', [sa.literal_column("to_tsvector('english', title || ' ' || COALESCE(description, ''))")], unique=False, schema='chattrain', postgresql_using='gin')
        op.create_index('documents_embedding_idx', 'documents', ['embedding'], unique=False, schema='chattrain', postgresql_using='ivfflat', postgresql_with={'lists': 100}, postgresql_ops={'embedding': 'vector_cosine_ops'})
        op.create_index('idx_documents_content_search', 'documents', [sa.literal_column("to_tsvector('english', content)")], unique=False, schema='chattrain', postgresql_using='gin')
    migration_ops.run_for_dialect(OBJECTS['chattrain.session_summary'])
    migration_ops.run_for_dialect(OBJECTS['chattrain.scenario_performance'])
    migration_ops.run_for_dialect(OBJECTS['chattrain.update_session_activity'])
    migration_ops.run_for_dialect(OBJECTS['chattrain.trigger_update_session_activity'])
    migration_ops.run_for_dialect(OBJECTS['chattrain.search_documents'])


def downgrade() -> None:
    migration_ops.run_for_dialect(DROPS['chattrain.search_documents'])
    migration_ops.run_for_dialect(DROPS['chattrain.trigger_update_session_activity'])
    migration_ops.run_for_dialect(DROPS['chattrain.update_session_activity'])
    migration_ops.run_for_dialect(DROPS['chattrain.scenario_performance'])
    migration_ops.run_for_dialect(DROPS['chattrain.session_summary'])
    op.drop_table('feedback', schema='chattrain')
    op.drop_table('user_activity_logs', schema='chattrain')
    op.drop_table('messages', schema='chattrain')
    op.drop_table('sessions', schema='chattrain')
    op.drop_table('documents', schema='chattrain')
    op.drop_table('system_config', schema='chattrain')
    op.drop_table('scenarios', schema='chattrain')
    migration_ops.drop_schema('chattrain')

