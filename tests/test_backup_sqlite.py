"""SQLite's backup across attached files, restores killed at each step, and rotation."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import url_text
from terminal import read_until_closed
from test_backup import migrated, take_backup, tdb
from test_backup_data import checksums, fill
from test_backup_pg import spawn_cli, wait_for
from tdbctl.backup import commands
from tdbctl.backup.manifest import read_manifest, write_manifest
from tdbctl.backup.sqlite import PLAN_SUFFIX, TEMP_SUFFIX
from tdbctl.config import resolve
from tdbctl.dialects.sqlite_files import all_files, domain_file
from tdbctl.engine import create_engine
from tdbctl.schema import ALL_SCHEMAS

# Runs a restore in a child process that SIGKILLs itself at a chosen step: after N file renames,
# or just before the rename plan is written.
KILLED_RESTORE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from tdbctl.backup import commands, sqlite
    from tdbctl.config import resolve

    backup, url, where = sys.argv[1], sys.argv[2], sys.argv[3]
    real_replace, renames = os.replace, []

    def replace(src, dst):
        renames.append(src)
        if where.startswith("rename") and len(renames) == int(where[len("rename"):]):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)

    def write_private(path, data):
        os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    if where == "before-plan":
        sqlite.write_private = write_private
    commands.restore(commands.plan_restore(Path(backup), resolve(url)), force=True)
""")


def files_of(url) -> list[Path]:
    return [Path(f) for f in all_files(url.database, ALL_SCHEMAS)]


