"""`tdbctl reindex` on both dialects: dry runs change nothing, SQLite rebuilds and analyzes, usage errors."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from stats_support import engine, migrate


@pytest.fixture
def migrated(db_url):
    migrate(db_url)
    return db_url


def _index_names(url) -> set[str]:
    from tdbctl.schema import metadata

    table = metadata.tables["voice.conversations"]
    named = {ix.name for ix in table.indexes}
    if url.get_backend_name() == "postgresql":
        return named | {"conversations_pkey", "conversations_session_id_key"}
    return named | {"sqlite_autoindex_conversations_1", "sqlite_autoindex_conversations_2"}


def _snapshot(url) -> object:
    """What a rebuild would change: each index's file (PostgreSQL) or every file's bytes (SQLite)."""
    if url.get_backend_name() == "postgresql":
        eng = engine(url)
        with eng.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT n.nspname, c.relname, c.relfilenode, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('tdbctl', 'dispatch', 'voice', 'academy', 'chattrain') ORDER BY 1, 2").all()
            runs = conn.exec_driver_sql("SELECT count(*) FROM tdbctl.runs").scalar()
        eng.dispose()
        return rows, runs
    from pathlib import Path

    folder = Path(url.database).parent
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("tdbctl*.db"))}


def test_dry_run_lists_and_changes_nothing(migrated, tmp_path):
    env = {"TDB_DATABASE_URL": url_text(migrated)}
    before = _snapshot(migrated)
    result = run_cli("reindex", "--table", "voice.conversations", "--dry-run", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["leftovers"] == []
    assert {t["index"] for t in plan["targets"]} == _index_names(migrated)
    assert plan["tables_to_analyze"] == ["voice.conversations"]
    concurrently = migrated.get_backend_name() == "postgresql"
    assert {t["concurrently"] for t in plan["targets"]} == {concurrently}
    text = run_cli("reindex", "--all", "--dry-run", cwd=tmp_path, env=env)
    assert text.returncode == 0 and "nothing was changed" in text.stderr
    assert _snapshot(migrated) == before


def test_sqlite_reindex_analyzes_and_records_the_run(sqlite_url, tmp_path):
    migrate(sqlite_url)
    from tdbctl.schema import metadata

    conversations = metadata.tables["voice.conversations"]
    eng = engine(sqlite_url)
    with eng.begin() as conn:
        conn.execute(sa.insert(conversations), [
            {"id": uuid.UUID(int=i), "session_id": f"s{i}", "room_name": "r", "status": "completed",
             "started_at": datetime(2025, 1, 1 + i % 28, tzinfo=timezone.utc)} for i in range(200)])

    def checksum():
        with eng.connect() as conn:
            rows = conn.execute(sa.select(conversations.c.id, conversations.c.session_id)
                                .order_by(conversations.c.session_id)).all()
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    before = checksum()
    result = run_cli("reindex", "--table", "voice.conversations", cwd=tmp_path,
                     env={"TDB_DATABASE_URL": url_text(sqlite_url)})
    assert result.returncode == 0, result.stderr
    assert "ANALYZE voice.conversations" in result.stderr
    lines = result.stdout.splitlines()
    header = lines.index("index\thow\tbefore\tafter\ttook\terror")
    rebuilt = [line.split("\t") for line in lines[header + 1:]]
    assert {r[0] for r in rebuilt} == {f"voice.{name}" for name in _index_names(sqlite_url)}
    assert {r[1] for r in rebuilt} == {"plain"} and all(r[2].endswith("KiB") for r in rebuilt)
    assert checksum() == before
    with eng.connect() as conn:
        stat = {r[0] for r in conn.exec_driver_sql("SELECT idx FROM voice.sqlite_stat1 WHERE tbl = 'conversations'")}
        assert stat == _index_names(sqlite_url)
        assert conn.exec_driver_sql("PRAGMA voice.integrity_check").scalar() == "ok"
        run = conn.exec_driver_sql("SELECT command, status, rows FROM tdbctl.runs").one()
    eng.dispose()
    assert (run[0], run[1], json.loads(run[2])) == ("reindex", "succeeded", {"voice.conversations": len(_index_names(sqlite_url))})

    bloated = run_cli("reindex", "--bloated", "--dry-run", cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(sqlite_url)})
    assert bloated.returncode == 0 and "SQLite keeps no index bloat estimate" in bloated.stderr


@pytest.mark.parametrize("args, message", [
    ((), "say what to rebuild"),
    (("--index", "voice.no_such_index"), "no such index"),
    (("--schema", "public"), "no such schema in the database"),
    (("--all", "--table", "voice.conversations"), "does not combine"),
])
def test_usage_errors(sqlite_url, tmp_path, args, message):
    migrate(sqlite_url)
    result = run_cli("reindex", *args, "--dry-run", cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(sqlite_url)})
    assert result.returncode == 2 and message in result.stderr
