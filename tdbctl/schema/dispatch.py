"""Domain ``dispatch``: the 911 operator training simulator (seed 000_9aa2b0bd697859f8).

Five tables, three ENUM types and seven indexes, with the table and column comments of the
seed's migration 001. The seed marks nullable columns explicitly, so every other column is
NOT NULL. Decisions where the seed is silent are recorded in docs/schema.md (dispatch).
"""

import sqlalchemy as sa

from tdbctl.schema.base import metadata
from tdbctl.schema.distribution import distribute, distributed, reference
from tdbctl.schema.objects import SchemaObject, register
from tdbctl.schema.policies import RetentionPolicy, register_policy
from tdbctl.schema.types import JSONB, TIMESTAMPTZ, UUID, new_uuid, now

SCHEMA = "dispatch"


def _enum(name: str, *values: str) -> sa.Enum:
    # A native type on PostgreSQL; on SQLite a VARCHAR with a CHECK named after the type.
    return sa.Enum(*values, name=name, schema=SCHEMA, metadata=metadata, create_constraint=True)


difficulty_level_enum = _enum("difficulty_level_enum", "easy", "medium", "hard")
call_session_status_enum = _enum("call_session_status_enum", "active", "completed", "terminated", "error")
speaker_enum = _enum("speaker_enum", "operator", "caller")


def _id() -> sa.Column:
    return sa.Column("id", UUID, primary_key=True, server_default=new_uuid(), comment="Unique identifier")


def _created_at(comment: str = "Record creation") -> sa.Column:
    return sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=now(), comment=comment)


def _updated_at(comment: str = "Record update") -> sa.Column:
    # "Automatic" in the seed's ORM sense: SQLAlchemy sets it on every UPDATE it issues.
    return sa.Column(
        "updated_at", TIMESTAMPTZ, nullable=False, server_default=now(), onupdate=now(), comment=comment
    )


def _parent(name: str, target: str, comment: str) -> sa.Column:
    return sa.Column(
        name, UUID, sa.ForeignKey(f"{SCHEMA}.{target}.id", ondelete="CASCADE"), nullable=False, comment=comment
    )


training_scenarios = sa.Table(
    "training_scenarios",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False, comment="Scenario name"),
    sa.Column("description", sa.Text, nullable=False, comment="Detailed description"),
    sa.Column("caller_profile", JSONB, nullable=False, comment="Personality, background, emotional state"),
    sa.Column("scenario_script", JSONB, nullable=False, comment="Initial conditions, expected flow"),
    sa.Column("difficulty_level", difficulty_level_enum, nullable=False, comment="easy, medium, hard"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true(), comment="Availability flag"),
    _created_at("Creation timestamp"),
    _updated_at("Last update timestamp"),
    sa.Index("ix_training_scenarios_difficulty_active", "difficulty_level", "is_active"),
    schema=SCHEMA,
    comment="Pre-configured training scenarios for operator practice.",
)

call_sessions = sa.Table(
    "call_sessions",
    metadata,
    _id(),
    sa.Column("operator_id", sa.String(100), nullable=False, comment="Operator trainee ID"),
    _parent("scenario_id", "training_scenarios", "Reference to training_scenarios"),
    sa.Column("started_at", TIMESTAMPTZ, nullable=False, server_default=now(), comment="Session start time"),
    sa.Column("ended_at", TIMESTAMPTZ, comment="Session end time"),
    sa.Column("duration_ms", sa.Integer, comment="Call duration in milliseconds"),
    sa.Column(
        "status",
        call_session_status_enum,
        nullable=False,
        server_default=sa.text("'active'"),
        comment="active, completed, terminated, error",
    ),
    sa.Column("metadata", JSONB, comment="Flexible session data"),
    _created_at(),
    _updated_at(),
    sa.Index("ix_call_sessions_operator_id", "operator_id"),
    sa.Index("ix_call_sessions_operator_started", "operator_id", "started_at"),
    # The seventh index of the seed's count: the one foreign key no listed index leads with.
    sa.Index("ix_call_sessions_scenario_id", "scenario_id"),
    schema=SCHEMA,
    comment="Training call session records.",
)

call_transcripts = sa.Table(
    "call_transcripts",
    metadata,
    _id(),
    _parent("session_id", "call_sessions", "Reference to call_sessions"),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False, comment="Milliseconds from call start"),
    sa.Column("speaker", speaker_enum, nullable=False, comment="operator, caller"),
    sa.Column("text", sa.Text, nullable=False, comment="Transcribed dialogue"),
    sa.Column("audio_url", sa.String(500), comment="S3 audio URL"),
    sa.Column("emotional_state", sa.String(20), comment="calm, anxious, panicked, hysterical"),
    sa.Column("confidence_score", sa.Float, comment="Transcription confidence (0.0-1.0)"),
    _created_at(),
    sa.Index("ix_call_transcripts_session_timestamp", "session_id", "timestamp_ms"),
    schema=SCHEMA,
    comment="Individual dialogue entries during calls.",
)

