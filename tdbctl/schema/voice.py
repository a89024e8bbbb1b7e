"""Domain ``voice``: the voice appointment agent (seed 001_2fc5b40f3eef100d).

The seed's eight tables, its archive table, four analytics views and the TimescaleDB hypertable
over system_metrics. Decisions where the seed is silent are recorded in docs/schema.md (voice).
"""

import sqlalchemy as sa

from tdbctl.schema.base import metadata, postgresql_only
from tdbctl.schema.distribution import distribute, distributed
from tdbctl.schema.objects import SchemaObject, redundant_seed_indexes, register
from tdbctl.schema.partitioning import Partitioning, partition_by
from tdbctl.schema.policies import RetentionPolicy, register_policy
from tdbctl.schema.types import JSONB, TIMESTAMPTZ, UUID, now, uuid_pk

SCHEMA = "voice"


def _fk(name: str, target: str, *, ondelete: str | None, nullable: bool) -> sa.Column:
    return sa.Column(name, UUID, sa.ForeignKey(f"{SCHEMA}.{target}.id", ondelete=ondelete), nullable=nullable)


def _created_at() -> sa.Column:
    return sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=now())


def _conversation_columns() -> list[sa.Column]:
    # Shared with conversations_archive, which the seed makes with LIKE conversations INCLUDING ALL.
    return [
        uuid_pk(),
        sa.Column("session_id", sa.String(255), nullable=False, unique=True),
        sa.Column("room_name", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255)),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, nullable=False, server_default=now()),
        sa.Column("ended_at", TIMESTAMPTZ),
        sa.Column("duration_seconds", sa.Integer),
        sa.Column("final_state", sa.String(100)),
        sa.Column("metadata", JSONB),
        _created_at(),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    ]


conversations = sa.Table(
    "conversations",
    metadata,
    *_conversation_columns(),
    sa.Index("idx_conversations_user_id", "user_id"),
    sa.Index("idx_conversations_status", "status"),
    sa.Index("idx_conversations_started_at", "started_at"),
    schema=SCHEMA,
)

