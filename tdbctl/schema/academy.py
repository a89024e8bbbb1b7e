"""The ``academy`` schema: the AI agent education platform.

Implements seeds 002 (migrations guide: CREATE TABLE / CREATE INDEX SQL) and 004 (schema
reference: mermaid ER diagram, field descriptions, index lists, check constraints, ENUM types)
together. Each table carries the union of both documents' columns; where they truly conflict,
004 wins. docs/_drafts/academy.md records every decision taken here.
"""

import sqlalchemy as sa

from tdbctl.schema.base import metadata, postgresql_only
from tdbctl.schema.distribution import distribute, distributed, local, reference
from tdbctl.schema.objects import redundant_seed_indexes
from tdbctl.schema.partitioning import Partitioning, partition_by
from tdbctl.schema.policies import RetentionPolicy, register_policy
from tdbctl.schema.types import BYTEA, JSONB, TIMESTAMPTZ, now, vector

SCHEMA = "academy"


def _enum(name: str, *values: str) -> sa.Enum:
    # 004's custom types become real PostgreSQL ENUMs under 004's names; on SQLite the same
    # value set is enforced by a CHECK constraint.
    return sa.Enum(*values, name=name, schema=SCHEMA, metadata=metadata, create_constraint=True)


# Value sets are 004's; where 002's comments list other values, 004 wins (see the drafts doc).
user_role = _enum("user_role", "user", "admin", "teacher", "student")
simulation_status = _enum("simulation_status", "not_started", "in_progress", "completed", "abandoned")
scene_status = _enum("scene_status", "not_started", "in_progress", "completed", "failed")
message_type = _enum("message_type", "user", "ai_persona", "system", "hint")
source_type = _enum("source_type", "manual", "pdf_upload", "template")

ZERO = sa.text("0")
ZERO_FLOAT = sa.text("0.0")


def _created_at() -> sa.Column:
    return sa.Column("created_at", TIMESTAMPTZ, server_default=now(), comment="Creation timestamp")


def _updated_at() -> sa.Column:
    # Set by tdbctl's own UPDATEs (onupdate); no trigger, as neither seed defines one.
    return sa.Column(
        "updated_at", TIMESTAMPTZ, server_default=now(), onupdate=now(), comment="Last update timestamp"
    )


def _fk(target: str, ondelete: str | None = None) -> sa.ForeignKey:
    # CASCADE where 002's SQL writes it (the dependent rows 004's prose means). 002's bare
    # references stay NO ACTION, except those pointing into a scenario's own personas and scenes:
    # there NO ACTION makes PostgreSQL refuse to delete a scenario (its RI check on the persona
    # runs before the cascade removes the log), so they are SET NULL, which also keeps a user's
    # progress and logs when one scene or persona is removed.
    return sa.ForeignKey(f"{SCHEMA}.{target}", ondelete=ondelete)


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # Uniqueness of email and username comes from 004's unique indexes idx_users_email and
    # idx_users_username below; a second UNIQUE constraint would only duplicate them.
    sa.Column("email", sa.String(), nullable=False, comment="User's email address for login"),
    sa.Column("full_name", sa.String(), comment="User's display name"),
    sa.Column("username", sa.String(), nullable=False, comment="Unique username for public profile"),
    sa.Column("password_hash", sa.String(), nullable=False, comment="Bcrypt hashed password"),
    sa.Column("bio", sa.Text, comment="User's biography/description"),
    sa.Column("avatar_url", sa.String(), comment="Profile picture URL"),
    sa.Column("role", user_role, server_default=sa.text("'user'"), comment="User role"),
    sa.Column("published_scenarios", sa.Integer, server_default=ZERO, comment="Count of public scenarios created"),
    sa.Column("total_simulations", sa.Integer, server_default=ZERO, comment="Total simulations completed"),
    sa.Column("reputation_score", sa.Float, server_default=ZERO_FLOAT, comment="Community reputation score (0.0-5.0)"),
    sa.Column("profile_public", sa.Boolean, server_default=sa.true(), comment="Whether profile is publicly visible"),
    sa.Column("allow_contact", sa.Boolean, server_default=sa.true(), comment="Whether user allows contact from others"),
    sa.Column("is_active", sa.Boolean, server_default=sa.true(), comment="Account active status"),
    sa.Column("is_verified", sa.Boolean, server_default=sa.false(), comment="Email verification status"),
    _created_at(),
    _updated_at(),
    sa.CheckConstraint(
        "reputation_score >= 0.0 AND reputation_score <= 5.0", name="users_reputation_score_check"
    ),
    schema=SCHEMA,
    comment="User accounts with community engagement metrics.",
)

