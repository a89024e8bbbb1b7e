"""Domain ``chattrain``: ChatTrain MVP1, LLM chat training with RAG (seed 003_a62b065dfde43b33).

Seven tables, two reporting views, the session-activity trigger and the pgvector document search.
The seed's ``schema_migrations`` table is not here: tdbctl's own ledger (tdbctl.migration_ledger)
does its job for every domain. Decisions where the seed is silent or contradicts itself are
recorded in docs/_drafts/chattrain.md.
"""

import sqlalchemy as sa

from tdbctl.schema.base import metadata, postgresql_only
from tdbctl.schema.distribution import distribute, distributed, reference
from tdbctl.schema.objects import SchemaObject, register
from tdbctl.schema.partitioning import Partitioning, partition_by
from tdbctl.schema.policies import RetentionPolicy, register_policy
from tdbctl.schema.types import INET, JSONB, TEXT_ARRAY, TIMESTAMP, UUID, now, uuid_pk, vector

SCHEMA = "chattrain"


def _fk(target: str, ondelete: str | None = None) -> sa.ForeignKey:
    return sa.ForeignKey(f"{SCHEMA}.{target}", ondelete=ondelete)


def _in(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


scenarios = sa.Table(
    "scenarios",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True, comment='e.g. "onboarding.claim_handling.v1"'),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("domain", sa.String(100), nullable=False),
    sa.Column("version", sa.String(50), nullable=False, comment="SemVer format"),
    sa.Column("difficulty", sa.String(20), server_default=sa.text("'beginner'")),
    sa.Column("duration_minutes", sa.Integer),
    sa.Column("tags", TEXT_ARRAY),
    sa.Column("smart_goals", JSONB, nullable=False, comment="Array of SMART goal objects"),
    sa.Column("llm_profile", JSONB, nullable=False, comment="LLM configuration"),
    sa.Column("steps", JSONB, nullable=False, comment="Array of step definitions"),
    sa.Column("completion_conditions", JSONB),
    sa.Column("attachments", JSONB, comment="Array of attachment configs"),
    sa.Column("variant", sa.String(10), server_default=sa.text("'A'"), comment="A/B testing"),
    sa.Column("metadata", JSONB),
    sa.Column("status", sa.String(20), server_default=sa.text("'active'")),
    sa.Column("created_at", TIMESTAMP, server_default=now()),
    sa.Column("updated_at", TIMESTAMP, server_default=now()),
    sa.Column("created_by", sa.String(255)),
    sa.CheckConstraint(_in("difficulty", "beginner", "intermediate", "advanced"), name="chk_difficulty"),
    sa.CheckConstraint(_in("variant", "A", "B"), name="chk_variant"),
    sa.CheckConstraint(_in("status", "active", "deprecated", "archived"), name="chk_status"),
    sa.Index("idx_scenarios_domain", "domain"),
    sa.Index("idx_scenarios_status", "status"),
    sa.Index("idx_scenarios_created_at", "created_at"),
    sa.Index("idx_scenarios_variant", "variant"),
    postgresql_only(
        sa.Index(
            "idx_scenarios_search",
            sa.text("to_tsvector('english', title || ' ' || COALESCE(description, ''))"),
            postgresql_using="gin",
        )
    ),
    schema=SCHEMA,
    comment="Training scenario definitions.",
)

