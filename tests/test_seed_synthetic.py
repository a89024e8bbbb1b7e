"""`tdbctl seed --synthetic`: deterministic, marked, consistent activity data, on both dialects.

Sizes stay small (tens of sessions per domain); the speed is measured in bench/seed_synthetic.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from terminal import run_on_terminal
from tdbctl.config import resolve
from tdbctl.engine import create_engine
from tdbctl.errors import TdbError
from tdbctl.migrate.commands import upgrade
from tdbctl.ops.durations import parse_duration
from tdbctl.schema import DOMAINS, metadata, policies_of
from tdbctl.seed import count_synthetic, generate_synthetic, remove_synthetic, seed_reference
from tdbctl.seed.synthetic.markers import MARKERS

UNTIL = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
SPAN = timedelta(days=900)  # "30mo"
SYNTHETIC_TABLES = sorted(MARKERS)


def settings_for(url):
    return resolve(url_text(url))


def populate(url, sessions=60, random_seed=7, **options):
    settings = settings_for(url)
    upgrade(settings, lock_wait=5)
    seed_reference(settings)
    return generate_synthetic(settings, sessions=sessions, span="30mo", until=UNTIL.isoformat(),
                              random_seed=random_seed, **options)


@pytest.fixture
def other_url(db_url, tmp_path, request):
    """A second fresh database of the same dialect as db_url."""
    if db_url.get_backend_name() == "sqlite":
        (tmp_path / "other").mkdir()
        yield db_url.set(database=str(tmp_path / "other" / "tdbctl.db"))
        return
    server = request.getfixturevalue("pg_server_url")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"tdbctl_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def scalar(url, statement):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(statement).scalar()
    finally:
        engine.dispose()


def _plain(value):
    if isinstance(value, datetime):
        return (value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value).isoformat()
    if isinstance(value, (Decimal, float)):
        return f"{float(value):.6g}"
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, bytes):
        return value.hex()
    return value


def checksums(url) -> dict[str, str]:
    """sha256 of every synthetic table's rows, ordered by every column."""
    engine = create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for name in SYNTHETIC_TABLES:
                table = metadata.tables[name]
                rows = conn.execute(sa.select(table).where(MARKERS[name](table))
                                    .order_by(*(c for c in table.c if c.name != "embedding")))
                digest = hashlib.sha256()
                for row in rows:
                    digest.update(repr([_plain(v) for v in row]).encode())
                out[name] = digest.hexdigest()
    finally:
        engine.dispose()
    return out


def test_same_random_seed_same_rows_other_seed_other_rows(db_url, other_url):
    first = populate(db_url, random_seed=11)
    second = populate(other_url, random_seed=11)
    assert first.rows == second.rows and first.total > 60 * 4 * 10
    assert checksums(db_url) == checksums(other_url)
    remove_synthetic(settings_for(other_url))
    generate_synthetic(settings_for(other_url), sessions=60, span="30mo", until=UNTIL.isoformat(), random_seed=12)
    ours = checksums(db_url)
    differing = {n for n, c in checksums(other_url).items() if c != ours[n]}
    assert {"dispatch.call_sessions", "voice.conversations", "academy.user_progress", "chattrain.sessions"} <= differing


def _ratio(url, sql: str) -> float:
    return float(scalar(url, sa.text(sql)))


def test_rows_come_in_a_real_platforms_proportions(db_url):
    result = populate(db_url, sessions=120)
    rows = result.rows
    assert {rows[t] for t in ("dispatch.call_sessions", "voice.conversations", "academy.user_progress",
                              "chattrain.sessions")} == {120}
    # Tens of messages per session.
    for child, parent in (("dispatch.call_transcripts", "dispatch.call_sessions"),
                          ("voice.conversation_turns", "voice.conversations"),
                          ("academy.conversation_logs", "academy.user_progress"),
                          ("chattrain.messages", "chattrain.sessions")):
        assert 10 <= rows[child] / rows[parent] <= 80, (child, rows[child] / rows[parent])
    # Most sessions completed, some abandoned or cut short.
    for table, column, done, gave_up in (
        ("dispatch.call_sessions", "status", "completed", "terminated"),
        ("voice.conversations", "status", "completed", "abandoned"),
        ("academy.user_progress", "simulation_status", "completed", "abandoned"),
        ("chattrain.sessions", "status", "completed", "abandoned"),
    ):
        completed = _ratio(db_url, f"SELECT avg(CASE WHEN {column} = '{done}' THEN 1.0 ELSE 0 END) FROM {table}")
        abandoned = _ratio(db_url, f"SELECT avg(CASE WHEN {column} = '{gave_up}' THEN 1.0 ELSE 0 END) FROM {table}")
        assert 0.5 <= completed <= 0.9 and 0.03 <= abandoned <= 0.3, (table, completed, abandoned)
    assert 0 < rows["academy.users"] < rows["academy.user_progress"]
    assert rows["academy.vector_embeddings"] > 0 and rows["chattrain.documents"] > 0


