"""The distribution plan on one server (tdbctl/schema/distribution.py, migration 0013): the keys
a Citus cluster needs, on every PostgreSQL, and what they change for the application.
tests/test_citus.py runs the cluster itself."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from tdbctl.config import resolve
from tdbctl.migrate.commands import upgrade
from tdbctl.schema import metadata
from tdbctl.schema.distribution import distribution_of, primary_key, tenant_links

PLAN = distribution_of(metadata)


def group(name: str) -> str:
    """The table a distributed table's colocation chain starts from."""
    while PLAN[name].colocate_with:
        name = PLAN[name].colocate_with
    return name


def test_every_domain_table_is_declared_and_a_distributed_childs_links_stay_in_its_tenant():
    domain_tables = {t.fullname for t in metadata.tables.values() if t.schema != "tdbctl"}
    assert set(PLAN) == domain_tables
    for name, declared in PLAN.items():
        table = metadata.tables[name]
        for fk in table.foreign_key_constraints:
            parent = PLAN[fk.referred_table.fullname]
            if declared.kind == "reference":
                assert parent.kind == "reference", (name, fk.name)  # Citus: a reference table points at references
            if declared.kind == "local":
                assert parent.kind in ("local", "reference"), (name, fk.name)
            if declared.kind == "distributed" and parent.kind == "distributed" and fk.name not in declared.loose:
                assert group(name) == group(fk.referred_table.fullname), (name, fk.name)  # colocated
        for name_ in declared.loose:
            assert declared.why, name


def _migrated(url, revision: str = "head"):
    from tdbctl.engine import create_engine

    settings = resolve(url_text(url))
    upgrade(settings, revision)
    return create_engine(url)


