"""The chattrain domain (seed 003) against real SQLite and PostgreSQL databases.

The expected names come from parsing the seed itself, so a table, index or object the module
forgets is caught even if nobody remembers to list it here.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tdbctl.engine import create_engine
from tdbctl.schema import chattrain as ct
from tests.test_schema_create import build_schema

SCHEMA = "chattrain"
SEED = Path(__file__).resolve().parent / "seed_docs" / "003_a62b065dfde43b33.txt"
SEED_TEXT = SEED.read_text()

# tdbctl's migration ledger replaces the seed's own.
NOT_OURS = {"schema_migrations"}


def _seed_tables() -> dict[str, str]:
    """table name -> the body of its CREATE TABLE."""
    return {
        name: body
        for name, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", SEED_TEXT, re.S)
        if name not in NOT_OURS
    }


def _seed_indexes() -> dict[str, tuple[str, str | None]]:
    """index name -> (table, USING method or None)."""
    found = re.findall(r"CREATE INDEX (\w+) ON (\w+)\s*(?:USING (\w+))?", SEED_TEXT)
    return {name: (table, using) for name, table, using in found if table not in NOT_OURS}


SEED_TABLES = _seed_tables()
SEED_INDEXES = _seed_indexes()
SEED_VIEWS = set(re.findall(r"CREATE VIEW (\w+) AS", SEED_TEXT))
SEED_FUNCTIONS = set(re.findall(r"CREATE OR REPLACE FUNCTION (\w+)", SEED_TEXT))
SEED_TRIGGERS = set(re.findall(r"CREATE TRIGGER (\w+)", SEED_TEXT))
# GIN and ivfflat need PostgreSQL; plpgsql functions too.
PG_ONLY_INDEXES = {name for name, (_table, using) in SEED_INDEXES.items() if using}

COLUMN_LINE = re.compile(
    r"^ {4}(\w+) (VARCHAR\((\d+)\)|TEXT\[\]|TEXT|INTEGER|UUID|JSONB|TIMESTAMP|VECTOR\(\d+\)|INET)(.*)$",
    re.M,
)


def test_seed_parsing_found_what_the_seed_names():
    # Guards the regexes: if they silently matched nothing the other tests would prove nothing.
    assert set(SEED_TABLES) == {
        "scenarios", "sessions", "messages", "feedback", "documents", "user_activity_logs", "system_config"
    }
    assert len(SEED_INDEXES) == 35
    assert PG_ONLY_INDEXES == {"idx_scenarios_search", "documents_embedding_idx", "idx_documents_content_search"}
    assert SEED_VIEWS == {"session_summary", "scenario_performance"}
    assert SEED_FUNCTIONS == {"update_session_activity", "search_documents"}
    assert SEED_TRIGGERS == {"trigger_update_session_activity"}
    assert sum(len(COLUMN_LINE.findall(body)) for body in SEED_TABLES.values()) == 77


@pytest.fixture
def engine(db_url):
    engine = create_engine(db_url)
    build_schema(engine)
    yield engine
    engine.dispose()


def _is_pg(engine) -> bool:
    return engine.dialect.name == "postgresql"


# --- structure -----------------------------------------------------------------------------


def test_every_seed_table_and_column_exists(engine):
    inspector = sa.inspect(engine)
    assert set(SEED_TABLES) <= set(inspector.get_table_names(schema=SCHEMA))
    assert "schema_migrations" not in inspector.get_table_names(schema=SCHEMA)
    for table, body in SEED_TABLES.items():
        columns = {c["name"]: c for c in inspector.get_columns(table, schema=SCHEMA)}
        for name, seed_type, length, rest in COLUMN_LINE.findall(body):
            assert name in columns, f"{table}.{name}"
            column = columns[name]
            required = "NOT NULL" in rest or "PRIMARY KEY" in rest
            assert column["nullable"] is not required, f"{table}.{name} nullable"
            if length:
                assert column["type"].length == int(length), f"{table}.{name} length"
            if "DEFAULT" in rest:
                assert column["default"] is not None, f"{table}.{name} default"


def test_every_seed_index_exists(engine):
    if _is_pg(engine):
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = :s"),
                {"s": SCHEMA},
            ).all()
        found = {name: (table, indexdef) for name, table, indexdef in rows}
        expected = set(SEED_INDEXES)
    else:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT name, tbl_name, sql FROM chattrain.sqlite_master WHERE type = 'index'"
            ).all()
        found = {name: (table, sql) for name, table, sql in rows}
        expected = set(SEED_INDEXES) - PG_ONLY_INDEXES
        assert not PG_ONLY_INDEXES & set(found), "GIN/ivfflat indexes must not exist on SQLite"
    assert expected <= set(found), sorted(expected - set(found))
    for name in expected:
        assert found[name][0] == SEED_INDEXES[name][0], name
    if _is_pg(engine):
        ivfflat = found["documents_embedding_idx"][1]
        assert "USING ivfflat (embedding vector_cosine_ops)" in ivfflat
        assert "lists='100'" in ivfflat
        assert "USING gin (to_tsvector('english'::regconfig, content))" in found["idx_documents_content_search"][1]
        assert "USING gin" in found["idx_scenarios_search"][1]


def test_composite_indexes_keep_column_order(engine):
    indexes = {
        ix["name"]: ix["column_names"]
        for table in ("sessions", "messages", "feedback", "documents", "user_activity_logs")
        for ix in sa.inspect(engine).get_indexes(table, schema=SCHEMA)
    }
    for name, columns in re.findall(r"CREATE INDEX (\w+) ON \w+\((\w+, \w+)\)", SEED_TEXT):
        assert indexes[name] == columns.split(", "), name


def test_check_constraints_carry_the_seed_names(engine):
    expected = set(re.findall(r"CONSTRAINT (\w+) CHECK", SEED_TEXT)) | {"feedback_score_check"}
    inspector = sa.inspect(engine)
    found = {
        ck["name"]
        for table in SEED_TABLES
        for ck in inspector.get_check_constraints(table, schema=SCHEMA)
    }
    assert expected <= found, sorted(expected - found)


def test_foreign_keys_and_on_delete_as_the_seed_writes_them(engine):
    inspector = sa.inspect(engine)
    seed_fks = {}
    for table, body in SEED_TABLES.items():
        for column, target, ondelete in re.findall(
            r"^ {4}(\w+) .*?REFERENCES (\w+)\(id\)(?: ON DELETE (CASCADE|SET NULL))?", body, re.M
        ):
            seed_fks[(table, column)] = (target, ondelete or None)
    assert len(seed_fks) == 6
    for (table, column), (target, ondelete) in seed_fks.items():
        fks = [fk for fk in inspector.get_foreign_keys(table, schema=SCHEMA) if fk["constrained_columns"] == [column]]
        assert len(fks) == 1, (table, column)
        assert fks[0]["referred_table"] == target
        assert (fks[0]["options"].get("ondelete") or None) == ondelete, (table, column)


def test_views_functions_and_triggers_exist(engine):
    inspector = sa.inspect(engine)
    assert SEED_VIEWS <= set(inspector.get_view_names(schema=SCHEMA))
    with engine.connect() as conn:
        if _is_pg(engine):
            functions = set(
                conn.execute(
                    sa.text(
                        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                        "WHERE n.nspname = :s"
                    ),
                    {"s": SCHEMA},
                ).scalars()
            )
            triggers = dict(
                conn.execute(
                    sa.text(
                        "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND NOT t.tgisinternal"
                    ),
                    {"s": SCHEMA},
                ).all()
            )
            assert SEED_FUNCTIONS <= functions
        else:
            triggers = dict(
                conn.exec_driver_sql(
                    "SELECT name, tbl_name FROM chattrain.sqlite_master WHERE type = 'trigger'"
                ).all()
            )
    assert SEED_TRIGGERS <= set(triggers)
    assert triggers["trigger_update_session_activity"] == "messages"


def test_module_declares_functions_postgresql_only_and_trigger_on_both():
    by_name = {o.name: o for o in (ct.update_session_activity, ct.search_documents, ct.trigger_update_session_activity)}
    assert not by_name["search_documents"].supported_on("sqlite")
    assert not by_name["update_session_activity"].supported_on("sqlite")
    assert by_name["trigger_update_session_activity"].supported_on("sqlite")
    assert by_name["trigger_update_session_activity"].drop_sql("postgresql") == (
        "DROP TRIGGER IF EXISTS trigger_update_session_activity ON chattrain.messages"
    )


# --- behaviour -----------------------------------------------------------------------------


def _scenario(conn, scenario_id="onboarding.claim_handling.v1", **values):
    conn.execute(
        ct.scenarios.insert().values(
            id=scenario_id,
            title=values.pop("title", "Claim handling"),
            domain=values.pop("domain", "insurance"),
            version="1.0.0",
            smart_goals=[{"goal": "greet"}],
            llm_profile={"model": "gpt-4o"},
            steps=[{"id": "s1"}],
            **values,
        )
    )
    return scenario_id


def _session(conn, scenario_id, **values):
    session_id = uuid.uuid4()
    conn.execute(ct.sessions.insert().values(id=session_id, scenario_id=scenario_id, user_id="u1", **values))
    return session_id


def _message(conn, session_id, content="hello", role="user"):
    message_id = uuid.uuid4()
    conn.execute(ct.messages.insert().values(id=message_id, session_id=session_id, role=role, content=content))
    return message_id


def _feedback(conn, session_id, score, message_id=None):
    feedback_id = uuid.uuid4()
    conn.execute(
        ct.feedback.insert().values(
            id=feedback_id,
            session_id=session_id,
            step_id="s1",
            message_id=message_id,
            evaluation_type="rule_based",
            score=score,
        )
    )
    return feedback_id


def test_defaults_and_text_arrays_round_trip(engine):
    with engine.begin() as conn:
        scenario = _scenario(conn, tags=["claims", "onboarding"])
        session = _session(conn, scenario)
        _feedback(conn, session, 50)
        conn.execute(
            ct.feedback.update().values(suggestions=["be brief", "ask for the policy number"])
        )
        conn.execute(
            ct.documents.insert().values(
                scenario_id=scenario, filename="guide.md", content="text", content_type="markdown"
            )
        )
    with engine.connect() as conn:
        row = conn.execute(sa.select(ct.scenarios)).one()
        assert row.tags == ["claims", "onboarding"]
        assert (row.difficulty, row.variant, row.status) == ("beginner", "A", "active")
        assert isinstance(row.created_at, datetime)
        s = conn.execute(sa.select(ct.sessions)).one()
        assert (s.status, s.variant) == ("created", "A")
        assert isinstance(s.started_at, datetime) and isinstance(s.last_activity_at, datetime)
        assert conn.execute(sa.select(ct.feedback.c.suggestions)).scalar_one() == [
            "be brief",
            "ask for the policy number",
        ]
        doc = conn.execute(sa.select(ct.documents)).one()
        assert isinstance(doc.id, uuid.UUID)
        assert (doc.chunk_index, doc.embedding_model) == (0, "text-embedding-ada-002")


def test_inserting_a_message_touches_the_session(engine):
    old = datetime(2000, 1, 1)
    with engine.begin() as conn:
        session = _session(conn, _scenario(conn), last_activity_at=old)
    with engine.begin() as conn:
        assert conn.execute(sa.select(ct.sessions.c.last_activity_at)).scalar_one() == old
        _message(conn, session)
    with engine.connect() as conn:
        touched = conn.execute(sa.select(ct.sessions.c.last_activity_at)).scalar_one()
    assert touched.year >= 2024


def test_deleting_a_session_cascades_and_nulls(engine):
    with engine.begin() as conn:
        scenario = _scenario(conn)
        doomed, kept = _session(conn, scenario), _session(conn, scenario)
        for session in (doomed, kept):
            message = _message(conn, session)
            _feedback(conn, session, 80, message_id=message)
            conn.execute(
                ct.user_activity_logs.insert().values(
                    session_id=session, user_id="u1", activity_type="session_start", ip_address="192.0.2.1"
                )
            )
    with engine.begin() as conn:
        conn.execute(ct.sessions.delete().where(ct.sessions.c.id == doomed))
    with engine.connect() as conn:
        assert conn.execute(sa.select(ct.messages.c.session_id)).scalars().all() == [kept]
        assert conn.execute(sa.select(ct.feedback.c.session_id)).scalars().all() == [kept]
        logs = conn.execute(sa.select(ct.user_activity_logs.c.session_id)).scalars().all()
        assert sorted(logs, key=str) == sorted([None, kept], key=str)
        # INET comes back as ipaddress.IPv4Address on PostgreSQL, as text on SQLite.
        ips = conn.execute(sa.select(ct.user_activity_logs.c.ip_address)).scalars().all()
        assert [str(ip) for ip in ips] == ["192.0.2.1"] * 2


def test_deleting_a_message_keeps_its_feedback(engine):
    with engine.begin() as conn:
        session = _session(conn, _scenario(conn))
        message = _message(conn, session)
        _feedback(conn, session, 90, message_id=message)
    with engine.begin() as conn:
        conn.execute(ct.messages.delete().where(ct.messages.c.id == message))
    with engine.connect() as conn:
        assert conn.execute(sa.select(ct.feedback.c.message_id, ct.feedback.c.score)).one() == (None, 90)


def test_session_status_check_allows_archived_and_rejects_others(engine):
    with engine.begin() as conn:
        scenario = _scenario(conn)
        session = _session(conn, scenario, status="completed")
        conn.execute(ct.sessions.update().values(status="archived"))
    with pytest.raises(sa.exc.IntegrityError, match="chk_session_status"):
        with engine.begin() as conn:
            _session(conn, scenario, status="bogus")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ct.sessions.c.id, ct.sessions.c.status)).all()
    assert rows == [(session, "archived")]


@pytest.mark.parametrize(
    ("table", "values", "constraint"),
    [
        ("feedback", {"score": 101}, "feedback_score_check"),
        ("feedback", {"evaluation_type": "vibes"}, "chk_evaluation_type"),
        ("messages", {"role": "robot"}, "chk_message_role"),
        ("messages", {"token_count": -1}, "chk_token_count"),
        ("sessions", {"completion_reason": "bored"}, "chk_completion_reason"),
        ("scenarios", {"difficulty": "expert"}, "chk_difficulty"),
    ],
)
def test_other_checks_reject_bad_values(engine, table, values, constraint):
    with engine.begin() as conn:
        session = _session(conn, _scenario(conn))
        _feedback(conn, session, 10, message_id=_message(conn, session))
    with pytest.raises(sa.exc.IntegrityError, match=constraint):
        with engine.begin() as conn:
            conn.execute(getattr(ct, table).update().values(**values))


def _minutes(value):
    return None if value is None else float(value)


def test_session_summary_counts_without_join_fan_out(engine):
    with engine.begin() as conn:
        scenario = _scenario(conn)
        a = _session(
            conn, scenario, status="completed",
            started_at=datetime(2024, 1, 1, 10, 0), completed_at=datetime(2024, 1, 1, 10, 30),
        )
        b = _session(conn, scenario, status="in_progress", started_at=datetime(2024, 1, 1, 9, 0))
        c = _session(
            conn, scenario, status="completed",
            started_at=datetime(2024, 1, 1, 10, 0), completed_at=datetime(2024, 1, 1, 11, 0),
        )
        for _ in range(3):
            _message(conn, a)
        _feedback(conn, a, 80)
        _feedback(conn, a, 90)
        _message(conn, b)
        _feedback(conn, c, 70)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.text("SELECT * FROM chattrain.session_summary")).all()}
    ids = {a, b, c}
    assert {uuid.UUID(str(k)) for k in rows} == ids
    rows = {uuid.UUID(str(k)): v for k, v in rows.items()}
    ra, rb, rc = rows[a], rows[b], rows[c]
    assert (ra.message_count, ra.feedback_count) == (3, 2)
    assert float(ra.average_score) == pytest.approx(85)
    assert (ra.max_score, ra.min_score) == (90, 80)
    assert _minutes(ra.duration_minutes) == pytest.approx(30, abs=1e-3)
    assert (rb.message_count, rb.feedback_count, rb.average_score) == (1, 0, None)
    assert _minutes(rb.duration_minutes) > 60  # still open: measured up to now
    assert (rc.message_count, rc.feedback_count) == (0, 1)
    assert float(rc.average_score) == pytest.approx(70)
    assert _minutes(rc.duration_minutes) == pytest.approx(60, abs=1e-3)


def test_scenario_performance(engine):
    with engine.begin() as conn:
        busy = _scenario(conn, "busy", title="Busy", domain="claims")
        _scenario(conn, "idle", title="Idle", domain="claims")
        a = _session(
            conn, busy, status="completed",
            started_at=datetime(2024, 1, 1, 10, 0), completed_at=datetime(2024, 1, 1, 10, 30),
        )
        _session(conn, busy, status="in_progress")
        c = _session(
            conn, busy, status="completed",
            started_at=datetime(2024, 1, 1, 10, 0), completed_at=datetime(2024, 1, 1, 11, 0),
        )
        # Two feedback rows on the 30-minute session: must not weigh it twice.
        _feedback(conn, a, 80)
        _feedback(conn, a, 90)
        _feedback(conn, c, 70)
    with engine.connect() as conn:
        rows = {
            r.scenario_id: r
            for r in conn.execute(sa.text("SELECT * FROM chattrain.scenario_performance")).all()
        }
    busy_row, idle_row = rows["busy"], rows["idle"]
    assert (busy_row.title, busy_row.domain) == ("Busy", "claims")
    assert (busy_row.total_sessions, busy_row.completed_sessions) == (3, 2)
    assert float(busy_row.completion_rate) == pytest.approx(66.67)
    assert _minutes(busy_row.avg_completion_time_minutes) == pytest.approx(45, abs=1e-3)
    assert float(busy_row.avg_score) == pytest.approx(80)
    assert (idle_row.total_sessions, idle_row.completed_sessions) == (0, 0)
    assert (idle_row.completion_rate, idle_row.avg_completion_time_minutes, idle_row.avg_score) == (None, None, None)


def _unit(*weights: tuple[int, float]) -> list[float]:
    vector = [0.0] * 1536
    for index, weight in weights:
        vector[index] = weight
    return vector


def test_search_documents_orders_by_cosine_similarity(pg_url):
    engine = create_engine(pg_url)
    build_schema(engine)
    with engine.begin() as conn:
        _scenario(conn, "x")
        _scenario(conn, "y")
        docs = {
            "exact.md": ("x", _unit((0, 1.0))),
            "half.md": ("x", _unit((0, 1.0), (1, 1.0))),
            "orthogonal.md": ("y", _unit((1, 1.0))),
        }
        for filename, (scenario, embedding) in docs.items():
            conn.execute(
                ct.documents.insert().values(
                    scenario_id=scenario, filename=filename, content=f"about {filename}",
                    content_type="markdown", embedding=embedding,
                )
            )
    query = str(_unit((0, 2.0)))
    search = sa.text(
        "SELECT * FROM chattrain.search_documents(CAST(:q AS vector), :scenario, :n)"
    ).bindparams(sa.bindparam("scenario", type_=sa.String))
    with engine.begin() as conn:
        # The ivfflat index was built on an empty table; probe every list so recall is exact.
        conn.exec_driver_sql("SET LOCAL ivfflat.probes = 100")
        everything = conn.execute(search, {"q": query, "scenario": None, "n": 10}).all()
        default_limit = conn.execute(
            sa.text("SELECT filename FROM chattrain.search_documents(CAST(:q AS vector))"), {"q": query}
        ).scalars().all()
        only_y = conn.execute(search, {"q": query, "scenario": "y", "n": 10}).all()
        top_one = conn.execute(search, {"q": query, "scenario": "x", "n": 1}).all()
    engine.dispose()
    assert [r.filename for r in everything] == ["exact.md", "half.md", "orthogonal.md"]
    assert [r.similarity for r in everything] == pytest.approx([1.0, 2**-0.5, 0.0])
    assert all(isinstance(r.similarity, float) and isinstance(r.document_id, uuid.UUID) for r in everything)
    assert everything[0].content == "about exact.md"
    assert default_limit == ["exact.md", "half.md", "orthogonal.md"]
    assert [r.filename for r in only_y] == ["orthogonal.md"]
    assert [r.filename for r in top_one] == ["exact.md"]
