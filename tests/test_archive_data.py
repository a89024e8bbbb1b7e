"""Rows at precise ages for the archive tests, and exact snapshots of what a database holds.

``fill`` writes, with Core inserts, rows just past and well inside every archive policy's age,
children of each kind (ON DELETE CASCADE, SET NULL links from outside, a NO ACTION reference
that holds a row back) and awkward values (newlines, quotes, unicode, JSON null beside SQL NULL,
floats, numerics, arrays, vectors, bytes, INET). ``snapshot`` reads every domain table as the
database stores it (PostgreSQL: each row's text form; SQLite: the raw stored values), keyed by
primary key, so two snapshots are equal only if every value is exactly the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import uuid
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from tdbctl.schema import DOMAINS, metadata
from tdbctl.schema.policies import RetentionPolicy

T = metadata.tables
DAY = dt.timedelta(days=1)

# Types no declared archive policy's tables hold (vectors, bytes, arrays, INET): archived through
# policies declared here, the same way a declared one would be.
FIDELITY_POLICIES = [
    RetentionPolicy(name="test.embeddings", table="academy.vector_embeddings", age_column="created_at",
                    default_age="30d", action="archive", description="vectors and JSON"),
    RetentionPolicy(name="test.cache", table="academy.cache_entries", age_column="created_at",
                    default_age="30d", action="archive", description="bytes"),
    RetentionPolicy(name="test.scenarios", table="chattrain.scenarios", age_column="created_at",
                    default_age="30d", action="archive", description="arrays; one held back by sessions"),
    RetentionPolicy(name="test.activity", table="chattrain.user_activity_logs", age_column="timestamp",
                    default_age="30d", action="archive", description="INET, naive timestamps"),
]

TEXTS = ["plain", "line\nbreak and \"quotes\" and \\backslash\\", "unicode é ✓ \u2028 end", "tab\there", ""]


def uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=(0xA5C1 << 112) + n)


def _at(now: dt.datetime, days: float, minutes: int = 0, naive: bool = False) -> dt.datetime:
    moment = now - days * DAY - dt.timedelta(minutes=minutes, microseconds=123457 * (minutes + 1) % 1000000)
    return moment.replace(tzinfo=None) if naive else moment


def _json(i: int):
    """Every third row JSON null, every third SQL NULL, the others an object with odd content."""
    return [None, sa.null(), {"i": i, "text": TEXTS[i % len(TEXTS)], "float": 0.1 * i, "list": [1, None, "x"]}][i % 3]


def fill(engine, now: dt.datetime, *, transcripts: int = 2) -> dict[str, set]:
    """Insert the data set; returns the primary keys each archive policy should take, per table."""
    expected: dict[str, set] = {}

    def expect(table: str, key) -> None:
        expected.setdefault(table, set()).add(key)

    with engine.begin() as conn:
        def put(table: str, **values):
            conn.execute(sa.insert(T[table]).values(**values))

        # dispatch: completed calls past 2 years go, with transcripts, entities and metrics.
        put("dispatch.training_scenarios", id=uid(1), name="Fire", description="d", caller_profile={"mood": "calm"},
            scenario_script={"steps": [1, 2.5, "three"]}, difficulty_level="hard")
        n = 100
        for i in range(9):
            old, status = (i < 6, "completed") if i < 7 else (True, "error")
            session = uid(n := n + 1)
            put("dispatch.call_sessions", id=session, operator_id=f"op{i}", scenario_id=uid(1),
                started_at=_at(now, 731 if old else 700, minutes=i), status=status, metadata=_json(i),
                ended_at=None if i % 2 else _at(now, 700, minutes=i), duration_ms=i * 1000 or None)
            takes = old and status == "completed"
            if takes:
                expect("dispatch.call_sessions", session)
            for j in range(transcripts):
                transcript = uid(n := n + 1)
                put("dispatch.call_transcripts", id=transcript, session_id=session, timestamp_ms=2**40 + j,
                    speaker=["operator", "caller"][j % 2], text=TEXTS[(i + j) % len(TEXTS)],
                    confidence_score=[0.1, 1e-300, None][j % 3])
                entity = uid(n := n + 1)
                put("dispatch.extracted_entities", id=entity, transcript_id=transcript, session_id=session,
                    entity_type="WEAPON",
                    entity_value=TEXTS[j % len(TEXTS)], confidence_score=0.5, start_char=0, end_char=j,
                    metadata=_json(j))
                if takes:
                    expect("dispatch.call_transcripts", transcript)
                    expect("dispatch.extracted_entities", entity)
            metric = uid(n := n + 1)
            put("dispatch.performance_metrics", id=metric, session_id=session, metric_name="empathy",
                metric_value=3.0000000000000004, measured_at=_at(now, 731, minutes=i))
            if takes:
                expect("dispatch.performance_metrics", metric)

        # voice: conversations past 90 days move to conversations_archive; children to files.
        n = 1000
        for i in range(6):
            old = i < 4
            conversation = uid(n := n + 1)
            put("voice.conversations", id=conversation, session_id=f"s{i}", room_name=f"room{i}",
                user_id=None if i == 1 else f"u{i}", status="completed", started_at=_at(now, 91 if old else 80, i),
                metadata=_json(i), final_state=TEXTS[i % len(TEXTS)])
            held = i == 3  # a system_metrics row (no ON DELETE) keeps this one live
            takes = old and not held
            if takes:
                expect("voice.conversations", conversation)
            turns = []
            for j in range(2):
                turn = uid(n := n + 1)
                turns.append(turn)
                put("voice.conversation_turns", id=turn, conversation_id=conversation, turn_number=j,
                    role="user", text=TEXTS[(i + j) % len(TEXTS)], metadata=_json(j))
            rows = {
                "voice.state_transitions": dict(to_state="greeting", trigger_data={"k": [i]}, latency_ms=i),
                "voice.extracted_slots": dict(turn_id=turns[0], slot_name="date", slot_value="tomorrow",
                                              confidence_score=Decimal("0.95"), validated=i % 2 == 0),
                "voice.appointments": dict(appointment_date=dt.date(2025, 1, 1 + i), appointment_time=dt.time(9, 30, 15),
                                           confirmation_code=f"C{i}", metadata=_json(i)),
                "voice.user_feedback": dict(rating=4, feedback_text=TEXTS[i % len(TEXTS)]),
            }
            for table, values in rows.items():
                key = uid(n := n + 1)
                put(table, id=key, conversation_id=conversation, **values)
                if takes:
                    expect(table, key)
            if takes:
                expected.setdefault("voice.conversation_turns", set()).update(turns)
            error = uid(n := n + 1)
            put("voice.error_logs", id=error, conversation_id=conversation, error_type="timeout",
                error_message="m", severity="low", context=_json(i))
            if held:
                put("voice.system_metrics", time=_at(now, 1), metric_name="latency", metric_value=Decimal("12.50"),
                    conversation_id=conversation)

        # academy: conversation logs past a year.
        put("academy.users", id=1, email="a@x", username="a", password_hash="h")
        put("academy.scenarios", id=1, title="Case", created_by=1, tags=["x", "y"])
        put("academy.scenario_scenes", id=1, scenario_id=1, title="Scene", scene_order=1)
        put("academy.scenario_personas", id=1, scenario_id=1, name="P", role="CEO")
        put("academy.user_progress", id=1, user_id=1, scenario_id=1, current_scene_id=1)
        for i in range(5):
            old = i < 3
            put("academy.conversation_logs", id=10 + i, user_progress_id=1, scene_id=1, message_type="user",
                message_content=TEXTS[i % len(TEXTS)], persona_id=1 if i % 2 else None,
                ai_context_used=_json(i), processing_time=0.1 * i, created_at=_at(now, 366 if old else 300, i))
            if old:
                expect("academy.conversation_logs", 10 + i)

        # chattrain: completed sessions past 2 years are archived in place (messages stay).
        put("chattrain.scenarios", id="onboarding.v1", title="T", domain="d", version="1.0.0", tags=["a", "b c", "é"],
            smart_goals=[{"g": 1}], llm_profile={"model": "x"}, steps=[], created_at=_at(now, 40, naive=True))
        put("chattrain.scenarios", id="retired.v0", title="Old", domain="d", version="0.1.0", tags=[],
            smart_goals=[], llm_profile={}, steps=[{"s": "\n"}], created_at=_at(now, 40, naive=True))
        expect("chattrain.scenarios", "retired.v0")
        n = 2000
        for i in range(6):
            status = "completed" if i < 5 else "in_progress"
            old = i < 4
            session = uid(n := n + 1)
            put("chattrain.sessions", id=session, scenario_id="onboarding.v1", user_id=f"u{i}", status=status,
                started_at=_at(now, 800, i, naive=True), completed_at=_at(now, 731 if old else 700, i, naive=True),
                last_activity_at=_at(now, 731, i, naive=True), metadata=[None, sa.null(), {"a": 1}, ["x"]][i % 4])
            if old and status == "completed":
                expect("chattrain.sessions", session)
            message = uid(n := n + 1)
            put("chattrain.messages", id=message, session_id=session, role="user", content=TEXTS[i % len(TEXTS)])
            put("chattrain.feedback", id=uid(n := n + 1), session_id=session, step_id="s1", message_id=message,
                evaluation_type="manual", score=90, suggestions=["do", "more \"of\" it"])
            activity = uid(n := n + 1)
            put("chattrain.user_activity_logs", id=activity, session_id=session, user_id=f"u{i}",
                activity_type="session_start", ip_address=["192.168.0.1", "::1"][i % 2],
                timestamp=_at(now, 40 if i % 2 else 5, i, naive=True), activity_data=_json(i))
            if i % 2:
                expect("chattrain.user_activity_logs", activity)
        # Messages bump their session's last_activity_at (the seed's trigger): set it back.
        conn.execute(sa.update(T["chattrain.sessions"]).values(last_activity_at=sa.literal(_at(now, 731, naive=True))))

        # Vectors, JSON and bytes.
        for i in range(3):
            old = i < 2
            put("academy.vector_embeddings", id=i + 1, content_type="scenario", content=TEXTS[i],
                embedding=[0.1 * k - 2.5e-7 for k in range(1536)], metadata=_json(i),
                created_at=_at(now, 31 if old else 1, i))
            put("academy.cache_entries", id=i + 1, cache_key=f"k{i}", content_type="response",
                content_data=bytes(range(256)) + bytes([i]), metadata=_json(i), created_at=_at(now, 31 if old else 1, i))
            if old:
                expect("academy.vector_embeddings", i + 1)
                expect("academy.cache_entries", i + 1)
    return expected


# -- snapshots --------------------------------------------------------------------------------------

def domain_tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if t.schema in DOMAINS]


def _key_sql(table: sa.Table, dialect: str) -> str:
    columns = list(table.primary_key.columns) or list(table.columns)
    return " || '|' || ".join(f"""COALESCE(CAST("{c.name}" AS TEXT), '')""" for c in columns)


def snapshot(engine, tables=None) -> dict[str, dict]:
    """{table: {key: row}} with every value exactly as stored."""
    dialect = engine.dialect.name
    result = {}
    with engine.connect() as conn:
        for table in tables or domain_tables():
            name = f'"{table.schema}"."{table.name}"'
            if dialect == "postgresql":
                rows = conn.exec_driver_sql(f"SELECT {_key_sql(table, dialect)}, t::text FROM {name} t").all()
                result[table.fullname] = {key: text for key, text in rows}
            else:
                columns = ", ".join(f'"{c.name}"' for c in table.columns)
                rows = conn.exec_driver_sql(f"SELECT {_key_sql(table, dialect)}, {columns} FROM {name}").all()
                result[table.fullname] = {row[0]: tuple(row[1:]) for row in rows}
    return result


def checksums(snap: dict[str, dict]) -> dict[str, str]:
    """sha256 of each table's rows ordered by key."""
    return {table: hashlib.sha256(repr(sorted(rows.items())).encode()).hexdigest() for table, rows in snap.items()}