def test_postgresql_keys_hold_the_tenant_and_set_null_keeps_it(pg_url):
    engine = _migrated(pg_url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name, declared in PLAN.items():
            table = metadata.tables[name]
            assert inspector.get_pk_constraint(table.name, schema=table.schema)["constrained_columns"] == \
                primary_key(metadata, name), name
        for link in tenant_links(metadata):
            held = {f["name"]: f for f in inspector.get_foreign_keys(link.child.name, schema=link.child.schema)}
            assert held[link.constraint.name]["constrained_columns"] == list(link.columns)
            assert held[link.constraint.name]["referred_columns"] == list(link.referred)
    with engine.begin() as conn:
        conversation = conn.exec_driver_sql(
            "INSERT INTO voice.conversations (session_id, room_name, status) VALUES ('s1', 'r', 'active') RETURNING id"
        ).scalar()
        turn = conn.exec_driver_sql(
            "INSERT INTO voice.conversation_turns (conversation_id, turn_number, role, text) "
            "VALUES (%(c)s, 1, 'user', 'hi') RETURNING id", {"c": conversation}).scalar()
        slot = conn.exec_driver_sql(
            "INSERT INTO voice.extracted_slots (conversation_id, turn_id, slot_name, slot_value) "
            "VALUES (%(c)s, %(t)s, 'name', 'Ann') RETURNING id", {"c": conversation, "t": turn}).scalar()
        conn.exec_driver_sql("DELETE FROM voice.conversation_turns WHERE id = %(t)s", {"t": turn})
        # ON DELETE SET NULL (turn_id): the link goes, the slot stays in its conversation.
        assert conn.exec_driver_sql("SELECT conversation_id, turn_id FROM voice.extracted_slots WHERE id = %(s)s",
                                    {"s": slot}).one() == (conversation, None)
    engine.dispose()


def test_an_entity_written_without_its_session_gets_its_transcripts(db_url):
    """Seed 000's application writes entities as it always has; the insert trigger fills the
    tenant column in, on PostgreSQL and on SQLite."""
    engine = _migrated(db_url)
    t = {n: metadata.tables[f"dispatch.{n}"] for n in ("training_scenarios", "call_sessions", "call_transcripts",
                                                        "extracted_entities")}
    session, transcript = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        scenario = conn.execute(sa.insert(t["training_scenarios"]).values(
            name="n", description="d", caller_profile={}, scenario_script={}, difficulty_level="easy")
            .returning(t["training_scenarios"].c.id)).scalar()
        conn.execute(sa.insert(t["call_sessions"]).values(id=session, operator_id="o", scenario_id=scenario,
                                                          started_at=sa.func.now()))
        conn.execute(sa.insert(t["call_transcripts"]).values(id=transcript, session_id=session, timestamp_ms=1,
                                                             speaker="caller", text="help"))
        conn.execute(sa.insert(t["extracted_entities"]).values(
            transcript_id=transcript, entity_type="LOCATION", entity_value="x", confidence_score=1.0,
            start_char=0, end_char=1))
        assert conn.execute(sa.select(t["extracted_entities"].c.session_id)).scalar_one() == session
    engine.dispose()


def test_rows_across_tenants_from_before_are_kept_and_new_ones_refused(pg_url):
    """0013 never fails a deploy on old rows: a link that already crossed tenants is added NOT
    VALID, with a warning naming the table; a new crossing row is refused."""
    engine = _migrated(pg_url, "0012")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO chattrain.scenarios (id, title, domain, version, smart_goals, llm_profile, steps) "
                             "VALUES ('s', 't', 'd', '1', '[]', '{}', '[]')")
        one, two = (conn.exec_driver_sql("INSERT INTO chattrain.sessions (scenario_id, user_id, status) "
                                         "VALUES ('s', 'u', 'created') RETURNING id").scalar() for _ in range(2))
        message = conn.exec_driver_sql("INSERT INTO chattrain.messages (session_id, role, content) "
                                       "VALUES (%(s)s, 'user', 'x') RETURNING id", {"s": one}).scalar()
        conn.exec_driver_sql("INSERT INTO chattrain.feedback (session_id, step_id, message_id, evaluation_type) "
                             "VALUES (%(s)s, 's', %(m)s, 'manual')", {"s": two, "m": message})
    done = run_cli("migrate", env={"TDB_DATABASE_URL": url_text(pg_url)})
    assert done.returncode == 0, done.stderr
    assert "chattrain.feedback: 1 rows point at a chattrain.messages row of another tenant" in done.stderr
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT convalidated FROM pg_constraint WHERE conname = 'feedback_message_id_fkey'"
                                    ).scalar() is False
        assert conn.exec_driver_sql("SELECT count(*) FROM chattrain.feedback").scalar() == 1
        with pytest.raises(sa.exc.IntegrityError, match="feedback_message_id_fkey"):
            conn.exec_driver_sql("INSERT INTO chattrain.feedback (session_id, step_id, message_id, evaluation_type) "
                                 "VALUES (%(s)s, 's', %(m)s, 'manual')", {"s": two, "m": message})
    assert run_cli("migrate", "check", env={"TDB_DATABASE_URL": url_text(pg_url)}).returncode == 0
    engine.dispose()


def test_down_to_0012_gives_the_declared_keys_back_and_up_again(pg_url):
    engine = _migrated(pg_url)
    env = {"TDB_DATABASE_URL": url_text(pg_url)}
    assert run_cli("migrate", "down", "0012", "--yes", env=env).returncode == 0
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert inspector.get_pk_constraint("call_transcripts", schema="dispatch")["constrained_columns"] == ["id"]
        assert "session_id" not in {c["name"] for c in inspector.get_columns("extracted_entities", schema="dispatch")}
        turn_fk = {f["name"]: f for f in inspector.get_foreign_keys("extracted_slots", schema="voice")}
        assert turn_fk["extracted_slots_turn_id_fkey"]["constrained_columns"] == ["turn_id"]
    assert run_cli("migrate", env=env).returncode == 0
    assert run_cli("migrate", "check", env=env).returncode == 0
    engine.dispose()