scenarios = sa.Table(
    "scenarios",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(), nullable=False, comment="Scenario title"),
    sa.Column("description", sa.Text, comment="Detailed scenario description"),
    sa.Column("challenge", sa.Text, comment="Main business challenge or problem"),
    sa.Column("industry", sa.String(), comment="Industry context"),
    sa.Column("learning_objectives", JSONB, comment="Array of learning objectives"),
    sa.Column("source_type", source_type, server_default=sa.text("'manual'"), comment="How the scenario was created"),
    sa.Column("pdf_content", sa.Text, comment="Original PDF content if applicable"),
    sa.Column("student_role", sa.String(), comment="Role the student plays in simulation"),
    sa.Column("category", sa.String(), comment="Scenario category for marketplace"),
    sa.Column("difficulty_level", sa.String(), comment="beginner, intermediate, advanced"),
    sa.Column("estimated_duration", sa.Integer, comment="Estimated completion time in minutes"),
    sa.Column("tags", JSONB, comment="Array of searchable tags"),
    sa.Column("pdf_title", sa.String(), comment="Original PDF title"),
    sa.Column("pdf_source", sa.String(), comment="PDF source information"),
    sa.Column("processing_version", sa.String(), server_default=sa.text("'1.0'"), comment="AI processing version used"),
    sa.Column("rating_avg", sa.Float, server_default=ZERO_FLOAT, comment="Average user rating (0.0-5.0)"),
    sa.Column("rating_count", sa.Integer, server_default=ZERO, comment="Number of ratings received"),
    sa.Column("is_public", sa.Boolean, server_default=sa.false(), comment="Whether scenario is publicly available"),
    sa.Column("is_template", sa.Boolean, server_default=sa.false(), comment="Whether scenario serves as a template"),
    sa.Column("allow_remixes", sa.Boolean, server_default=sa.true(), comment="Whether others can remix this scenario"),
    sa.Column("usage_count", sa.Integer, server_default=ZERO, comment="Number of times scenario has been used"),
    sa.Column("clone_count", sa.Integer, server_default=ZERO, comment="Number of times scenario has been cloned"),
    sa.Column("created_by", sa.Integer, _fk("users.id"), comment="Creating user"),
    _created_at(),
    _updated_at(),
    schema=SCHEMA,
    comment="Business scenarios created from PDF processing or manual input.",
)

scenario_personas = sa.Table(
    "scenario_personas",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scenario_id", sa.Integer, _fk("scenarios.id", "CASCADE"), comment="Parent scenario"),
    sa.Column("name", sa.String(), nullable=False, comment="Persona's name"),
    sa.Column("role", sa.String(), nullable=False, comment="Persona's role/position in the business case"),
    sa.Column("background", sa.Text, comment="Detailed background information"),
    sa.Column("correlation", sa.Text, comment="Relationship to the business challenge"),
    sa.Column("primary_goals", JSONB, comment="Array of the persona's primary objectives"),
    sa.Column("personality_traits", JSONB, comment="Personality traits with numerical scores (0-10)"),
    _created_at(),
    _updated_at(),
    schema=SCHEMA,
    comment="AI personas extracted from business case studies.",
)

