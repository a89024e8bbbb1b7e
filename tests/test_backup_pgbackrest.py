"""Point-in-time recovery with pgBackRest, on a real PostgreSQL 15 cluster archiving into a real
local repository (Debian's pgbackrest). Nothing here is mocked: every backup, restore and drill
runs pgBackRest and starts PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

import pg15
from conftest import run_cli, url_text

needs_pgbackrest = pytest.mark.skipif(
    not pg15.available() or shutil.which("pgbackrest") is None,
    reason="Debian's PostgreSQL 15 and pgbackrest are not installed (scripts/test installs both)")
pytestmark = needs_pgbackrest


@dataclass
class Cluster:
    url: str
    root: Path
    repo: Path

    @property
    def env(self) -> dict:
        return {"TDB_DATABASE_URL": self.url}

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"),
                                isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def sql(self, statement: str, **params):
        engine = self.engine()
        try:
            with engine.connect() as conn:
                result = conn.exec_driver_sql(statement, params or None)
                return result.all() if result.returns_rows else None
        finally:
            engine.dispose()

    def tdb(self, *args, timeout=300):
        return run_cli(*args, cwd=self.root, env=self.env, timeout=timeout)


def _config(root: Path, repo: Path, extra: str = "") -> None:
    (root / "tdbctl.toml").write_text(
        f'[backup]\nengine = "pgbackrest"\n\n[backup.pgbackrest]\nrepo = "{repo}"\narchive_timeout = 5\n{extra}')


def _shared_root() -> Path:
    # The cluster's owner (postgres) runs pgBackRest and must reach the repository: pytest's own
    # temporary directories are closed to other users.
    root = Path(tempfile.mkdtemp(prefix="tdbctl-pgbr-"))
    root.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def cluster():
    root = _shared_root()
    try:
        with pg15.server(["archive_mode=on"]) as url:
            c = Cluster(url, root, root / "repo")
            _config(root, c.repo)
            # PostgreSQL 15 here has no pgvector: dispatch and voice need none (revision 0004).
            assert c.tdb("migrate", "--to", "0004").returncode == 0
            c.sql("CREATE TABLE dispatch.pitr_marks (id integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
            setup = c.tdb("backup", "setup", "--apply", "--json")
            assert setup.returncode == 0, setup.stderr + setup.stdout
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


def marks(cluster_or_url, first: int, last: int) -> None:
    url = cluster_or_url.url if isinstance(cluster_or_url, Cluster) else cluster_or_url
    Cluster(url, Path("."), Path(".")).sql(
        f"INSERT INTO dispatch.pitr_marks (id) SELECT generate_series({first}, {last})")


def keys_of(url: str) -> list[int]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.exec_driver_sql("SELECT id FROM dispatch.pitr_marks ORDER BY id")]
    finally:
        engine.dispose()


def server_now(c: Cluster):
    return c.sql("SELECT clock_timestamp()")[0][0]


def restored_copy(c: Cluster, *args) -> dict:
    result = c.tdb("restore", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stop_copy(document: dict) -> None:
    data = document["data_dir"]
    subprocess.run(["runuser", "-u", "postgres", "--", str(pg15.BIN / "pg_ctl"), "-D", data, "-m", "immediate",
                    "stop"], capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


def copy_url(document: dict) -> str:
    # The copy trusts its private socket; TCP asks for the password it had on the primary.
    return document["url"].replace("postgres@", f"postgres:{pg15.PASSWORD}@")


def test_setup_says_what_to_change_applies_it_and_a_second_run_changes_nothing():
    root = _shared_root()
    try:
        with pg15.server() as url:  # archive_mode off: a restart is needed, and said
            c = Cluster(url, root, root / "repo")
            _config(root, c.repo)
            first = c.tdb("backup", "setup", "--json")
            assert first.returncode == 3, first.stderr
            report = json.loads(first.stdout)
            todo = {s["name"]: s for s in report["steps"] if s["status"] == "todo"}
            assert set(todo) == {"archive_mode", "archive_command", "archive_timeout"}
            assert report["restart_needed"] and any("archive-push %p" in s for s in report["statements"])
            data_dir = c.sql("SHOW data_directory")[0][0]
            auto_conf = Path(data_dir) / "postgresql.auto.conf"
            assert "archive" not in auto_conf.read_text()  # without --apply nothing on the server changed

            applied = c.tdb("backup", "setup", "--apply")
            assert applied.returncode == 3 and "restart" in applied.stderr
            assert "archive-push" in auto_conf.read_text()
            subprocess.run(["runuser", "-u", "postgres", "--", str(pg15.BIN / "pg_ctl"), "-D", data_dir, "-w",
                            "-l", str(Path(data_dir).parent / "log"), "restart", "-m", "fast"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            ready = c.tdb("backup", "setup", "--apply", "--json")
            assert ready.returncode == 0, ready.stdout + ready.stderr
            ready = json.loads(ready.stdout)
            assert ready["complete"] and ready["changed"]
            assert {s["name"]: s["status"] for s in ready["steps"]}["check"] == "ok"

            again = c.tdb("backup", "setup", "--json")
            assert again.returncode == 0, again.stderr
            again = json.loads(again.stdout)
            assert again["complete"] and not again["changed"] and not again["statements"]
            assert {s["status"] for s in again["steps"]} == {"ok"}

            config = Path(ready["config"])
            assert config.stat().st_mode & 0o777 == 0o600 and config.owner() == "postgres"
            for text in (config.read_text(), auto_conf.read_text(),
                         first.stdout + applied.stderr + ready.__repr__()):
                assert pg15.PASSWORD not in text
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_restore_to_a_moment_holds_exactly_the_rows_committed_before_it_from_a_full_or_an_incremental(cluster):
    c = cluster
    c.sql("TRUNCATE dispatch.pitr_marks")
    marks(c, 1, 100)                                     # T1
    full = c.tdb("backup", "--type", "full", "--json")
    assert full.returncode == 0, full.stderr
    full = json.loads(full.stdout)["backup"]
    assert full["type"] == "full"
    marks(c, 101, 200)                                   # T2
    incr = c.tdb("backup", "--type", "incr", "--json")
    assert incr.returncode == 0, incr.stderr
    incr = json.loads(incr.stdout)["backup"]
    assert incr["type"] == "incr" and incr["prior"] == full["label"]
    time.sleep(1.1)
    between = server_now(c)
    time.sleep(1.1)
    marks(c, 201, 300)                                   # T3
    c.sql("SELECT pg_switch_wal()")

    listed = json.loads(c.tdb("backup", "list", "--json").stdout)["pgbackrest"]
    assert [b["label"] for b in listed["backups"]][-2:] == [full["label"], incr["label"]]

    moment = between.isoformat(sep=" ")
    for chosen in (full["label"], incr["label"]):
        copy = restored_copy(c, "--time", moment, "--set", chosen)
        try:
            assert copy["backup"] == chosen and copy["started"]
            assert keys_of(copy_url(copy)) == list(range(1, 201)), chosen
            # The first transaction left out is T3's; the last replayed, T2's (none after the incremental).
            assert copy["stopped_before"] > between.isoformat()
            if chosen == full["label"]:
                assert copy["reached_at"] is not None and copy["reached_at"] <= between.isoformat()
            else:
                assert copy["reached_at"] is None
        finally:
            stop_copy(copy)
    # The newest moment: everything, T3 included.
    latest = restored_copy(c, "--latest")
    try:
        assert keys_of(copy_url(latest)) == list(range(1, 301))
    finally:
        stop_copy(latest)


def test_the_drill_passes_on_a_good_repository_and_exits_3_when_a_wal_segment_is_missing(cluster):
    c = cluster
    assert c.tdb("backup", "--type", "full").returncode == 0
    marks(c, 1001, 1100)
    drill = c.tdb("backup", "drill", "--json")
    assert drill.returncode == 0, drill.stderr + drill.stdout
    result = json.loads(drill.stdout)
    assert result["ok"] and result["recorded"] and result["revision"] == "0004"
    compared = {t["table"]: t for t in result["tables"]}
    assert compared["dispatch.pitr_marks"]["restored"] == compared["dispatch.pitr_marks"]["primary"] > 0
    assert 0 < result["recovery_seconds"] < result["rto_seconds"]
    assert c.sql("SELECT count(*) FROM tdbctl.runs WHERE command = 'backup drill' AND status = 'succeeded'")[0][0] == 1
    leftovers = [p for p in Path(c.sql("SHOW data_directory")[0][0]).parent.iterdir() if "tdbctl-drill" in p.name]
    assert leftovers == []

    stats = json.loads(c.tdb("stats", "--json").stdout)
    assert stats["backups"]["pgbackrest"]["last_drill"]["status"] == "succeeded"

    # WAL written after the newest backup, one segment of it lost from the repository.
    marks(c, 1101, 1200)
    lost_wal = c.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
    c.sql("SELECT pg_switch_wal()")
    marks(c, 1201, 1300)
    assert c.tdb("backup", "setup").returncode == 0  # pgbackrest check: the segments reach the repository
    [segment] = [p for p in c.repo.glob(f"archive/*/*/{lost_wal[:16]}/{lost_wal}-*")]
    hidden = segment.with_name("hidden-" + segment.name)
    segment.rename(hidden)
    try:
        broken = c.tdb("backup", "drill", "--json")
        assert broken.returncode == 3, broken.stderr
        failed = json.loads(broken.stdout)
        assert not failed["ok"] and failed["problems"]
        before_lost = f"{lost_wal[:16]}{int(lost_wal[16:], 16) - 1:08X}"
        assert "missing or damaged" in failed["problems"][0]
        assert f"after WAL segment {before_lost}" in failed["problems"][0]
    finally:
        hidden.rename(segment)
    assert c.sql("SELECT status FROM tdbctl.runs WHERE command = 'backup drill' ORDER BY id DESC LIMIT 1")[0][0] == "failed"
    check = json.loads(c.tdb("stats", "--json").stdout)
    assert any(f["check"] == "drill_failed" and f["severity"] == "critical" for f in check["findings"])


def test_verify_catches_a_corrupted_file_in_the_repository(cluster):
    c = cluster
    assert c.tdb("backup", "--type", "full").returncode == 0
    good = c.tdb("backup", "verify", "--json")
    assert good.returncode == 0, good.stderr + good.stdout
    assert json.loads(good.stdout)["ok"]
    newest = json.loads(c.tdb("backup", "list", "--json").stdout)["pgbackrest"]["backups"][-1]["label"]
    victim = max((p for p in c.repo.glob(f"backup/*/{newest}/pg_data/base/*/*") if p.is_file()),
                 key=lambda p: p.stat().st_size)
    original = victim.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    victim.write_bytes(bytes(damaged))
    try:
        bad = c.tdb("backup", "verify", "--json")
        assert bad.returncode == 3, bad.stderr
        report = json.loads(bad.stdout)
        assert not report["ok"]
        [entry] = [b for b in report["backups"] if b["label"] == newest]
        assert entry["problems"].get("checksum_invalid") == 1
    finally:
        victim.write_bytes(original)


def test_broken_archiving_is_a_critical_finding_at_once(cluster):
    c = cluster
    c.sql("ALTER SYSTEM SET archive_command = 'false'")
    c.sql("SELECT pg_reload_conf()")
    try:
        time.sleep(0.5)
        marks(c, 5001, 5010)
        c.sql("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30
        while not c.sql("SELECT failed_count > 0 AND last_failed_time > coalesce(last_archived_time, '-infinity') "
                        "FROM pg_stat_archiver")[0][0]:
            assert time.monotonic() < deadline, "the archiver never tried"
            time.sleep(0.2)
        probe = c.tdb("stats", "--check", "--json")
        assert probe.returncode == 3
        findings = json.loads(probe.stdout)["findings"]
        assert any(f["check"] == "archiving_failing" and f["severity"] == "critical" for f in findings)
        prometheus = c.tdb("stats", "--format", "prometheus").stdout
        assert "tdbctl_wal_archive_failing 1" in prometheus
        plain = c.tdb("stats")
        assert "WAL archiving FAILING" in plain.stdout
    finally:
        fixed = c.tdb("backup", "setup", "--apply", "--json")  # puts tdbctl's archive_command back
        assert fixed.returncode == 0, fixed.stdout
        assert {s["name"]: s["status"] for s in json.loads(fixed.stdout)["steps"]}["archive_command"] == "changed"


def test_a_killed_backup_leaves_the_repository_usable_and_the_next_backup_succeeds(cluster):
    c = cluster
    c.sql("CREATE TABLE IF NOT EXISTS dispatch.ballast AS SELECT g AS id, md5(g::text) AS pad "
          "FROM generate_series(1, 400000) g")
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")} | c.env
    process = subprocess.Popen([sys.executable, "-m", "tdbctl", "backup", "--type", "full"], cwd=c.root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while subprocess.run(["pgrep", "-f", "pgbackrest .*backup --type=full"], capture_output=True).returncode:
        assert time.monotonic() < deadline and process.poll() is None, "the backup never started"
        time.sleep(0.02)
    time.sleep(1.0)  # copying files by now
    assert process.poll() is None, "the backup ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(["pkill", "-KILL", "-f", "pgbackrest.*backup"], capture_output=True)

    after = c.tdb("backup", "--type", "full", "--json")
    assert after.returncode == 0, after.stderr
    assert c.tdb("backup", "verify").returncode == 0
    copy = restored_copy(c, "--latest")
    try:
        assert keys_of(copy_url(copy)) == [r[0] for r in c.sql("SELECT id FROM dispatch.pitr_marks ORDER BY id")]
    finally:
        stop_copy(copy)


def test_restore_refuses_the_live_cluster_and_ambiguous_targets(cluster):
    c = cluster
    live = c.sql("SHOW data_directory")[0][0]
    refused = c.tdb("restore", "--latest", "--to", live)
    assert refused.returncode == 2 and "live cluster" in refused.stderr and "--force" in refused.stderr
    running = c.tdb("restore", "--latest", "--to", live, "--force", "--yes")
    assert running.returncode == 2 and "running" in running.stderr
    for args, words in ((["--time", "2026-12-01 16:59:00"], "time zone"),
                        (["--time", "2026-12-01 16:59:00+00", "--latest"], "one recovery target"),
                        (["--lsn", "nonsense"], "LSN"),
                        (["--set", "20990101-000000F"], "no such backup")):
        result = c.tdb("restore", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert Path(live, "postmaster.pid").exists()


def test_a_pgbackrest_too_old_for_the_server_names_the_version_needed(pg_url, tmp_path):
    from tdbctl.backup.pgbackrest.program import SUPPORTS, version

    found = version(shutil.which("pgbackrest"))
    server = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with server.connect() as conn:
        major = int(conn.exec_driver_sql("SHOW server_version_num").scalar()) // 10000
    server.dispose()
    if found >= SUPPORTS.get(major, (99, 0)):
        pytest.skip(f"this pgBackRest supports PostgreSQL {major}")  # never on Debian 12's 2.45 with PostgreSQL 18
    _config(tmp_path, tmp_path / "repo")
    result = run_cli("backup", "setup", cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(pg_url)})
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    needed = SUPPORTS[major]
    assert f"does not support PostgreSQL {major}" in result.stderr and f"{needed[0]}.{needed[1]}" in result.stderr


def test_restore_over_the_stopped_cluster_itself_with_force(cluster):
    """Last in this module: it rewinds the module's cluster."""
    c = cluster
    c.sql("TRUNCATE dispatch.pitr_marks")
    marks(c, 1, 50)
    assert c.tdb("backup", "--type", "incr").returncode == 0
    time.sleep(1.1)
    moment = server_now(c)
    time.sleep(1.1)
    marks(c, 51, 80)
    c.sql("SELECT pg_switch_wal()")
    assert c.tdb("backup", "setup").returncode == 0  # the WAL reaches the repository
    data_dir, sockets, port = (c.sql(f"SHOW {name}")[0][0] for name in ("data_directory", "unix_socket_directories",
                                                                         "port"))
    pg_ctl = ["runuser", "-u", "postgres", "--", str(pg15.BIN / "pg_ctl"), "-D", data_dir]
    subprocess.run([*pg_ctl, "-m", "fast", "stop"], check=True, capture_output=True)
    try:
        done = c.tdb("restore", "--time", moment.isoformat(sep=" "), "--to", data_dir, "--force", "--yes", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["in_place"]
    finally:
        subprocess.run([*pg_ctl, "-w", "-l", str(Path(data_dir).parent / "log"), "-o",
                        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "start"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while c.sql("SELECT pg_is_in_recovery()")[0][0]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert keys_of(c.url) == list(range(1, 51))
