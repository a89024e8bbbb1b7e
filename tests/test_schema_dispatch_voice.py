"""Domains dispatch (seed 000) and voice (seed 001): what the seeds name exists, and it behaves.

The expected names are read from the seed documents themselves, so a name the modules drop or
misspell fails here rather than in a reviewer's eye.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_schema_create import build_schema

from tdbctl.engine import create_engine
from tdbctl.schema import dispatch, objects_of, voice
from tdbctl.schema.base import metadata
from tdbctl.schema.objects import redundant_seed_indexes_of

SEED_DIR = Path(__file__).resolve().parent / "seed_docs"
DISPATCH_SEED = (SEED_DIR / "000_9aa2b0bd697859f8.txt").read_text()
VOICE_SEED = (SEED_DIR / "001_2fc5b40f3eef100d.txt").read_text()


def _dispatch_enums() -> dict[str, list[str]]:
    enums = {}
    for name, body in re.findall(r"^### (\w+_enum)\n(.*?)(?=^#|\Z)", DISPATCH_SEED, re.M | re.S):
        enums[name] = re.findall(r"^- `(\w+)` -", body, re.M)
    return enums


DISPATCH_TABLES = set(re.findall(r"^#### \d+\. (\w+)$", DISPATCH_SEED, re.M))
DISPATCH_INDEXES = set(re.findall(r"^- `(ix_\w+)` on", DISPATCH_SEED, re.M))
DISPATCH_INDEX_COUNT = int(re.search(r"Creates (\d+) indexes", DISPATCH_SEED).group(1))
DISPATCH_TABLE_COUNT = int(re.search(r"Creates all (\d+) tables", DISPATCH_SEED).group(1))
DISPATCH_ENUMS = _dispatch_enums()

VOICE_TABLES = set(re.findall(r"CREATE TABLE (\w+)", VOICE_SEED))
VOICE_INDEXES = {
    name: using.lower() for name, using in re.findall(r"CREATE INDEX (\w+) ON \w+\s*(?:USING (\w+))?", VOICE_SEED)
}
VOICE_VIEWS = set(re.findall(r"CREATE VIEW (\w+)", VOICE_SEED))
VOICE_HYPERTABLES = re.findall(r"create_hypertable\('(\w+)', '(\w+)'\)", VOICE_SEED)
# PostgreSQL's names for the copies LIKE conversations INCLUDING ALL makes.
ARCHIVE_INDEXES = {f"conversations_archive_{c}_idx" for c in ("session_id", "user_id", "status", "started_at")}

NOW = datetime.now(timezone.utc)
LONG_AGO = NOW - timedelta(days=40)


def test_seed_parsing_found_what_the_seeds_name():
    # Guards the regexes: an empty set would make the existence checks below vacuous.
    assert len(DISPATCH_TABLES) == DISPATCH_TABLE_COUNT == 5
    assert len(DISPATCH_INDEXES) == 6 and DISPATCH_INDEX_COUNT == 7
    assert set(DISPATCH_ENUMS) == {"difficulty_level_enum", "call_session_status_enum", "speaker_enum"}
    assert all(DISPATCH_ENUMS.values())
    assert len(VOICE_TABLES) == 9 and "conversations_archive" in VOICE_TABLES
    assert len(VOICE_INDEXES) == 24 and VOICE_INDEXES["idx_metrics_tags"] == "gin"
    assert len(VOICE_VIEWS) == 4
    assert VOICE_HYPERTABLES == [("system_metrics", "time")]


@pytest.fixture
def engine(db_url):
    engine = create_engine(db_url)
    build_schema(engine)
    yield engine
    engine.dispose()


def _unique_constraint_names(inspector, schema: str) -> set[str]:
    return {
        unique["name"]
        for table in inspector.get_table_names(schema=schema)
        for unique in inspector.get_unique_constraints(table, schema=schema)
    }


def _index_names(inspector, schema: str) -> set[str]:
    return {
        index["name"]
        for table in inspector.get_table_names(schema=schema)
        for index in inspector.get_indexes(table, schema=schema)
    }


def test_dispatch_seed_names_exist(engine):
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names(schema="dispatch")) == DISPATCH_TABLES
    indexes = _index_names(inspector, "dispatch")
    assert DISPATCH_INDEXES <= indexes
    assert len(indexes) == DISPATCH_INDEX_COUNT, sorted(indexes)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT t.typname, e.enumlabel FROM pg_type t"
                    " JOIN pg_namespace n ON n.oid = t.typnamespace"
                    " JOIN pg_enum e ON e.enumtypid = t.oid"
                    " WHERE n.nspname = 'dispatch' ORDER BY t.typname, e.enumsortorder"
                )
            ).all()
        found: dict[str, list[str]] = {}
        for typname, label in rows:
            found.setdefault(typname, []).append(label)
        assert found == DISPATCH_ENUMS


def test_voice_seed_names_exist(engine):
    dialect = engine.dialect.name
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names(schema="voice")) == VOICE_TABLES
    redundant = {name.split(".", 1)[1]: kept.split(".", 1)[1]
                 for name, kept in redundant_seed_indexes_of(metadata).items() if name.startswith("voice.")}
    expected = {redundant.get(name, name) for name, using in VOICE_INDEXES.items()
                if dialect == "postgresql" or not using}
    indexes = _index_names(inspector, "voice") | _unique_constraint_names(inspector, "voice")
    assert expected | {redundant.get(name, name) for name in ARCHIVE_INDEXES} <= indexes
    assert not set(redundant) & indexes
    if dialect != "postgresql":
        assert "idx_metrics_tags" not in indexes
    assert set(inspector.get_view_names(schema="voice")) == VOICE_VIEWS


def test_voice_table_shapes(engine):
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("system_metrics", schema="voice")["constrained_columns"] == []
    (metrics_fk,) = inspector.get_foreign_keys("system_metrics", schema="voice")
    assert not metrics_fk["options"].get("ondelete")
    archive = {c["name"]: c for c in inspector.get_columns("conversations_archive", schema="voice")}
    original = {c["name"]: c for c in inspector.get_columns("conversations", schema="voice")}
    assert list(archive) == list(original)
    assert {n: (str(c["type"]), c["nullable"], c["default"]) for n, c in archive.items()} == {
        n: (str(c["type"]), c["nullable"], c["default"]) for n, c in original.items()
    }
    uniques = inspector.get_unique_constraints("conversations_archive", schema="voice")
    assert [u["column_names"] for u in uniques] == [["session_id"]]
    if engine.dialect.name == "postgresql":
        (name_time,) = [
            i for i in inspector.get_indexes("system_metrics", schema="voice") if i["name"] == "idx_metrics_name_time"
        ]
        assert name_time["column_names"] == ["metric_name", "time"]
        assert name_time["column_sorting"] == {"time": ("desc",)}


def test_hypertable_is_declared_for_timescaledb_only():
    (hypertable,) = [o for o in objects_of(metadata) if o.kind == "hypertable" and o.schema == "voice"]
    assert (hypertable.table, hypertable.requires_extension) == ("system_metrics", "timescaledb")
    assert not hypertable.supported_on("sqlite")
    assert "'voice.system_metrics', 'time'" in hypertable.create_sql("postgresql")


def test_dispatch_comments_on_postgresql(pg_url):
    engine = create_engine(pg_url)
    build_schema(engine)
    inspector = sa.inspect(engine)
    for table in DISPATCH_TABLES:
        heading = re.search(rf"^#### \d+\. {table}\n(.+)$", DISPATCH_SEED, re.M).group(1)
        assert inspector.get_table_comment(table, schema="dispatch")["text"] == heading
        for column in inspector.get_columns(table, schema="dispatch"):
            assert column["comment"], f"{table}.{column['name']}"
    engine.dispose()


def _scenario(conn, **values) -> uuid.UUID:
    scenario_id = uuid.uuid4()
    row = dict(
        id=scenario_id,
        name="Burglary in Progress",
        description="Anxious homeowner hearing intruder",
        caller_profile={"emotional_state": "anxious"},
        scenario_script={"expected_flow": ["address", "safety"]},
        difficulty_level="medium",
    )
    conn.execute(sa.insert(dispatch.training_scenarios).values(**{**row, **values}))
    return scenario_id


def _count(conn, table) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_dispatch_defaults(engine):
    with engine.begin() as conn:
        conn.execute(
            sa.insert(dispatch.training_scenarios).values(
                name="Car Accident", description="Calm witness", caller_profile={}, scenario_script={},
                difficulty_level="easy",
            )
        )
        scenario = conn.execute(sa.select(dispatch.training_scenarios)).one()
        conn.execute(sa.insert(dispatch.call_sessions).values(operator_id="operator_123", scenario_id=scenario.id))
        session = conn.execute(sa.select(dispatch.call_sessions)).one()
    assert isinstance(scenario.id, uuid.UUID)
    assert scenario.is_active is True
    assert scenario.created_at is not None and scenario.updated_at is not None
    assert isinstance(session.id, uuid.UUID) and session.id != scenario.id
    assert session.status == "active"
    assert session.started_at is not None and session.ended_at is None


def test_dispatch_enum_rejects_unknown_value(engine):
    with pytest.raises(sa.exc.DBAPIError):
        with engine.begin() as conn:
            _scenario(conn, difficulty_level="impossible")


def test_dispatch_delete_scenario_cascades(engine):
    with engine.begin() as conn:
        scenario_id = _scenario(conn)
        session_id, transcript_id = uuid.uuid4(), uuid.uuid4()
        conn.execute(
            sa.insert(dispatch.call_sessions).values(
                id=session_id, operator_id="operator_123", scenario_id=scenario_id, started_at=NOW
            )
        )
        conn.execute(
            sa.insert(dispatch.call_transcripts).values(
                id=transcript_id, session_id=session_id, timestamp_ms=1500, speaker="caller",
                text="Someone broke into my house at 123 Oak Street!", confidence_score=0.95,
            )
        )
        conn.execute(
            sa.insert(dispatch.extracted_entities).values(
                transcript_id=transcript_id, entity_type="LOCATION", entity_value="123 Oak Street",
                confidence_score=0.89, start_char=33, end_char=47,
            )
        )
        conn.execute(
            sa.insert(dispatch.performance_metrics).values(
                session_id=session_id, metric_name="response_time", metric_value=4.2
            )
        )
    children = (dispatch.call_sessions, dispatch.call_transcripts, dispatch.extracted_entities,
                dispatch.performance_metrics)
    with engine.begin() as conn:
        assert [_count(conn, t) for t in children] == [1, 1, 1, 1]
        conn.execute(sa.delete(dispatch.training_scenarios).where(dispatch.training_scenarios.c.id == scenario_id))
        assert [_count(conn, t) for t in children] == [0, 0, 0, 0]


def _conversation(conn, table=None, **values) -> uuid.UUID:
    conversation_id = uuid.uuid4()
    row = dict(id=conversation_id, session_id=f"session-{conversation_id.hex}", room_name="room-1",
               status="completed")
    conn.execute(sa.insert(table if table is not None else voice.conversations).values(**{**row, **values}))
    return conversation_id


def test_voice_delete_cascades_and_sets_null(engine):
    with engine.begin() as conn:
        conversation_id = _conversation(conn)
        turn_id = uuid.uuid4()
        conn.execute(
            sa.insert(voice.conversation_turns).values(
                id=turn_id, conversation_id=conversation_id, turn_number=1, role="user", text="Tuesday at 3"
            )
        )
        conn.execute(
            sa.insert(voice.extracted_slots).values(
                conversation_id=conversation_id, turn_id=turn_id, slot_name="date", slot_value="Tuesday"
            )
        )
        conn.execute(sa.insert(voice.state_transitions).values(conversation_id=conversation_id, to_state="collect"))
        conn.execute(
            sa.insert(voice.appointments).values(
                conversation_id=conversation_id, appointment_date=NOW.date(), appointment_time=NOW.time()
            )
        )
        conn.execute(sa.insert(voice.user_feedback).values(conversation_id=conversation_id, rating=5))
        conn.execute(
            sa.insert(voice.error_logs).values(
                conversation_id=conversation_id, error_type="stt_error", error_message="timeout", severity="low"
            )
        )

    with engine.begin() as conn:
        conn.execute(sa.delete(voice.conversation_turns).where(voice.conversation_turns.c.id == turn_id))
        slot = conn.execute(sa.select(voice.extracted_slots)).one()
        assert slot.turn_id is None and slot.conversation_id == conversation_id

    cascaded = (voice.conversation_turns, voice.extracted_slots, voice.state_transitions, voice.appointments,
                voice.user_feedback)
    with engine.begin() as conn:
        conn.execute(sa.delete(voice.conversations).where(voice.conversations.c.id == conversation_id))
        assert [_count(conn, t) for t in cascaded] == [0] * len(cascaded)
        error = conn.execute(sa.select(voice.error_logs)).one()
        assert error.conversation_id is None and error.error_type == "stt_error"


def test_voice_metrics_block_deleting_their_conversation(engine):
    with engine.begin() as conn:
        conversation_id = _conversation(conn)
        conn.execute(
            sa.insert(voice.system_metrics).values(
                time=NOW, metric_name="stt_latency_ms", metric_value=Decimal("123.45"),
                tags={"service": "stt"}, conversation_id=conversation_id,
            )
        )
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.delete(voice.conversations).where(voice.conversations.c.id == conversation_id))


def test_voice_constraints(engine):
    with engine.begin() as conn:
        conversation_id = _conversation(conn, session_id="dup")
        _conversation(conn, voice.conversations_archive, session_id="dup")
        for rating in (1, 5, None):
            conn.execute(sa.insert(voice.user_feedback).values(conversation_id=conversation_id, rating=rating))
        conn.execute(
            sa.insert(voice.appointments).values(
                conversation_id=conversation_id, appointment_date=NOW.date(), appointment_time=NOW.time(),
                confirmation_code="ABC123",
            )
        )
    failing = [
        (voice.user_feedback, dict(conversation_id=conversation_id, rating=6)),
        (voice.user_feedback, dict(conversation_id=conversation_id, rating=0)),
        (voice.conversations, dict(id=uuid.uuid4(), session_id="dup", room_name="r", status="active")),
        (voice.conversations_archive, dict(id=uuid.uuid4(), session_id="dup", room_name="r", status="active")),
        (voice.appointments, dict(conversation_id=conversation_id, appointment_date=NOW.date(),
                                  appointment_time=NOW.time(), confirmation_code="ABC123")),
    ]
    for table, values in failing:
        with pytest.raises(sa.exc.IntegrityError):
            with engine.begin() as conn:
                conn.execute(sa.insert(table).values(**values))


def test_voice_defaults(engine):
    with engine.begin() as conn:
        conn.execute(sa.insert(voice.conversations).values(session_id="s1", room_name="room", status="active"))
        conversation = conn.execute(sa.select(voice.conversations)).one()
        conn.execute(
            sa.insert(voice.appointments).values(
                conversation_id=conversation.id, appointment_date=NOW.date(), appointment_time=NOW.time()
            )
        )
        conn.execute(
            sa.insert(voice.extracted_slots).values(conversation_id=conversation.id, slot_name="name", slot_value="Ann")
        )
        conn.execute(sa.insert(voice.error_logs).values(error_type="llm_error", error_message="x", severity="high"))
        appointment = conn.execute(sa.select(voice.appointments)).one()
        slot = conn.execute(sa.select(voice.extracted_slots)).one()
        error = conn.execute(sa.select(voice.error_logs)).one()
        conn.execute(sa.insert(voice.conversations_archive).values(session_id="s1", room_name="room", status="x"))
        archived = conn.execute(sa.select(voice.conversations_archive)).one()
    assert isinstance(conversation.id, uuid.UUID)
    assert None not in (conversation.started_at, conversation.created_at, conversation.updated_at)
    assert appointment.status == "confirmed" and isinstance(appointment.id, uuid.UUID)
    assert slot.validated is False and error.resolved is False
    assert isinstance(archived.id, uuid.UUID) and archived.started_at is not None


def _view(conn, name: str) -> list[sa.Row]:
    return conn.execute(sa.text(f"SELECT * FROM voice.{name}")).all()


def test_voice_views_aggregate(engine):
    with engine.begin() as conn:
        ids = [
            _conversation(conn, status="completed", final_state="terminal", duration_seconds=60),
            _conversation(conn, status="completed", final_state="terminal", duration_seconds=120),
            _conversation(conn, status="failed", final_state="terminal", duration_seconds=1000),
            _conversation(conn, status="completed", final_state="fallback", duration_seconds=30),
            _conversation(conn, status="failed", final_state="fallback", duration_seconds=5),
            # Outside the 30-day window, but avg_duration_by_state has none.
            _conversation(conn, status="completed", final_state="fallback", duration_seconds=50,
                          started_at=LONG_AGO),
        ]
        errors = [("stt_error", "critical", None), ("stt_error", "low", None), ("stt_error", "high", None),
                  ("llm_error", "critical", None), ("stt_error", "critical", LONG_AGO)]
        for error_type, severity, created_at in errors:
            values = dict(error_type=error_type, error_message="m", severity=severity, conversation_id=ids[0])
            if created_at:
                values["created_at"] = created_at
            conn.execute(sa.insert(voice.error_logs).values(**values))
        slots = [("date", "0.90", True, None), ("date", "0.80", None, None), ("name", "1.00", True, None),
                 ("date", "0.10", True, LONG_AGO)]
        for slot_name, confidence, validated, created_at in slots:
            values = dict(conversation_id=ids[0], slot_name=slot_name, slot_value="v",
                          confidence_score=Decimal(confidence))
            if validated is not None:
                values["validated"] = validated
            if created_at:
                values["created_at"] = created_at
            conn.execute(sa.insert(voice.extracted_slots).values(**values))

    with engine.connect() as conn:
        success = _view(conn, "conversation_success_rate")
        # Summed over days, so that a run across midnight still checks the same thing.
        assert sum(r.total_conversations for r in success) == 5
        assert round(sum(float(r.success_rate) * r.total_conversations / 100 for r in success)) == 3

        durations = {r.final_state: (float(r.avg_duration_seconds), r.conversation_count)
                     for r in _view(conn, "avg_duration_by_state")}
        assert durations == {"terminal": (90.0, 2), "fallback": (40.0, 2)}

        by_type = [(r.error_type, r.error_count, r.critical_count) for r in _view(conn, "error_rate_by_type")]
        assert by_type == [("stt_error", 3, 1), ("llm_error", 1, 1)]

        accuracy = {r.slot_name: (float(r.avg_confidence), r.total_extractions, r.validated_count)
                    for r in _view(conn, "slot_extraction_accuracy")}
        assert accuracy == {"date": (pytest.approx(0.85), 2, 1), "name": (pytest.approx(1.0), 1, 1)}
