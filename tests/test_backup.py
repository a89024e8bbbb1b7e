"""`tdbctl backup` / `restore` / `backup verify|list` end to end, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from test_backup_data import ROWS, checksums, fill
from tdbctl.backup import commands
from tdbctl.backup.manifest import read_manifest, write_manifest
from tdbctl.config import resolve
from tdbctl.engine import create_engine
from tdbctl.migrate.commands import state, upgrade
from tdbctl.seed import generate_synthetic, seed_reference


def tdb(url, *args, cwd, env=None, **kwargs):
    """The CLI with the URL in the environment, as a cron job would have it (never in argv)."""
    return run_cli(*args, cwd=cwd, env={"TDB_DATABASE_URL": url_text(url), **(env or {})}, **kwargs)


def migrated(url, revision: str = "head"):
    upgrade(resolve(url_text(url)), revision)
    return url


def take_backup(url, tmp_path, *extra, cli: bool = False) -> Path:
    """A backup in tmp_path/backups: through the CLI when that is under test (or options are given),
    else in-process, which saves a process start where the backup is only the test's material."""
    if not (cli or extra):
        return commands.create(resolve(url_text(url)), to=str(tmp_path / "backups")).path
    result = tdb(url, "backup", "--to", tmp_path / "backups", "--json", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return Path(json.loads(result.stdout)["path"])


@pytest.fixture
def other_target(db_url, pg_server_url, tmp_path):
    """A second database of the same dialect that does not exist yet (restore creates it)."""
    if db_url.get_backend_name() == "sqlite":
        yield db_url.set(database=str(tmp_path / "elsewhere" / "restored.db"))
        return
    name = f"tdbctl_test_restored_{uuid.uuid4().hex[:8]}"
    yield pg_server_url.set(database=name)
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_round_trip_restores_every_table_identically(db_url, other_target, tmp_path):
    # The seed's reference and synthetic rows, then type-driven rows in every table (fill).
    settings = resolve(url_text(migrated(db_url)))
    seed_reference(settings)
    generate_synthetic(settings, sessions=3, span="90d", until="2026-01-01")
    inserted = fill(db_url)
    before = checksums(db_url)
    path = take_backup(db_url, tmp_path, cli=True)

    manifest = read_manifest(path)
    assert manifest.tables["tdbctl.claims"].rows == 0  # never in a backup; and not data to the checksums
    assert {t: c.rows for t, c in manifest.tables.items() if t != "tdbctl.claims"} == {
        t: int(s.split(":")[0]) for t, s in before.items()}
    assert all(manifest.tables[t].rows >= n for t, n in inserted.items())
    assert manifest.tables["dispatch.training_scenarios"].rows > ROWS  # the seed's scenarios are in it too
    assert manifest.revision == state(resolve(url_text(db_url))).head and manifest.dialect == db_url.get_backend_name()
    assert oct(path.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in path.rglob("*") if p.is_file()} == {"0o600"}

    # Wipe by hand: rows deleted, rows added, a table emptied.
    fill(db_url, rows=3, salt=7)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM voice.user_feedback")
        conn.exec_driver_sql("DELETE FROM dispatch.training_scenarios")  # cascades to its sessions
    engine.dispose()
    assert checksums(db_url) != before

    restored = tdb(db_url, "restore", path, "--force", "--yes", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert checksums(db_url) == before

    # Into a database that does not exist yet: created, then filled.
    elsewhere = tdb(db_url, "restore", path, "--target", url_text(other_target), "--yes", "--json", cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert json.loads(elsewhere.stdout)["behind_head"] is False
    assert checksums(other_target) == before


def test_restore_refuses_a_target_with_tdbctl_tables_without_force(db_url, tmp_path):
    fill(migrated(db_url))
    path = take_backup(db_url, tmp_path)
    fill(db_url, rows=2, salt=9)
    changed = checksums(db_url)

    refused = tdb(db_url, "restore", path, "--yes", cwd=tmp_path)
    assert refused.returncode == 2
    assert "already holds" in refused.stderr and "--force" in refused.stderr
    # Off a terminal and without --yes, --force alone does not go ahead either.
    unconfirmed = tdb(db_url, "restore", path, "--force", cwd=tmp_path)
    assert unconfirmed.returncode == 6, unconfirmed.stderr
    dry = tdb(db_url, "restore", path, "--force", "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0 and json.loads(dry.stdout)["dry_run"] is True
    assert checksums(db_url) == changed


def test_verify_catches_a_flipped_byte_a_truncated_file_and_an_edited_manifest(db_url, tmp_path):
    fill(migrated(db_url))
    path = take_backup(db_url, tmp_path)
    good = commands.verify(path)
    assert good.ok and good.problems == []

    largest = max((p for p in path.rglob("*") if p.is_file() and p.name != "manifest.json"), key=lambda p: p.stat().st_size)
    relative = largest.relative_to(path).as_posix()

    flipped = shutil.copytree(path, tmp_path / "flipped")
    data = bytearray((flipped / relative).read_bytes())
    data[len(data) // 2] ^= 0x01
    (flipped / relative).write_bytes(bytes(data))
    result = tdb(db_url, "backup", "verify", flipped, "--json", cwd=tmp_path)
    assert result.returncode == 3
    [problem] = json.loads(result.stdout)["problems"]
    assert problem.startswith(f"{relative}: sha256")

    truncated = shutil.copytree(path, tmp_path / "truncated")
    with open(truncated / relative, "r+b") as handle:
        handle.truncate(largest.stat().st_size - 100)
    result = tdb(db_url, "backup", "verify", truncated, cwd=tmp_path)
    assert result.returncode == 3
    assert f"problem\t{relative}: {largest.stat().st_size - 100} bytes, the manifest says {largest.stat().st_size}" in result.stdout

    edited = shutil.copytree(path, tmp_path / "edited")
    text = (edited / "manifest.json").read_text()
    (edited / "manifest.json").write_text(text.replace('"rows": 12', '"rows": 13', 1))
    [problem] = commands.verify(edited).problems
    assert problem.endswith("damaged manifest: the manifest's own checksum does not match its content")

    # A damaged backup is never restored: the target keeps its data.
    before = checksums(db_url)
    refused = tdb(db_url, "restore", flipped, "--force", "--yes", cwd=tmp_path)
    assert refused.returncode == 3 and "nothing was restored" in refused.stderr
    assert checksums(db_url) == before


def test_deep_verify_restores_into_a_scratch_database_and_compares_counts(db_url, pg_server_url, tmp_path):
    fill(migrated(db_url))
    path = take_backup(db_url, tmp_path)
    deep = tdb(db_url, "backup", "verify", path, "--deep", "--json", cwd=tmp_path)
    assert deep.returncode == 0, deep.stderr
    report = json.loads(deep.stdout)
    manifest = read_manifest(path)
    assert {t["table"]: t["restored"] for t in report["tables"]} == {t: c.rows for t, c in manifest.tables.items()}

    # A manifest consistent in itself but promising a row the dump lacks (as a lossy dump would).
    lossy = shutil.copytree(path, tmp_path / "lossy")
    manifest.tables["dispatch.call_sessions"].rows += 1
    write_manifest(lossy, manifest)
    assert tdb(db_url, "backup", "verify", lossy, cwd=tmp_path).returncode == 0  # checksums still fine
    result = tdb(db_url, "backup", "verify", lossy, "--deep", cwd=tmp_path)
    assert result.returncode == 3
    assert "dispatch.call_sessions\t13\t12\tDIFFERS" in result.stdout

    if db_url.get_backend_name() == "postgresql":
        admin = sa.create_engine(pg_server_url, poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            left = conn.exec_driver_sql("SELECT datname FROM pg_database WHERE datname LIKE 'tdbctl_verify_%%'").all()
        admin.dispose()
        assert left == []


def test_an_older_revision_restores_at_that_revision_and_migrate_brings_it_to_head(db_url, other_target, tmp_path):
    fill(migrated(db_url, "0003"))
    before = checksums(db_url)
    path = take_backup(db_url, tmp_path)
    assert read_manifest(path).revision == "0003"

    # The target from the environment, where a password stays out of the process list.
    result = tdb(db_url, "restore", path, "--yes", env={"TDB_RESTORE_TARGET": url_text(other_target)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "at revision 0003" in result.stderr and "`tdbctl migrate` brings it to head" in result.stderr
    target = resolve(url_text(other_target))
    assert state(target).current == "0003"
    assert checksums(other_target) == before
    upgrade(target)
    assert state(target).current == state(target).head


def test_list_shows_size_revision_and_age_and_flags_a_damaged_backup(db_url, tmp_path):
    migrated(db_url)
    first = take_backup(db_url, tmp_path)
    second = take_backup(db_url, tmp_path)
    (first / "manifest.json").unlink()
    listed = tdb(db_url, "backup", "list", "--from", tmp_path / "backups", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    backups = json.loads(listed.stdout)["backups"]
    assert [b["name"] for b in backups if b["good"]] == [second.name]
    good = backups[[b["name"] for b in backups].index(second.name)]
    assert good["bytes"] == sum(p.stat().st_size for p in second.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert good["revision"] == state(resolve(url_text(db_url))).head
    assert [b["problem"] for b in backups if not b["good"]] == [f"{first}: no manifest.json: not a tdbctl backup, or an unfinished one"]
    plain = tdb(db_url, "backup", "list", "--from", tmp_path / "backups", cwd=tmp_path)
    assert f"{second.name}\t" in plain.stdout and "DAMAGED" in plain.stdout


def test_backup_and_restore_help_list_their_options(tmp_path):
    result = run_cli("backup", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--to", "--keep", "--keep-days", "--jobs", "--pg-bin", "list", "verify", "Example:"):
        assert option in result.stdout
    restore = run_cli("restore", "--help", cwd=tmp_path)
    assert restore.returncode == 0
    for option in ("--target", "--force", "--yes", "--dry-run", "--jobs", "Example:"):
        assert option in restore.stdout
    assert "TDB_RESTORE_TARGET" in restore.stdout
    for command, example in ((("backup", "list"), "tdbctl backup list --from"),
                             (("backup", "verify"), "tdbctl backup verify latest --deep")):
        result = run_cli(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Example:" in result.stdout and example in result.stdout


def test_a_failed_first_backup_leaves_no_directory_and_an_empty_list_says_where_it_looked(tmp_path):
    env = {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}"}
    failed = run_cli("backup", cwd=tmp_path, env=env)
    assert failed.returncode == 1 and "nothing to back up" in failed.stderr
    assert not (tmp_path / "backups").exists()
    listed = run_cli("backup", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and listed.stdout == ""
    assert f"no backups in {tmp_path / 'backups'} (no such directory)" in listed.stderr
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "keep.txt").write_text("someone else's")
    assert run_cli("backup", cwd=tmp_path, env=env).returncode == 1
    assert (tmp_path / "backups" / "keep.txt").exists()  # a directory it did not create stays
