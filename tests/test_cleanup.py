"""`tdbctl cleanup` through the library, on SQLite and PostgreSQL, with exact row sets.

``World`` writes rows at precise ages into every table a policy governs (Core inserts; the seed
command is written in parallel), and records by hand which rows each policy must take, which
ON DELETE CASCADE must take with them and which references SET NULL must clear. The tests compare
every row of every domain table before and after: nothing else may change.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conftest import url_text
from tdbctl.cleanup import CleanupRequest, cleanup
from tdbctl.config import resolve
from tdbctl.migrate.commands import upgrade
from tdbctl.runtime import open_database
from tdbctl.schema import DOMAINS, RetentionPolicy, metadata
from tdbctl.schema.bookkeeping import runs

T = metadata.tables
NOW = datetime.now(timezone.utc)


def ago(days: float, naive: bool = False) -> datetime:
    moment = NOW - timedelta(days=days)
    return moment.replace(tzinfo=None) if naive else moment


@pytest.fixture
def db(db_url):
    settings = resolve(url_text(db_url))
    upgrade(settings)
    with open_database(settings) as database:
        yield database


# --- reading the database back ----------------------------------------------------------------


def snapshot(engine) -> dict[str, dict]:
    """Every row of every domain table: table -> {primary key: row}; tables without a primary
    key -> {'rows': sorted reprs} (duplicates kept)."""
    result = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.schema not in DOMAINS:
                continue
            pk = list(table.primary_key.columns)
            rows = conn.execute(sa.select(table)).all()
            if pk:
                result[table.fullname] = {tuple(getattr(r, c.name) for c in pk): tuple(r) for r in rows}
            else:
                result[table.fullname] = {"rows": sorted(repr(tuple(r)) for r in rows)}
    return result


def expected_after(before: dict, gone: dict[str, set], cleared: dict[str, dict]) -> dict:
    after = {}
    for name, rows in before.items():
        table = T[name]
        kept = {k: v for k, v in rows.items() if k not in gone.get(name, set())}
        for key, column in cleared.get(name, {}).items():
            if key in kept:
                row = list(kept[key])
                row[list(table.columns.keys()).index(column)] = None
                kept[key] = tuple(row)
        after[name] = kept
    return after


def orphans(engine) -> dict[str, int]:
    """Child rows whose non-null foreign key finds no parent, per foreign key (should be none)."""
    found = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for fk in table.foreign_key_constraints:
                parent = fk.referred_table
                match = [c == parent.c[e.column.key] for c, e in zip(fk.columns, fk.elements)]
                query = sa.select(sa.func.count()).select_from(table).where(
                    *(c.is_not(None) for c in fk.columns), ~sa.exists().where(*match))
                count = conn.execute(query).scalar_one()
                if count:
                    found[f"{table.fullname}.{fk.column_keys}"] = count
    return found


def runs_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(runs).order_by(runs.c.id))]


def by_policy(report) -> dict[str, tuple[dict, dict]]:
    return {o.policy: (o.rows, o.cleared) for o in report.outcomes if o.action == "delete"}


# --- the rows -----------------------------------------------------------------------------------


class World:
    """Rows at chosen ages; ``gone``/``cleared`` say what the default policies must do."""

    def __init__(self, engine):
        self.engine = engine
        self.gone: dict[str, set] = defaultdict(set)
        self.cleared: dict[str, dict] = defaultdict(dict)
        self.expect: dict[str, tuple[dict, dict]] = {}

    def insert(self, conn, name: str, rows: list[dict]) -> list[dict]:
        table = T[name]
        pk = table.primary_key.columns
        for row in rows:
            for column in pk:
                if column.name not in row and isinstance(column.type, sa.Uuid):
                    row[column.name] = uuid.uuid4()
        if not pk or all(c.name in rows[0] for c in pk):
            conn.execute(sa.insert(table), rows)
        else:  # integer keys the database assigns
            for row in rows:
                row.update(conn.execute(sa.insert(table).values(row).returning(*pk)).one()._mapping)
        return rows

    @staticmethod
    def key(row: dict, name: str) -> tuple:
        return tuple(row[c.name] for c in T[name].primary_key.columns)

    def build(self) -> "World":
        with self.engine.begin() as conn:
            self.chattrain(conn)
            self.academy(conn)
            self.voice(conn)
            self.dispatch(conn)
        self.orphan_scenario("sc.gone")
        return self

    def chattrain(self, conn) -> None:
        ins, key = self.insert, self.key
        ins(conn, "chattrain.scenarios", [
            dict(id=i, title=i, domain="claims", version="1.0.0", smart_goals=[], llm_profile={}, steps=[])
            for i in ("sc.a", "sc.gone")
        ])
        sessions, expired = [], []
        for status in ("created", "in_progress", "completed", "abandoned", "error"):
            for age in (3, 10):
                for _ in range(2):
                    row = dict(scenario_id="sc.a", user_id=f"u-{status}", status=status, age=age)
                    sessions.append(row)
                    if age == 10 and status in ("created", "in_progress"):
                        expired.append(row)
        sessions += [dict(scenario_id="sc.a", user_id="old-done", status="completed", age=3 * 365,
                          completed_at=ago(3 * 365, naive=True)) for _ in range(2)]
        sessions.append(dict(scenario_id="sc.a", user_id="never-active", status="created", age=None))
        ages = {}
        for row in sessions:
            ages[id(row)] = row.pop("age")
        ins(conn, "chattrain.sessions", sessions)
        messages = ins(conn, "chattrain.messages", [
            dict(session_id=s["id"], role=role, content=f"{role} says hi") for s in sessions for role in ("user", "assistant")
        ])
        first = {m["session_id"]: m["id"] for m in messages[::2]}
        # The messages' trigger touched last_activity_at: set the ages now.
        for s in sessions:
            age = ages[id(s)]
            conn.execute(sa.update(T["chattrain.sessions"]).where(T["chattrain.sessions"].c.id == s["id"])
                         .values(last_activity_at=None if age is None else ago(age, naive=True)))
        kept = [s for s in sessions if s not in expired]
        feedback = ins(conn, "chattrain.feedback", [
            dict(session_id=s["id"], step_id="s1", message_id=first[s["id"]], evaluation_type="rule_based", score=50)
            for s in sessions
        ])
        # Feedback in a kept session about a message of an expired one: on SQLite it stays, its
        # reference cleared; PostgreSQL's tenant link (key, session) refuses it (docs/schema.md).
        crossing = [dict(session_id=kept[i]["id"], step_id="s2", message_id=first[expired[i]["id"]],
                         evaluation_type="manual") for i in range(2)]
        cross = refused_across_tenants(conn, lambda: ins(conn, "chattrain.feedback", crossing), "feedback_message_id_fkey")
        logs = []
        for age in (100, 80):
            logs += [dict(user_id="u", activity_type="message_sent", session_id=None, timestamp=ago(age, naive=True)) for _ in range(3)]
            logs += [dict(user_id="u", activity_type="session_start", session_id=s["id"], timestamp=ago(age, naive=True))
                     for s in expired + kept[:3]]
        ins(conn, "chattrain.user_activity_logs", logs)
        ins(conn, "chattrain.documents", [
            dict(scenario_id=sc, filename=f"{sc}.md", chunk_index=i, content="text", content_type="markdown")
            for sc in ("sc.a", "sc.gone") for i in range(2)
        ])

        expired_ids = {s["id"] for s in expired}
        self.gone["chattrain.sessions"] |= {key(s, "chattrain.sessions") for s in expired}
        self.gone["chattrain.messages"] |= {key(m, "chattrain.messages") for m in messages if m["session_id"] in expired_ids}
        self.gone["chattrain.feedback"] |= {key(f, "chattrain.feedback") for f in feedback if f["session_id"] in expired_ids}
        for f in cross:
            self.cleared["chattrain.feedback"][key(f, "chattrain.feedback")] = "message_id"
        old_logs = {key(r, "chattrain.user_activity_logs") for r in logs if r["timestamp"] < ago(90, naive=True)}
        self.gone["chattrain.user_activity_logs"] |= old_logs
        logs_of_expired = [r for r in logs if r.get("session_id") in expired_ids]
        for r in logs_of_expired:
            self.cleared["chattrain.user_activity_logs"][key(r, "chattrain.user_activity_logs")] = "session_id"
        self.expect["chattrain.abandoned_sessions"] = (
            {"chattrain.sessions": 4, "chattrain.messages": 8, "chattrain.feedback": 4},
            {**({"chattrain.feedback": len(cross)} if cross else {}), "chattrain.user_activity_logs": len(logs_of_expired)},
        )
        self.expect["chattrain.activity_logs"] = ({"chattrain.user_activity_logs": len(old_logs)}, {})
        self.expect["chattrain.orphaned_documents"] = ({"chattrain.documents": 2}, {})

    def orphan_scenario(self, scenario: str) -> None:
        """Delete a scenario its documents still reference, past the foreign key: the orphans the
        orphaned-documents policy exists for (a restore or a manual fix can leave them)."""
        table = T["chattrain.documents"]
        with self.engine.connect() as conn:
            self.gone["chattrain.documents"] |= {
                tuple(r) for r in conn.execute(sa.select(table.c.id).where(table.c.scenario_id == scenario))
            }
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                conn.exec_driver_sql(f"DELETE FROM chattrain.scenarios WHERE id = '{scenario}'")
        else:
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA foreign_keys = OFF")
                raw.driver_connection.execute(f"DELETE FROM chattrain.scenarios WHERE id = '{scenario}'")
            finally:
                raw.close()

    def academy(self, conn) -> None:
        ins, key = self.insert, self.key
        cache = ins(conn, "academy.cache_entries", [
            dict(cache_key=f"k{i}", content_type="response", expires_at=None if days is None else ago(days))
            for i, days in enumerate((1, 1, -1, -1, None))
        ])
        memory = ins(conn, "academy.session_memory", [
            dict(session_id=f"m{i}", memory_type="context", content="x", last_accessed=ago(days))
            for i, days in enumerate((40, 40, 20, 20))
        ])
        ins(conn, "academy.conversation_logs", [
            dict(message_type="user", message_content="old", created_at=ago(2 * 365)) for _ in range(2)
        ])
        self.gone["academy.cache_entries"] |= {key(r, "academy.cache_entries") for r in cache[:2]}
        self.gone["academy.session_memory"] |= {key(r, "academy.session_memory") for r in memory[:2]}
        self.expect["academy.expired_cache"] = ({"academy.cache_entries": 2}, {})
        self.expect["academy.stale_session_memory"] = ({"academy.session_memory": 2}, {})

    def voice(self, conn) -> None:
        ins, key = self.insert, self.key
        old, new = ins(conn, "voice.conversations", [
            dict(session_id=f"c{i}", room_name="r", status="completed", started_at=ago(days))
            for i, days in enumerate((200, 10))
        ])
        errors = ins(conn, "voice.error_logs", [
            dict(error_type="asr", error_message="x", severity="low", created_at=ago(days),
                 conversation_id=conversation["id"])
            for days in (100, 50) for conversation in (old, new)
        ])
        # metric_value is the age in days; two identical old rows and two identical new ones.
        moments = {days: ago(days) for days in (40, 35, 10, 5)}
        ins(conn, "voice.system_metrics", [
            dict(time=moments[days], metric_name="latency", metric_value=days, conversation_id=None)
            for days in (40, 40, 35, 10, 10, 5)
        ] + [dict(time=moments[40], metric_name="turns", metric_value=40, conversation_id=old["id"])])
        self.gone["voice.error_logs"] |= {key(r, "voice.error_logs") for r in errors[:2]}
        self.expect["voice.error_logs"] = ({"voice.error_logs": 2}, {})
        self.expect["voice.system_metrics"] = ({"voice.system_metrics": 4}, {})

    def dispatch(self, conn) -> None:
        ins, key = self.insert, self.key
        (scenario,) = ins(conn, "dispatch.training_scenarios", [
            dict(name="fire", description="d", caller_profile={}, scenario_script={}, difficulty_level="easy")
        ])
        calls = ins(conn, "dispatch.call_sessions", [
            dict(operator_id="op", scenario_id=scenario["id"], status=status, started_at=ago(days))
            for status in ("terminated", "error", "completed", "active") for days in (200, 100)
        ])
        transcripts = ins(conn, "dispatch.call_transcripts", [
            dict(session_id=c["id"], timestamp_ms=i, speaker="caller", text="help") for c in calls for i in range(2)
        ])
        entities = ins(conn, "dispatch.extracted_entities", [
            dict(transcript_id=t["id"], session_id=t["session_id"], entity_type="LOCATION", entity_value="x", confidence_score=0.9,
                 start_char=0, end_char=1) for t in transcripts
        ])
        metrics = ins(conn, "dispatch.performance_metrics", [
            dict(session_id=c["id"], metric_name="empathy", metric_value=1.0) for c in calls
        ])
        dead = {c["id"] for c in calls if c["status"] in ("terminated", "error") and c["started_at"] < ago(180)}
        dead_transcripts = {t["id"] for t in transcripts if t["session_id"] in dead}
        self.gone["dispatch.call_sessions"] |= {(i,) for i in dead}
        self.gone["dispatch.call_transcripts"] |= {(i,) for i in dead_transcripts}
        self.gone["dispatch.extracted_entities"] |= {key(e, "dispatch.extracted_entities") for e in entities
                                                     if e["transcript_id"] in dead_transcripts}
        self.gone["dispatch.performance_metrics"] |= {key(m, "dispatch.performance_metrics") for m in metrics
                                                      if m["session_id"] in dead}
        self.expect["dispatch.failed_calls"] = (
            {"dispatch.call_sessions": 2, "dispatch.call_transcripts": 4, "dispatch.extracted_entities": 4,
             "dispatch.performance_metrics": 2},
            {},
        )


def expected_metrics(before_rows: list[str]) -> list[str]:
    """system_metrics rows younger than 30 days (metric_value holds the age in days)."""
    return [r for r in before_rows if "Decimal('40" not in r and "Decimal('35" not in r]


# --- the tests ----------------------------------------------------------------------------------


def test_dry_run_predicts_and_the_run_deletes_exactly_the_expired_rows(db):
    world = World(db.engine).build()
    before = snapshot(db.engine)

    predicted = cleanup(db, CleanupRequest(dry_run=True))
    assert snapshot(db.engine) == before, "the dry run changed data"
    assert by_policy(predicted) == world.expect
    assert {o.policy: o.status for o in predicted.outcomes if o.action == "archive"} == {
        "dispatch.completed_calls": "archive", "voice.conversations": "archive",
        "academy.conversation_logs": "archive", "chattrain.completed_sessions": "archive",
    }

    # Small batches, so a policy takes several, over keys that are UUIDs, integers and rowid (or,
    # on PostgreSQL, ranges of pages for a table nothing references: test_page_walk_* below).
    report = cleanup(db, CleanupRequest(batch_size=3))
    assert report.status == "succeeded", report.message
    assert by_policy(report) == by_policy(predicted)
    assert {o.policy: o for o in report.outcomes}["chattrain.abandoned_sessions"].batches >= 2

    after = snapshot(db.engine)
    expected = expected_after(before, world.gone, world.cleared)
    expected["voice.system_metrics"] = {"rows": expected_metrics(before["voice.system_metrics"]["rows"])}
    assert after == expected
    assert orphans(db.engine) == {}

    statuses = [(r["status"], r["rows"]) for r in runs_rows(db.engine)]
    assert statuses == [("dry_run", predicted.rows), ("succeeded", report.rows)]

    again = cleanup(db, CleanupRequest(batch_size=3))
    assert again.rows == {} and snapshot(db.engine) == after


def test_older_than_overrides_every_age_but_never_deletes_archive_policies(db):
    World(db.engine).build()
    before = snapshot(db.engine)
    # 60 days is younger than every row the archive policies govern (200-day conversations, 2-year
    # conversation logs, 3-year completed sessions, 200-day completed calls): none of them goes.
    report = cleanup(db, CleanupRequest(older_than=timedelta(days=60)))
    after = snapshot(db.engine)
    for name in ("voice.conversations", "academy.conversation_logs", "dispatch.call_sessions"):
        gone = set(before[name]) - set(after[name])
        if name == "dispatch.call_sessions":
            statuses = {before[name][k][T[name].columns.keys().index("status")] for k in gone}
            assert statuses == {"terminated", "error"}  # the completed ones are the archive policy's
        else:
            assert not gone, name
    sessions = T["chattrain.sessions"]
    status = sessions.columns.keys().index("status")
    assert {before["chattrain.sessions"][k][status] for k in set(before["chattrain.sessions"]) - set(after["chattrain.sessions"])} <= {"created", "in_progress"}
    # 60 days: the 10-day sessions and 40-day memories stay; 100-day and 80-day logs go.
    assert report.rows.get("chattrain.sessions", 0) == 0
    assert report.rows.get("academy.session_memory", 0) == 0
    logs = T["chattrain.user_activity_logs"]
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(logs)).scalar_one() == 0


def test_a_delete_that_cascades_by_two_paths_clears_references_and_keeps_referenced_rows(db):
    """A test-only policy deleting old voice conversations: children cascade (turns, slots,
    transitions, appointments, feedback), a slot reached both by cascade and by SET NULL counts as
    deleted, error logs keep their rows with the reference cleared, and a conversation that
    system_metrics references without ON DELETE stays (deleting it would fail)."""
    policy = RetentionPolicy(name="test.old_conversations", table="voice.conversations", age_column="started_at",
                             default_age="90d", action="delete", description="test only")
    w = World(db.engine)
    with db.engine.begin() as conn:
        blocked, doomed, young = w.insert(conn, "voice.conversations", [
            dict(session_id=f"c{i}", room_name="r", status="completed", started_at=ago(days))
            for i, days in enumerate((200, 150, 5))
        ])
        turns = w.insert(conn, "voice.conversation_turns", [
            dict(conversation_id=c["id"], turn_number=n, role="user", text="t") for c in (blocked, doomed, young) for n in range(2)
        ])
        doomed_turns = [t for t in turns if t["conversation_id"] == doomed["id"]]
        slots = w.insert(conn, "voice.extracted_slots", [
            dict(conversation_id=doomed["id"], turn_id=doomed_turns[0]["id"], slot_name="a", slot_value="1")])
        # A slot of another conversation naming a doomed turn: SQLite clears the link; PostgreSQL's
        # tenant link (key, conversation) refuses it.
        slots += refused_across_tenants(conn, lambda: w.insert(conn, "voice.extracted_slots", [
            dict(conversation_id=young["id"], turn_id=doomed_turns[1]["id"], slot_name="b", slot_value="2")]),
            "extracted_slots_turn_id_fkey")
        w.insert(conn, "voice.state_transitions", [dict(conversation_id=doomed["id"], to_state="end")])
        w.insert(conn, "voice.user_feedback", [dict(conversation_id=doomed["id"], rating=4)])
        errors = w.insert(conn, "voice.error_logs", [
            dict(error_type="x", error_message="y", severity="low", conversation_id=doomed["id"], created_at=ago(1))
        ])
        w.insert(conn, "voice.system_metrics", [
            dict(time=ago(1), metric_name="m", metric_value=1, conversation_id=blocked["id"])
        ])
    before = snapshot(db.engine)
    expected_rows = {"voice.conversations": 1, "voice.conversation_turns": 2, "voice.extracted_slots": 1,
                     "voice.state_transitions": 1, "voice.user_feedback": 1}
    expected_cleared = {"voice.error_logs": 1, **({"voice.extracted_slots": 1} if len(slots) == 2 else {})}

    predicted = cleanup(db, CleanupRequest(dry_run=True), policies=[policy])
    (outcome,) = predicted.outcomes
    assert (outcome.rows, outcome.cleared, outcome.kept_referenced) == (expected_rows, expected_cleared, 1)
    assert outcome.blocked_by == ["voice.system_metrics"]

    report = cleanup(db, CleanupRequest(batch_size=1), policies=[policy])
    assert report.status == "succeeded"
    assert (report.outcomes[0].rows, report.outcomes[0].cleared) == (expected_rows, expected_cleared)
    gone = {
        "voice.conversations": {(doomed["id"],)},
        "voice.conversation_turns": {(t["id"],) for t in doomed_turns},
        "voice.extracted_slots": {(slots[0]["id"],)},
    }
    for name in ("voice.state_transitions", "voice.user_feedback"):
        gone[name] = set(before[name])
    cleared = {"voice.error_logs": {(errors[0]["id"],): "conversation_id"},
               **({"voice.extracted_slots": {(slots[1]["id"],): "turn_id"}} if len(slots) == 2 else {})}
    assert snapshot(db.engine) == expected_after(before, gone, cleared)
    assert orphans(db.engine) == {}


def refused_across_tenants(conn, insert, constraint: str) -> list:
    """Rows linking two tenants: inserted on SQLite (its rows, returned); on PostgreSQL the tenant
    link refuses them (nothing returned)."""
    if conn.dialect.name == "sqlite":
        return insert()
    with pytest.raises(sa.exc.IntegrityError, match=constraint), conn.begin_nested():
        insert()
    return []


def wide(n: int) -> str:
    """Text PostgreSQL cannot compress: a few such rows fill a page."""
    return "".join(uuid.uuid4().hex for _ in range(n // 32 + 1))[:n]


def pages_of(engine, table: str) -> dict:
    """id -> the PostgreSQL page the row is on."""
    with engine.connect() as conn:
        return dict(conn.exec_driver_sql(f"SELECT id, (ctid::text::point)[0]::int FROM {table}").all())


def test_a_stop_between_batches_deletes_whole_batches_in_walk_order_and_the_next_run_finishes(db):
    """SQLite walks the primary key; PostgreSQL (a table nothing references) ranges of pages."""
    logs = T["chattrain.user_activity_logs"]
    w = World(db.engine)
    with db.engine.begin() as conn:
        rows = w.insert(conn, "chattrain.user_activity_logs", [
            dict(user_id="u", activity_type="message_sent", timestamp=ago(days, naive=True), user_agent=wide(1500))
            for days in [100] * 40 + [10] * 10
        ])
    expired = sorted(r["id"] for r in rows if r["timestamp"] < ago(90, naive=True))
    live = {r["id"] for r in rows} - set(expired)
    if db.engine.dialect.name == "postgresql":
        page = pages_of(db.engine, "chattrain.user_activity_logs")
        assert max(page.values()) >= 8, "the rows should span pages"
        # Four rows a batch are less than a page: a batch is one page.
        expired = sorted(expired, key=lambda i: page[i])
        first_three = {i for i in expired if page[i] < 3}
    else:
        first_three = set(expired[:12])
    asked = []

    def stop_after_three_batches() -> bool:
        asked.append(1)
        return len(asked) > 3

    report = cleanup(db, CleanupRequest(policies=("chattrain.activity_logs",), batch_size=4),
                     should_stop=stop_after_three_batches)
    assert report.status == "stopped" and "stopped on request" in report.message
    with db.engine.connect() as conn:
        left = set(conn.execute(sa.select(logs.c.id)).scalars())
    # Three whole batches: of four rows, the smallest keys first, or of the first three pages.
    assert left == live | (set(expired) - first_three)
    assert runs_rows(db.engine)[-1]["status"] == "stopped"

    assert cleanup(db, CleanupRequest(policies=("chattrain.activity_logs",), batch_size=4)).rows == {
        "chattrain.user_activity_logs": 40 - len(first_three)}
    with db.engine.connect() as conn:
        assert set(conn.execute(sa.select(logs.c.id)).scalars()) == live


def test_a_batch_that_meets_a_lock_pauses_and_retries(db):
    """Another transaction holds the table for a while: batches time out on the lock, pause,
    retry, and the run ends with exactly the expired rows gone."""
    w = World(db.engine)
    with db.engine.begin() as conn:
        rows = w.insert(conn, "chattrain.user_activity_logs", [
            dict(user_id="u", activity_type="message_sent", timestamp=ago(days, naive=True)) for days in [100] * 6 + [10] * 4
        ])
    live = {r["id"] for r in rows if r["timestamp"] > ago(90, naive=True)}
    holding, release = threading.Event(), threading.Event()

    def hold():
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("LOCK TABLE chattrain.user_activity_logs IN ACCESS EXCLUSIVE MODE")
            else:  # SQLite: an open write transaction on the chattrain file
                conn.exec_driver_sql("INSERT INTO chattrain.system_config (key, value) VALUES ('lock', '1')")
            holding.set()
            release.wait(10)
            conn.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        threading.Timer(1.5, release.set).start()
        started = time.monotonic()
        report = cleanup(db, CleanupRequest(policies=("chattrain.activity_logs",), lock_timeout=0.2))
    finally:
        release.set()
        holder.join()
    (outcome,) = report.outcomes
    assert report.status == "succeeded", report.message
    assert outcome.retries >= 1 and time.monotonic() - started >= 1.0
    assert outcome.rows == {"chattrain.user_activity_logs": 6}
    with db.engine.connect() as conn:
        assert set(conn.execute(sa.select(T["chattrain.user_activity_logs"].c.id)).scalars()) == live


def test_the_issue_duration_forms_parse_to_retention_windows():
    from tdbctl.ops.durations import parse_duration

    assert {text: parse_duration(text) for text in ("90d", "12h", "2w", "6mo", "1y", "30m")} == {
        "90d": timedelta(days=90), "12h": timedelta(hours=12), "2w": timedelta(weeks=2),
        "6mo": timedelta(days=180), "1y": timedelta(days=365), "30m": timedelta(minutes=30),
    }
    request = CleanupRequest.from_options(before="2025-01-01", max_runtime="30m")
    assert request.before == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert request.max_runtime == timedelta(minutes=30)


def test_before_and_hours_take_exactly_the_rows_past_them_whatever_the_server_time_zone(db_url):
    """ChatTrain's activity logs carry a TIMESTAMP without time zone, holding UTC wall time. On a
    PostgreSQL server whose TimeZone is 14 hours ahead of UTC, each cutoff still falls where the
    option says: a row 11 hours old survives --older-than 12h, one 14.75 days old survives a
    --before 15 days back."""
    if db_url.get_backend_name() == "postgresql":
        from conftest import _admin

        with _admin(db_url).connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{db_url.database}" SET TimeZone = \'Pacific/Kiritimati\'')
    settings = resolve(url_text(db_url))
    upgrade(settings)
    logs = T["chattrain.user_activity_logs"]
    hours = [1, 11, 13, 30, 24 * 14.75, 24 * 15.25, 24 * 20]
    with open_database(settings) as db:
        with db.engine.begin() as conn:
            rows = World(db.engine).insert(conn, "chattrain.user_activity_logs", [
                dict(user_id=f"{h}h", activity_type="message_sent", timestamp=ago(h / 24, naive=True)) for h in hours
            ])
            if db.engine.dialect.name == "postgresql":
                assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "Pacific/Kiritimati"
        by_age = {h: r["id"] for h, r in zip(hours, rows)}

        def left() -> set:
            with db.engine.connect() as conn:
                return set(conn.execute(sa.select(logs.c.id)).scalars())

        before = (NOW - timedelta(days=15)).isoformat()
        report = cleanup(db, CleanupRequest.from_options(policies=["chattrain.activity_logs"], before=before))
        assert report.rows == {"chattrain.user_activity_logs": 2}
        assert left() == {by_age[h] for h in hours if h < 24 * 15}

        request = CleanupRequest.from_options(policies=["chattrain.activity_logs"], older_than="12h", dry_run=True)
        assert cleanup(db, request).rows == {"chattrain.user_activity_logs": 3}
        report = cleanup(db, CleanupRequest.from_options(policies=["chattrain.activity_logs"], older_than="12h"))
        assert report.rows == {"chattrain.user_activity_logs": 3}
        assert left() == {by_age[1], by_age[11]}


@pytest.fixture
def pg_db(pg_url):
    settings = resolve(url_text(pg_url))
    upgrade(settings)
    with open_database(settings) as database:
        yield database


def test_page_walk_skips_rows_a_user_holds_without_waiting_and_the_next_run_takes_them(pg_db):
    """PostgreSQL deletes a table nothing references by ranges of pages. A row another
    transaction holds (FOR UPDATE, or an uncommitted UPDATE) is not waited on: its range goes
    with SKIP LOCKED, the held rows stay, every other expired row goes, in many batches."""
    db, logs = pg_db, T["chattrain.user_activity_logs"]
    with db.engine.begin() as conn:
        rows = World(db.engine).insert(conn, "chattrain.user_activity_logs", [
            dict(user_id="u", activity_type="message_sent", timestamp=ago(days, naive=True), user_agent=wide(1500))
            for days in [100] * 60 + [10] * 15
        ])
    expired = [r["id"] for r in rows if r["timestamp"] < ago(90, naive=True)]
    live = {r["id"] for r in rows} - set(expired)
    held = {expired[7], expired[33]}
    holder = db.engine.connect()
    try:
        holder.exec_driver_sql("BEGIN")
        holder.execute(sa.select(logs.c.id).where(logs.c.id == expired[7]).with_for_update())
        holder.execute(sa.update(logs).where(logs.c.id == expired[33]).values(user_agent="held"))
        # A lock timeout of 5 s: a batch that waited on a held row would take 5 s and give up.
        report = cleanup(db, CleanupRequest(policies=("chattrain.activity_logs",), batch_size=4, lock_timeout=5))
        (outcome,) = report.outcomes
        assert report.status == "succeeded", report.message
        assert outcome.rows == {"chattrain.user_activity_logs": 58} and outcome.batches >= 8
        assert outcome.retries == 0 and outcome.seconds < 5
        with db.engine.connect() as conn:
            assert set(conn.execute(sa.select(logs.c.id)).scalars()) == live | held
    finally:
        holder.rollback()
        holder.close()
    assert cleanup(db, CleanupRequest(policies=("chattrain.activity_logs",))).rows == {"chattrain.user_activity_logs": 2}
    with db.engine.connect() as conn:
        assert set(conn.execute(sa.select(logs.c.id)).scalars()) == live