scenario_scenes = sa.Table(
    "scenario_scenes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scenario_id", sa.Integer, _fk("scenarios.id", "CASCADE"), comment="Parent scenario"),
    sa.Column("title", sa.String(), nullable=False, comment="Scene title"),
    sa.Column("description", sa.Text, comment="Detailed scene description"),
    sa.Column("user_goal", sa.Text, comment="Specific learning objective for this scene"),
    sa.Column("scene_order", sa.Integer, nullable=False, comment="Order in the scene sequence"),
    sa.Column("estimated_duration", sa.Integer, comment="Estimated scene completion time in minutes"),
    sa.Column("max_attempts", sa.Integer, comment="Maximum attempts before forced progression"),
    sa.Column("success_threshold", sa.Float, comment="Success threshold for goal achievement (0.0-1.0)"),
    sa.Column("goal_criteria", JSONB, comment="AI-defined success criteria"),
    sa.Column("hint_triggers", JSONB, comment="Conditions that trigger hints"),
    sa.Column("scene_context", sa.Text, comment="Additional context for ChatOrchestrator"),
    sa.Column("persona_instructions", JSONB, comment="Specific instructions for AI personas"),
    sa.Column("image_url", sa.String(), comment="URL to scene visualization image"),
    # 002 says TEXT, 004 says string: 004 wins; an unbounded VARCHAR holds the same prompts.
    sa.Column("image_prompt", sa.String(), comment="AI prompt used to generate scene image"),
    sa.Column(
        "timeout_turns", sa.Integer, server_default=sa.text("20"), comment="Maximum turns before auto-progression"
    ),
    sa.Column("success_metric", sa.Text, comment="How success is measured"),
    _created_at(),
    _updated_at(),
    schema=SCHEMA,
    comment="Sequential learning scenes for linear simulation progression.",
)

scene_personas = sa.Table(
    "scene_personas",
    metadata,
    sa.Column("scene_id", sa.Integer, _fk("scenario_scenes.id", "CASCADE"), primary_key=True),
    sa.Column("persona_id", sa.Integer, _fk("scenario_personas.id", "CASCADE"), primary_key=True),
    sa.Column(
        "involvement_level",
        sa.String(),
        server_default=sa.text("'participant'"),
        comment="Level of persona involvement (key, participant, mentioned)",
    ),
    _created_at(),
    schema=SCHEMA,
    comment="Many-to-many relationship between scenes and personas.",
)

user_progress = sa.Table(
    "user_progress",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, _fk("users.id", "CASCADE"), comment="User"),
    sa.Column("scenario_id", sa.Integer, _fk("scenarios.id", "CASCADE"), comment="Scenario being simulated"),
    sa.Column(
        "current_scene_id", sa.Integer, _fk("scenario_scenes.id", "SET NULL"), comment="Current scene in progression"
    ),
    # 002's status (with 'paused') is kept as a plain string beside 004's simulation_status,
    # which carries the ENUM and the indexes both seeds name.
    sa.Column("status", sa.String(), server_default=sa.text("'in_progress'"), comment="002's progress status"),
    sa.Column(
        "simulation_status", simulation_status, server_default=sa.text("'in_progress'"), comment="Current status"
    ),
    sa.Column("started_at", TIMESTAMPTZ, server_default=now(), comment="Simulation start timestamp"),
    sa.Column("completed_at", TIMESTAMPTZ, comment="Simulation completion timestamp"),
    sa.Column("last_activity", TIMESTAMPTZ, server_default=now(), comment="Last user activity timestamp"),
    sa.Column("total_time_spent", sa.Integer, server_default=ZERO, comment="Total time spent in seconds"),
    sa.Column("current_turn", sa.Integer, server_default=ZERO),
    sa.Column("total_turns", sa.Integer, server_default=ZERO),
    sa.Column("total_attempts", sa.Integer, server_default=ZERO, comment="Total attempts across all scenes"),
    sa.Column("hints_used", sa.Integer, server_default=ZERO, comment="Total hints used in simulation"),
    sa.Column("forced_progressions", sa.Integer, server_default=ZERO, comment="Number of forced scene progressions"),
    sa.Column("session_count", sa.Integer, server_default=ZERO, comment="Number of simulation sessions"),
    # 002: INTEGER count; 004: JSONB array of completed scene ids. 004 wins.
    sa.Column("scenes_completed", JSONB, server_default=sa.text("'[]'"), comment="Array of completed scene IDs"),
    sa.Column("total_scenes", sa.Integer),
    sa.Column(
        "completion_percentage",
        sa.Float,
        server_default=ZERO_FLOAT,
        comment="Overall completion percentage (0.0-100.0)",
    ),
    sa.Column("final_score", sa.Float, comment="Final simulation score (0.0-100.0)"),
    sa.Column("orchestrator_data", JSONB, comment="ChatOrchestrator state and context"),
    sa.Column("conversation_summary", sa.Text),
    _created_at(),
    _updated_at(),
    sa.CheckConstraint(
        "completion_percentage >= 0.0 AND completion_percentage <= 100.0",
        name="user_progress_completion_percentage_check",
    ),
    schema=SCHEMA,
    comment="User progress through linear simulations with ChatOrchestrator state.",
)