sessions = sa.Table(
    "sessions",
    metadata,
    uuid_pk(),
    sa.Column("scenario_id", sa.String(255), _fk("scenarios.id"), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("status", sa.String(20), server_default=sa.text("'created'")),
    sa.Column("current_step_id", sa.String(255)),
    sa.Column("variant", sa.String(10), server_default=sa.text("'A'")),
    sa.Column("started_at", TIMESTAMP, server_default=now()),
    sa.Column("completed_at", TIMESTAMP),
    sa.Column("last_activity_at", TIMESTAMP, server_default=now()),
    sa.Column("completion_reason", sa.String(100)),
    sa.Column("session_data", JSONB, comment="Custom session state"),
    sa.Column("metadata", JSONB),
    # 'archived' is not in the seed's list, but the seed's own retention job sets it.
    sa.CheckConstraint(
        _in("status", "created", "in_progress", "completed", "abandoned", "error", "archived"),
        name="chk_session_status",
    ),
    sa.CheckConstraint(_in("variant", "A", "B"), name="chk_session_variant"),
    sa.CheckConstraint(
        "completion_reason IS NULL OR "
        + _in("completion_reason", "all_steps_finished", "time_limit", "user_exit", "system_error"),
        name="chk_completion_reason",
    ),
    sa.Index("idx_sessions_user_id", "user_id"),
    sa.Index("idx_sessions_scenario_id", "scenario_id"),
    sa.Index("idx_sessions_status", "status"),
    sa.Index("idx_sessions_started_at", "started_at"),
    sa.Index("idx_sessions_completed_at", "completed_at"),
    sa.Index("idx_sessions_last_activity", "last_activity_at"),
    sa.Index("idx_sessions_user_status", "user_id", "status"),
    sa.Index("idx_sessions_scenario_status", "scenario_id", "status"),
    schema=SCHEMA,
    comment="User training sessions.",
)

messages = sa.Table(
    "messages",
    metadata,
    uuid_pk(),
    sa.Column("session_id", UUID, _fk("sessions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("step_id", sa.String(255), comment="Reference to scenario step"),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("timestamp", TIMESTAMP, server_default=now()),
    sa.Column("token_count", sa.Integer, comment="For cost tracking"),
    sa.Column("response_time_ms", sa.Integer, comment="LLM response time"),
    sa.Column("metadata", JSONB),
    sa.CheckConstraint(_in("role", "user", "assistant", "system", "feedback"), name="chk_message_role"),
    sa.CheckConstraint("token_count >= 0", name="chk_token_count"),
    sa.CheckConstraint("response_time_ms >= 0", name="chk_response_time"),
    sa.Index("idx_messages_session_id", "session_id"),
    sa.Index("idx_messages_timestamp", "timestamp"),
    sa.Index("idx_messages_role", "role"),
    sa.Index("idx_messages_step_id", "step_id"),
    sa.Index("idx_messages_session_timestamp", "session_id", "timestamp"),
    schema=SCHEMA,
    comment="Chat messages within sessions.",
)

feedback = sa.Table(
    "feedback",
    metadata,
    uuid_pk(),
    sa.Column("session_id", UUID, _fk("sessions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("step_id", sa.String(255), nullable=False),
    sa.Column("message_id", UUID, _fk("messages.id", ondelete="SET NULL")),
    sa.Column("evaluation_type", sa.String(50), nullable=False),
    sa.Column("score", sa.Integer),
    sa.Column("criteria", JSONB, comment="Detailed evaluation criteria"),
    sa.Column("comments", sa.Text),
    sa.Column("suggestions", TEXT_ARRAY, comment="Array of improvement suggestions"),
    sa.Column("evaluator_version", sa.String(50), comment="Version of evaluation logic"),
    sa.Column("created_at", TIMESTAMP, server_default=now()),
    sa.Column("metadata", JSONB),
    # The seed's inline column CHECK: PostgreSQL would name it feedback_score_check.
    sa.CheckConstraint("score >= 0 AND score <= 100", name="feedback_score_check"),
    sa.CheckConstraint(
        _in("evaluation_type", "rule_based", "gpt_judge", "hybrid", "manual"), name="chk_evaluation_type"
    ),
    sa.Index("idx_feedback_session_id", "session_id"),
    sa.Index("idx_feedback_message_id", "message_id"),
    sa.Index("idx_feedback_step_id", "step_id"),
    sa.Index("idx_feedback_evaluation_type", "evaluation_type"),
    sa.Index("idx_feedback_created_at", "created_at"),
    sa.Index("idx_feedback_session_step", "session_id", "step_id"),
    schema=SCHEMA,
    comment="Evaluation feedback for user responses.",
)

documents = sa.Table(
    "documents",
    metadata,
    uuid_pk(),
    sa.Column("scenario_id", sa.String(255), _fk("scenarios.id"), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("chunk_index", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("content_type", sa.String(50), nullable=False),
    sa.Column("embedding", vector(1536), comment="OpenAI embedding dimension"),
    sa.Column("embedding_model", sa.String(100), server_default=sa.text("'text-embedding-ada-002'")),
    sa.Column("chunk_metadata", JSONB, comment="Chunk-specific metadata (page numbers, sections)"),
    sa.Column("file_hash", sa.String(64), comment="SHA-256 of original file"),
    sa.Column("processed_at", TIMESTAMP, server_default=now()),
    sa.Column("metadata", JSONB),
    sa.CheckConstraint(_in("content_type", "pdf", "markdown", "text", "html"), name="chk_content_type"),
    sa.CheckConstraint("chunk_index >= 0", name="chk_chunk_index"),
    sa.Index("idx_documents_scenario_id", "scenario_id"),
    sa.Index("idx_documents_filename", "filename"),
    sa.Index("idx_documents_content_type", "content_type"),
    sa.Index("idx_documents_processed_at", "processed_at"),
    # ivfflat picks its list centres from the rows present when it is built: after a bulk
    # load, REINDEX it (the seed's own maintenance does).
    postgresql_only(
        sa.Index(
            "documents_embedding_idx",
            "embedding",
            postgresql_using="ivfflat",
            postgresql_with={"lists": 100},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        )
    ),
    postgresql_only(
        sa.Index(
            "idx_documents_content_search",
            sa.text("to_tsvector('english', content)"),
            postgresql_using="gin",
        )
    ),
    sa.Index("idx_documents_scenario_filename", "scenario_id", "filename"),
    schema=SCHEMA,
    comment="Document chunks for the RAG system.",
)

user_activity_logs = sa.Table(
    "user_activity_logs",
    metadata,
    uuid_pk(),
    sa.Column("session_id", UUID, _fk("sessions.id", ondelete="SET NULL")),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("activity_type", sa.String(50), nullable=False),
    sa.Column("activity_data", JSONB),
    sa.Column("timestamp", TIMESTAMP, server_default=now()),
    sa.Column("ip_address", INET, comment="For security auditing"),
    sa.Column("user_agent", sa.Text),
    sa.CheckConstraint(
        _in(
            "activity_type",
            "session_start",
            "session_end",
            "message_sent",
            "document_viewed",
            "feedback_received",
            "export_generated",
            "error_occurred",
        ),
        name="chk_activity_type",
    ),
    sa.Index("idx_activity_logs_user_id", "user_id"),
    sa.Index("idx_activity_logs_session_id", "session_id"),
    sa.Index("idx_activity_logs_activity_type", "activity_type"),
    sa.Index("idx_activity_logs_timestamp", "timestamp"),
    sa.Index("idx_activity_logs_user_timestamp", "user_id", "timestamp"),
    schema=SCHEMA,
    comment="User activity tracking for analytics.",
)

system_config = sa.Table(
    "system_config",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", JSONB, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("updated_at", TIMESTAMP, server_default=now()),
    sa.Column("updated_by", sa.String(255)),
    schema=SCHEMA,
    comment="System-wide configuration settings.",
)


# The views join messages and feedback (or sessions and feedback) side by side, as the seed
# does; counting DISTINCT ids, and averaging feedback in a subquery, keeps that join's fan-out
# out of the numbers (the seed's COUNT(m.id) counts messages x feedback rows).
_SESSION_SUMMARY = """\
CREATE VIEW chattrain.session_summary AS
SELECT
    s.id,
    s.scenario_id,
    s.user_id,
    s.status,
    s.started_at,
    s.completed_at,
    {duration} AS duration_minutes,
    COUNT(DISTINCT m.id) AS message_count,
    COUNT(DISTINCT f.id) AS feedback_count,
    AVG(f.score) AS average_score,
    MAX(f.score) AS max_score,
    MIN(f.score) AS min_score
FROM {prefix}sessions s
LEFT JOIN {prefix}messages m ON s.id = m.session_id
LEFT JOIN {prefix}feedback f ON s.id = f.session_id
GROUP BY s.id, s.scenario_id, s.user_id, s.status, s.started_at, s.completed_at"""

_SCENARIO_PERFORMANCE = """\
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
        THEN {duration}
        END
    ) AS avg_completion_time_minutes,
    (
        SELECT AVG(f.score)
        FROM {prefix}feedback f
        JOIN {prefix}sessions fs ON fs.id = f.session_id
        WHERE fs.scenario_id = sc.id
    ) AS avg_score
FROM {prefix}scenarios sc
LEFT JOIN {prefix}sessions s ON sc.id = s.scenario_id
GROUP BY sc.id, sc.title, sc.domain"""

# Inside an attached SQLite database a view or trigger may name only its own tables, unqualified.
_PG_PREFIX, _SQLITE_PREFIX = "chattrain.", ""

session_summary = SchemaObject(
    kind="view",
    schema=SCHEMA,
    name="session_summary",
    create={
        "postgresql": _SESSION_SUMMARY.format(
            prefix=_PG_PREFIX,
            duration="EXTRACT(EPOCH FROM (COALESCE(s.completed_at, NOW()) - s.started_at))/60",
        ),
        "sqlite": _SESSION_SUMMARY.format(
            prefix=_SQLITE_PREFIX,
            duration="(julianday(COALESCE(s.completed_at, CURRENT_TIMESTAMP)) - julianday(s.started_at)) * 1440.0",
        ),
    },
    note="Aggregated session statistics.",
)

scenario_performance = SchemaObject(
    kind="view",
    schema=SCHEMA,
    name="scenario_performance",
    create={
        "postgresql": _SCENARIO_PERFORMANCE.format(
            prefix=_PG_PREFIX,
            duration="EXTRACT(EPOCH FROM (s.completed_at - s.started_at))/60",
        ),
        "sqlite": _SCENARIO_PERFORMANCE.format(
            prefix=_SQLITE_PREFIX,
            duration="(julianday(s.completed_at) - julianday(s.started_at)) * 1440.0",
        ),
    },
    note="Scenario completion and performance metrics.",
)

# Qualified table: the trigger runs with the inserting session's search_path, which need not
# include chattrain.
update_session_activity = SchemaObject(
    kind="function",
    schema=SCHEMA,
    name="update_session_activity",
    create={
        "postgresql": """\
CREATE OR REPLACE FUNCTION chattrain.update_session_activity()
RETURNS TRIGGER AS $$
BEGIN
    UPDATE chattrain.sessions
    SET last_activity_at = CURRENT_TIMESTAMP
    WHERE id = NEW.session_id;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
    },
    note="Trigger function: a new message touches its session's last_activity_at.",
)

trigger_update_session_activity = SchemaObject(
    kind="trigger",
    schema=SCHEMA,
    name="trigger_update_session_activity",
    table="messages",
    create={
        "postgresql": """\
CREATE TRIGGER trigger_update_session_activity
    AFTER INSERT ON chattrain.messages
    FOR EACH ROW
    EXECUTE FUNCTION chattrain.update_session_activity()""",
        "sqlite": """\
CREATE TRIGGER chattrain.trigger_update_session_activity
    AFTER INSERT ON messages
    FOR EACH ROW
BEGIN
    UPDATE sessions
    SET last_activity_at = CURRENT_TIMESTAMP
    WHERE id = NEW.session_id;
END""",
    },
    note="Auto-update session activity on each new message.",
)

# d.-qualified columns: RETURNS TABLE makes filename and content plpgsql variables too.
# The cast matches the declared FLOAT (double precision) result column exactly.
search_documents = SchemaObject(
    kind="function",
    schema=SCHEMA,
    name="search_documents",
    create={
        "postgresql": """\
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
$$ LANGUAGE plpgsql""",
    },
    note="Semantic document search by cosine similarity (pgvector; PostgreSQL only).",
)

register(
    metadata,
    session_summary,
    scenario_performance,
    update_session_activity,
    trigger_update_session_activity,
    search_documents,
)


def _orphaned(documents_table: sa.Table) -> sa.ColumnElement[bool]:
    return ~sa.exists().where(scenarios.c.id == documents_table.c.scenario_id).correlate(documents_table)


# Retention, from seed 003's "Automated Cleanup Jobs". The seed archives completed sessions in
# place (status 'archived', which chk_session_status allows for that reason: docs/schema.md).
register_policy(
    metadata,
    RetentionPolicy(
        name="chattrain.abandoned_sessions",
        table="chattrain.sessions",
        age_column="last_activity_at",
        default_age="7d",
        action="delete",
        condition=lambda t: t.c.status.in_(["created", "in_progress"]),
        description="Sessions created or in progress with no activity for 7 days, with messages and feedback",
        source="seed 003: clean up old abandoned sessions (>7 days inactive)",
    ),
    RetentionPolicy(
        name="chattrain.activity_logs",
        table="chattrain.user_activity_logs",
        age_column="timestamp",
        default_age="90d",
        action="delete",
        description="User activity logs older than 90 days",
        source="seed 003: clean up old activity logs (>90 days)",
    ),
    RetentionPolicy(
        name="chattrain.orphaned_documents",
        table="chattrain.documents",
        age_column=None,
        default_age=None,
        action="delete",
        condition=_orphaned,
        description="Document chunks whose scenario no longer exists",
        source="seed 003: clean up orphaned documents (the foreign key makes these rare)",
    ),
    RetentionPolicy(
        name="chattrain.completed_sessions",
        table="chattrain.sessions",
        age_column="completed_at",
        default_age="2y",
        action="archive",
        condition=lambda t: t.c.status == "completed",
        archive_status="archived",
        description="Completed sessions older than two years, archived in place (status 'archived')",
        source="seed 003: archive completed sessions older than 2 years",
    ),
)

partition_by(
    metadata,
    Partitioning("chattrain.user_activity_logs", "timestamp",
                 source="decision: an append-only log retained by age (seed 003: clean up logs older than 90 days)"),
)


# On Citus, a session is the tenant (docs/schema.md, Distribution on Citus).
distribute(
    metadata,
    reference("chattrain.scenarios", "chattrain.system_config"),
    distributed("chattrain.documents", "id"),
    distributed("chattrain.sessions", "id"),
    distributed("chattrain.messages", "session_id", "chattrain.sessions"),
    distributed("chattrain.feedback", "session_id", "chattrain.sessions", loose=("feedback_message_id_fkey",),
                why="Citus refuses ON DELETE SET NULL on a foreign key that holds the tenant column: not kept "
                    "on the cluster (a message goes only with its session, which takes the feedback)"),
    distributed("chattrain.user_activity_logs", "id", loose=("user_activity_logs_session_id_fkey",),
                why="the link may be empty (activity outside a session): sharded by its own key, "
                    "without the foreign key on the cluster"),
)