extracted_entities = sa.Table(
    "extracted_entities",
    metadata,
    _id(),
    _parent("transcript_id", "call_transcripts", "Reference to call_transcripts"),
    # NULL only until the insert trigger below fills it; NOT NULL on PostgreSQL, in the key.
    sa.Column("session_id", UUID, nullable=True,
              comment="The transcript's call session: the tenant these rows are sharded by on Citus"),
    sa.Column(
        "entity_type",
        sa.String(50),
        nullable=False,
        comment="WEAPON, INJURY, LOCATION, PERSON, VEHICLE, TIME_REFERENCE",
    ),
    sa.Column("entity_value", sa.Text, nullable=False, comment="Extracted text value"),
    sa.Column("confidence_score", sa.Float, nullable=False, comment="Extraction confidence (0.0-1.0)"),
    sa.Column("start_char", sa.Integer, nullable=False, comment="Starting position in text"),
    sa.Column("end_char", sa.Integer, nullable=False, comment="Ending position in text"),
    sa.Column("metadata", JSONB, comment="Additional entity data"),
    _created_at(),
    sa.Index("ix_extracted_entities_transcript_type", "transcript_id", "entity_type"),
    schema=SCHEMA,
    comment="Named entities extracted from transcripts.",
)

performance_metrics = sa.Table(
    "performance_metrics",
    metadata,
    _id(),
    _parent("session_id", "call_sessions", "Reference to call_sessions"),
    sa.Column(
        "metric_name", sa.String(100), nullable=False, comment="Metric name (response_time, empathy_score, etc.)"
    ),
    sa.Column("metric_value", sa.Float, nullable=False, comment="Numeric metric value"),
    sa.Column("measured_at", TIMESTAMPTZ, nullable=False, server_default=now(), comment="Measurement timestamp"),
    sa.Index("ix_performance_metrics_session", "session_id"),
    schema=SCHEMA,
    comment="Operator performance tracking.",
)

# Retention. Seed 000 states none; a training centre keeps trainees' records for certification
# and audits, so completed calls are archived, never simply deleted, and only calls that ended in
# error or were cut short (no training value) are deleted. See docs/schema.md.
register_policy(
    metadata,
    RetentionPolicy(
        name="dispatch.failed_calls",
        table="dispatch.call_sessions",
        age_column="started_at",
        default_age="180d",
        action="delete",
        condition=lambda t: t.c.status.in_(["terminated", "error"]),
        description="Calls that ended in error or were terminated, with transcripts, entities and metrics",
        source="decision (seed 000 has no retention rule)",
    ),
    RetentionPolicy(
        name="dispatch.completed_calls",
        table="dispatch.call_sessions",
        age_column="started_at",
        default_age="2y",
        action="archive",
        condition=lambda t: t.c.status == "completed",
        description="Completed training calls, archived with their transcripts, entities and metrics",
        source="decision (seed 000 has no retention rule)",
    ),
)


# The application of seed 000 writes entities without their session: filled in from the transcript
# (on Citus the writer must give it, as it routes the row).
register(
    metadata,
    SchemaObject(
        kind="function",
        schema=SCHEMA,
        name="entity_session",
        create={"postgresql": """\
CREATE OR REPLACE FUNCTION dispatch.entity_session()
RETURNS TRIGGER AS $$
BEGIN
    IF NEW.session_id IS NULL THEN
        SELECT t.session_id INTO NEW.session_id FROM dispatch.call_transcripts t WHERE t.id = NEW.transcript_id;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
        },
        note="Trigger function: an entity written without its session_id gets its transcript's.",
    ),
    SchemaObject(
        kind="trigger",
        schema=SCHEMA,
        name="extracted_entities_session",
        table="extracted_entities",
        create={
            "postgresql": """\
CREATE TRIGGER extracted_entities_session
    BEFORE INSERT ON dispatch.extracted_entities
    FOR EACH ROW
    EXECUTE FUNCTION dispatch.entity_session()""",
            "sqlite": """\
CREATE TRIGGER dispatch.extracted_entities_session
    AFTER INSERT ON extracted_entities
    FOR EACH ROW WHEN NEW.session_id IS NULL
BEGIN
    UPDATE extracted_entities SET session_id = (SELECT session_id FROM call_transcripts WHERE id = NEW.transcript_id)
    WHERE id = NEW.id;
END""",
        },
        note="An entity written without its session_id gets its transcript's.",
    ),
)

# On Citus, a call session is the tenant: its transcripts, entities and metrics share its node
# (docs/schema.md, Distribution on Citus).
distribute(
    metadata,
    reference("dispatch.training_scenarios"),
    distributed("dispatch.call_sessions", "id"),
    distributed("dispatch.call_transcripts", "session_id", "dispatch.call_sessions"),
    distributed("dispatch.performance_metrics", "session_id", "dispatch.call_sessions"),
    distributed("dispatch.extracted_entities", "session_id", "dispatch.call_sessions"),
)
