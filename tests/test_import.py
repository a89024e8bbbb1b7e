"""tdbctl import: platform databases built from the seed documents' own SQL, copied into the
managed schemas; every mapped row compared on both sides, a killed import rerun."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from tdbctl.engine import create_engine
from tdbctl.schema import metadata

SEED_DOCS = Path(__file__).parent / "seed_docs"
SEEDS = {"voice": "001_2fc5b40f3eef100d", "academy": "002_35db4b5a31f6bc9b", "chattrain": "003_a62b065dfde43b33"}


def seed_sql(domain: str) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", (SEED_DOCS / f"{SEEDS[domain]}.txt").read_text(), re.S)


def build_from_seed(url, domain: str, schema: str | None = None) -> None:
    """The seed's SQL as the seed gives it, block by block (in ``schema`` when given). Blocks that
    are operations rather than schema (CREATE INDEX CONCURRENTLY, REINDEX DATABASE, a psql
    connect) fail in a test database and are left out, as a DBA running the document would."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
        if schema:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            conn.exec_driver_sql(f"SET search_path TO {schema}, public")
        cursor = conn.connection.driver_connection.cursor()  # no parameters: a '%' in the SQL is the SQL's
        for block in seed_sql(domain):
            try:
                cursor.execute(re.sub(r"SELECT create_hypertable\([^)]*\);", "", block))
            except Exception:  # psycopg's own errors: this is the driver connection
                pass
        present = set(sa.inspect(conn).get_table_names(schema=schema or "public"))
    engine.dispose()
    assert present, f"seed {domain} built no table"


@pytest.fixture
def source(pg_server_url):
    """A database of its own for the platform being imported."""
    url = pg_server_url.set(database=f"tdbctl_source_{uuid.uuid4().hex[:10]}")
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    admin.dispose()
    yield url
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    admin.dispose()


def rows_by_key(url, qualified: str, columns: list[str], key: list[str]) -> list[tuple]:
    engine = sa.create_engine(url) if not isinstance(url, sa.Engine) else url
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            f"SELECT {', '.join(f'{c!r}'.replace(chr(39), chr(34)) for c in columns)} FROM {qualified} "
            f"ORDER BY {', '.join(key)}").all()
    engine.dispose()
    return [tuple(r) for r in found]


def one_error_line(result) -> bool:
    """The error is one line, the last (progress lines may come before it)."""
    lines = result.stderr.splitlines()
    return [line for line in lines if line.startswith("tdbctl: error:")] == lines[-1:]


def tdb(target, *args, cwd):
    return run_cli("--database-url", url_text(target), *args, cwd=cwd)


def fill_voice_and_chattrain(url) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO conversations (session_id, room_name, user_id, status, metadata, started_at) "
            "SELECT 'session-' || g, 'room-' || (g %% 7), 'user-' || (g %% 13), "
            "CASE WHEN g %% 5 = 0 THEN 'failed' ELSE 'completed' END, jsonb_build_object('n', g), "
            "now() - g * interval '3 hours' FROM generate_series(1, 300) g")
        conn.exec_driver_sql(
            "INSERT INTO conversation_turns (conversation_id, turn_number, role, text, created_at) "
            "SELECT c.id, t, CASE WHEN t %% 2 = 0 THEN 'assistant' ELSE 'user' END, 'turn ' || t, c.started_at "
            "FROM conversations c, generate_series(1, 3) t")
        conn.exec_driver_sql(
            "INSERT INTO system_metrics (time, metric_name, metric_value, tags) "
            "SELECT now() - g * interval '1 hour', 'latency_ms', g * 1.5, jsonb_build_object('g', g %% 3) "
            "FROM generate_series(1, 120) g")
        conn.exec_driver_sql(
            "INSERT INTO scenarios (id, title, domain, version, tags, smart_goals, llm_profile, steps) "
            "SELECT 'onboarding.case' || g || '.v1', 'Case ' || g, 'onboarding', '1.0.0', ARRAY['a', 'b' || g], "
            "'[]'::jsonb, '{\"model\": \"x\"}'::jsonb, '[{\"id\": \"s1\"}]'::jsonb FROM generate_series(1, 3) g")
        conn.exec_driver_sql(
            "INSERT INTO sessions (scenario_id, user_id, status, started_at) "
            "SELECT 'onboarding.case' || (g %% 3 + 1) || '.v1', 'u' || g, "
            "CASE WHEN g %% 4 = 0 THEN 'completed' ELSE 'in_progress' END, now() - g * interval '1 day' "
            "FROM generate_series(1, 40) g")
        conn.exec_driver_sql(
            "INSERT INTO messages (session_id, step_id, role, content, timestamp) "
            "SELECT s.id, 's1', 'user', 'hello ' || m, s.started_at + m * interval '1 minute' "
            "FROM sessions s, generate_series(1, 5) m")
    engine.dispose()