scene_progress = sa.Table(
    "scene_progress",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_progress_id", sa.Integer, _fk("user_progress.id", "CASCADE"), comment="Overall user progress"),
    sa.Column("scene_id", sa.Integer, _fk("scenario_scenes.id", "CASCADE"), comment="Scene"),
    sa.Column("status", scene_status, server_default=sa.text("'not_started'"), comment="Scene status"),
    sa.Column("started_at", TIMESTAMPTZ, comment="Scene start timestamp"),
    sa.Column("completed_at", TIMESTAMPTZ, comment="Scene completion timestamp"),
    sa.Column("time_spent", sa.Integer, server_default=ZERO, comment="Time spent in this scene (seconds)"),
    sa.Column("turns_taken", sa.Integer, server_default=ZERO),
    sa.Column("attempts", sa.Integer, server_default=ZERO, comment="Number of attempts for this scene"),
    sa.Column("hints_used", sa.Integer, server_default=ZERO, comment="Hints used in this scene"),
    sa.Column("messages_sent", sa.Integer, server_default=ZERO, comment="Number of user messages sent"),
    sa.Column("ai_responses", sa.Integer, server_default=ZERO, comment="Number of AI responses received"),
    sa.Column("goal_achieved", sa.Boolean, server_default=sa.false(), comment="Whether scene goal was achieved"),
    sa.Column(
        "forced_progression", sa.Boolean, server_default=sa.false(), comment="Whether progression was forced"
    ),
    sa.Column("completion_score", sa.Float, comment="0.0 to 1.0"),
    sa.Column("goal_achievement_score", sa.Float, comment="AI-assessed goal achievement score (0.0-1.0)"),
    sa.Column("interaction_quality", sa.Float, comment="Quality of user interactions (0.0-1.0)"),
    sa.Column("feedback_data", JSONB, comment="Detailed feedback and assessment"),
    sa.Column("scene_feedback", sa.Text, comment="AI-generated feedback for the scene"),
    _created_at(),
    _updated_at(),
    sa.CheckConstraint(
        "goal_achievement_score >= 0.0 AND goal_achievement_score <= 1.0",
        name="scene_progress_goal_achievement_score_check",
    ),
    schema=SCHEMA,
    comment="Progress within individual scenes.",
)

conversation_logs = sa.Table(
    "conversation_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_progress_id", sa.Integer, _fk("user_progress.id", "CASCADE"), comment="User progress"),
    sa.Column("scene_id", sa.Integer, _fk("scenario_scenes.id", "CASCADE"), comment="Scene"),
    sa.Column("message_type", message_type, nullable=False, comment="Type of message",
              # Seed 002 writes the values out (VARCHAR); tdbctl import maps them onto seed 004's ENUM.
              info={"import_values": {"user_message": "user", "system_message": "system"}}),
    sa.Column("sender_name", sa.String(), comment="Name of message sender"),
    sa.Column("message_content", sa.Text, nullable=False, comment="Full message content"),
    sa.Column("turn_number", sa.Integer),
    sa.Column("message_order", sa.Integer, comment="Order of message in conversation"),
    sa.Column("attempt_number", sa.Integer, comment="Scene attempt number when message was sent"),
    sa.Column("persona_id", sa.Integer, _fk("scenario_personas.id", "SET NULL"), comment="Persona if AI message"),
    sa.Column("is_hint", sa.Boolean, server_default=sa.false(), comment="Whether message was a hint"),
    sa.Column("ai_context_used", JSONB, comment="AI context and prompt information"),
    sa.Column("model_used", sa.String(), comment="AI model used for generation"),
    sa.Column("ai_model_version", sa.String(), comment="AI model version used"),
    sa.Column("processing_time", sa.Float, comment="AI processing time in seconds"),
    sa.Column("token_count", sa.Integer, comment="Number of tokens used"),
    sa.Column("user_reaction", sa.String(), comment="Categorized user reaction (positive, negative, neutral)"),
    sa.Column(
        "led_to_progress", sa.Boolean, server_default=sa.false(), comment="Whether message led to scene progression"
    ),
    sa.Column("timestamp", TIMESTAMPTZ, server_default=now(), comment="Message timestamp"),
    _created_at(),
    schema=SCHEMA,
    comment="Conversation history for ChatOrchestrator interactions.",
)