def test_every_foreign_key_points_at_a_row(db_url):
    populate(db_url)
    engine = create_engine(db_url)
    broken = {}
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                if table.schema not in DOMAINS:
                    continue
                for fk in table.foreign_key_constraints:
                    (column,), (target,) = fk.columns, [e.column for e in fk.elements]
                    missing = conn.execute(
                        sa.select(sa.func.count()).select_from(table).where(
                            column.is_not(None), ~sa.exists().where(target == column))
                    ).scalar()
                    if missing:
                        broken[f"{table.fullname}.{column.name}"] = missing
            # Reached at all: the test would be vacuous on empty tables.
            assert conn.execute(sa.text("SELECT count(*) FROM chattrain.feedback WHERE message_id IS NOT NULL")).scalar()
    finally:
        engine.dispose()
    assert broken == {}


# Columns whose time is, by meaning, after the span: an appointment booked for next week, a cache
# entry that has not expired yet.
FUTURE_BY_MEANING = {"voice.appointments.appointment_date", "academy.cache_entries.expires_at"}


def test_every_time_is_inside_the_span_and_children_follow_parents(db_url):
    populate(db_url)
    start, end = (UNTIL - SPAN).replace(tzinfo=None), UNTIL.replace(tzinfo=None)
    engine = create_engine(db_url)
    checked = 0
    try:
        with engine.connect() as conn:
            for name in SYNTHETIC_TABLES:
                table = metadata.tables[name]
                for column in table.c:
                    if not isinstance(column.type, (sa.DateTime, sa.Date)) or f"{name}.{column.name}" in \
                            FUTURE_BY_MEANING:
                        continue
                    low, high = conn.execute(sa.select(sa.func.min(column), sa.func.max(column))
                                             .where(MARKERS[name](table))).one()
                    if low is None:
                        continue
                    low, high = (v.astimezone(timezone.utc).replace(tzinfo=None) if v.tzinfo else v
                                 for v in (low, high))
                    assert start <= low and high <= end, (name, column.name, low, high)
                    checked += 1
            violations = {
                "ended before started": "SELECT count(*) FROM dispatch.call_sessions WHERE ended_at < started_at",
                "voice ended before started": "SELECT count(*) FROM voice.conversations WHERE ended_at < started_at",
                "transcript outside its call": """SELECT count(*) FROM dispatch.call_transcripts t
                    JOIN dispatch.call_sessions s ON s.id = t.session_id
                    WHERE t.created_at < s.started_at OR t.created_at > COALESCE(s.ended_at, s.started_at + s.duration_ms * INTERVAL '1 millisecond')""",
                "turn before its conversation": """SELECT count(*) FROM voice.conversation_turns t
                    JOIN voice.conversations c ON c.id = t.conversation_id WHERE t.created_at < c.started_at
                    OR t.created_at > c.ended_at""",
                "log before its progress": """SELECT count(*) FROM academy.conversation_logs l
                    JOIN academy.user_progress p ON p.id = l.user_progress_id
                    WHERE l.created_at < p.started_at OR l.created_at > p.last_activity""",
                "progress before its user": """SELECT count(*) FROM academy.user_progress p
                    JOIN academy.users u ON u.id = p.user_id WHERE p.started_at < u.created_at""",
                "message outside its session": """SELECT count(*) FROM chattrain.messages m
                    JOIN chattrain.sessions s ON s.id = m.session_id
                    WHERE m.timestamp < s.started_at OR m.timestamp > s.last_activity_at""",
                "completed before started": """SELECT count(*) FROM chattrain.sessions
                    WHERE completed_at < started_at""",
            }
            found = {}
            for label, sql in violations.items():
                if engine.dialect.name == "sqlite":
                    sql = sql.replace("s.started_at + s.duration_ms * INTERVAL '1 millisecond'",
                                      "datetime(s.started_at, '+' || (s.duration_ms / 1000.0) || ' seconds')")
                found[label] = conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()
    assert checked >= 40
    assert found == {label: 0 for label in violations}