def common_columns(source_url, source_table: str, target: sa.Table) -> list[str]:
    schema, name = source_table.split(".")
    engine = sa.create_engine(source_url)
    present = {c["name"] for c in sa.inspect(engine).get_columns(name, schema=schema)}
    engine.dispose()
    return [c.name for c in target.columns if c.name in present]


def test_import_from_the_seeds_sql_in_public_carries_every_row(source, pg_url, tmp_path):
    build_from_seed(source, "voice")
    build_from_seed(source, "chattrain")
    fill_voice_and_chattrain(source)
    assert tdb(pg_url, "migrate", cwd=tmp_path).returncode == 0
    env_source = url_text(source)

    preview = tdb(pg_url, "import", env_source, "--dry-run", "--json", cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    plan = {t["source"]: t for t in json.loads(preview.stdout)["tables"]}
    assert plan["public.conversations"]["target"] == "voice.conversations"
    assert plan["public.scenarios"]["target"] == "chattrain.scenarios"  # not academy.scenarios
    assert plan["public.schema_migrations"]["target"] is None  # ChatTrain's own ledger has no home
    assert plan["public.system_metrics"]["rows"] == 120 and plan["public.system_metrics"]["key"] == []
    assert plan["public.messages"]["rows"] == 200
    target = create_engine(pg_url)
    with target.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM voice.conversations").scalar() == 0

    done = tdb(pg_url, "import", env_source, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    copied = [name for name, t in plan.items() if t["target"] and not t["blocking"]]
    for source_table in copied:
        table = metadata.tables[plan[source_table]["target"]]
        columns = common_columns(source, source_table, table)
        order = plan[source_table]["key"] or columns
        assert rows_by_key(source, source_table, columns, order) == rows_by_key(
            target, table.fullname, columns, order), source_table
    with target.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM voice.conversation_turns").scalar() == 900
    assert tdb(pg_url, "migrate", "check", cwd=tmp_path).returncode == 0

    again = tdb(pg_url, "import", env_source, "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    results = json.loads(again.stdout)["results"]
    assert {r["status"] for r in results} == {"verified"} and sum(r["written_now"] for r in results) == 0
    assert all(r["source_checksum"] == r["target_checksum"] for r in results)
    assert {r["source"]: r["verified_rows"] for r in results if r["verified_rows"]} == {
        "public.conversations": 300, "public.conversation_turns": 900, "public.system_metrics": 120,
        "public.scenarios": 3, "public.sessions": 40, "public.messages": 200, "public.system_config": 5}
    with target.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM voice.conversation_turns").scalar() == 900
    # A row changed in the target since is found by the verification, by its key.
    with target.begin() as conn:
        changed = conn.exec_driver_sql(
            "UPDATE voice.conversations SET room_name = 'moved' WHERE session_id = 'session-7' RETURNING id").scalar()
    differs = tdb(pg_url, "import", env_source, cwd=tmp_path)
    assert differs.returncode == 3 and one_error_line(differs), differs.stderr
    assert f"public.conversations -> voice.conversations: 300 rows compared, the row with key ['{changed}'] " \
           "differs in the target" in differs.stderr
    target.dispose()


def test_import_maps_seed_002_values_and_stops_on_one_it_cannot(source, pg_url, tmp_path):
    build_from_seed(source, "academy", schema="academy")  # the per-domain schema layout
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO academy.users (email, username, password_hash) "
            "SELECT 'u' || g || '@example.com', 'user' || g, 'x' FROM generate_series(1, 4) g")
        conn.exec_driver_sql(
            "INSERT INTO academy.conversation_logs (message_type, sender_name, message_content, turn_number, "
            "created_at) SELECT (ARRAY['user_message', 'ai_persona', 'system_message'])[g %% 3 + 1], 's', "
            "'message ' || g, g, now() - g * interval '1 day' FROM generate_series(1, 30) g")
    assert tdb(pg_url, "migrate", cwd=tmp_path).returncode == 0
    done = tdb(pg_url, "import", url_text(source), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    plan = {t["source"]: t for t in json.loads(done.stdout)["tables"]}
    mapped = {c["source"]: c for c in plan["academy.conversation_logs"]["columns"]}
    assert mapped["message_type"]["values"] == {"user_message": "user", "system_message": "system"}
    target = create_engine(pg_url)
    by_id = dict(rows_by_key(source, "academy.conversation_logs", ["id", "message_type"], ["id"]))
    expected = {i: {"user_message": "user", "system_message": "system"}.get(v, v) for i, v in by_id.items()}
    assert dict(rows_by_key(target, "academy.conversation_logs", ["id", "message_type"], ["id"])) == expected
    # The sequences follow the copied keys: a new user gets the next id, not a taken one.
    with target.begin() as conn:
        new_id = conn.exec_driver_sql(
            "INSERT INTO academy.users (email, username, password_hash) VALUES ('n@example.com', 'new', 'x') "
            "RETURNING id").scalar()
    assert new_id == 5

    with engine.begin() as conn:
        narrator = conn.exec_driver_sql(
            "INSERT INTO academy.conversation_logs (message_type, message_content, created_at) "
            "VALUES ('narrator', 'once upon a time', now()) RETURNING id").scalar()
        conn.exec_driver_sql(
            "INSERT INTO academy.conversation_logs (message_type, message_content, created_at) "
            "VALUES ('ai_persona', 'after it', now())")
    stopped = tdb(pg_url, "import", url_text(source), cwd=tmp_path)
    assert stopped.returncode == 3 and one_error_line(stopped), stopped.stderr
    assert f"stopped at the row with key [{narrator}]" in stopped.stderr and "'narrator'" in stopped.stderr
    with target.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM academy.conversation_logs").scalar() == 30
    skipped = tdb(pg_url, "import", url_text(source), "--on-unmapped", "skip", cwd=tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert "1 row message_type is none of user, ai_persona, system, hint" in skipped.stderr
    assert f"first key [{narrator}]" in skipped.stderr
    with target.connect() as conn:
        ids = set(conn.exec_driver_sql("SELECT id FROM academy.conversation_logs").scalars())
    assert ids == set(by_id) | {narrator + 1}
    target.dispose()
    engine.dispose()


def chattrain_sqlite(path: Path) -> None:
    """ChatTrain's development database: seed 003's tables as SQLite takes them (its own note:
    "PostgreSQL array, JSON for SQLite"), without the PostgreSQL-only indexes, views and functions."""
    conn = sqlite3.connect(path)
    for block in seed_sql("chattrain"):
        for statement in block.split(";"):
            if not re.search(r"CREATE TABLE", statement) or "vector" in statement:
                continue
            statement = re.sub(r"\bSERIAL PRIMARY KEY", "INTEGER PRIMARY KEY", statement)
            statement = re.sub(r"\bUUID\b", "TEXT", statement)
            statement = re.sub(r"DEFAULT gen_random_uuid\(\)", "", statement)
            statement = re.sub(r"\bTEXT\[\]", "JSON", statement)
            statement = re.sub(r"\bJSONB\b", "JSON", statement)
            statement = re.sub(r"\bINET\b", "TEXT", statement)
            conn.execute(statement)
    scenario = ("onboarding.claims.v1", "Claims", "onboarding", "1.0.0", '["claims"]', "[]", '{"model": "m"}', "[]")
    conn.execute("INSERT INTO scenarios (id, title, domain, version, tags, smart_goals, llm_profile, steps) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", scenario)
    for n in range(25):
        session = str(uuid.UUID(int=n + 1))
        conn.execute("INSERT INTO sessions (id, scenario_id, user_id, status, started_at, session_data) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (session, scenario[0], f"user{n}", "completed",
                                                   f"2026-11-{n + 1:02d} 10:00:00", json.dumps({"n": n})))
        for m in range(4):
            conn.execute("INSERT INTO messages (id, session_id, role, content, timestamp) VALUES (?, ?, ?, ?, ?)",
                         (str(uuid.uuid4()), session, "user" if m % 2 else "assistant", f"m{m}",
                          f"2026-11-{n + 1:02d} 10:0{m}:00"))
    conn.commit()
    conn.close()


def test_import_from_chattrains_sqlite_file(tmp_path):
    source = tmp_path / "chattrain.db"
    chattrain_sqlite(source)
    orphan = str(uuid.UUID(int=999))
    raw = sqlite3.connect(source)  # SQLite enforced no foreign key: a message of a session long gone
    raw.execute("INSERT INTO messages (id, session_id, role, content, timestamp) VALUES (?, ?, 'user', 'lost', "
                "'2026-11-30 10:00:00')", (orphan, str(uuid.UUID(int=4242))))
    raw.commit()
    raw.close()
    work = tmp_path / "work"
    work.mkdir()
    assert run_cli("migrate", cwd=work).returncode == 0
    refused = run_cli("import", f"sqlite:///{source}", cwd=work)
    assert refused.returncode == 3 and one_error_line(refused), refused.stderr
    assert f"the target refused the row with key ['{orphan}']" in refused.stderr
    done = run_cli("import", f"sqlite:///{source}", "--on-unmapped", "skip", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "public" not in done.stdout and "main.sessions" in done.stdout
    assert f"1 row refused by the target: FOREIGN KEY constraint failed (first key ['{orphan}'])" in done.stderr
    target = create_engine(sa.engine.make_url(f"sqlite:///{work / 'tdbctl.db'}"))
    with target.connect() as conn:
        sessions = {(uuid.UUID(i), u) for i, u in conn.exec_driver_sql("SELECT id, user_id FROM chattrain.sessions")}
        messages = conn.exec_driver_sql("SELECT count(*) FROM chattrain.messages").scalar()
        data = json.loads(conn.exec_driver_sql(
            "SELECT session_data FROM chattrain.sessions WHERE user_id = 'user3'").scalar())
    target.dispose()
    assert sessions == {(uuid.UUID(int=n + 1), f"user{n}") for n in range(25)} and messages == 100
    assert data == {"n": 3}
    target = create_engine(sa.engine.make_url(f"sqlite:///{work / 'tdbctl.db'}"))
    with target.begin() as conn:
        conn.exec_driver_sql("UPDATE chattrain.sessions SET session_data = '{\"n\": 4}' WHERE user_id = 'user3'")
    target.dispose()
    differs = run_cli("import", f"sqlite:///{source}", "--on-unmapped", "skip", cwd=work)
    assert differs.returncode == 3 and one_error_line(differs), differs.stderr
    assert f"main.sessions -> chattrain.sessions: 25 rows compared, the row with key ['{uuid.UUID(int=4)}']" \
           in differs.stderr
    raw = sqlite3.connect(source)
    assert raw.execute("SELECT count(*) FROM messages").fetchone()[0] == 101  # the source is untouched
    raw.close()


def test_a_killed_import_continues_without_duplicates(source, pg_url, tmp_path):
    build_from_seed(source, "voice")
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO conversations (session_id, room_name, status) "
            "SELECT 's' || g, 'r', 'completed' FROM generate_series(1, 2000) g")
        conn.exec_driver_sql(
            "INSERT INTO conversation_turns (conversation_id, turn_number, role, text) "
            "SELECT c.id, t, 'user', repeat('x', 200) FROM conversations c, generate_series(1, 30) t")
    assert tdb(pg_url, "migrate", cwd=tmp_path).returncode == 0
    target = create_engine(pg_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "tdbctl", "--database-url", url_text(pg_url), "import", url_text(source),
         "--batch-size", "500"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with target.connect() as conn:
            moved = conn.exec_driver_sql(
                "SELECT coalesce(max(rows_read), 0) FROM tdbctl.imports "
                "WHERE source_table = 'public.conversation_turns'").scalar()
        if moved >= 5000:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with target.connect() as conn:
        partial = conn.exec_driver_sql("SELECT count(*) FROM voice.conversation_turns").scalar()
    assert 0 < partial < 60000, partial
    rerun = tdb(pg_url, "import", url_text(source), "--json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    results = {r["source"]: r for r in json.loads(rerun.stdout)["results"]}
    turns = results["public.conversation_turns"]
    assert turns["status"] == "verified" and turns["rows_written"] == 60000
    assert turns["written_now"] == 60000 - partial  # the rest, each row once
    columns = common_columns(source, "public.conversation_turns", metadata.tables["voice.conversation_turns"])
    assert rows_by_key(source, "public.conversation_turns", columns, ["id"]) == rows_by_key(
        target, "voice.conversation_turns", columns, ["id"])
    target.dispose()
    engine.dispose()


def test_a_row_the_target_refuses_stops_the_copy_or_is_left_out(source, pg_url, tmp_path):
    """Between two PostgreSQL servers pages go over as COPY text; a page the target refuses (a
    turn whose conversation is gone, in a source that had dropped its foreign key) is read again
    row by row to name the row."""
    build_from_seed(source, "voice")
    engine = sa.create_engine(source)
    orphan = uuid.uuid4()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO conversations (session_id, room_name, status) "
            "SELECT 's' || g, 'r', 'completed' FROM generate_series(1, 100) g")
        conn.exec_driver_sql(
            "INSERT INTO conversation_turns (conversation_id, turn_number, role, text) "
            "SELECT c.id, t, 'user', 'hello' FROM conversations c, generate_series(1, 5) t")
        conn.exec_driver_sql("ALTER TABLE conversation_turns DROP CONSTRAINT conversation_turns_conversation_id_fkey")
        conn.exec_driver_sql("INSERT INTO conversation_turns (id, conversation_id, turn_number, role, text) "
                             f"VALUES ('{orphan}', '{uuid.uuid4()}', 1, 'user', 'lost')")
    engine.dispose()
    assert tdb(pg_url, "migrate", cwd=tmp_path).returncode == 0
    stopped = tdb(pg_url, "import", url_text(source), "--batch-size", "200", cwd=tmp_path)
    assert stopped.returncode == 3 and one_error_line(stopped), stopped.stderr
    assert f"the target refused the row with key ['{orphan}']" in stopped.stderr
    done = tdb(pg_url, "import", url_text(source), "--batch-size", "200", "--on-unmapped", "skip", "--json",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    turns = {r["source"]: r for r in json.loads(done.stdout)["results"]}["public.conversation_turns"]
    assert turns["status"] == "verified" and turns["rows_skipped"] == 1 and turns["verified_rows"] == 500
    columns = common_columns(source, "public.conversation_turns", metadata.tables["voice.conversation_turns"])
    kept = [r for r in rows_by_key(source, "public.conversation_turns", columns, ["id"]) if r[0] != orphan]
    assert kept == rows_by_key(create_engine(pg_url), "voice.conversation_turns", columns, ["id"])