@pytest.mark.parametrize("where", ["before-plan", "rename3"])
def test_a_restore_killed_at_any_step_is_old_or_finished_by_the_next_restore(sqlite_url, tmp_path, where):
    fill(migrated(sqlite_url))
    backed_up = checksums(sqlite_url)
    path = take_backup(sqlite_url, tmp_path)
    fill(sqlite_url, rows=4, salt=3)
    current = checksums(sqlite_url)
    main = sqlite_url.database

    killed = subprocess.run([sys.executable, "-c", KILLED_RESTORE, str(path), url_text(sqlite_url), where],
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if where == "before-plan":
        # Every file copied beside its target, none renamed: the database is untouched.
        assert not Path(main + PLAN_SUFFIX).exists()
        assert all(Path(str(f) + TEMP_SUFFIX).exists() for f in files_of(sqlite_url))
        assert checksums(sqlite_url) == current
    else:
        # Two files swapped in, the others not yet: the plan says what is left to do.
        assert Path(main + PLAN_SUFFIX).exists()
        assert sum(Path(str(f) + TEMP_SUFFIX).exists() for f in files_of(sqlite_url)) == len(files_of(sqlite_url)) - 2

    again = tdb(sqlite_url, "restore", path, "--force", "--yes", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert ("finished an interrupted restore" in again.stderr) == (where != "before-plan")
    assert checksums(sqlite_url) == backed_up
    leftovers = [p.name for p in Path(main).parent.iterdir() if p.name.endswith((TEMP_SUFFIX, PLAN_SUFFIX))]
    assert leftovers == []


def test_backup_is_one_consistent_moment_across_files_while_a_writer_runs(sqlite_url, tmp_path):
    migrated(sqlite_url)
    stop, written = threading.Event(), [0]

    def writer():
        # Each transaction adds one row to two different files; a torn backup would hold unequal counts.
        engine = create_engine(sqlite_url)
        while not stop.is_set():
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO dispatch.training_scenarios (id, name, description, caller_profile, scenario_script, "
                    "difficulty_level) VALUES (lower(hex(randomblob(16))), 'n', 'd', '{}', '{}', 'easy')")
                conn.exec_driver_sql("INSERT INTO voice.conversations (id, session_id, room_name, status) "
                                     "VALUES (lower(hex(randomblob(16))), lower(hex(randomblob(8))), 'r', 'active')")
            written[0] += 1
        engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for(lambda: written[0] > 20, what="the writer to start")
        settings = resolve(url_text(sqlite_url))
        results = [commands.create(settings, to=str(tmp_path / "backups")) for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    counts = [(r.manifest.tables["dispatch.training_scenarios"].rows, r.manifest.tables["voice.conversations"].rows)
              for r in results]
    assert all(a == b for a, b in counts), counts
    assert len({a for a, _ in counts}) == 3, counts  # the writer really wrote between the backups
    report = commands.verify(results[-1].path, deep=True, settings=settings)
    assert report.ok and {t.table: t.restored for t in report.tables}["voice.conversations"] == counts[-1][1]


def test_a_killed_backup_leaves_no_backup_and_the_next_one_cleans_up(sqlite_url, tmp_path):
    migrated(sqlite_url)
    backups = tmp_path / "backups"
    blocker = sqlite3.connect(domain_file(sqlite_url.database, "voice"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the backup's read lock waits on this
    try:
        running = spawn_cli(sqlite_url, "backup", "--to", backups, cwd=tmp_path)
        partial = wait_for(lambda: [p for p in backups.iterdir() if p.name.startswith(".partial-")]
                           if backups.exists() else None, what="the partial backup")
        time.sleep(0.3)
        assert running.poll() is None
        running.send_signal(signal.SIGKILL)
        running.wait()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    listed = tdb(sqlite_url, "backup", "list", "--from", backups, "--json", cwd=tmp_path)
    assert json.loads(listed.stdout)["backups"] == []
    assert partial[0].exists()
    path = take_backup(sqlite_url, tmp_path)
    assert sorted(p.name for p in backups.iterdir()) == [path.name]


def _aged(path: Path, days: float) -> None:
    manifest = read_manifest(path)
    manifest.created_at = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()
    write_manifest(path, manifest)


def test_rotation_keeps_exactly_what_it_promises_and_never_the_newest(sqlite_url, tmp_path):
    settings = resolve(url_text(migrated(sqlite_url)))
    directory = tmp_path / "backups"
    ages = [10, 6, 3, 1]
    made = [commands.create(settings, to=str(directory)).path for _ in ages]
    for path, days in zip(made, ages):
        _aged(path, days)
    damaged = commands.create(settings, to=str(directory)).path
    _aged(damaged, 30)
    (damaged / "main.sqlite").write_bytes(b"")  # still has a manifest: damaged files are verify's business
    (made[0] / "manifest.json").write_text("{")  # a backup whose manifest is unreadable is never pruned
    (tmp_path / "other").mkdir()
    other = sqlite_url.set(database=str(tmp_path / "other" / "app.db"))
    foreign = commands.create(resolve(url_text(migrated(other))), to=str(directory)).path
    _aged(foreign, 40)

    def names():
        return {p.name for p in directory.iterdir()}

    everything = names()
    # --keep 2: the two newest of this database survive; made[0] is unreadable, the foreign one not ours.
    result = tdb(sqlite_url, "backup", "--to", directory, "--keep", "2", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    newest = Path(json.loads(result.stdout)["path"]).name
    assert set(json.loads(result.stdout)["pruned"]) == {made[1].name, made[2].name, damaged.name}
    assert names() == (everything - {made[1].name, made[2].name, damaged.name}) | {newest}

    # --keep-days: everything younger survives; with --keep as well, either promise keeps a backup.
    _aged(directory / newest, 2)
    survivors = commands.prune(directory, str(Path(sqlite_url.database)), keep=None, keep_days=2.5,
                               newest=directory / newest)
    assert survivors == [] and names() == {made[0].name, made[3].name, newest, foreign.name}
    latest = commands.create(settings, to=str(directory)).path
    mine = str(Path(sqlite_url.database))
    # Now latest (0 days), made[3] (1 day), newest (2 days).
    assert commands.prune(directory, mine, keep=1, keep_days=1.5, newest=latest) == [newest]  # made[3]: by days
    assert commands.prune(directory, mine, keep=2, keep_days=0.5, newest=latest) == []  # made[3]: by count
    assert commands.prune(directory, mine, keep=1, keep_days=0.5, newest=latest) == [made[3].name]

    # Even when every backup is older than --keep-days, the newest good one stays.
    _aged(latest, 100)
    assert commands.prune(directory, mine, keep=None, keep_days=1, newest=latest) == []
    assert names() == {made[0].name, latest.name, foreign.name}


def test_pruning_happens_only_after_a_successful_backup(sqlite_url, tmp_path):
    migrated(sqlite_url)
    first, second = take_backup(sqlite_url, tmp_path), take_backup(sqlite_url, tmp_path)
    for path in (first, second):
        _aged(path, 5)
    before = {p.name for p in (tmp_path / "backups").iterdir()}
    # One of the database's files is not a database any more: this backup fails, and prunes nothing.
    Path(domain_file(sqlite_url.database, "voice")).write_bytes(b"not a database " * 512)
    failed = tdb(sqlite_url, "backup", "--to", tmp_path / "backups", "--keep", "1", cwd=tmp_path)
    assert failed.returncode == 1 and "file is not a database" in failed.stderr, failed.stderr
    assert {p.name for p in (tmp_path / "backups").iterdir()} == before


def test_directory_and_keep_come_from_tdbctl_toml_and_names_carry_the_utc_time(sqlite_url, tmp_path):
    migrated(sqlite_url)
    (tmp_path / "tdbctl.toml").write_text('[backup]\ndir = "nightly"\nkeep = 1\n')
    first = tdb(sqlite_url, "backup", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    path = Path(json.loads(first.stdout)["path"])
    assert path.parent == tmp_path / "nightly" and oct(path.parent.stat().st_mode & 0o777) == "0o700"
    created = read_manifest(path).created
    assert path.name == f"tdbctl-{created:%Y%m%dT%H%M%SZ}" and created.utcoffset() == timedelta(0)

    second = tdb(sqlite_url, "backup", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    newest = Path(json.loads(second.stdout)["path"])
    assert json.loads(second.stdout)["pruned"] == [path.name]  # keep = 1 from the file
    listed = tdb(sqlite_url, "backup", "list", "--json", cwd=tmp_path)
    assert [b["path"] for b in json.loads(listed.stdout)["backups"]] == [str(newest)]


def test_restore_asks_on_a_terminal_and_no_changes_nothing(sqlite_url, tmp_path):
    import os
    import pty

    settings = resolve(url_text(migrated(sqlite_url)))
    fill(sqlite_url)
    backed_up = checksums(sqlite_url)
    path = commands.create(settings, to=str(tmp_path / "backups")).path
    fill(sqlite_url, rows=2, salt=6)
    current = checksums(sqlite_url)

    def answer(reply: bytes) -> tuple[int, str]:
        leader, follower = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "tdbctl", "restore", str(path), "--force"],
                                   stdin=follower, stdout=follower, stderr=follower, cwd=tmp_path,
                                   env={**os.environ, "TDB_DATABASE_URL": url_text(sqlite_url), "COLUMNS": "300"})
        os.close(follower)
        output = b""
        while b"?" not in output:  # the question, then the answer
            chunk = os.read(leader, 4096)
            assert chunk, output
            output += chunk
        os.write(leader, reply)
        output += read_until_closed(leader)
        os.close(leader)
        return process.wait(timeout=60), output.decode(errors="replace")

    code, text = answer(b"n\n")
    assert code == 6 and f"Restore {path.name} (revision" in text and "replace" in text, text
    assert checksums(sqlite_url) == current
    code, text = answer(b"y\n")
    assert code == 0, text
    assert checksums(sqlite_url) == backed_up


def test_a_bad_keep_in_tdbctl_toml_is_refused_before_any_backup(sqlite_url, tmp_path):
    migrated(sqlite_url)
    (tmp_path / "tdbctl.toml").write_text('[backup]\ndir = "nightly"\nkeep = 0\n')
    refused = tdb(sqlite_url, "backup", cwd=tmp_path)
    assert refused.returncode == 2 and "keep = 0: give a whole number of at least 1" in refused.stderr
    assert not (tmp_path / "nightly").exists()


def test_a_backup_copies_no_claims(sqlite_url, tmp_path):
    """A claim held while the backup runs stays out of the copy (as pg_dump leaves it out), so a
    restore never brings back the claim of a run that is still going on."""
    from tdbctl.config import resolve
    from tdbctl.ops.claims import claimed
    from tdbctl.runtime import open_database

    fill(migrated(sqlite_url))
    with open_database(resolve(url_text(sqlite_url))) as db, claimed(db, "cleanup"):
        path = take_backup(sqlite_url, tmp_path)
        with sqlite3.connect(Path(str(sqlite_url.database)).with_name("tdbctl.tdbctl.db")) as live:
            assert live.execute("SELECT count(*) FROM claims").fetchone()[0] == 1
    assert read_manifest(path).tables["tdbctl.claims"].rows == 0
    with sqlite3.connect(next(path.glob("tdbctl.*"))) as copy:
        assert copy.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
    assert commands.verify(path).ok
