"""PostgreSQL only: finding pg_dump, the password out of sight, --jobs, and kills mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

import pg15
from conftest import url_text
from test_backup import migrated, take_backup, tdb
from test_backup_data import checksums, fill
from tdbctl.backup import pgtools
from tdbctl.backup.manifest import read_manifest
from tdbctl.config import resolve
from tdbctl.errors import PrerequisiteError

needs_pg15 = pytest.mark.skipif(not pg15.available(), reason="Debian PostgreSQL 15 binaries not installed")


def admin_engine(url):
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def spawn_cli(url, *args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    env["TDB_DATABASE_URL"] = url_text(url)
    return subprocess.Popen([sys.executable, "-m", "tdbctl", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextmanager
def slow_ddl(url, body: str = "PERFORM pg_sleep(0.1);"):
    """An event trigger runs ``body`` after every DDL command, so that a restore's transaction
    lasts long enough to be caught in the middle; gone afterwards."""
    engine = admin_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE FUNCTION public.tdbctl_test_slow() RETURNS event_trigger LANGUAGE plpgsql "
                             f"AS $$ BEGIN {body} END $$")
        conn.exec_driver_sql("CREATE EVENT TRIGGER tdbctl_test_slow ON ddl_command_end "
                             "EXECUTE FUNCTION public.tdbctl_test_slow()")
    try:
        yield engine
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP EVENT TRIGGER IF EXISTS tdbctl_test_slow")
        engine.dispose()


def wait_for(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def processes_named(program: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if os.path.basename(argv0) == program:
                found.append(int(entry.name))
    return found


def all_command_lines() -> list[bytes]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                pass
    return lines


def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # the process has ended meanwhile
        return {}
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


@needs_pg15
def test_missing_or_too_old_pg_dump_says_which_version_is_needed(pg_url, tmp_path):
    migrated(pg_url)  # the tools are chosen before any data is read: no rows needed
    empty = tmp_path / "no-tools"
    empty.mkdir()
    missing = tdb(pg_url, "backup", "--to", tmp_path / "b", "--pg-bin", empty, cwd=tmp_path)
    assert missing.returncode == 1
    assert f"no pg_dump in {empty} (from --pg-bin): pg_dump, pg_restore and psql 18 or newer are needed" in missing.stderr

    old = tdb(pg_url, "backup", "--to", tmp_path / "b", "--pg-bin", pg15.BIN, cwd=tmp_path)
    assert old.returncode == 1
    assert f"pg_dump 15." in old.stderr and f"in {pg15.BIN} (from --pg-bin) is too old" in old.stderr
    assert "18 or newer are needed" in old.stderr and "postgresql-client-18" in old.stderr
    via_env = tdb(pg_url, "backup", "--to", tmp_path / "b", env={"TDB_PG_BIN": str(pg15.BIN)}, cwd=tmp_path)
    assert via_env.returncode == 1 and "(from TDB_PG_BIN) is too old" in via_env.stderr
    assert len(old.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert not (tmp_path / "b").exists()  # nothing left behind, not even the directory it made

    path = take_backup(pg_url, tmp_path)
    restore = tdb(pg_url, "restore", path, "--force", "--yes", "--pg-bin", pg15.BIN, cwd=tmp_path)
    assert restore.returncode == 1 and "is too old" in restore.stderr and "made by pg_dump 18" in restore.stderr


@needs_pg15
def test_the_search_takes_the_first_pg_dump_new_enough_and_else_names_the_version_needed():
    on_path = {"PATH": str(pg15.BIN)}
    assert pgtools.find_tools(15, environ=on_path).bin_dir == pg15.BIN  # PATH first, when it fits
    newer = pgtools.find_tools(18, environ=on_path)  # too old on PATH: the search goes on
    assert newer.major >= 18 and newer.bin_dir != pg15.BIN
    with pytest.raises(PrerequisiteError) as none_fits:
        pgtools.find_tools(99, environ=on_path, purpose=" for this PostgreSQL 99 server")
    message = none_fits.value.message
    assert message.startswith("pg_dump too old: pg_dump, pg_restore and psql 99 or newer are needed for this "
                              f"PostgreSQL 99 server, found only {pg15.BIN / 'pg_dump'} 15.")
    assert f"{newer.bin_dir / 'pg_dump'} {newer.version}" in message and "postgresql-client-99" in message
    # TDB_PG_BIN is the only directory tried: the newer one found above is not taken instead.
    with pytest.raises(PrerequisiteError, match=r"pg_dump 15\.\d+ in .* \(from TDB_PG_BIN\) is too old"):
        pgtools.find_tools(18, environ={**on_path, "TDB_PG_BIN": str(pg15.BIN)})


def test_password_stays_out_of_the_process_list_and_the_manifest_and_a_killed_dump_leaves_nothing(
    pg_url, pg_server_url, tmp_path
):
    fill(migrated(pg_url))
    role, password = f"tdbctl_backup_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    admin = admin_engine(pg_server_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    url = pg_url.set(username=role, password=password)
    locker = admin_engine(pg_url).connect()
    try:
        # pg_dump waits on this lock, so it can be watched (and killed) while it runs.
        locker.exec_driver_sql("BEGIN")
        locker.exec_driver_sql("LOCK TABLE voice.conversations IN ACCESS EXCLUSIVE MODE")
        backups = tmp_path / "backups"
        first = spawn_cli(url, "backup", "--to", backups, cwd=tmp_path)
        # The dump itself, not one of the `pg_dump --version` probes that look for the client programs.
        dump_pid, session_pid = wait_for(lambda: dumping(first.pid), what="pg_dump reading the psql session's snapshot")
        for pid in (dump_pid, session_pid):
            assert environ_of(pid)["PGPASSWORD"] == password  # how they do get the password
        assert not [c for c in all_command_lines() if password.encode() in c]

        first.send_signal(signal.SIGKILL)
        first.wait()
        wait_for(lambda: dump_pid not in processes_named("pg_dump"), what="pg_dump to die with tdbctl")
        assert [p.name for p in backups.iterdir() if not p.name.startswith(".")] == []
        assert tdb(url, "backup", "list", "--from", backups, "--json", cwd=tmp_path).stdout.count('"name"') == 0
        locker.exec_driver_sql("COMMIT")

        second = tdb(url, "backup", "--to", backups, "--json", cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert password not in second.stdout + second.stderr
        path = Path(json.loads(second.stdout)["path"])
        assert password not in (path / "manifest.json").read_text()
        assert read_manifest(path).source == resolve(url_text(url)).masked_url
        assert f"{role}:***@" in read_manifest(path).source
        assert sorted(p.name for p in backups.iterdir()) == [path.name]  # the killed run's partial is gone
    finally:
        locker.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = \'{role}\'')
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


def test_parallel_dump_and_restore_with_jobs(pg_url, tmp_path):
    fill(migrated(pg_url))
    before = checksums(pg_url)
    path = take_backup(pg_url, tmp_path, "--jobs", "2")
    manifest = read_manifest(path)
    assert manifest.method == "pg_dump -Fd -j 2"
    assert {f.path.split("/")[0] for f in manifest.files} == {"database.dir"} and len(manifest.files) > 5
    fill(pg_url, rows=2, salt=4)
    result = tdb(pg_url, "restore", path, "--force", "--yes", "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert checksums(pg_url) == before


def dumping(parent: int) -> tuple[int, int] | None:
    """(pg_dump, psql) under ``parent`` once pg_dump runs from the snapshot psql holds, else None."""
    dump, session = child_named(parent, "pg_dump"), child_named(parent, "psql")
    if dump is None or session is None:
        return None
    try:
        arguments = Path(f"/proc/{dump}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return (dump, session) if any(a.startswith(b"--snapshot=") for a in arguments) else None


def child_named(parent: int, program: str) -> int | None:
    for pid in processes_named(program):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            return pid
    return None


@pytest.mark.parametrize("victim", ["tdbctl", "pg_restore", "psql"])
def test_a_restore_killed_mid_way_leaves_the_target_as_it_was(pg_url, tmp_path, victim):
    """Killing tdbctl, or only the pg_restore writing into psql, or psql after pg_restore has
    written everything (during the index builds), never commits half a restore, and a restore
    whose psql died never says it succeeded."""
    fill(migrated(pg_url))
    backed_up = checksums(pg_url)
    path = take_backup(pg_url, tmp_path)
    fill(pg_url, rows=3, salt=5)
    current = checksums(pg_url)
    # Every DDL statement of the restore takes a while: the kill lands inside the transaction.
    # For psql: only the post-data commands (indexes, constraints) are slow, so that pg_restore
    # has written everything and exited while psql still works through them.
    slow = ("IF TG_TAG IN ('CREATE INDEX', 'ALTER TABLE', 'CREATE TRIGGER') THEN PERFORM pg_sleep(0.02); "
            "END IF;") if victim == "psql" else "PERFORM pg_sleep(0.1);"
    with slow_ddl(pg_url, slow) as engine:
        restore = spawn_cli(pg_url, "restore", path, "--force", "--yes", cwd=tmp_path)
        backend = wait_for(lambda: restoring(engine), what="the restore's transaction")
        time.sleep(0.5)
        assert restore.poll() is None, restore.communicate()
        if victim == "tdbctl":
            restore.send_signal(signal.SIGKILL)
            restore.wait()
        elif victim == "pg_restore":
            os.kill(child_named(restore.pid, "pg_restore"), signal.SIGKILL)
            _, err = restore.communicate(timeout=60)
            last = err.strip().splitlines()[-1]
            assert restore.returncode == 1 and last.startswith(
                "tdbctl: error: pg_restore (the target was left as it was) failed"), err
            assert "killed by signal 9" in last, err
        else:
            wait_for(lambda: child_named(restore.pid, "pg_restore") is None, what="pg_restore to exit")
            psql = child_named(restore.pid, "psql")
            assert psql is not None and restore.poll() is None, "psql ended before it could be killed"
            os.kill(psql, signal.SIGKILL)
            out, err = restore.communicate(timeout=60)
            last = err.strip().splitlines()[-1]
            assert restore.returncode == 1 and last == (
                "tdbctl: error: restore (psql; the target was left as it was) failed: killed by signal 9"), err
            assert "restored" not in out, out

        def gone():
            with engine.connect() as conn:
                return not conn.exec_driver_sql("SELECT 1 FROM pg_stat_activity WHERE pid = %(p)s", {"p": backend}).first()

        wait_for(gone, what="the restore's session to end")
        assert checksums(pg_url) == current
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP EVENT TRIGGER tdbctl_test_slow")
        again = tdb(pg_url, "restore", path, "--force", "--yes", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert checksums(pg_url) == backed_up


def restoring(engine):
    """The pid of psql's restore transaction once it has written (old schemas dropped, new ones
    being built); None before."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'psql' AND backend_xid IS NOT NULL").scalar()