def key_text(key, dialect: str) -> str:
    """A key as ``snapshot`` spells it."""
    if isinstance(key, uuid.UUID):
        return str(key) if dialect == "postgresql" else key.hex
    return str(key)


# -- databases --------------------------------------------------------------------------------------

def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a migrated SQLite database (its main file and each schema's file)."""
    stem, suffix = source.stem, source.suffix
    for path in source.parent.glob(f"{stem}*{suffix}"):
        shutil.copy2(path, target.parent / (target.stem + path.name[len(stem):]))


# -- fixtures (imported by the test modules) ---------------------------------------------------------

import pytest  # noqa: E402


class ArchiveDb:
    """A migrated database for one test: its URL as typed, settings, an engine, the dialect."""

    def __init__(self, url: sa.URL, text: str):
        from tdbctl.config import resolve
        from tdbctl.engine import create_engine

        self.url, self.text = url, text
        self.settings = resolve(text)
        self.engine = create_engine(self.settings.url)
        self.dialect = self.settings.dialect

    def key(self, value) -> str:
        return key_text(value, self.dialect)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory):
    from tdbctl.config import resolve
    from tdbctl.migrate.commands import upgrade

    path = tmp_path_factory.mktemp("archive-template") / "tdbctl.db"
    upgrade(resolve(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def _pg_template(pg_server_url):
    from conftest import url_text
    from tdbctl.config import resolve
    from tdbctl.migrate.commands import upgrade

    name = f"tdbctl_archive_tpl_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    upgrade(resolve(url_text(pg_server_url.set(database=name))))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_db(request, tmp_path):
    """A migrated database on each dialect (copied from a template migrated once per session)."""
    from conftest import url_text

    if request.param == "sqlite":
        target = tmp_path / "db" / "tdbctl.db"
        target.parent.mkdir()
        copy_sqlite(request.getfixturevalue("_sqlite_template"), target)
        url = sa.engine.make_url(f"sqlite:///{target}")
        db = ArchiveDb(url, url_text(url))
        yield db
        db.engine.dispose()
        return
    template = request.getfixturevalue("_pg_template")
    server = request.getfixturevalue("pg_server_url")
    name = f"tdbctl_archive_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = server.set(database=name)
    db = ArchiveDb(url, url_text(url))
    try:
        yield db
    finally:
        db.engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
