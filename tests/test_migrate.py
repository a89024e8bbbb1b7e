"""`tdbctl migrate` end to end, through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from tdbctl.engine import create_engine
from tdbctl.errors import DatabaseError
from tdbctl.migrate.ledger import script_checksum
from tdbctl.resources import migrations_dir
from tdbctl.schema import DOMAINS, metadata


def migrate(url, *args, cwd, env=None):
    return run_cli("--database-url", url_text(url), "migrate", *args, cwd=cwd, env=env)


def schema_snapshot(url) -> dict:
    """Tables -> (columns, indexes) as the database reports them."""
    engine = create_engine(url)
    try:
        inspector = sa.inspect(engine)
        snapshot = {}
        for schema in ("tdbctl", *DOMAINS):
            for table in inspector.get_table_names(schema=schema):
                if table == "alembic_version":  # Alembic's own; left empty at base
                    continue
                columns = tuple((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table, schema=schema))
                indexes = tuple(sorted(i["name"] for i in inspector.get_indexes(table, schema=schema)))
                snapshot[f"{schema}.{table}"] = (columns, indexes)
        return snapshot
    finally:
        engine.dispose()


def ledger_rows(url) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql("SELECT version, checksum FROM tdbctl.migration_ledger ORDER BY version")]
    finally:
        engine.dispose()


def script_revisions() -> list[str]:
    return sorted(p.name.split("_", 1)[0] for p in (migrations_dir() / "versions").glob("*.py"))


def test_upgrade_to_head_then_check_reports_no_drift(db_url, tmp_path):
    result = migrate(db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check = migrate(db_url, "check", "--json", cwd=tmp_path)
    report = json.loads(check.stdout)
    assert check.returncode == 0, report
    assert report["tables"] == {} and report["pending"] == [] and report["blocking"] == report["cosmetic"] == 0
    # Every table of the metadata exists, and the ledger holds each script with its checksum.
    assert set(schema_snapshot(db_url)) >= {t.fullname for t in metadata.sorted_tables}
    scripts = {p.name.split("_", 1)[0]: script_checksum(p) for p in (migrations_dir() / "versions").glob("*.py")}
    assert dict(ledger_rows(db_url)) == scripts


def test_second_upgrade_does_nothing(db_url, tmp_path):
    assert migrate(db_url, cwd=tmp_path).returncode == 0
    again = migrate(db_url, "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["applied"] == []


def test_down_to_base_and_up_again_restores_the_same_schema(db_url, tmp_path):
    assert migrate(db_url, cwd=tmp_path).returncode == 0
    before = schema_snapshot(db_url)
    down = migrate(db_url, "down", "base", "--yes", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert set(schema_snapshot(db_url)) == set(), "base leaves no tdbctl or domain table behind"
    current = migrate(db_url, "current", "--json", cwd=tmp_path)
    assert json.loads(current.stdout)["current"] is None
    assert migrate(db_url, cwd=tmp_path).returncode == 0
    assert schema_snapshot(db_url) == before
    assert migrate(db_url, "check", cwd=tmp_path).returncode == 0


def test_upgrade_step_by_step_with_to(db_url, tmp_path):
    revisions = script_revisions()
    for revision in revisions:
        result = migrate(db_url, "--to", revision, "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["after"] == revision
    assert migrate(db_url, "check", cwd=tmp_path).returncode == 0


def test_down_needs_confirmation_off_a_terminal_and_dry_run_changes_nothing(db_url, tmp_path):
    assert migrate(db_url, cwd=tmp_path).returncode == 0
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(metadata.tables["dispatch.training_scenarios"]).values(
            name="Kept", description="d", caller_profile={}, scenario_script={}, difficulty_level="easy"))
    engine.dispose()
    before = schema_snapshot(db_url)
    refused = migrate(db_url, "down", "0001", cwd=tmp_path)
    assert refused.returncode == 6
    assert "--yes" in refused.stderr
    dry = migrate(db_url, "down", "0001", "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["dropped_tables"]["dispatch.training_scenarios"] == 1
    assert plan["revert"][-1] == "0002"
    assert schema_snapshot(db_url) == before


def _copy_migrations(tmp_path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_edited_migration_is_refused_until_repaired(db_url, tmp_path):
    copy = _copy_migrations(tmp_path)
    env = {"TDB_MIGRATIONS_DIR": str(copy)}
    assert migrate(db_url, "--to", "0002", cwd=tmp_path, env=env).returncode == 0
    script = next((copy / "versions").glob("0002_*.py"))
    recorded = script_checksum(script)
    script.write_text(script.read_text() + "\n# an edit after the fact\n")
    edited = script_checksum(script)

    refused = migrate(db_url, cwd=tmp_path, env=env)
    assert refused.returncode == 4
    assert script.name in refused.stderr and recorded in refused.stderr and edited in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert json.loads(migrate(db_url, "current", "--json", cwd=tmp_path, env=env).stdout)["current"] == "0002"

    assert migrate(db_url, "validate", cwd=tmp_path, env=env).returncode == 4
    assert migrate(db_url, "repair", "--yes", cwd=tmp_path, env=env).returncode == 0
    assert migrate(db_url, "validate", cwd=tmp_path, env=env).returncode == 0
    assert migrate(db_url, cwd=tmp_path, env=env).returncode == 0
    assert dict(ledger_rows(db_url))["0002"] == edited


def test_line_endings_do_not_count_as_an_edit(sqlite_url, tmp_path):
    copy = _copy_migrations(tmp_path)
    env = {"TDB_MIGRATIONS_DIR": str(copy)}
    assert migrate(sqlite_url, "--to", "0002", cwd=tmp_path, env=env).returncode == 0
    script = next((copy / "versions").glob("0002_*.py"))
    script.write_bytes(script.read_bytes().replace(b"\n", b"\r\n"))
    assert migrate(sqlite_url, "validate", cwd=tmp_path, env=env).returncode == 0


def test_more_than_one_head_is_an_error_naming_the_heads(sqlite_url, tmp_path):
    copy = _copy_migrations(tmp_path)
    (copy / "versions" / "0999_branch.py").write_text(
        'revision = "0999"\ndown_revision = "0001"\nbranch_labels = None\ndepends_on = None\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    result = migrate(sqlite_url, cwd=tmp_path, env={"TDB_MIGRATIONS_DIR": str(copy)})
    assert result.returncode == 1
    assert "0999" in result.stderr and script_revisions()[-1] in result.stderr


def test_a_held_lock_makes_migrate_wait_then_exit_with_its_own_code(db_url, tmp_path):
    from tdbctl.dialects import dialect_for

    engine = create_engine(db_url)
    dialect = dialect_for(engine.dialect.name)
    # Another migrate, as far as this one can tell: the lock held for a run (SQLite) or in a transaction (PostgreSQL).
    with dialect.run_lock(engine, "migrate"), engine.connect() as conn, conn.begin():
        dialect.transaction_lock(conn, "migrate")
        started = time.monotonic()
        result = migrate(db_url, "--lock-wait", "1", cwd=tmp_path)
        waited = time.monotonic() - started
    engine.dispose()
    assert result.returncode == 5, result.stderr
    assert "another tdbctl migrate is running" in result.stderr
    assert waited >= 1
    assert json.loads(migrate(db_url, "current", "--json", cwd=tmp_path).stdout)["current"] is None


def test_two_migrates_started_at_once_do_not_collide(db_url, tmp_path):
    command = [sys.executable, "-m", "tdbctl", "--database-url", url_text(db_url), "migrate", "--json"]
    procs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    applied = sorted(len(json.loads(out)["applied"]) for out, _ in outputs)
    assert applied == [0, len(script_revisions())]
    assert [v for v, _ in ledger_rows(db_url)] == script_revisions()
    assert migrate(db_url, "check", cwd=tmp_path).returncode == 0


def test_sql_mode_prints_the_upgrade_without_a_server(tmp_path):
    result = run_cli("--database-url", "postgresql://nobody:pw@127.0.0.1:1/none", "migrate", "--sql", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE dispatch.training_scenarios" in result.stdout
    assert "INSERT INTO tdbctl.migration_ledger" in result.stdout
    assert "lock_timeout" in result.stdout


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_killed_downgrade_on_postgresql_changes_nothing(pg_url, tmp_path):
    assert migrate(pg_url, cwd=tmp_path).returncode == 0
    before = schema_snapshot(pg_url)
    blocker = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    watcher = sa.create_engine(pg_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with blocker.connect() as held, watcher.connect() as watch:
        # The downgrade reverts chattrain, academy and voice, then waits for this lock on dispatch.
        held.exec_driver_sql("SELECT 1 FROM dispatch.training_scenarios LIMIT 1")
        command = [sys.executable, "-m", "tdbctl", "--database-url", url_text(pg_url),
                   "migrate", "down", "base", "--yes", "--lock-timeout", "60"]
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        waiting = _wait_for(lambda: watch.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ltrim(query, E' \\n') LIKE 'DROP%%'").scalar())
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate()
        assert waiting, f"the downgrade never reached the held lock: {stderr.decode()[-500:]}"
        held.rollback()
        _wait_for(lambda: not watch.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE ltrim(query, E' \\n') LIKE 'DROP%%' AND state <> 'idle'").scalar())
    blocker.dispose()
    watcher.dispose()
    assert schema_snapshot(pg_url) == before
    assert migrate(pg_url, "check", cwd=tmp_path).returncode == 0


def test_killed_downgrade_on_sqlite_rolls_back_every_file(sqlite_url, tmp_path):
    assert migrate(sqlite_url, cwd=tmp_path).returncode == 0
    before = schema_snapshot(sqlite_url)
    import sqlite3

    # A reader on the dispatch file: the downgrade can write its journals but not commit.
    reader = sqlite3.connect(str(Path(sqlite_url.database).with_name("tdbctl.dispatch.db")), isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM training_scenarios").fetchall()
    command = [sys.executable, "-m", "tdbctl", "--database-url", str(sqlite_url), "migrate", "down", "base", "--yes"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journals = lambda: list(tmp_path.glob("*.db-journal"))  # noqa: E731
    saw_journal = _wait_for(lambda: len(journals()) >= 2)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.execute("COMMIT")
    reader.close()
    assert saw_journal, "the downgrade never started writing"
    assert schema_snapshot(sqlite_url) == before
    assert migrate(sqlite_url, "check", cwd=tmp_path).returncode == 0


def test_the_light_head_reader_agrees_with_alembic_and_refuses_two_heads(tmp_path):
    """Backup reads the head without Alembic (tdbctl.migrate.heads): the same answer as Alembic's graph."""
    from tdbctl.config import resolve
    from tdbctl.migrate import heads
    from tdbctl.migrate.commands import script_directory, single_head
    from tdbctl.resources import migrations_dir

    versions = migrations_dir() / "versions"
    assert heads.single_head(versions) == single_head(script_directory(resolve("sqlite:///x.db")))
    assert set(heads.revisions(versions)) == {r.revision for r in script_directory(resolve("sqlite:///x.db")).walk_revisions()}
    for source in versions.glob("*.py"):
        (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "9999_branch.py").write_text('revision: str = "9999"\ndown_revision = ("0001",)\n')
    with pytest.raises(DatabaseError, match="2 heads"):
        heads.single_head(tmp_path)