conversation_turns = sa.Table(
    "conversation_turns",
    metadata,
    uuid_pk(),
    _fk("conversation_id", "conversations", ondelete="CASCADE", nullable=False),
    sa.Column("turn_number", sa.Integer, nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("audio_url", sa.Text),
    sa.Column("transcribed_text", sa.Text),
    sa.Column("llm_response", sa.Text),
    sa.Column("state_at_turn", sa.String(100)),
    sa.Column("metadata", JSONB),
    _created_at(),
    sa.Index("idx_turns_conversation_id", "conversation_id"),
    sa.Index("idx_turns_created_at", "created_at"),
    sa.Index("idx_turns_role", "role"),
    schema=SCHEMA,
)

state_transitions = sa.Table(
    "state_transitions",
    metadata,
    uuid_pk(),
    _fk("conversation_id", "conversations", ondelete="CASCADE", nullable=False),
    sa.Column("from_state", sa.String(100)),
    sa.Column("to_state", sa.String(100), nullable=False),
    sa.Column("trigger_type", sa.String(50)),
    sa.Column("trigger_data", JSONB),
    sa.Column("transition_time", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Column("latency_ms", sa.Integer),
    sa.Column("metadata", JSONB),
    sa.Index("idx_transitions_conversation_id", "conversation_id"),
    sa.Index("idx_transitions_to_state", "to_state"),
    sa.Index("idx_transitions_transition_time", "transition_time"),
    schema=SCHEMA,
)

extracted_slots = sa.Table(
    "extracted_slots",
    metadata,
    uuid_pk(),
    _fk("conversation_id", "conversations", ondelete="CASCADE", nullable=False),
    _fk("turn_id", "conversation_turns", ondelete="SET NULL", nullable=True),
    sa.Column("slot_name", sa.String(100), nullable=False),
    sa.Column("slot_value", sa.Text, nullable=False),
    sa.Column("confidence_score", sa.Numeric(3, 2)),
    sa.Column("extraction_method", sa.String(50)),
    sa.Column("validated", sa.Boolean, server_default=sa.false()),
    _created_at(),
    sa.Index("idx_slots_conversation_id", "conversation_id"),
    sa.Index("idx_slots_slot_name", "slot_name"),
    sa.Index("idx_slots_turn_id", "turn_id"),
    schema=SCHEMA,
)

appointments = sa.Table(
    "appointments",
    metadata,
    uuid_pk(),
    _fk("conversation_id", "conversations", ondelete="CASCADE", nullable=False),
    sa.Column("user_name", sa.String(255)),
    sa.Column("appointment_date", sa.Date, nullable=False),
    sa.Column("appointment_time", sa.Time, nullable=False),
    sa.Column("appointment_type", sa.String(100)),
    sa.Column("contact_info", sa.String(255)),
    sa.Column("status", sa.String(50), nullable=False, server_default=sa.text("'confirmed'")),
    sa.Column("confirmation_code", sa.String(50), unique=True),
    sa.Column("metadata", JSONB),
    _created_at(),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Index("idx_appointments_date", "appointment_date"),
    sa.Index("idx_appointments_status", "status"),
    sa.Index("idx_appointments_conversation_id", "conversation_id"),
    schema=SCHEMA,
)

# No primary key, as in the seed: a TimescaleDB hypertable's unique indexes must include the
# time column, and the seed's rows have no natural key. Its foreign key has no ON DELETE, so a
# conversation with metrics cannot be deleted until they are.
system_metrics = sa.Table(
    "system_metrics",
    metadata,
    sa.Column("time", TIMESTAMPTZ, nullable=False),
    sa.Column("metric_name", sa.String(100), nullable=False),
    sa.Column("metric_value", sa.Numeric(12, 2), nullable=False),
    sa.Column("tags", JSONB),
    _fk("conversation_id", "conversations", ondelete=None, nullable=True),
    schema=SCHEMA,
)
sa.Index("idx_metrics_name_time", system_metrics.c.metric_name, system_metrics.c.time.desc())
sa.Index("idx_metrics_conversation_id", system_metrics.c.conversation_id)
postgresql_only(sa.Index("idx_metrics_tags", system_metrics.c.tags, postgresql_using="gin"))

error_logs = sa.Table(
    "error_logs",
    metadata,
    uuid_pk(),
    _fk("conversation_id", "conversations", ondelete="SET NULL", nullable=True),
    sa.Column("error_type", sa.String(100), nullable=False),
    sa.Column("error_message", sa.Text, nullable=False),
    sa.Column("stack_trace", sa.Text),
    sa.Column("context", JSONB),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("resolved", sa.Boolean, server_default=sa.false()),
    _created_at(),
    sa.Index("idx_errors_type", "error_type"),
    sa.Index("idx_errors_severity", "severity"),
    sa.Index("idx_errors_created_at", "created_at"),
    sa.Index("idx_errors_resolved", "resolved"),
    sa.Index("idx_errors_conversation_id", "conversation_id"),
    schema=SCHEMA,
)

user_feedback = sa.Table(
    "user_feedback",
    metadata,
    uuid_pk(),
    _fk("conversation_id", "conversations", ondelete="CASCADE", nullable=False),
    sa.Column("rating", sa.Integer),
    sa.Column("feedback_text", sa.Text),
    sa.Column("feedback_type", sa.String(50)),
    sa.Column("metadata", JSONB),
    _created_at(),
    sa.CheckConstraint("rating >= 1 AND rating <= 5", name="user_feedback_rating_check"),
    sa.Index("idx_feedback_conversation_id", "conversation_id"),
    sa.Index("idx_feedback_rating", "rating"),
    schema=SCHEMA,
)

# LIKE conversations INCLUDING ALL, spelled out so that both dialects build it and migrations can
# diff it. Index names are the ones PostgreSQL gives the copies (<table>_<column>_idx), since an
# index name is unique per schema and the seed names none for this table.
conversations_archive = sa.Table(
    "conversations_archive",
    metadata,
    *_conversation_columns(),
    *(
        sa.Index(f"conversations_archive_{column}_idx", column)
        for column in ("user_id", "status", "started_at")
    ),
    schema=SCHEMA,
)


def _view(name: str, postgresql: str, sqlite: str) -> SchemaObject:
    return SchemaObject(
        kind="view",
        schema=SCHEMA,
        name=name,
        create={
            "postgresql": f"CREATE VIEW {SCHEMA}.{name} AS\n{postgresql}",
            # Inside an attached database a view may name only that database's tables, unqualified.
            "sqlite": f"CREATE VIEW {SCHEMA}.{name} AS\n{sqlite}",
        },
    )


# SQLite stores SQLAlchemy datetimes as naive UTC text ('YYYY-MM-DD HH:MM:SS[.ffffff]'), which
# sorts and compares like datetime('now', ...) and which date() truncates to the day.
register(
    metadata,
    _view(
        "conversation_success_rate",
        """SELECT
 DATE_TRUNC('day', started_at) as date,
 COUNT(*) FILTER (WHERE status = 'completed') * 100.0 / COUNT(*) as success_rate,
 COUNT(*) as total_conversations
FROM voice.conversations
WHERE started_at >= NOW() - INTERVAL '30 days'
GROUP BY DATE_TRUNC('day', started_at)
ORDER BY date DESC""",
        """SELECT
 date(started_at) as date,
 COUNT(*) FILTER (WHERE status = 'completed') * 100.0 / COUNT(*) as success_rate,
 COUNT(*) as total_conversations
FROM conversations
WHERE started_at >= datetime('now', '-30 days')
GROUP BY date(started_at)
ORDER BY date DESC""",
    ),
    _view(
        "avg_duration_by_state",
        """SELECT
 final_state,
 AVG(duration_seconds) as avg_duration_seconds,
 COUNT(*) as conversation_count
FROM voice.conversations
WHERE status = 'completed'
GROUP BY final_state""",
        """SELECT
 final_state,
 AVG(duration_seconds) as avg_duration_seconds,
 COUNT(*) as conversation_count
FROM conversations
WHERE status = 'completed'
GROUP BY final_state""",
    ),
    _view(
        "error_rate_by_type",
        """SELECT
 error_type,
 COUNT(*) as error_count,
 COUNT(*) FILTER (WHERE severity = 'critical') as critical_count
FROM voice.error_logs
WHERE created_at >= NOW() - INTERVAL '7 days'
GROUP BY error_type
ORDER BY error_count DESC""",
        """SELECT
 error_type,
 COUNT(*) as error_count,
 COUNT(*) FILTER (WHERE severity = 'critical') as critical_count
FROM error_logs
WHERE created_at >= datetime('now', '-7 days')
GROUP BY error_type
ORDER BY error_count DESC""",
    ),
    _view(
        "slot_extraction_accuracy",
        """SELECT
 slot_name,
 AVG(confidence_score) as avg_confidence,
 COUNT(*) as total_extractions,
 COUNT(*) FILTER (WHERE validated = TRUE) as validated_count
FROM voice.extracted_slots
WHERE created_at >= NOW() - INTERVAL '30 days'
GROUP BY slot_name""",
        """SELECT
 slot_name,
 AVG(confidence_score) as avg_confidence,
 COUNT(*) as total_extractions,
 COUNT(*) FILTER (WHERE validated = TRUE) as validated_count
FROM extracted_slots
WHERE created_at >= datetime('now', '-30 days')
GROUP BY slot_name""",
    ),
    SchemaObject(
        kind="hypertable",
        schema=SCHEMA,
        name="system_metrics",
        table="system_metrics",
        requires_extension="timescaledb",
        create={"postgresql": "SELECT create_hypertable('voice.system_metrics', 'time', if_not_exists => TRUE)"},
        note="TimescaleDB also creates its default index system_metrics_time_idx (time DESC).",
    ),
)

# Retention, from seed 001's "Data Retention Policy": conversations older than 90 days go to
# conversations_archive; error logs and metrics have windows of their own (decisions: the seed
# names none; see docs/schema.md).
register_policy(
    metadata,
    RetentionPolicy(
        name="voice.conversations",
        table="voice.conversations",
        age_column="started_at",
        default_age="90d",
        action="archive",
        archive_table="voice.conversations_archive",
        description="Conversations older than 90 days move to conversations_archive",
        source="seed 001: archive old conversations (older than 90 days)",
    ),
    RetentionPolicy(
        name="voice.error_logs",
        table="voice.error_logs",
        age_column="created_at",
        default_age="90d",
        action="delete",
        description="Error logs past their 90-day window (the live conversations' window)",
        source="decision: seed 001 keeps the last 3 months active",
    ),
    RetentionPolicy(
        name="voice.system_metrics",
        table="voice.system_metrics",
        age_column="time",
        default_age="30d",
        action="delete",
        description="Time-series metrics past 30 days (the analytics views look back 30 days at most)",
        source="decision: the seed's views look back 7 and 30 days",
    ),
)


# The UNIQUE constraints on these columns already index them: the seed's plain index beside each
# (and its copy that LIKE ... INCLUDING ALL makes on the archive) was a second btree to maintain.
redundant_seed_indexes(
    metadata,
    SCHEMA,
    idx_conversations_session_id="conversations_session_id_key",
    idx_appointments_confirmation_code="appointments_confirmation_code_key",
    conversations_archive_session_id_idx="conversations_archive_session_id_key",
)

# Seed 001 makes system_metrics a TimescaleDB hypertable, and error logs grow with the calls: both
# go by age, a month at a time (docs/schema.md, Partitioned tables).
partition_by(
    metadata,
    Partitioning("voice.system_metrics", "time", source="seed 001: system_metrics is a time-series hypertable"),
    Partitioning("voice.error_logs", "created_at", source="decision: an append-only log retained by age"),
)


# On Citus, a conversation is the tenant (docs/schema.md, Distribution on Citus). A UNIQUE over
# another column cannot be enforced across shards, nor a link a log may leave empty.
_UNIQUE_ACROSS_SHARDS = "unique across all shards only with the tenant column: a plain index on the cluster"
_OPTIONAL_LINK = ("the link may be empty (a log of no conversation): sharded by its own key, "
                  "without the foreign key on the cluster")
_SET_NULL_IN_TENANT = ("Citus refuses ON DELETE SET NULL on a foreign key that holds the tenant column: "
                       "not kept on the cluster (a turn goes only with its conversation, which takes the slots)")
distribute(
    metadata,
    distributed("voice.conversations", "id", loose=("conversations_session_id_key",), why=_UNIQUE_ACROSS_SHARDS),
    distributed("voice.conversations_archive", "id", "voice.conversations",
                loose=("conversations_archive_session_id_key",), why=_UNIQUE_ACROSS_SHARDS),
    distributed("voice.conversation_turns", "conversation_id", "voice.conversations"),
    distributed("voice.appointments", "conversation_id", "voice.conversations",
                loose=("appointments_confirmation_code_key",), why=_UNIQUE_ACROSS_SHARDS),
    distributed("voice.state_transitions", "conversation_id", "voice.conversations"),
    distributed("voice.user_feedback", "conversation_id", "voice.conversations"),
    distributed("voice.extracted_slots", "conversation_id", "voice.conversations",
                loose=("extracted_slots_turn_id_fkey",), why=_SET_NULL_IN_TENANT),
    distributed("voice.error_logs", "id", loose=("error_logs_conversation_id_fkey",), why=_OPTIONAL_LINK),
    distributed("voice.system_metrics", "time", loose=("system_metrics_conversation_id_fkey",), why=_OPTIONAL_LINK),
)