session_memory = sa.Table(
    "session_memory",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, _fk("users.id", "CASCADE")),
    sa.Column("scenario_id", sa.Integer, _fk("scenarios.id", "CASCADE")),
    sa.Column("scene_id", sa.Integer, _fk("scenario_scenes.id", "SET NULL")),
    sa.Column("memory_type", sa.String(), nullable=False, comment="conversation, context, summary"),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("metadata", JSONB, comment="Additional context and metadata"),
    sa.Column("importance_score", sa.Float, server_default=sa.text("0.5"), comment="0.0 to 1.0"),
    sa.Column("access_count", sa.Integer, server_default=ZERO),
    sa.Column("last_accessed", TIMESTAMPTZ, server_default=now()),
    _created_at(),
    _updated_at(),
    schema=SCHEMA,
    comment="AI agent memory per session.",
)

conversation_summaries = sa.Table(
    "conversation_summaries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # 002's diagram links this to session_memory, but its SQL declares no FK: summaries must
    # outlive session memory, which is cleaned up after 30 days of inactivity.
    sa.Column("session_id", sa.String(), nullable=False),
    sa.Column("user_progress_id", sa.Integer, _fk("user_progress.id", "CASCADE")),
    sa.Column("summary_type", sa.String(), nullable=False, comment="scene_summary, progress_summary, key_points"),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("key_points", JSONB, comment="Array of key points extracted"),
    sa.Column("scene_id", sa.Integer, _fk("scenario_scenes.id", "SET NULL")),
    sa.Column("turn_range_start", sa.Integer),
    sa.Column("turn_range_end", sa.Integer),
    _created_at(),
    schema=SCHEMA,
    comment="Summaries of conversations per session.",
)

agent_sessions = sa.Table(
    "agent_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(), nullable=False, unique=True),
    sa.Column("user_progress_id", sa.Integer, _fk("user_progress.id", "CASCADE")),
    sa.Column("agent_type", sa.String(), nullable=False, comment="persona, summarization, grading"),
    sa.Column("agent_id", sa.String(), comment="Specific agent identifier"),
    sa.Column("session_config", JSONB, comment="Agent-specific configuration"),
    sa.Column("status", sa.String(), server_default=sa.text("'active'"), comment="active, paused, completed, error"),
    sa.Column("started_at", TIMESTAMPTZ, server_default=now()),
    sa.Column("last_activity", TIMESTAMPTZ, server_default=now()),
    sa.Column("total_interactions", sa.Integer, server_default=ZERO),
    sa.Column("average_response_time", sa.Float),
    sa.Column("error_count", sa.Integer, server_default=ZERO),
    _created_at(),
    _updated_at(),
    schema=SCHEMA,
    comment="AI agent sessions and their performance.",
)

cache_entries = sa.Table(
    "cache_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("cache_key", sa.String(), nullable=False, unique=True),
    sa.Column("content_type", sa.String(), nullable=False, comment="response, embedding, summary"),
    sa.Column("content_data", BYTEA, comment="Serialized cache data"),
    sa.Column("content_text", sa.Text, comment="Text content for search"),
    sa.Column("metadata", JSONB, comment="Cache metadata and tags"),
    sa.Column("ttl_seconds", sa.Integer, comment="Time to live in seconds"),
    sa.Column("access_count", sa.Integer, server_default=ZERO),
    sa.Column("last_accessed", TIMESTAMPTZ, server_default=now()),
    _created_at(),
    sa.Column("expires_at", TIMESTAMPTZ),
    schema=SCHEMA,
    comment="Cached responses, embeddings and summaries; expire by TTL.",
)