def test_every_retention_policy_has_old_rows_to_act_on(db_url):
    populate(db_url, sessions=150)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = {}
            for policy in policies_of(metadata):
                if policy.age_column is None:
                    continue  # orphaned documents: the foreign key keeps there being none
                cutoff = UNTIL - parse_duration(policy.default_age, allow_zero=True)
                table = policy.table_object(metadata)
                found[policy.name] = conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(policy.where(metadata, cutoff))).scalar()
            stale_memory = conn.execute(sa.text(
                "SELECT count(*) FROM academy.session_memory WHERE last_accessed < :cutoff"),
                {"cutoff": UNTIL - timedelta(days=30)}).scalar()
    finally:
        engine.dispose()
    assert found and all(found.values()), found
    assert stale_memory > 0


def test_the_activity_trigger_is_back_and_did_not_stamp_the_load(db_url):
    populate(db_url)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            late = conn.execute(sa.text("SELECT count(*) FROM chattrain.sessions WHERE last_activity_at > :end"),
                                {"end": UNTIL.replace(tzinfo=None)}).scalar()
            sessions = metadata.tables["chattrain.sessions"]
            session_id = conn.execute(sa.select(sessions.c.id).order_by(sessions.c.id).limit(1)).scalar()
            conn.execute(metadata.tables["chattrain.messages"].insert().values(
                session_id=session_id, role="user", content="still there?"))
            touched = conn.execute(sa.select(sessions.c.last_activity_at).where(sessions.c.id == session_id)).scalar()
    finally:
        engine.dispose()
    assert late == 0
    assert touched > UNTIL.replace(tzinfo=None)  # the trigger fired: CURRENT_TIMESTAMP is after UNTIL