def test_the_psql_session_answers_in_text_and_fails_in_one_line(pg_url):
    """The session that holds a backup's snapshot: rows as text, NULL as an empty string; a
    statement's error ends it with the server's message; a server that is not there is 'cannot
    connect' (which the backup then explains through psycopg, as other commands do)."""
    from tdbctl.backup.psql_session import NotConnected, PsqlSession
    from tdbctl.errors import DatabaseError
    from tdbctl.ops.libpq import client_uri

    settings = resolve(url_text(pg_url))
    uri, env = client_uri(settings)
    psql = pgtools.ToolSearch().newest().program("psql")
    with PsqlSession(psql, uri, env, str, settings.masked_url) as session:
        assert session.execute("SELECT 1, 'a b', NULL UNION ALL SELECT 2, 'c', 'd' ORDER BY 1").fetchall() == [
            ("1", "a b", ""), ("2", "c", "d")]
        assert session.execute("SELECT 1 WHERE false").fetchone() is None
        with pytest.raises(DatabaseError, match=r'^database error: .*column "nonsense" does not exist'):
            session.execute("SELECT nonsense")
    unreachable = resolve("postgresql://ops@127.0.0.1:1/prod")
    uri, env = client_uri(unreachable)
    with PsqlSession(psql, uri, env, str, unreachable.masked_url) as session:
        with pytest.raises(NotConnected, match=r"^cannot connect to postgresql://ops@127.0.0.1:1/prod: "):
            session.execute("SELECT 1")