vector_embeddings = sa.Table(
    "vector_embeddings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("content_type", sa.String(), nullable=False, comment="scenario, persona, scene, conversation"),
    sa.Column("content_id", sa.Integer, comment="ID of the related entity"),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("embedding", vector(), comment="OpenAI embedding (1536 dimensions)"),
    sa.Column("metadata", JSONB, comment="Additional context and metadata"),
    sa.Column("collection_name", sa.String(), server_default=sa.text("'default'")),
    sa.Column("document_id", sa.String(), comment="Unique identifier for the document"),
    _created_at(),
    _updated_at(),
    schema=SCHEMA,
    comment="Embeddings for semantic search and AI memory.",
)

scenario_files = sa.Table(
    "scenario_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scenario_id", sa.Integer, _fk("scenarios.id", "CASCADE"), comment="Scenario"),
    sa.Column("filename", sa.String(), nullable=False),
    sa.Column("file_type", sa.String(), nullable=False, comment="File type (application/pdf)"),
    sa.Column("file_size", sa.Integer, comment="File size in bytes"),
    sa.Column("file_path", sa.String(), nullable=False, comment="Path to stored file"),
    sa.Column("original_content", sa.Text, comment="Original extracted text content"),
    sa.Column("processed_content", sa.Text, comment="AI-processed and structured content"),
    sa.Column(
        "processing_status",
        sa.String(),
        server_default=sa.text("'pending'"),
        comment="pending, processing, completed, failed",
    ),
    sa.Column("processing_metadata", JSONB, comment="Processing results and metadata"),
    sa.Column("processing_log", JSONB, comment="Detailed processing log and errors"),
    sa.Column("uploaded_at", TIMESTAMPTZ, server_default=now(), comment="File upload timestamp"),
    sa.Column("processed_at", TIMESTAMPTZ, comment="Processing completion timestamp"),
    _created_at(),
    _updated_at(),
    schema=SCHEMA,
    comment="Uploaded PDF files and their processing status.",
)

scenario_reviews = sa.Table(
    "scenario_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scenario_id", sa.Integer, _fk("scenarios.id", "CASCADE"), comment="Scenario being reviewed"),
    sa.Column("reviewer_id", sa.Integer, _fk("users.id", "CASCADE"), comment="Reviewing user"),
    sa.Column("rating", sa.Integer, nullable=False, comment="Numerical rating (1-5)"),
    sa.Column("title", sa.String()),
    sa.Column("review_text", sa.Text, comment="Detailed review text"),
    sa.Column("pros", JSONB, comment="Array of positive aspects"),
    sa.Column("cons", JSONB, comment="Array of negative aspects"),
    sa.Column("use_case", sa.String(), comment="Specific use case or context"),
    sa.Column("helpful_count", sa.Integer, server_default=ZERO),
    sa.Column("helpful_votes", sa.Integer, server_default=ZERO, comment="Number of helpful votes"),
    sa.Column("total_votes", sa.Integer, server_default=ZERO, comment="Total votes received"),
    sa.Column("is_verified", sa.Boolean, server_default=sa.false(), comment="Verified purchase/usage"),
    _created_at(),
    _updated_at(),
    sa.CheckConstraint("rating >= 1 AND rating <= 5", name="scenario_reviews_rating_check"),
    sa.UniqueConstraint("scenario_id", "reviewer_id"),
    schema=SCHEMA,
    comment="Community reviews and ratings for scenarios; one per user per scenario.",
)


# --- Indexes -------------------------------------------------------------------------------
# Every name either seed gives exists once, except where two names give one index: then 004's
# name (or 002's table DDL) is kept and the other is declared redundant below (migration 0008
# dropped it); where one name has two definitions, 004's wins.