def test_sql_mode_starts_where_the_database_stands(db_url, tmp_path):
    """Alembic's START:END, and by default the database's own revision: never the whole script
    again for a database that has most of it."""
    assert migrate(db_url, "--to", "0004", cwd=tmp_path).returncode == 0
    rest = migrate(db_url, "--sql", cwd=tmp_path)
    assert rest.returncode == 0, rest.stderr
    assert "CREATE TABLE academy." in rest.stdout and "CREATE TABLE dispatch." not in rest.stdout
    span = migrate(db_url, "--sql", "--to", "0002:0003", cwd=tmp_path)
    assert "CREATE TABLE voice." in span.stdout and "CREATE TABLE academy." not in span.stdout
    assert migrate(db_url, cwd=tmp_path).returncode == 0
    done = migrate(db_url, "--sql", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("-- the database is at") and "CREATE" not in done.stdout
    older = migrate(db_url, "--to", "0003", cwd=tmp_path)
    assert older.returncode == 2 and "tdbctl migrate down 0003" in older.stderr


def test_repair_records_an_unledgered_migration_only_when_the_schema_is_what_it_makes(db_url, tmp_path):
    assert migrate(db_url, cwd=tmp_path).returncode == 0
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM tdbctl.migration_ledger WHERE version = '0007'")
    done = migrate(db_url, "repair", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "recorded 0007 (0007_claims.py): applied, added to the ledger" in done.stderr
    assert [v for v, _ in ledger_rows(db_url)] == script_revisions()
    # Marked applied, but what it makes is not there (stamped by hand): refused, nothing recorded.
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM tdbctl.migration_ledger WHERE version = '0007'")
        conn.exec_driver_sql("DROP TABLE tdbctl.claims")
    engine.dispose()
    refused = migrate(db_url, "repair", "--yes", cwd=tmp_path)
    assert refused.returncode == 4 and "0007 are marked applied but are not in the ledger" in refused.stderr
    assert "nothing was recorded" in refused.stderr
    assert [v for v, _ in ledger_rows(db_url)] == [v for v in script_revisions() if v != "0007"]


def test_history_says_when_by_whom_and_how_long_the_same_on_both_dialects(db_url, tmp_path):
    import re

    assert migrate(db_url, cwd=tmp_path).returncode == 0
    shown = migrate(db_url, "history", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1].split("\t") == ["revision", "applied", "how", "by", "took", "description"]
    for line in lines[2:]:
        revision, applied, how, by, took, _description = line.split("\t")
        assert how == "applied"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", applied), line
        assert re.fullmatch(r"[^@\s]+@\S+", by) and re.fullmatch(r"\d+ ms|\d+\.\d+s", took), line
    document = json.loads(migrate(db_url, "history", "--json", cwd=tmp_path).stdout)
    assert all(r["applied_at"].endswith("+00:00") and r["execution_ms"] >= 0 for r in document)


def test_check_groups_differences_by_table_blocking_first_in_plain_words(db_url, tmp_path):
    assert migrate(db_url, cwd=tmp_path).returncode == 0
    engine = create_engine(db_url)
    postgresql = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX academy.idx_users_role")
        # The same index under another name (SQLite names the index's schema, PostgreSQL the table's).
        conn.exec_driver_sql("CREATE INDEX idx_users_role_renamed ON academy.users (role)" if postgresql
                             else "CREATE INDEX academy.idx_users_role_renamed ON users (role)")
        conn.exec_driver_sql("ALTER TABLE voice.error_logs ADD COLUMN extra INTEGER")
        conn.exec_driver_sql("DROP INDEX dispatch.ix_call_sessions_operator_id")
        conn.exec_driver_sql("DROP INDEX dispatch.ix_call_sessions_operator_started")
        conn.exec_driver_sql("ALTER TABLE dispatch.call_sessions DROP COLUMN operator_id")
    engine.dispose()
    shown = migrate(db_url, "check", cwd=tmp_path)
    assert shown.returncode == 3
    lines = [line.split("\t") for line in shown.stdout.splitlines()[2:]]
    assert lines[0] == ["blocking", "dispatch.call_sessions", "column operator_id missing (VARCHAR(100))"]
    assert [line[0] for line in lines] == sorted((line[0] for line in lines), key=lambda s: s != "blocking")
    cosmetic = {(line[1], line[2]) for line in lines if line[0] == "cosmetic"}
    assert ("academy.users", "index idx_users_role_renamed in the database is idx_users_role in the metadata "
            "(same definition: role)") in cosmetic
    assert ("voice.error_logs", "column extra in the database that the metadata does not have") in cosmetic
    assert "Table(" not in shown.stdout and "Column(" not in shown.stdout  # never Alembic's tuples
    assert "1 blocking" not in shown.stderr and "blocking and" in shown.stderr
    document = json.loads(migrate(db_url, "check", "--json", cwd=tmp_path).stdout)
    assert list(document["tables"])[0] == "dispatch.call_sessions" and document["blocking"] == len(
        [line for line in lines if line[0] == "blocking"])
    assert document["tables"]["voice.error_logs"] == [
        {"table": "voice.error_logs", "severity": "cosmetic",
         "difference": "column extra in the database that the metadata does not have"}]


SEED_DOCS = Path(__file__).parent / "seed_docs"


def _built_without_tdbctl(url, *, voice_from_seed: bool) -> None:
    """The domains' schema made as a platform made it, not by tdbctl migrate: from the metadata
    directly, and (PostgreSQL) voice from seed 001's own SQL, as the seed gives it (minus the
    TimescaleDB call, on a server without it)."""
    import re

    from tdbctl.schema import objects_of

    engine = create_engine(url)
    postgresql = engine.dialect.name == "postgresql"
    domains = [d for d in DOMAINS if not (voice_from_seed and d == "voice")]
    with engine.begin() as conn:
        if postgresql:
            for schema in DOMAINS:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS pg_trgm")
        metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t.schema in domains])
        for obj in objects_of(metadata):
            if obj.schema in domains and obj.supported_on(engine.dialect.name) and not obj.requires_extension:
                conn.exec_driver_sql(obj.create_sql(engine.dialect.name))
        if voice_from_seed:
            conn.exec_driver_sql("SET LOCAL search_path TO voice, public")
            seed = (SEED_DOCS / "001_2fc5b40f3eef100d.txt").read_text()
            for block in re.findall(r"```sql\n(.*?)```", seed, re.S):
                conn.exec_driver_sql(re.sub(r"SELECT create_hypertable\([^)]*\);", "", block))
    engine.dispose()