def test_remove_deletes_exactly_the_synthetic_rows(db_url, tmp_path):
    first = populate(db_url, sessions=40)
    same = generate_synthetic(settings_for(db_url), sessions=40, span="30mo", until=UNTIL.isoformat(), random_seed=7)
    assert same.loaded_by["id"] and same.rows == {}  # the same arguments again: nothing written, says which run
    assert count_synthetic(settings_for(db_url))["chattrain.sessions"] == 40
    said = run_cli("--database-url", url_text(db_url), "seed", "--synthetic", "--sessions", "40", "--random-seed", "7",
                   "--until", UNTIL.isoformat(), cwd=tmp_path)
    assert said.returncode == 0 and f"nothing to do: run {same.loaded_by['id']} loaded these synthetic rows" in said.stderr
    assert "--again adds another set" in said.stderr
    again = generate_synthetic(settings_for(db_url), sessions=40, span="30mo", until=UNTIL.isoformat(), random_seed=7,
                               again=True)
    assert count_synthetic(settings_for(db_url))["chattrain.sessions"] == 80  # --again adds a set, no clash
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO chattrain.sessions (id, scenario_id, user_id, status) VALUES "
                             "(:id, 'onboarding.claim_handling.v1', 'alice', 'in_progress')"),
                     {"id": uuid.uuid4().hex if engine.dialect.name == "sqlite" else str(uuid.uuid4())})
        conn.execute(sa.text("INSERT INTO academy.users (email, username, password_hash) "
                             "VALUES ('t@example.org', 'synthetic_teacher', 'x')"))
    engine.dispose()
    reference_before = {n: scalar(db_url, sa.text(f"SELECT count(*) FROM {n}"))
                        for n in ("dispatch.training_scenarios", "academy.scenario_personas", "chattrain.system_config")}

    dry = run_cli("--database-url", url_text(db_url), "seed", "--remove-synthetic", "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    planned = __import__("json").loads(dry.stdout)["rows"]
    assert planned["dispatch.call_sessions"] == 80 and planned["voice.conversations"] == 80
    removed = remove_synthetic(settings_for(db_url))
    assert removed == planned
    assert sum(removed.values()) == first.total + again.total
    assert set(count_synthetic(settings_for(db_url)).values()) == {0}
    # Everything else stayed: users' rows (a '_' is not the marker's '-') and the reference data.
    assert scalar(db_url, sa.text("SELECT user_id FROM chattrain.sessions")) == "alice"
    assert scalar(db_url, sa.text("SELECT username FROM academy.users")) == "synthetic_teacher"
    assert {n: scalar(db_url, sa.text(f"SELECT count(*) FROM {n}")) for n in reference_before} == reference_before
    for name in SYNTHETIC_TABLES:
        if name not in ("chattrain.sessions", "academy.users"):
            assert scalar(db_url, sa.text(f"SELECT count(*) FROM {name}")) == 0, name


def test_a_failing_domain_rolls_back_and_stops_the_domains_loading_beside_it(db_url):
    """ChatTrain has no scenario to train on (its reference data was never loaded): its domain
    fails. On PostgreSQL voice loads beside it and is rolled back with it; on SQLite, one domain
    at a time, voice was committed before chattrain began. Voice's indexes, dropped for the load
    on PostgreSQL, are back."""
    settings = settings_for(db_url)
    upgrade(settings, lock_wait=5)
    seed_reference(settings, domains=["dispatch"])
    on_postgresql = db_url.get_backend_name() == "postgresql"
    indexes = _indexes(db_url) if on_postgresql else None
    with pytest.raises(TdbError, match=r"^no active chattrain scenario to train on: run `tdbctl seed` first$"):
        generate_synthetic(settings, domains=["voice", "chattrain"], sessions=600, span="30mo",
                           until=UNTIL.isoformat())
    if on_postgresql:  # the indexes dropped for the load are back, untouched (same oids)
        assert _indexes(db_url) == indexes
    counts = count_synthetic(settings)
    voice = {n: c for n, c in counts.items() if n.startswith("voice.")}
    if db_url.get_backend_name() == "sqlite":
        assert voice["voice.conversations"] == 600
    else:
        assert set(voice.values()) == {0}
    assert {n: c for n, c in counts.items() if not n.startswith("voice.")} == {
        n: 0 for n in counts if not n.startswith("voice.")}
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            runs = [tuple(r) for r in conn.execute(sa.text("SELECT status, message FROM tdbctl.runs ORDER BY id"))]
    finally:
        engine.dispose()
    assert runs[-1] == ("failed", "no active chattrain scenario to train on: run `tdbctl seed` first")


def test_dry_run_generates_but_writes_nothing(sqlite_url, tmp_path):
    upgrade(settings_for(sqlite_url), lock_wait=5)
    result = run_cli("--database-url", url_text(sqlite_url), "seed", "--synthetic", "--dry-run", "-n", "20",
                     "--until", "2026-01-15", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = __import__("json").loads(result.stdout)
    assert document["synthetic"]["rows"]["dispatch.call_sessions"] == 20
    assert document["synthetic"]["span_end"].startswith("2026-01-15T00:00:00")
    assert set(count_synthetic(settings_for(sqlite_url)).values()) == {0}
    assert scalar(sqlite_url, sa.text("SELECT count(*) FROM dispatch.training_scenarios")) == 0


def test_plain_progress_lines_without_a_terminal(sqlite_url, tmp_path):
    upgrade(settings_for(sqlite_url), lock_wait=5)
    result = run_cli("--database-url", url_text(sqlite_url), "seed", "--synthetic", "-n", "10", "--domain", "voice",
                     "--until", "2026-01-15", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "synthetic voice: generating 10 sessions" in lines
    assert any(line.startswith("synthetic voice: ") and " rows in " in line for line in lines)
    assert "\x1b[" not in result.stderr  # no terminal escapes in a log
    assert result.stdout.splitlines()[:2] == ["# Synthetic rows", "table\trows"]


def test_a_terminal_gets_a_progress_bar(sqlite_url, tmp_path):
    """Under a pseudo-terminal: rich draws a bar per domain, not the plain lines of a log."""
    upgrade(settings_for(sqlite_url), lock_wait=5)
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    env.update(COLUMNS="160", TERM="xterm")
    code, text = run_on_terminal(
        ["--database-url", url_text(sqlite_url), "seed", "--synthetic", "-n", "10", "--domain", "voice",
         "--until", "2026-01-15"], env=env, cwd=tmp_path)
    assert code == 0, text
    assert "synthetic voice" in text and "━" in text and "10/10" in text
    assert "synthetic voice: generating" not in text and "table\trows" not in text


def test_sigkill_mid_domain_leaves_that_domain_untouched(db_url, tmp_path):
    """Killed while loading chattrain: chattrain has nothing, voice is whole or (loading beside
    chattrain on PostgreSQL) has nothing either, and chattrain's trigger (dropped for the load on
    SQLite, disabled on PostgreSQL) and the indexes (dropped on PostgreSQL) are back."""
    settings = settings_for(db_url)
    upgrade(settings, lock_wait=5)
    on_postgresql = db_url.get_backend_name() == "postgresql"
    indexes = _indexes(db_url) if on_postgresql else None
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tdbctl", "--database-url", url_text(db_url), "seed", "--synthetic", "-n", "3000",
         "--domain", "voice", "--domain", "chattrain", "--until", UNTIL.isoformat()], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    try:
        for line in process.stderr:
            if line.startswith("synthetic chattrain: generating"):
                time.sleep(0.3)  # inside the load: triggers off, rows streaming
                break
        children = _children(process.pid)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    # On PostgreSQL each domain generates in a child process: orphaned, they exit at once.
    assert bool(children) == (db_url.get_backend_name() == "postgresql")
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in children if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive == []
    if on_postgresql:  # the indexes dropped for the load are back, untouched (same oids)
        assert _indexes(db_url) == indexes
    counts = count_synthetic(settings)
    voice = {n: c for n, c in counts.items() if n.startswith("voice.")}
    one_at_a_time = db_url.get_backend_name() == "sqlite"  # the dialect's bulk_load_workers() is 1
    if one_at_a_time or voice["voice.conversations"]:
        assert voice["voice.conversations"] == 3000 and voice["voice.conversation_turns"] > 30_000
    else:
        assert set(voice.values()) == {0}
    assert {n: c for n, c in counts.items() if n.startswith("chattrain.")} == {
        n: 0 for n in counts if n.startswith("chattrain.")}
    rerun = run_cli("--database-url", url_text(db_url), "seed", "--domain", "chattrain", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            statuses = [r[0] for r in conn.execute(sa.text("SELECT status FROM tdbctl.runs ORDER BY id"))]
        assert statuses == ["succeeded", "killed", "succeeded"]
        # The trigger works again.
        with engine.begin() as conn:
            session_id = conn.execute(sa.text("SELECT id FROM chattrain.sessions")).scalar()
            assert session_id is None
            sid = uuid.uuid4()
            conn.execute(metadata.tables["chattrain.sessions"].insert().values(
                id=sid, scenario_id="onboarding.claim_handling.v1", user_id="u", last_activity_at=UNTIL))
            conn.execute(metadata.tables["chattrain.messages"].insert().values(session_id=sid, role="user", content="x"))
            touched = conn.execute(sa.select(metadata.tables["chattrain.sessions"].c.last_activity_at)).scalar()
    finally:
        engine.dispose()
    assert touched > UNTIL.replace(tzinfo=None)


def _children(pid: int) -> list[int]:
    found = []
    for stat in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{stat}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat))
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_child_processes_make_the_same_rows_as_this_one(pg_url, pg_server_url, monkeypatch):
    """Each domain generates in a forked child on PostgreSQL; with another thread running no
    child is forked (unsafe) and the rows are made in this process: the same rows either way."""
    from tdbctl.seed.synthetic import producer

    started = []
    start = producer.Worker.start
    monkeypatch.setattr(producer.Worker, "start", lambda self, g, *a: started.append(g.domain) or start(self, g, *a))
    populate(pg_url, sessions=300)
    populate(pg_url, sessions=40, random_seed=8)  # a second run: other salts, integer keys after the first's
    assert sorted(started) == sorted(DOMAINS * 2)
    other = _database(pg_server_url)
    try:
        started.clear()
        monkeypatch.setattr(producer.threading, "active_count", lambda: 2)
        populate(other, sessions=300)
        populate(other, sessions=40, random_seed=8)
        assert started == []
        assert checksums(other) == checksums(pg_url)
    finally:
        _drop(pg_server_url, other)


def _database(server):
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"tdbctl_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server.set(database=name)


def _drop(server, url):
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    admin.dispose()


@pytest.mark.parametrize("bad", [["--span", "0d"], ["--sessions", "0"], ["--until", "someday"]])
def test_bad_synthetic_options_are_refused_before_anything_changes(sqlite_url, tmp_path, bad):
    """Not even the reference rows (which `seed --synthetic` loads first) are written."""
    upgrade(settings_for(sqlite_url), lock_wait=5)
    engine = create_engine(resolve(url_text(sqlite_url)).url)
    with engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(metadata.tables["dispatch.training_scenarios"])).scalar()
    engine.dispose()
    result = run_cli("seed", "--synthetic", *bad, cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(sqlite_url)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("tdbctl: error: ")
    assert result.stdout == ""
    engine = create_engine(resolve(url_text(sqlite_url)).url)
    with engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(metadata.tables["dispatch.training_scenarios"])).scalar()
    engine.dispose()
    assert before == after == 0


