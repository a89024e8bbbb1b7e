"""academy: initial schema

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.ddl import migration_ops
from tdbctl.schema import types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Views, functions and triggers as of this revision (a later change gets a migration of its own).
OBJECTS = {
}

DROPS = {
}


def upgrade() -> None:
    migration_ops.create_schema('academy')
    migration_ops.create_extension('pg_trgm')
    migration_ops.create_extension('vector')
    op.create_table('cache_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('cache_key', sa.String(), nullable=False),
        sa.Column('content_type', sa.String(), nullable=False, comment='response, embedding, summary'),
        sa.Column('content_data', sa.LargeBinary(), nullable=True, comment='Serialized cache data'),
        sa.Column('content_text', sa.Text(), nullable=True, comment='Text content for search'),
        sa.Column('metadata', types.JSONB, nullable=True, comment='Cache metadata and tags'),
        sa.Column('ttl_seconds', sa.Integer(), nullable=True, comment='Time to live in seconds'),
        sa.Column('access_count', sa.Integer(), server_default=sa.text('0'), nullable=True),
        sa.Column('last_accessed', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('expires_at', types.TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('cache_entries_pkey')),
        sa.UniqueConstraint('cache_key', name=op.f('cache_entries_cache_key_key')),
        schema='academy',
        comment='Cached responses, embeddings and summaries; expire by TTL.'
    )
    op.create_index('idx_cache_entries_expires_at', 'cache_entries', ['expires_at'], unique=False, schema='academy')
    op.create_table('users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(), nullable=False, comment="User's email address for login"),
        sa.Column('full_name', sa.String(), nullable=True, comment="User's display name"),
        sa.Column('username', sa.String(), nullable=False, comment='Unique username for public profile'),
        sa.Column('password_hash', sa.String(), nullable=False, comment='Bcrypt hashed password'),
        sa.Column('bio', sa.Text(), nullable=True, comment="User's biography/description"),
        sa.Column('avatar_url', sa.String(), nullable=True, comment='Profile picture URL'),
        sa.Column('role', sa.Enum('user', 'admin', 'teacher', 'student', name='user_role', create_constraint=True, schema='academy'), server_default=sa.text("'user'"), nullable=True, comment='User role'),
        sa.Column('published_scenarios', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Count of public scenarios created'),
        sa.Column('total_simulations', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Total simulations completed'),
        sa.Column('reputation_score', sa.Float(), server_default=sa.text('0.0'), nullable=True, comment='Community reputation score (0.0-5.0)'),
        sa.Column('profile_public', sa.Boolean(), server_default=sa.text('true'), nullable=True, comment='Whether profile is publicly visible'),
        sa.Column('allow_contact', sa.Boolean(), server_default=sa.text('true'), nullable=True, comment='Whether user allows contact from others'),
        sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=True, comment='Account active status'),
        sa.Column('is_verified', sa.Boolean(), server_default=sa.text('false'), nullable=True, comment='Email verification status'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.CheckConstraint('reputation_score >= 0.0 AND reputation_score <= 5.0', name='users_reputation_score_check'),
        sa.PrimaryKeyConstraint('id', name=op.f('users_pkey')),
        schema='academy',
        comment='User accounts with community engagement metrics.'
    )
    op.create_index('idx_users_created_at', 'users', ['created_at'], unique=False, schema='academy')
    op.create_index('idx_users_email', 'users', ['email'], unique=True, schema='academy')
    op.create_index('idx_users_role', 'users', ['role'], unique=False, schema='academy')
    op.create_index('idx_users_username', 'users', ['username'], unique=True, schema='academy')
    op.create_table('vector_embeddings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('content_type', sa.String(), nullable=False, comment='scenario, persona, scene, conversation'),
        sa.Column('content_id', sa.Integer(), nullable=True, comment='ID of the related entity'),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('embedding', types.vector(1536), nullable=True, comment='OpenAI embedding (1536 dimensions)'),
        sa.Column('metadata', types.JSONB, nullable=True, comment='Additional context and metadata'),
        sa.Column('collection_name', sa.String(), server_default=sa.text("'default'"), nullable=True),
        sa.Column('document_id', sa.String(), nullable=True, comment='Unique identifier for the document'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.PrimaryKeyConstraint('id', name=op.f('vector_embeddings_pkey')),
        schema='academy',
        comment='Embeddings for semantic search and AI memory.'
    )
    op.create_index('idx_vector_embeddings_collection_name', 'vector_embeddings', ['collection_name'], unique=False, schema='academy')
    op.create_table('scenarios',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(), nullable=False, comment='Scenario title'),
        sa.Column('description', sa.Text(), nullable=True, comment='Detailed scenario description'),
        sa.Column('challenge', sa.Text(), nullable=True, comment='Main business challenge or problem'),
        sa.Column('industry', sa.String(), nullable=True, comment='Industry context'),
        sa.Column('learning_objectives', types.JSONB, nullable=True, comment='Array of learning objectives'),
        sa.Column('source_type', sa.Enum('manual', 'pdf_upload', 'template', name='source_type', create_constraint=True, schema='academy'), server_default=sa.text("'manual'"), nullable=True, comment='How the scenario was created'),
        sa.Column('pdf_content', sa.Text(), nullable=True, comment='Original PDF content if applicable'),
        sa.Column('student_role', sa.String(), nullable=True, comment='Role the student plays in simulation'),
        sa.Column('category', sa.String(), nullable=True, comment='Scenario category for marketplace'),
        sa.Column('difficulty_level', sa.String(), nullable=True, comment='beginner, intermediate, advanced'),
        sa.Column('estimated_duration', sa.Integer(), nullable=True, comment='Estimated completion time in minutes'),
        sa.Column('tags', types.JSONB, nullable=True, comment='Array of searchable tags'),
        sa.Column('pdf_title', sa.String(), nullable=True, comment='Original PDF title'),
        sa.Column('pdf_source', sa.String(), nullable=True, comment='PDF source information'),
        sa.Column('processing_version', sa.String(), server_default=sa.text("'1.0'"), nullable=True, comment='AI processing version used'),
        sa.Column('rating_avg', sa.Float(), server_default=sa.text('0.0'), nullable=True, comment='Average user rating (0.0-5.0)'),
        sa.Column('rating_count', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of ratings received'),
        sa.Column('is_public', sa.Boolean(), server_default=sa.text('false'), nullable=True, comment='Whether scenario is publicly available'),
        sa.Column('is_template', sa.Boolean(), server_default=sa.text('false'), nullable=True, comment='Whether scenario serves as a template'),
        sa.Column('allow_remixes', sa.Boolean(), server_default=sa.text('true'), nullable=True, comment='Whether others can remix this scenario'),
        sa.Column('usage_count', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of times scenario has been used'),
        sa.Column('clone_count', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of times scenario has been cloned'),
        sa.Column('created_by', sa.Integer(), nullable=True, comment='Creating user'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.ForeignKeyConstraint(['created_by'], ['academy.users.id'], name=op.f('scenarios_created_by_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('scenarios_pkey')),
        schema='academy',
        comment='Business scenarios created from PDF processing or manual input.'
    )
    op.create_index('idx_scenarios_category', 'scenarios', ['category'], unique=False, schema='academy')
    op.create_index('idx_scenarios_created_at', 'scenarios', ['created_at'], unique=False, schema='academy')
    op.create_index('idx_scenarios_created_by', 'scenarios', ['created_by'], unique=False, schema='academy')
    op.create_index('idx_scenarios_industry', 'scenarios', ['industry'], unique=False, schema='academy')
    op.create_index('idx_scenarios_is_public', 'scenarios', ['is_public'], unique=False, schema='academy')
    op.create_index('idx_scenarios_public', 'scenarios', ['is_public'], unique=False, schema='academy', postgresql_where=sa.text('is_public = true'), sqlite_where=sa.text('is_public = true'))
    op.create_index('idx_scenarios_public_category', 'scenarios', ['is_public', 'category'], unique=False, schema='academy')
    op.create_index('idx_scenarios_public_rating', 'scenarios', ['is_public', sa.literal_column('rating_avg DESC')], unique=False, schema='academy')
    op.create_index('idx_scenarios_rating', 'scenarios', [sa.literal_column('rating_avg DESC')], unique=False, schema='academy')
    op.create_index('idx_scenarios_rating_avg', 'scenarios', ['rating_avg'], unique=False, schema='academy')
    op.create_index('idx_scenarios_title', 'scenarios', ['title'], unique=False, schema='academy')
    op.create_table('scenario_files',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scenario_id', sa.Integer(), nullable=True, comment='Scenario'),
        sa.Column('filename', sa.String(), nullable=False),
        sa.Column('file_type', sa.String(), nullable=False, comment='File type (application/pdf)'),
        sa.Column('file_size', sa.Integer(), nullable=True, comment='File size in bytes'),
        sa.Column('file_path', sa.String(), nullable=False, comment='Path to stored file'),
        sa.Column('original_content', sa.Text(), nullable=True, comment='Original extracted text content'),
        sa.Column('processed_content', sa.Text(), nullable=True, comment='AI-processed and structured content'),
        sa.Column('processing_status', sa.String(), server_default=sa.text("'pending'"), nullable=True, comment='pending, processing, completed, failed'),
        sa.Column('processing_metadata', types.JSONB, nullable=True, comment='Processing results and metadata'),
        sa.Column('processing_log', types.JSONB, nullable=True, comment='Detailed processing log and errors'),
        sa.Column('uploaded_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='File upload timestamp'),
        sa.Column('processed_at', types.TIMESTAMPTZ, nullable=True, comment='Processing completion timestamp'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.ForeignKeyConstraint(['scenario_id'], ['academy.scenarios.id'], name=op.f('scenario_files_scenario_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('scenario_files_pkey')),
        schema='academy',
        comment='Uploaded PDF files and their processing status.'
    )
    op.create_index('idx_scenario_files_scenario_id', 'scenario_files', ['scenario_id'], unique=False, schema='academy')
    op.create_table('scenario_personas',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scenario_id', sa.Integer(), nullable=True, comment='Parent scenario'),
        sa.Column('name', sa.String(), nullable=False, comment="Persona's name"),
        sa.Column('role', sa.String(), nullable=False, comment="Persona's role/position in the business case"),
        sa.Column('background', sa.Text(), nullable=True, comment='Detailed background information'),
        sa.Column('correlation', sa.Text(), nullable=True, comment='Relationship to the business challenge'),
        sa.Column('primary_goals', types.JSONB, nullable=True, comment="Array of the persona's primary objectives"),
        sa.Column('personality_traits', types.JSONB, nullable=True, comment='Personality traits with numerical scores (0-10)'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.ForeignKeyConstraint(['scenario_id'], ['academy.scenarios.id'], name=op.f('scenario_personas_scenario_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('scenario_personas_pkey')),
        schema='academy',
        comment='AI personas extracted from business case studies.'
    )
    op.create_index('idx_personas_name', 'scenario_personas', ['name'], unique=False, schema='academy')
    op.create_index('idx_personas_role', 'scenario_personas', ['role'], unique=False, schema='academy')
    op.create_index('idx_personas_scenario_id', 'scenario_personas', ['scenario_id'], unique=False, schema='academy')
    op.create_table('scenario_reviews',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scenario_id', sa.Integer(), nullable=True, comment='Scenario being reviewed'),
        sa.Column('reviewer_id', sa.Integer(), nullable=True, comment='Reviewing user'),
        sa.Column('rating', sa.Integer(), nullable=False, comment='Numerical rating (1-5)'),
        sa.Column('title', sa.String(), nullable=True),
        sa.Column('review_text', sa.Text(), nullable=True, comment='Detailed review text'),
        sa.Column('pros', types.JSONB, nullable=True, comment='Array of positive aspects'),
        sa.Column('cons', types.JSONB, nullable=True, comment='Array of negative aspects'),
        sa.Column('use_case', sa.String(), nullable=True, comment='Specific use case or context'),
        sa.Column('helpful_count', sa.Integer(), server_default=sa.text('0'), nullable=True),
        sa.Column('helpful_votes', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of helpful votes'),
        sa.Column('total_votes', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Total votes received'),
        sa.Column('is_verified', sa.Boolean(), server_default=sa.text('false'), nullable=True, comment='Verified purchase/usage'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.CheckConstraint('rating >= 1 AND rating <= 5', name='scenario_reviews_rating_check'),
        sa.ForeignKeyConstraint(['reviewer_id'], ['academy.users.id'], name=op.f('scenario_reviews_reviewer_id_fkey'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['scenario_id'], ['academy.scenarios.id'], name=op.f('scenario_reviews_scenario_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('scenario_reviews_pkey')),
        sa.UniqueConstraint('scenario_id', 'reviewer_id', name=op.f('scenario_reviews_scenario_id_reviewer_id_key')),
        schema='academy',
        comment='Community reviews and ratings for scenarios; one per user per scenario.'
    )
    op.create_index('idx_scenario_reviews_reviewer_id', 'scenario_reviews', ['reviewer_id'], unique=False, schema='academy')
    op.create_table('scenario_scenes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scenario_id', sa.Integer(), nullable=True, comment='Parent scenario'),
        sa.Column('title', sa.String(), nullable=False, comment='Scene title'),
        sa.Column('description', sa.Text(), nullable=True, comment='Detailed scene description'),
        sa.Column('user_goal', sa.Text(), nullable=True, comment='Specific learning objective for this scene'),
        sa.Column('scene_order', sa.Integer(), nullable=False, comment='Order in the scene sequence'),
        sa.Column('estimated_duration', sa.Integer(), nullable=True, comment='Estimated scene completion time in minutes'),
        sa.Column('max_attempts', sa.Integer(), nullable=True, comment='Maximum attempts before forced progression'),
        sa.Column('success_threshold', sa.Float(), nullable=True, comment='Success threshold for goal achievement (0.0-1.0)'),
        sa.Column('goal_criteria', types.JSONB, nullable=True, comment='AI-defined success criteria'),
        sa.Column('hint_triggers', types.JSONB, nullable=True, comment='Conditions that trigger hints'),
        sa.Column('scene_context', sa.Text(), nullable=True, comment='Additional context for ChatOrchestrator'),
        sa.Column('persona_instructions', types.JSONB, nullable=True, comment='Specific instructions for AI personas'),
        sa.Column('image_url', sa.String(), nullable=True, comment='URL to scene visualization image'),
        sa.Column('image_prompt', sa.String(), nullable=True, comment='AI prompt used to generate scene image'),
        sa.Column('timeout_turns', sa.Integer(), server_default=sa.text('20'), nullable=True, comment='Maximum turns before auto-progression'),
        sa.Column('success_metric', sa.Text(), nullable=True, comment='How success is measured'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.ForeignKeyConstraint(['scenario_id'], ['academy.scenarios.id'], name=op.f('scenario_scenes_scenario_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('scenario_scenes_pkey')),
        schema='academy',
        comment='Sequential learning scenes for linear simulation progression.'
    )
    op.create_index('idx_scenes_order', 'scenario_scenes', ['scenario_id', 'scene_order'], unique=False, schema='academy')
    op.create_index('idx_scenes_scenario_id', 'scenario_scenes', ['scenario_id'], unique=False, schema='academy')
    op.create_table('scene_personas',
        sa.Column('scene_id', sa.Integer(), nullable=False),
        sa.Column('persona_id', sa.Integer(), nullable=False),
        sa.Column('involvement_level', sa.String(), server_default=sa.text("'participant'"), nullable=True, comment='Level of persona involvement (key, participant, mentioned)'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.ForeignKeyConstraint(['persona_id'], ['academy.scenario_personas.id'], name=op.f('scene_personas_persona_id_fkey'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['scene_id'], ['academy.scenario_scenes.id'], name=op.f('scene_personas_scene_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('scene_id', 'persona_id', name=op.f('scene_personas_pkey')),
        schema='academy',
        comment='Many-to-many relationship between scenes and personas.'
    )
    op.create_index('idx_scene_personas_persona_id', 'scene_personas', ['persona_id'], unique=False, schema='academy')
    op.create_table('session_memory',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('scenario_id', sa.Integer(), nullable=True),
        sa.Column('scene_id', sa.Integer(), nullable=True),
        sa.Column('memory_type', sa.String(), nullable=False, comment='conversation, context, summary'),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('metadata', types.JSONB, nullable=True, comment='Additional context and metadata'),
        sa.Column('importance_score', sa.Float(), server_default=sa.text('0.5'), nullable=True, comment='0.0 to 1.0'),
        sa.Column('access_count', sa.Integer(), server_default=sa.text('0'), nullable=True),
        sa.Column('last_accessed', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.ForeignKeyConstraint(['scenario_id'], ['academy.scenarios.id'], name=op.f('session_memory_scenario_id_fkey'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['scene_id'], ['academy.scenario_scenes.id'], name=op.f('session_memory_scene_id_fkey'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['user_id'], ['academy.users.id'], name=op.f('session_memory_user_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('session_memory_pkey')),
        sa.UniqueConstraint('session_id', name=op.f('session_memory_session_id_key')),
        schema='academy',
        comment='AI agent memory per session.'
    )
    op.create_index('idx_session_memory_last_accessed', 'session_memory', ['last_accessed'], unique=False, schema='academy')
    op.create_index('idx_session_memory_scenario_id', 'session_memory', ['scenario_id'], unique=False, schema='academy')
    op.create_index('idx_session_memory_scene_id', 'session_memory', ['scene_id'], unique=False, schema='academy')
    op.create_index('idx_session_memory_user_id', 'session_memory', ['user_id'], unique=False, schema='academy')
    op.create_table('user_progress',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True, comment='User'),
        sa.Column('scenario_id', sa.Integer(), nullable=True, comment='Scenario being simulated'),
        sa.Column('current_scene_id', sa.Integer(), nullable=True, comment='Current scene in progression'),
        sa.Column('status', sa.String(), server_default=sa.text("'in_progress'"), nullable=True, comment="002's progress status"),
        sa.Column('simulation_status', sa.Enum('not_started', 'in_progress', 'completed', 'abandoned', name='simulation_status', create_constraint=True, schema='academy'), server_default=sa.text("'in_progress'"), nullable=True, comment='Current status'),
        sa.Column('started_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Simulation start timestamp'),
        sa.Column('completed_at', types.TIMESTAMPTZ, nullable=True, comment='Simulation completion timestamp'),
        sa.Column('last_activity', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last user activity timestamp'),
        sa.Column('total_time_spent', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Total time spent in seconds'),
        sa.Column('current_turn', sa.Integer(), server_default=sa.text('0'), nullable=True),
        sa.Column('total_turns', sa.Integer(), server_default=sa.text('0'), nullable=True),
        sa.Column('total_attempts', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Total attempts across all scenes'),
        sa.Column('hints_used', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Total hints used in simulation'),
        sa.Column('forced_progressions', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of forced scene progressions'),
        sa.Column('session_count', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of simulation sessions'),
        sa.Column('scenes_completed', types.JSONB, server_default=sa.text("'[]'"), nullable=True, comment='Array of completed scene IDs'),
        sa.Column('total_scenes', sa.Integer(), nullable=True),
        sa.Column('completion_percentage', sa.Float(), server_default=sa.text('0.0'), nullable=True, comment='Overall completion percentage (0.0-100.0)'),
        sa.Column('final_score', sa.Float(), nullable=True, comment='Final simulation score (0.0-100.0)'),
        sa.Column('orchestrator_data', types.JSONB, nullable=True, comment='ChatOrchestrator state and context'),
        sa.Column('conversation_summary', sa.Text(), nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.CheckConstraint('completion_percentage >= 0.0 AND completion_percentage <= 100.0', name='user_progress_completion_percentage_check'),
        sa.ForeignKeyConstraint(['current_scene_id'], ['academy.scenario_scenes.id'], name=op.f('user_progress_current_scene_id_fkey'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['scenario_id'], ['academy.scenarios.id'], name=op.f('user_progress_scenario_id_fkey'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['academy.users.id'], name=op.f('user_progress_user_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('user_progress_pkey')),
        schema='academy',
        comment='User progress through linear simulations with ChatOrchestrator state.'
    )
    op.create_index('idx_user_progress_current_scene_id', 'user_progress', ['current_scene_id'], unique=False, schema='academy')
    op.create_index('idx_user_progress_scenario', 'user_progress', ['scenario_id'], unique=False, schema='academy')
    op.create_index('idx_user_progress_scenario_id', 'user_progress', ['scenario_id'], unique=False, schema='academy')
    op.create_index('idx_user_progress_status', 'user_progress', ['simulation_status'], unique=False, schema='academy')
    op.create_index('idx_user_progress_user', 'user_progress', ['user_id'], unique=False, schema='academy')
    op.create_index('idx_user_progress_user_id', 'user_progress', ['user_id'], unique=False, schema='academy')
    op.create_index('idx_user_progress_user_status', 'user_progress', ['user_id', 'simulation_status'], unique=False, schema='academy')
    op.create_table('agent_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(), nullable=False),
        sa.Column('user_progress_id', sa.Integer(), nullable=True),
        sa.Column('agent_type', sa.String(), nullable=False, comment='persona, summarization, grading'),
        sa.Column('agent_id', sa.String(), nullable=True, comment='Specific agent identifier'),
        sa.Column('session_config', types.JSONB, nullable=True, comment='Agent-specific configuration'),
        sa.Column('status', sa.String(), server_default=sa.text("'active'"), nullable=True, comment='active, paused, completed, error'),
        sa.Column('started_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True),
        sa.Column('last_activity', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True),
        sa.Column('total_interactions', sa.Integer(), server_default=sa.text('0'), nullable=True),
        sa.Column('average_response_time', sa.Float(), nullable=True),
        sa.Column('error_count', sa.Integer(), server_default=sa.text('0'), nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.ForeignKeyConstraint(['user_progress_id'], ['academy.user_progress.id'], name=op.f('agent_sessions_user_progress_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('agent_sessions_pkey')),
        sa.UniqueConstraint('session_id', name=op.f('agent_sessions_session_id_key')),
        schema='academy',
        comment='AI agent sessions and their performance.'
    )
    op.create_index('idx_agent_sessions_user_progress_id', 'agent_sessions', ['user_progress_id'], unique=False, schema='academy')
    op.create_table('conversation_logs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_progress_id', sa.Integer(), nullable=True, comment='User progress'),
        sa.Column('scene_id', sa.Integer(), nullable=True, comment='Scene'),
        sa.Column('message_type', sa.Enum('user', 'ai_persona', 'system', 'hint', name='message_type', create_constraint=True, schema='academy'), nullable=False, comment='Type of message'),
        sa.Column('sender_name', sa.String(), nullable=True, comment='Name of message sender'),
        sa.Column('message_content', sa.Text(), nullable=False, comment='Full message content'),
        sa.Column('turn_number', sa.Integer(), nullable=True),
        sa.Column('message_order', sa.Integer(), nullable=True, comment='Order of message in conversation'),
        sa.Column('attempt_number', sa.Integer(), nullable=True, comment='Scene attempt number when message was sent'),
        sa.Column('persona_id', sa.Integer(), nullable=True, comment='Persona if AI message'),
        sa.Column('is_hint', sa.Boolean(), server_default=sa.text('false'), nullable=True, comment='Whether message was a hint'),
        sa.Column('ai_context_used', types.JSONB, nullable=True, comment='AI context and prompt information'),
        sa.Column('model_used', sa.String(), nullable=True, comment='AI model used for generation'),
        sa.Column('ai_model_version', sa.String(), nullable=True, comment='AI model version used'),
        sa.Column('processing_time', sa.Float(), nullable=True, comment='AI processing time in seconds'),
        sa.Column('token_count', sa.Integer(), nullable=True, comment='Number of tokens used'),
        sa.Column('user_reaction', sa.String(), nullable=True, comment='Categorized user reaction (positive, negative, neutral)'),
        sa.Column('led_to_progress', sa.Boolean(), server_default=sa.text('false'), nullable=True, comment='Whether message led to scene progression'),
        sa.Column('timestamp', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Message timestamp'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.ForeignKeyConstraint(['persona_id'], ['academy.scenario_personas.id'], name=op.f('conversation_logs_persona_id_fkey'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['scene_id'], ['academy.scenario_scenes.id'], name=op.f('conversation_logs_scene_id_fkey'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_progress_id'], ['academy.user_progress.id'], name=op.f('conversation_logs_user_progress_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('conversation_logs_pkey')),
        schema='academy',
        comment='Conversation history for ChatOrchestrator interactions.'
    )
    op.create_index('idx_conversation_logs_created', 'conversation_logs', ['created_at'], unique=False, schema='academy')
    op.create_index('idx_conversation_logs_persona_id', 'conversation_logs', ['persona_id'], unique=False, schema='academy')
    op.create_index('idx_conversation_logs_progress', 'conversation_logs', ['user_progress_id'], unique=False, schema='academy')
    op.create_index('idx_conversation_logs_progress_scene', 'conversation_logs', ['user_progress_id', 'scene_id'], unique=False, schema='academy')
    op.create_index('idx_conversation_logs_scene', 'conversation_logs', ['scene_id'], unique=False, schema='academy')
    op.create_index('idx_conversation_logs_scene_id', 'conversation_logs', ['scene_id'], unique=False, schema='academy')
    op.create_index('idx_conversation_logs_timestamp', 'conversation_logs', ['timestamp'], unique=False, schema='academy')
    op.create_index('idx_conversation_logs_user_progress_id', 'conversation_logs', ['user_progress_id'], unique=False, schema='academy')
    op.create_table('conversation_summaries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(), nullable=False),
        sa.Column('user_progress_id', sa.Integer(), nullable=True),
        sa.Column('summary_type', sa.String(), nullable=False, comment='scene_summary, progress_summary, key_points'),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('key_points', types.JSONB, nullable=True, comment='Array of key points extracted'),
        sa.Column('scene_id', sa.Integer(), nullable=True),
        sa.Column('turn_range_start', sa.Integer(), nullable=True),
        sa.Column('turn_range_end', sa.Integer(), nullable=True),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.ForeignKeyConstraint(['scene_id'], ['academy.scenario_scenes.id'], name=op.f('conversation_summaries_scene_id_fkey'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['user_progress_id'], ['academy.user_progress.id'], name=op.f('conversation_summaries_user_progress_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('conversation_summaries_pkey')),
        schema='academy',
        comment='Summaries of conversations per session.'
    )
    op.create_index('idx_conversation_summaries_scene_id', 'conversation_summaries', ['scene_id'], unique=False, schema='academy')
    op.create_index('idx_conversation_summaries_session_id', 'conversation_summaries', ['session_id'], unique=False, schema='academy')
    op.create_index('idx_conversation_summaries_user_progress_id', 'conversation_summaries', ['user_progress_id'], unique=False, schema='academy')
    op.create_table('scene_progress',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_progress_id', sa.Integer(), nullable=True, comment='Overall user progress'),
        sa.Column('scene_id', sa.Integer(), nullable=True, comment='Scene'),
        sa.Column('status', sa.Enum('not_started', 'in_progress', 'completed', 'failed', name='scene_status', create_constraint=True, schema='academy'), server_default=sa.text("'not_started'"), nullable=True, comment='Scene status'),
        sa.Column('started_at', types.TIMESTAMPTZ, nullable=True, comment='Scene start timestamp'),
        sa.Column('completed_at', types.TIMESTAMPTZ, nullable=True, comment='Scene completion timestamp'),
        sa.Column('time_spent', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Time spent in this scene (seconds)'),
        sa.Column('turns_taken', sa.Integer(), server_default=sa.text('0'), nullable=True),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of attempts for this scene'),
        sa.Column('hints_used', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Hints used in this scene'),
        sa.Column('messages_sent', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of user messages sent'),
        sa.Column('ai_responses', sa.Integer(), server_default=sa.text('0'), nullable=True, comment='Number of AI responses received'),
        sa.Column('goal_achieved', sa.Boolean(), server_default=sa.text('false'), nullable=True, comment='Whether scene goal was achieved'),
        sa.Column('forced_progression', sa.Boolean(), server_default=sa.text('false'), nullable=True, comment='Whether progression was forced'),
        sa.Column('completion_score', sa.Float(), nullable=True, comment='0.0 to 1.0'),
        sa.Column('goal_achievement_score', sa.Float(), nullable=True, comment='AI-assessed goal achievement score (0.0-1.0)'),
        sa.Column('interaction_quality', sa.Float(), nullable=True, comment='Quality of user interactions (0.0-1.0)'),
        sa.Column('feedback_data', types.JSONB, nullable=True, comment='Detailed feedback and assessment'),
        sa.Column('scene_feedback', sa.Text(), nullable=True, comment='AI-generated feedback for the scene'),
        sa.Column('created_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Creation timestamp'),
        sa.Column('updated_at', types.TIMESTAMPTZ, server_default=sa.func.now(), nullable=True, comment='Last update timestamp'),
        sa.CheckConstraint('goal_achievement_score >= 0.0 AND goal_achievement_score <= 1.0', name='scene_progress_goal_achievement_score_check'),
        sa.ForeignKeyConstraint(['scene_id'], ['academy.scenario_scenes.id'], name=op.f('scene_progress_scene_id_fkey'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_progress_id'], ['academy.user_progress.id'], name=op.f('scene_progress_user_progress_id_fkey'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('scene_progress_pkey')),
        schema='academy',
        comment='Progress within individual scenes.'
    )
    op.create_index('idx_scene_progress_scene_id', 'scene_progress', ['scene_id'], unique=False, schema='academy')
    op.create_index('idx_scene_progress_scene_status', 'scene_progress', ['scene_id', 'status'], unique=False, schema='academy')
    op.create_index('idx_scene_progress_status', 'scene_progress', ['status'], unique=False, schema='academy')
    op.create_index('idx_scene_progress_user_progress_id', 'scene_progress', ['user_progress_id'], unique=False, schema='academy')
    if migration_ops.is_postgresql():
        op.create_index('idx_vector_embeddings_embedding', 'vector_embeddings', ['embedding'], unique=False, schema='academy', postgresql_using='hnsw', postgresql_with={'m': 16, 'ef_construction': 64}, postgresql_ops={'embedding': 'vector_cosine_ops'})
        op.create_index('idx_scenarios_tags', 'scenarios', ['tags'], unique=False, schema='academy', postgresql_using='gin')
        op.create_index('idx_scenarios_title_trgm', 'scenarios', ['title'], unique=False, schema='academy', postgresql_using='gin', postgresql_ops={'title': 'gin_trgm_ops'})
        op.create_index('idx_personas_name_trgm', 'scenario_personas', ['name'], unique=False, schema='academy', postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})


def downgrade() -> None:
    op.drop_table('scene_progress', schema='academy')
    op.drop_table('conversation_summaries', schema='academy')
    op.drop_table('conversation_logs', schema='academy')
    op.drop_table('agent_sessions', schema='academy')
    op.drop_table('user_progress', schema='academy')
    op.drop_table('session_memory', schema='academy')
    op.drop_table('scene_personas', schema='academy')
    op.drop_table('scenario_scenes', schema='academy')
    op.drop_table('scenario_reviews', schema='academy')
    op.drop_table('scenario_personas', schema='academy')
    op.drop_table('scenario_files', schema='academy')
    op.drop_table('scenarios', schema='academy')
    op.drop_table('vector_embeddings', schema='academy')
    op.drop_table('users', schema='academy')
    op.drop_table('cache_entries', schema='academy')
    migration_ops.drop_types('academy', 'message_type', 'scene_status', 'simulation_status', 'source_type', 'user_role')
    migration_ops.drop_schema('academy')