def test_baseline_takes_over_a_schema_built_otherwise_and_refuses_one_that_differs(pg_url, tmp_path):
    _built_without_tdbctl(pg_url, voice_from_seed=True)
    refused = migrate(pg_url, "baseline", cwd=tmp_path)
    assert refused.returncode == 3, refused.stderr
    blocking = {tuple(line.split("\t")[1:]) for line in refused.stdout.splitlines() if line.startswith("blocking")}
    # What the seed forgot (the foreign-key indexes of migration 0008) blocks; its redundant
    # indexes are only cosmetic.
    assert blocking == {("voice.error_logs", "index idx_errors_conversation_id missing (conversation_id)"),
                        ("voice.extracted_slots", "index idx_slots_turn_id missing (turn_id)"),
                        ("voice.system_metrics", "index idx_metrics_conversation_id missing (conversation_id)")}
    assert "cosmetic\tvoice.conversations\tindex idx_conversations_session_id" in refused.stdout
    assert "not baselined: 3 blocking differences" in refused.stderr and "nothing was recorded" in refused.stderr
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # nothing stayed: not even tdbctl's own tables
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'tdbctl'").scalar() == 0
        conn.exec_driver_sql("CREATE INDEX idx_errors_conversation_id ON voice.error_logs (conversation_id); "
                             "CREATE INDEX idx_slots_turn_id ON voice.extracted_slots (turn_id); "
                             "CREATE INDEX idx_metrics_conversation_id ON voice.system_metrics (conversation_id)")
    engine.dispose()

    done = migrate(pg_url, "baseline", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["baselined"] and document["recorded"] == script_revisions()
    assert {d["severity"] for d in document["differences"]} == {"cosmetic"}
    history = migrate(pg_url, "history", "--json", cwd=tmp_path)
    assert {r["how"] for r in json.loads(history.stdout)} == {"baselined"}
    assert migrate(pg_url, "validate", cwd=tmp_path).returncode == 0
    shown = run_cli("--database-url", url_text(pg_url), "info", cwd=tmp_path)
    assert f"{script_revisions()[-1]} (baselined" in shown.stdout
    # Every command works from here: reference data, retention, a second baseline refused.
    assert run_cli("--database-url", url_text(pg_url), "seed", cwd=tmp_path).returncode == 0
    assert run_cli("--database-url", url_text(pg_url), "cleanup", "--dry-run", cwd=tmp_path).returncode == 0
    again = migrate(pg_url, "baseline", cwd=tmp_path)
    assert again.returncode == 2 and "already at revision" in again.stderr


def test_baseline_on_sqlite_and_force(sqlite_url, tmp_path):
    _built_without_tdbctl(sqlite_url, voice_from_seed=False)
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX voice.idx_errors_type")
    engine.dispose()
    refused = migrate(sqlite_url, "baseline", cwd=tmp_path)
    assert refused.returncode == 3
    assert "blocking\tvoice.error_logs\tindex idx_errors_type missing (error_type)" in refused.stdout
    older = migrate(sqlite_url, "baseline", "0004", cwd=tmp_path)
    assert older.returncode == 2 and "head's" in older.stderr
    forced = migrate(sqlite_url, "baseline", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "WARNING: baselined at" in forced.stderr
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        run = conn.exec_driver_sql("SELECT command, status, message FROM tdbctl.runs").one()
    engine.dispose()
    assert run[:2] == ("baseline", "succeeded") and "with --force" in run[2] and "idx_errors_type" in run[2]
    assert migrate(sqlite_url, "check", cwd=tmp_path).returncode == 3  # the drift is still there, and said


def test_reading_commands_create_no_database(tmp_path):
    for args in (["current"], ["history"], ["check"], ["validate"]):
        result = run_cli("migrate", *args, cwd=tmp_path)
        assert result.returncode == 7, (args, result.stderr)
        assert "run `tdbctl migrate` to create it" in result.stderr and len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_migrate_over_a_schema_built_otherwise_refuses_and_names_baseline(db_url, tmp_path):
    _built_without_tdbctl(db_url, voice_from_seed=False)
    refused = migrate(db_url, cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "dispatch already holds 5 of tdbctl's tables" in refused.stderr
    assert "`tdbctl migrate baseline` takes it over" in refused.stderr and "nothing was changed" in refused.stderr
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert not sa.inspect(conn).get_table_names(schema="tdbctl")
    engine.dispose()


def test_migrate_beside_a_platform_built_in_public_asks_first(pg_url, tmp_path):
    import re

    engine = create_engine(pg_url)
    seed = (SEED_DOCS / "001_2fc5b40f3eef100d.txt").read_text()
    with engine.begin() as conn:
        for block in re.findall(r"```sql\n(.*?)```", seed, re.S):
            conn.exec_driver_sql(re.sub(r"SELECT create_hypertable\([^)]*\);", "", block))
    refused = migrate(pg_url, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "public holds 9 tables named as tdbctl's (appointments, conversation_turns" in refused.stderr
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'tdbctl'").scalar() == 0
    engine.dispose()
    beside = migrate(pg_url, "--beside-existing", cwd=tmp_path)
    assert beside.returncode == 0, beside.stderr