def _indexes(url) -> dict[str, tuple[int, str, str | None]]:
    """Every index of the four domains (a partitioned table's too): name -> (oid, definition, comment). A
    rebuilt index has a new oid."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT n.nspname || '.' || c.relname, c.oid::int, pg_get_indexdef(c.oid), "
                "obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('i', 'I') AND n.nspname = ANY(%(s)s)", {"s": list(DOMAINS)}).all()
    finally:
        engine.dispose()
    return {name: (oid, definition, comment) for name, oid, definition, comment in rows}


def test_an_empty_tables_indexes_are_built_after_the_load_and_come_back_the_same(pg_url):
    """PostgreSQL builds an empty table's secondary indexes after its rows are in: same names,
    definitions and comments; indexes behind a key stay where they were (same oid); a table
    someone holds a lock on keeps its indexes; a second run (tables no longer empty) rebuilds none."""
    settings = settings_for(pg_url)
    upgrade(settings, lock_wait=5)
    seed_reference(settings)
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(r"COMMENT ON INDEX chattrain.idx_activity_logs_timestamp IS E'for cleanup''s age scan \\ daily'")
    before = _indexes(pg_url)
    reader = engine.connect()
    try:
        reader.exec_driver_sql("BEGIN")
        reader.exec_driver_sql("LOCK TABLE voice.conversation_turns IN ACCESS SHARE MODE")  # a long read
        generate_synthetic(settings, sessions=40, span="30mo", until=UNTIL.isoformat(), random_seed=7)
    finally:
        reader.rollback()
        reader.close()
        engine.dispose()
    after = _indexes(pg_url)
    # The load made the partitions of its months (with their indexes); every other index is as it was.
    made = {n for n in set(after) - set(before) if "_p20" in n}
    assert made and all(n.split(".")[1].startswith(("conversation_logs_p", "user_activity_logs_p", "error_logs_p",
                                                     "system_metrics_p")) for n in made)
    assert {n: v[1:] for n, v in after.items() if n not in made} == {n: v[1:] for n, v in before.items()}
    assert after["chattrain.idx_activity_logs_timestamp"][2] == "for cleanup's age scan \\ daily"
    rebuilt = {n for n in before if after[n][0] != before[n][0]}
    assert "academy.idx_conversation_logs_timestamp" in rebuilt
    assert not {n for n in rebuilt if n.startswith("voice.") and "conversation_turns" in before[n][1]}
    assert not {n for n in rebuilt if "UNIQUE" in before[n][1] or n.endswith("_pkey")}
    populate(pg_url, sessions=10, random_seed=8)
    # Its migrate moved the first run's rows out of the DEFAULT partitions into partitions of their
    # own, with their indexes; every index there before is the same one.
    assert {n: v for n, v in _indexes(pg_url).items() if n in after} == after