def test_a_deep_verify_drops_the_scratch_database_a_killed_verify_left_and_not_a_live_ones(pg_url, tmp_path):
    fill(migrated(pg_url))
    path = take_backup(pg_url, tmp_path)
    engine = admin_engine(pg_url)

    def scratch_databases() -> set[str]:
        with engine.connect() as conn:
            return set(conn.exec_driver_sql(
                "SELECT datname FROM pg_database WHERE datname LIKE 'tdbctl\\_verify\\_%%'").scalars())

    before = scratch_databases()  # other tests' verifies may run on the same server
    killed = spawn_cli(pg_url, "backup", "verify", path, "--deep", cwd=tmp_path)
    (left,) = wait_for(lambda: scratch_databases() - before, timeout=60, what="the scratch database")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert left in scratch_databases()

    # A verify still running holds the advisory lock on its scratch database's name: kept.
    live = left.rsplit("_", 1)[0] + "_" + "0" * 12
    holder = engine.connect()
    try:
        holder.exec_driver_sql(f'CREATE DATABASE "{live}"')
        holder.exec_driver_sql("SELECT pg_advisory_lock(%(c)s::int, hashtext(%(n)s))",
                               {"c": 0x74646276, "n": live})
        again = tdb(pg_url, "backup", "verify", path, "--deep", "--json", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"dropped scratch database {left}, left by a verify that did not finish" in again.stderr
        assert scratch_databases() - before == {live}
    finally:
        holder.close()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{live}" WITH (FORCE)')
        engine.dispose()


@pytest.fixture
def owner_db(pg_server_url):
    """A database owned by a role that is no superuser and may not create databases, with its
    extensions created by the superuser: a managed database (RDS, Cloud SQL, Supabase) as its
    application role sees it."""
    role, name = f"app_{uuid.uuid4().hex[:8]}", f"tdbctl_owned_{uuid.uuid4().hex[:8]}"
    admin = admin_engine(pg_server_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER "{role}"')
    inside = admin_engine(pg_server_url.set(database=name))
    with inside.connect() as conn:
        for extension in ("vector", "pg_trgm"):
            conn.exec_driver_sql(f"CREATE EXTENSION {extension}")
    inside.dispose()
    try:
        yield pg_server_url.set(database=name, username=role, password=None)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()


def test_the_owner_of_a_managed_database_restores_into_it(owner_db, tmp_path):
    """Its dump names extensions the role does not own: the restore leaves them as they are
    instead of failing on COMMENT ON / DROP EXTENSION ('must be owner of extension vector')."""
    fill(migrated(owner_db))
    backed_up = checksums(owner_db)
    path = take_backup(owner_db, tmp_path, cli=True)
    fill(owner_db, rows=3, salt=7)
    assert checksums(owner_db) != backed_up
    result = tdb(owner_db, "restore", path, "--force", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "leaving the target's own extensions as they are: pg_trgm, vector" in result.stderr
    assert checksums(owner_db) == backed_up


def test_a_restore_the_target_server_cannot_take_creates_nothing(pg_url, tmp_path):
    """A dump from a newer server than the target's is refused before the target database is made."""
    fill(migrated(pg_url))
    path = take_backup(pg_url, tmp_path)
    from tdbctl.backup.manifest import write_manifest

    manifest = read_manifest(path)
    (path / "manifest.json").unlink()
    write_manifest(path, type(manifest)(**{**vars(manifest), "server_version": "99.0"}))
    target = pg_url.set(database=f"tdbctl_new_{uuid.uuid4().hex[:8]}")
    result = tdb(pg_url, "restore", path, "--yes", "--target", url_text(target), cwd=tmp_path)
    assert result.returncode == 2 and "PostgreSQL 99" in result.stderr, result.stderr
    with admin_engine(pg_url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_database WHERE datname = %(n)s",
                                    {"n": target.database}).scalar() == 0


def test_a_deep_verify_into_an_empty_database_someone_else_created(owner_db, pg_server_url, tmp_path):
    """The owner role may not CREATE DATABASE: --scratch-url restores into an empty one an admin
    made for it, compares the counts and leaves it empty; a database with tables is refused."""
    fill(migrated(owner_db))
    path = take_backup(owner_db, tmp_path, cli=True)
    refused = tdb(owner_db, "backup", "verify", path, "--deep", cwd=tmp_path)
    assert refused.returncode == 1 and "permission denied to create database" in refused.stderr, refused.stderr
    name = f"tdbctl_scratch_{uuid.uuid4().hex[:8]}"
    admin = admin_engine(pg_server_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER "{owner_db.username}"')
    with admin_engine(pg_server_url.set(database=name)).connect() as conn:  # the admin's part, as for the live one
        conn.exec_driver_sql("CREATE EXTENSION vector")
    try:
        scratch = url_text(owner_db.set(database=name))
        result = tdb(owner_db, "backup", "verify", path, "--deep", "--json", cwd=tmp_path,
                     env={"TDB_SCRATCH_URL": scratch})
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["ok"] and report["tables"] and all(t["ok"] for t in report["tables"])
        with admin_engine(pg_server_url.set(database=name)).connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM pg_namespace WHERE nspname IN "
                                        "('tdbctl', 'dispatch', 'voice', 'academy', 'chattrain')").scalar() == 0
        busy = tdb(owner_db, "backup", "verify", path, "--deep", "--scratch-url", url_text(owner_db), cwd=tmp_path)
        assert busy.returncode == 2 and "is not empty" in busy.stderr, busy.stderr
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_a_restore_waits_for_no_running_cleanup_and_brings_back_no_claims(pg_url, tmp_path):
    """A running cleanup's claim refuses the restore (exit 5) instead of the restore queueing behind
    its batches; claims taken while a backup ran are not in the backup."""
    from tdbctl.ops.claims import claimed
    from tdbctl.runtime import open_database

    fill(migrated(pg_url))
    with open_database(resolve(url_text(pg_url))) as db:
        with claimed(db, "cleanup"):
            path = take_backup(pg_url, tmp_path)
            refused = tdb(pg_url, "restore", path, "--force", "--yes", cwd=tmp_path)
            assert refused.returncode == 5 and "another tdbctl cleanup" in refused.stderr, refused.stderr
            assert "nothing was changed" in refused.stderr
        restored = tdb(pg_url, "restore", path, "--force", "--yes", cwd=tmp_path)
        assert restored.returncode == 0, restored.stderr
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM tdbctl.claims").scalar() == 0
        assert read_manifest(path).tables["tdbctl.claims"].rows == 0


def test_backup_and_restore_see_the_tables_beside_tdbctls(pg_url, tmp_path):
    """A database that also holds an application's own tables: the backup counts them, the deep
    verify compares them, and a restore predicts and refuses by every table it would replace."""
    fill(migrated(pg_url))
    with admin_engine(pg_url).connect() as conn:
        conn.exec_driver_sql("CREATE TABLE public.app_accounts (id int PRIMARY KEY, balance int)")
        conn.exec_driver_sql("INSERT INTO public.app_accounts SELECT i, i FROM generate_series(1, 500) i")
    info = tdb(pg_url, "info", "--json", cwd=tmp_path)
    assert json.loads(info.stdout)["other_schemas"] == {"public": 1}, info.stdout
    path = take_backup(pg_url, tmp_path, cli=True)
    assert read_manifest(path).tables["public.app_accounts"].rows == 500
    deep = tdb(pg_url, "backup", "verify", path, "--deep", "--json", cwd=tmp_path)
    assert deep.returncode == 0, deep.stderr
    assert any(t["table"] == "public.app_accounts" and t["ok"] for t in json.loads(deep.stdout)["tables"])
    with admin_engine(pg_url).connect() as conn:
        conn.exec_driver_sql("UPDATE public.app_accounts SET balance = 0")
    refused = tdb(pg_url, "restore", path, "--yes", cwd=tmp_path)
    assert refused.returncode == 2 and "outside tdbctl's schemas (public.app_accounts)" in refused.stderr, refused.stderr
    restored = tdb(pg_url, "restore", path, "--force", "--yes", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    with admin_engine(pg_url).connect() as conn:
        assert conn.exec_driver_sql("SELECT sum(balance) FROM public.app_accounts").scalar() == 500 * 501 // 2


def test_no_cleanup_starts_while_a_restore_replaces_the_database(pg_url, tmp_path):
    fill(migrated(pg_url))
    path = take_backup(pg_url, tmp_path)
    with slow_ddl(pg_url, "PERFORM pg_sleep(0.02);") as engine:
        restore = spawn_cli(pg_url, "restore", path, "--force", "--yes", cwd=tmp_path)
        wait_for(lambda: restoring(engine), what="the restore's transaction")
        cleanup = tdb(pg_url, "cleanup", "--older-than", "1d", cwd=tmp_path)
        assert cleanup.returncode == 5, cleanup.stderr  # at once, not queued behind the restore
        assert restore.poll() is None, "the restore ended before the cleanup was tried"
        _, err = restore.communicate(timeout=300)
        assert restore.returncode == 0, err
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM tdbctl.claims").scalar() == 0


def test_restoring_a_database_tdbctl_does_not_manage_gives_no_migrate_advice(pg_url, tmp_path):
    with admin_engine(pg_url).connect() as conn:
        conn.exec_driver_sql("CREATE TABLE public.app_accounts (id int PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO public.app_accounts SELECT generate_series(1, 10)")
    path = take_backup(pg_url, tmp_path, cli=True)
    target = pg_url.set(database=f"tdbctl_foreign_{uuid.uuid4().hex[:8]}")
    try:
        result = tdb(pg_url, "restore", path, "--yes", "--target", url_text(target), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "holds no tdbctl tables" in result.stderr and "tdbctl migrate" not in result.stderr
        with admin_engine(target).connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM public.app_accounts").scalar() == 10
    finally:
        with admin_engine(pg_url).connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