# users: 004 makes email and username unique indexes; they carry the UNIQUE rule.
sa.Index("idx_users_email", users.c.email, unique=True)
sa.Index("idx_users_username", users.c.username, unique=True)
sa.Index("idx_users_role", users.c.role)
sa.Index("idx_users_created_at", users.c.created_at)

# scenarios
sa.Index("idx_scenarios_title", scenarios.c.title)
sa.Index("idx_scenarios_industry", scenarios.c.industry)
sa.Index("idx_scenarios_is_public", scenarios.c.is_public)
sa.Index("idx_scenarios_created_by", scenarios.c.created_by)
sa.Index("idx_scenarios_rating_avg", scenarios.c.rating_avg)
sa.Index("idx_scenarios_created_at", scenarios.c.created_at)
sa.Index("idx_scenarios_category", scenarios.c.category)
sa.Index(
    "idx_scenarios_public",
    scenarios.c.is_public,
    postgresql_where=scenarios.c.is_public == sa.true(),
    sqlite_where=scenarios.c.is_public == sa.true(),
)
sa.Index("idx_scenarios_public_rating", scenarios.c.is_public, scenarios.c.rating_avg.desc())
sa.Index("idx_scenarios_public_category", scenarios.c.is_public, scenarios.c.category)
postgresql_only(sa.Index("idx_scenarios_tags", scenarios.c.tags, postgresql_using="gin"))
postgresql_only(
    sa.Index(
        "idx_scenarios_title_trgm",
        scenarios.c.title,
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
)

# scenario_personas
sa.Index("idx_personas_scenario_id", scenario_personas.c.scenario_id)
sa.Index("idx_personas_name", scenario_personas.c.name)
sa.Index("idx_personas_role", scenario_personas.c.role)
postgresql_only(
    sa.Index(
        "idx_personas_name_trgm",
        scenario_personas.c.name,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
)

# scenario_scenes: scenes are always read in order within one scenario.
sa.Index("idx_scenes_scenario_id", scenario_scenes.c.scenario_id)
sa.Index("idx_scenes_order", scenario_scenes.c.scenario_id, scenario_scenes.c.scene_order)

# scene_personas: scene_id is covered by the primary key.
sa.Index("idx_scene_personas_persona_id", scene_personas.c.persona_id)

# user_progress: 002 indexes status, 004 simulation_status under the same names; 004 wins.
sa.Index("idx_user_progress_user_id", user_progress.c.user_id)
sa.Index("idx_user_progress_scenario_id", user_progress.c.scenario_id)
sa.Index("idx_user_progress_status", user_progress.c.simulation_status)
sa.Index("idx_user_progress_user_status", user_progress.c.user_id, user_progress.c.simulation_status)
sa.Index("idx_user_progress_current_scene_id", user_progress.c.current_scene_id)

# scene_progress
sa.Index("idx_scene_progress_user_progress_id", scene_progress.c.user_progress_id)
sa.Index("idx_scene_progress_scene_id", scene_progress.c.scene_id)
sa.Index("idx_scene_progress_status", scene_progress.c.status)
sa.Index("idx_scene_progress_scene_status", scene_progress.c.scene_id, scene_progress.c.status)

# conversation_logs
sa.Index("idx_conversation_logs_user_progress_id", conversation_logs.c.user_progress_id)
sa.Index("idx_conversation_logs_scene_id", conversation_logs.c.scene_id)
sa.Index("idx_conversation_logs_created", conversation_logs.c.created_at)
sa.Index("idx_conversation_logs_timestamp", conversation_logs.c.timestamp)
sa.Index(
    "idx_conversation_logs_progress_scene", conversation_logs.c.user_progress_id, conversation_logs.c.scene_id
)
sa.Index("idx_conversation_logs_persona_id", conversation_logs.c.persona_id)

# Not named by either seed: 004 says foreign keys are indexed, and the cleanup rules of 002
# (session memory after 30 days, cache by TTL) and its vector search filter on these columns.
sa.Index("idx_session_memory_user_id", session_memory.c.user_id)
sa.Index("idx_session_memory_scenario_id", session_memory.c.scenario_id)
sa.Index("idx_session_memory_scene_id", session_memory.c.scene_id)
sa.Index("idx_session_memory_last_accessed", session_memory.c.last_accessed)
sa.Index("idx_conversation_summaries_session_id", conversation_summaries.c.session_id)
sa.Index("idx_conversation_summaries_user_progress_id", conversation_summaries.c.user_progress_id)
sa.Index("idx_conversation_summaries_scene_id", conversation_summaries.c.scene_id)
sa.Index("idx_agent_sessions_user_progress_id", agent_sessions.c.user_progress_id)
sa.Index("idx_cache_entries_expires_at", cache_entries.c.expires_at)
sa.Index("idx_scenario_files_scenario_id", scenario_files.c.scenario_id)
sa.Index("idx_scenario_reviews_reviewer_id", scenario_reviews.c.reviewer_id)
sa.Index("idx_vector_embeddings_collection_name", vector_embeddings.c.collection_name)
# 002's search example orders by cosine distance (<=>). HNSW rather than ChatTrain's ivfflat:
# tdbctl creates the index on an empty table, and ivfflat trains its lists on the rows present
# at build time (none), whereas HNSW needs no training. m and ef_construction are pgvector's
# defaults, written out so that they show in the DDL.
postgresql_only(
    sa.Index(
        "idx_vector_embeddings_embedding",
        vector_embeddings.c.embedding,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
)

# Retention, from seed 002's "Data Retention": conversation logs are kept for a year and then
# archived (not deleted); cache entries expire on their TTL; session memory not accessed for 30
# days is cleaned up. User progress is kept indefinitely: no policy.
register_policy(
    metadata,
    RetentionPolicy(
        name="academy.expired_cache",
        table="academy.cache_entries",
        age_column="expires_at",
        default_age="0d",
        action="delete",
        description="Cache entries past expires_at (an age adds a grace period after expiry)",
        source="seed 002: cache entries auto-expire based on TTL",
    ),
    RetentionPolicy(
        name="academy.stale_session_memory",
        table="academy.session_memory",
        age_column="last_accessed",
        default_age="30d",
        action="delete",
        description="Agent session memory not accessed for 30 days",
        source="seed 002: clean up inactive sessions after 30 days",
    ),
    RetentionPolicy(
        name="academy.conversation_logs",
        table="academy.conversation_logs",
        age_column="created_at",
        default_age="1y",
        action="archive",
        description="Conversation logs older than a year, archived before they leave the table",
        source="seed 002: retain conversation logs for 1 year, then archive",
    ),
)


redundant_seed_indexes(
    metadata,
    SCHEMA,
    # 002's performance section repeats, CONCURRENTLY and under other names, indexes that 004
    # (and 002's own table DDL) already give.
    idx_scenarios_rating="idx_scenarios_rating_avg",
    idx_user_progress_user="idx_user_progress_user_id",
    idx_user_progress_scenario="idx_user_progress_scenario_id",
    idx_conversation_logs_progress="idx_conversation_logs_user_progress_id",
    idx_conversation_logs_scene="idx_conversation_logs_scene_id",
)

partition_by(
    metadata,
    Partitioning("academy.conversation_logs", "created_at",
                 source="seed 004: large tables partitioned by date (conversation_logs)"),
)


# On Citus (docs/schema.md, Distribution on Citus): the catalogue on every node, the caches and
# embeddings sharded by their own keys. A learner's progress and what hangs from it stay on the
# coordinator: seed 002 lets user_progress_id be empty, and a tenant column cannot be.
_PROGRESS = "seed 002 lets user_progress_id be NULL; sharding by it needs it NOT NULL first"
distribute(
    metadata,
    reference("academy.users", "academy.scenarios", "academy.scenario_files", "academy.scenario_personas",
              "academy.scenario_reviews", "academy.scenario_scenes", "academy.scene_personas"),
    distributed("academy.vector_embeddings", "id"),
    distributed("academy.cache_entries", "cache_key"),
    distributed("academy.session_memory", "session_id"),
    local("academy.user_progress", _PROGRESS),
    local("academy.agent_sessions", _PROGRESS),
    local("academy.conversation_logs", _PROGRESS),
    local("academy.conversation_summaries", _PROGRESS),
    local("academy.scene_progress", _PROGRESS),
)
