"""Time-partitioned tables: the conversion migration, partition maintenance, retention by partition.

PostgreSQL for the partitions themselves; SQLite keeps plain tables and every command works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text

LOGS = ["voice.system_metrics", "voice.error_logs", "academy.conversation_logs", "chattrain.user_activity_logs"]
ORDER = {"voice.system_metrics": "time, metric_name, metric_value", "voice.error_logs": "id",
         "academy.conversation_logs": "id", "chattrain.user_activity_logs": "id"}


def engine_for(url) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def cli(url, *args, **kw):
    return run_cli(*args, env={"TDB_DATABASE_URL": url_text(url)}, **kw)


def checksums(engine) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of every row in order, per log table (partitions and all)."""
    out = {}
    with engine.connect() as conn:
        for table in LOGS:
            out[table] = tuple(conn.exec_driver_sql(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY {ORDER[table]}), '')) FROM {table} t").one())
    return out


def relkind(engine, table: str) -> str | None:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%(t)s)", {"t": table}).scalar()


def fill(engine, rows: int, *, days: int = 400) -> None:
    """Rows spread over the last ``days`` days in each log table (at 0009: plain tables)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO voice.system_metrics (time, metric_name, metric_value) SELECT now() - "
            f"make_interval(secs => i * {days * 86400 // rows}), 'm' || mod(i, 7), mod(i, 100) FROM generate_series(1, {rows}) i")
        conn.exec_driver_sql(
            f"INSERT INTO voice.error_logs (error_type, error_message, severity, created_at) SELECT 'e' || mod(i, 5), "
            f"'message ' || i, 'low', now() - make_interval(secs => i * {days * 86400 // rows}) "
            f"FROM generate_series(1, {rows}) i")
        conn.exec_driver_sql(
            f"INSERT INTO academy.conversation_logs (message_type, message_content, created_at) SELECT 'user', "
            f"'hello ' || i, now() - make_interval(secs => i * {days * 86400 // rows}) FROM generate_series(1, {rows}) i")
        conn.exec_driver_sql(
            f"INSERT INTO chattrain.user_activity_logs (user_id, activity_type, timestamp) SELECT 'u' || mod(i, 50), "
            f"'message_sent', (now() AT TIME ZONE 'UTC') - make_interval(secs => i * {days * 86400 // rows}) "
            f"FROM generate_series(1, {rows}) i")


@pytest.fixture
def at_0009(pg_url):
    result = cli(pg_url, "migrate", "--to", "0009")
    assert result.returncode == 0, result.stderr
    engine = engine_for(pg_url)
    yield pg_url, engine
    engine.dispose()


def test_a_fresh_migrate_partitions_the_logs_with_partitions_ahead_and_no_drift(pg_url):
    assert cli(pg_url, "migrate").returncode == 0
    engine = engine_for(pg_url)
    for table in LOGS:
        assert relkind(engine, table) == "p", table
    listing = json.loads(cli(pg_url, "partitions", "--json").stdout)
    assert [t["table"] for t in listing] == LOGS
    for t in listing:
        states = [p["state"] for p in t["partitions"]]
        assert states == ["current", "future", "future", "future", "default"], (t["table"], states)
        assert t["ahead"] == 3
    check = cli(pg_url, "migrate", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    with engine.connect() as conn:
        key = conn.exec_driver_sql(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) WHERE c.conrelid = 'voice.error_logs'::regclass "
            "AND c.contype = 'p'").scalar()
    assert key == ["created_at", "id"]
    stats = json.loads(cli(pg_url, "stats", "--json").stdout)
    assert [f for f in stats["findings"] if f["check"].startswith("partition")] == []
    domains = json.loads(cli(pg_url, "info", "--json").stdout)["domains"]
    assert all(d["tables"] == d["expected"] for d in domains.values()), domains
    assert {s: d["partitions"] for s, d in domains.items()} == {
        "tdbctl": 0, "dispatch": 0, "voice": 10, "academy": 5, "chattrain": 5}


def test_the_conversion_keeps_every_row_exactly_and_leaves_no_old_table(at_0009):
    url, engine = at_0009
    fill(engine, 20_000)
    before = checksums(engine)
    result = cli(url, "migrate")
    assert result.returncode == 0, result.stderr
    assert checksums(engine) == before
    for table in LOGS:
        assert f"{table}: partitioned, 20,000 old rows moved and verified" in result.stderr, result.stderr
        assert relkind(engine, table) == "p"
        assert relkind(engine, table + "_unpartitioned") is None
    with engine.connect() as conn:
        done = conn.exec_driver_sql("SELECT table_name, status, rows_total, rows_moved, checksum_total = checksum_moved "
                                    "FROM tdbctl.partition_conversions ORDER BY 1").all()
        # Each row sits in the partition of its month.
        misplaced = conn.exec_driver_sql(
            "SELECT count(*) FROM voice.error_logs e JOIN pg_class c ON c.oid = e.tableoid "
            "WHERE c.relname <> 'error_logs_p' || to_char(e.created_at AT TIME ZONE 'UTC', 'YYYYMM')").scalar()
    assert {r[0] for r in done} == set(LOGS)
    assert all(r[1] == "done" and r[2] == r[3] == 20_000 and r[4] for r in done), done
    assert misplaced == 0
    # The oldest months are partitions too: the first cleanup drops them whole.
    listing = {t["table"]: t for t in json.loads(cli(url, "partitions", "--json").stdout)}
    assert sum(p["state"] == "expired" for p in listing["voice.error_logs"]["partitions"]) >= 8
    assert cli(url, "migrate", "check").returncode == 0


def test_down_and_up_across_the_partitioning_migration_keep_every_row(at_0009):
    url, engine = at_0009
    fill(engine, 5_000)
    before = checksums(engine)
    assert cli(url, "migrate").returncode == 0
    down = cli(url, "migrate", "down", "0009", "--yes")
    assert down.returncode == 0, down.stderr
    for table in LOGS:
        assert relkind(engine, table) == "r"
    assert checksums(engine) == before
    with engine.connect() as conn:
        nullable = conn.exec_driver_sql(
            "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'voice' "
            "AND table_name = 'error_logs' AND column_name = 'created_at'").scalar()
    assert nullable == "YES"
    assert cli(url, "migrate").returncode == 0
    assert checksums(engine) == before
    assert cli(url, "migrate", "check").returncode == 0


def test_rows_without_a_time_stop_the_migration_with_one_line_and_change_nothing(at_0009):
    url, engine = at_0009
    fill(engine, 100)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO academy.conversation_logs (message_type, message_content, created_at) "
                             "VALUES ('user', 'no time', NULL)")
    before = checksums(engine)
    result = cli(url, "migrate")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("tdbctl: error")]
    assert len(errors) == 1 and "1 row has no created_at" in errors[0], result.stderr
    assert checksums(engine) == before
    assert all(relkind(engine, t) == "r" for t in LOGS)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM tdbctl.alembic_version").scalar() == "0009"


def _conversion(engine) -> tuple[str, int] | None:
    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT to_regclass('tdbctl.partition_conversions')").scalar() is None:
            return None
        return conn.exec_driver_sql("SELECT min(status), coalesce(sum(rows_moved), 0) FROM tdbctl.partition_conversions "
                                    "WHERE status <> 'done'").first()


def test_a_migrate_killed_while_moving_rows_loses_nothing_and_the_rerun_finishes(at_0009):
    url, engine = at_0009
    fill(engine, 300_000)
    with engine.begin() as conn:  # every error log refers to one call, deleted while rows move
        conn.exec_driver_sql("INSERT INTO voice.conversations (session_id, room_name, status) VALUES ('s', 'r', 'done')")
        conn.exec_driver_sql("UPDATE voice.error_logs SET conversation_id = (SELECT id FROM voice.conversations)")
    before = checksums(engine)
    with engine.connect() as conn:
        logs = conn.exec_driver_sql("SELECT count(*), md5(string_agg(e::text, '|' ORDER BY id)) FROM "
                                    "(SELECT id, error_type, error_message, created_at FROM voice.error_logs) e").one()
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    env["TDB_DATABASE_URL"] = url_text(url)
    process = subprocess.Popen([sys.executable, "-m", "tdbctl", "migrate"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_at = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        state = _conversion(engine)
        if state and state[0] == "moving" and state[1] > 0:
            process.send_signal(signal.SIGKILL)
            killed_at = state
            break
        time.sleep(0.01)
    process.wait(30)
    assert killed_at is not None, "the migrate finished before it could be killed mid-move"
    # Killed mid-move: the rows are all there, some moved, some still in the old table.
    with engine.connect() as conn:
        old = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}_unpartitioned").scalar()
               for t in LOGS if relkind(engine, f"{t}_unpartitioned")}
        new = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in LOGS}
    assert old, "no conversion was in progress"
    assert all(old.get(t, 0) + new[t] == 300_000 for t in LOGS), (old, new)
    # ON DELETE SET NULL reaches rows on both sides of the move: the totals follow it.
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM voice.conversations")
    rerun = cli(url, "migrate", timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after = checksums(engine)
    assert {t: v for t, v in after.items() if t != "voice.error_logs"} == {
        t: v for t, v in before.items() if t != "voice.error_logs"}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM voice.error_logs WHERE conversation_id IS NOT NULL").scalar() == 0
        assert tuple(conn.exec_driver_sql(
            "SELECT count(*), md5(string_agg(e::text, '|' ORDER BY id)) FROM "
            "(SELECT id, error_type, error_message, created_at FROM voice.error_logs) e").one()) == tuple(logs)
    assert _conversion(engine) == (None, 0)
    assert all(relkind(engine, f"{t}_unpartitioned") is None for t in LOGS)


def test_a_writer_during_the_conversion_loses_no_row(at_0009):
    url, engine = at_0009
    fill(engine, 100_000)
    before = checksums(engine)
    written, stop, errors = [], threading.Event(), []

    def writer():
        with engine_for(url).connect() as conn:
            while not stop.is_set():
                key = str(uuid.uuid4())
                try:
                    with conn.begin():
                        conn.exec_driver_sql(
                            "INSERT INTO voice.error_logs (id, error_type, error_message, severity) "
                            "VALUES (%(k)s, 'writer', 'during', 'low')", {"k": key})
                    written.append(key)
                except sa.exc.DBAPIError as exc:  # waits on the swap's lock, never fails for long
                    errors.append(str(exc.orig))
                time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.3)
        result = cli(url, "migrate", timeout=300)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert errors == []
    with engine.connect() as conn:
        found = set(conn.exec_driver_sql("SELECT id::text FROM voice.error_logs WHERE error_type = 'writer'").scalars())
        rest = conn.exec_driver_sql("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM voice.error_logs t "
                                    "WHERE error_type <> 'writer'").one()
    assert len(written) > 50
    assert found == set(written)
    assert tuple(rest) == before["voice.error_logs"]


def _cutoff(report: dict, policy: str) -> datetime:
    cutoff = datetime.fromisoformat(next(p for p in report["policies"] if p["policy"] == policy)["cutoff"])
    return cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=timezone.utc)


def test_cleanup_drops_expired_partitions_whole_and_deletes_the_straddling_rows_exactly(at_0009):
    url, engine = at_0009
    fill(engine, 20_000, days=200)
    assert cli(url, "migrate").returncode == 0
    with engine.begin() as conn:  # a stray old row, in the DEFAULT partition
        conn.exec_driver_sql("INSERT INTO voice.error_logs (error_type, error_message, severity, created_at) "
                             "VALUES ('x', 'stray', 'low', '2019-03-01')")
        keys = {r[0]: r[1] for r in conn.exec_driver_sql("SELECT id::text, created_at FROM voice.error_logs")}
        parts = {r[0]: r[1] for r in conn.exec_driver_sql(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'voice.error_logs'::regclass")}
    dry = json.loads(cli(url, "cleanup", "--policy", "voice.error_logs", "--dry-run", "--json").stdout)
    would = next(p for p in dry["policies"] if p["policy"] == "voice.error_logs")
    cutoff = _cutoff(dry, "voice.error_logs")
    assert would["rows"]["voice.error_logs"] == sum(1 for t in keys.values() if t < cutoff)
    named = {p["name"].split(".", 1)[1] for p in would["partitions_dropped"]}
    assert named and named <= set(parts)
    assert relkind(engine, "voice.error_logs") == "p"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM voice.error_logs").scalar() == len(keys)

    run = cli(url, "cleanup", "--policy", "voice.error_logs", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    outcome = next(p for p in report["policies"] if p["policy"] == "voice.error_logs")
    cutoff = _cutoff(report, "voice.error_logs")
    assert {p["name"] for p in outcome["partitions_dropped"]} == {p["name"] for p in would["partitions_dropped"]}
    with engine.connect() as conn:
        left = set(conn.exec_driver_sql("SELECT id::text FROM voice.error_logs").scalars())
        remaining_parts = set(conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'voice.error_logs'::regclass").scalars())
    assert left == {k for k, t in keys.items() if t >= cutoff}
    assert not named & remaining_parts
    # The whole partitions went without a row-level delete: no dead tuples to vacuum there.
    stats = json.loads(cli(url, "stats", "--json").stdout)
    assert not [f for f in stats["findings"] if f["check"] == "dead_tuples"]


def test_partitions_create_fills_ahead_moves_default_rows_and_never_creates_past_retention(pg_url):
    assert cli(pg_url, "migrate").returncode == 0
    engine = engine_for(pg_url)
    now = datetime.now(timezone.utc)
    later = (now + timedelta(days=200)).replace(day=10)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO voice.error_logs (error_type, error_message, severity, created_at) VALUES "
                             "('x', 'later', 'low', %(later)s), ('x', 'long ago', 'low', %(old)s)",
                             {"later": later, "old": now - timedelta(days=300)})
        # A table run out of partitions ahead.
        for name in conn.exec_driver_sql(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                "'voice.system_metrics'::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' "
                "AND c.relname > 'system_metrics_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')").scalars():
            conn.exec_driver_sql(f"DROP TABLE voice.{name}")
    stats = json.loads(cli(pg_url, "stats", "--json").stdout)
    checks = {(f["check"], f["subject"]) for f in stats["findings"]}
    assert ("default_partition_rows", "voice.error_logs") in checks
    assert ("partitions_ahead", "voice.system_metrics") in checks
    assert cli(pg_url, "stats", "--check").returncode == 3

    dry = json.loads(cli(pg_url, "partitions", "create", "--dry-run", "--json").stdout)
    result = cli(pg_url, "partitions", "create", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["created"] == dry["created"]
    month = f"{later:%Y%m}"
    assert f"voice.error_logs_p{month}" in report["created"]
    assert report["moved_from_default"] == {"voice.error_logs": 1}
    assert report["left_in_default"] == {"voice.error_logs": 1}
    assert len([n for n in report["created"] if n.startswith("voice.system_metrics_p")]) == 3
    old_month = f"{now - timedelta(days=300):%Y%m}"
    assert not [n for n in report["created"] if n.endswith(old_month)]
    with engine.connect() as conn:
        homes = dict(conn.exec_driver_sql("SELECT error_message, tableoid::regclass::text FROM voice.error_logs "
                                          "WHERE error_type = 'x'").all())
    assert homes == {"later": f"voice.error_logs_p{month}", "long ago": "voice.error_logs_default"}
    # Twice changes nothing; cleanup takes the expired row out of the DEFAULT partition.
    again = json.loads(cli(pg_url, "partitions", "create", "--json").stdout)
    assert again["created"] == [] and again["moved_from_default"] == {}
    assert cli(pg_url, "cleanup", "--policy", "voice.error_logs").returncode == 0
    stats = json.loads(cli(pg_url, "stats", "--json").stdout)
    assert not [f for f in stats["findings"] if f["check"] in ("default_partition_rows", "partitions_ahead")]


def test_on_sqlite_the_logs_stay_plain_and_the_commands_work(sqlite_url):
    assert cli(sqlite_url, "migrate").returncode == 0
    listing = json.loads(cli(sqlite_url, "partitions", "--json").stdout)
    assert [t["table"] for t in listing] == LOGS and not any(t["partitioned"] for t in listing)
    plain = cli(sqlite_url, "partitions")
    assert plain.returncode == 0 and "a plain table" in plain.stderr
    created = json.loads(cli(sqlite_url, "partitions", "create", "--json").stdout)
    assert created["created"] == [] and created["conversions"] == []
    from tdbctl.config import resolve
    from tdbctl.runtime import open_database

    with open_database(resolve(url_text(sqlite_url))) as db, db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO voice.error_logs (id, error_type, error_message, severity, created_at) VALUES "
                             "(?, 'x', 'old', 'low', '2020-01-01 00:00:00.000000'), (?, 'x', 'new', 'low', ?)",
                             ("a" * 32, "b" * 32, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")))
    result = cli(sqlite_url, "cleanup", "--policy", "voice.error_logs", "--json")
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)["policies"][0]
    assert outcome["rows"] == {"voice.error_logs": 1} and outcome["partitions_dropped"] == []
    with open_database(resolve(url_text(sqlite_url))) as db, db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id FROM voice.error_logs").scalars().all() == ["b" * 32]
    assert cli(sqlite_url, "migrate", "check").returncode == 0


def _paused_archive(url, to, point: str) -> subprocess.Popen:
    import selectors

    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    env.update(TDB_DATABASE_URL=url_text(url), TDB_ARCHIVE_PAUSE_AT=point)
    proc = subprocess.Popen([sys.executable, "-m", "tdbctl", "archive", "--to", str(to), "--policy",
                             "academy.conversation_logs", "--older-than", "300d"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    seen = b""
    while b"paused at" not in seen:
        assert selector.select(60), seen
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, seen
        seen += chunk
    return proc


def test_archive_takes_whole_partitions_as_verified_batches_killed_or_not_and_restore_round_trips(at_0009, tmp_path):
    url, engine = at_0009
    fill(engine, 20_000)
    assert cli(url, "migrate").returncode == 0
    whole = ("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM academy.conversation_logs t")
    with engine.connect() as conn:
        before = tuple(conn.exec_driver_sql(whole).one())
        keys = {r[0]: r[1] for r in conn.exec_driver_sql("SELECT id, created_at FROM academy.conversation_logs")}
    parts = {p["name"]: p for p in next(t for t in json.loads(cli(url, "partitions", "--json").stdout)
                                         if t["table"] == "academy.conversation_logs")["partitions"]}

    # Killed with the files written and read back, before the DROP commits: nothing changed.
    proc = _paused_archive(url, tmp_path / "archive", "verified")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with engine.connect() as conn:
        assert tuple(conn.exec_driver_sql(whole).one()) == before

    result = cli(url, "archive", "--to", tmp_path / "archive", "--policy", "academy.conversation_logs",
                 "--older-than", "300d", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert any(r["now"] == "discarded" for r in report["recovered"])
    with engine.connect() as conn:
        left = set(conn.exec_driver_sql("SELECT id FROM academy.conversation_logs").scalars())
        manifests = conn.exec_driver_sql(
            "SELECT manifest ->> 'partition', row_count, manifest ->> 'cutoff' FROM tdbctl.archive_batches "
            "WHERE status = 'archived'").all()
    cutoffs = {datetime.fromisoformat(c) for _p, _n, c in manifests}
    assert len(cutoffs) == 1
    cutoff = cutoffs.pop()
    gone_parts = [n for n, p in parts.items() if p["to"] and datetime.fromisoformat(p["to"]) <= cutoff]
    still = {n for n in gone_parts if relkind(engine, f"academy.{n}")}
    assert left == {k for k, t in keys.items() if t >= cutoff}
    assert len(gone_parts) >= 2 and not still
    by_partition = {p: n for p, n, _c in manifests if p}
    assert set(by_partition) == {f"academy.{n}" for n in gone_parts}
    assert all(by_partition[f"academy.{n}"] == parts[n]["rows_estimate"] for n in gone_parts)
    verify = cli(url, "archive", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for batch in report["policies"][0]["batches"]:
        restored = cli(url, "archive", "restore", batch)
        assert restored.returncode == 0, restored.stderr
    with engine.connect() as conn:
        assert tuple(conn.exec_driver_sql(whole).one()) == before


def test_a_cleanup_killed_among_its_partition_drops_loses_no_live_row_and_the_rerun_finishes(at_0009):
    url, engine = at_0009
    fill(engine, 30_000, days=900)  # 30 months: about 26 expired partitions of error_logs
    assert cli(url, "migrate").returncode == 0
    with engine.connect() as conn:
        keys = {r[0]: r[1] for r in conn.exec_driver_sql("SELECT id::text, created_at FROM voice.error_logs")}
        expired = sorted(conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
            "'voice.error_logs'::regclass AND c.relname LIKE 'error_logs_p%%' AND c.relname < 'error_logs_p' || "
            "to_char(now() - interval '120 days', 'YYYYMM')").scalars())
    held = expired[len(expired) // 2]
    # A reader holds one expired partition: the cleanup drops those before it, then waits there.
    reader = engine.connect()
    reader.exec_driver_sql("BEGIN")
    reader.exec_driver_sql(f"LOCK TABLE voice.{held} IN ACCESS SHARE MODE")
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    env["TDB_DATABASE_URL"] = url_text(url)
    process = subprocess.Popen([sys.executable, "-m", "tdbctl", "cleanup", "--policy", "voice.error_logs"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        with engine.connect() as conn:
            while time.monotonic() < deadline and not conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'").scalar():
                conn.rollback()
                time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        reader.rollback()
        reader.close()
    present = {n for n in expired if relkind(engine, f"voice.{n}")}
    assert present == {n for n in expired if n >= held}  # dropped one by one, in order, up to the held one
    live_cutoff = datetime.now(timezone.utc) - timedelta(days=90)
    with engine.connect() as conn:
        left = set(conn.exec_driver_sql("SELECT id::text FROM voice.error_logs").scalars())
    assert {k for k, t in keys.items() if t >= live_cutoff} <= left  # nothing live went
    rerun = cli(url, "cleanup", "--policy", "voice.error_logs", "--json")
    assert rerun.returncode == 0, rerun.stderr
    cutoff = _cutoff(json.loads(rerun.stdout), "voice.error_logs")
    with engine.connect() as conn:
        left = set(conn.exec_driver_sql("SELECT id::text FROM voice.error_logs").scalars())
    assert left == {k for k, t in keys.items() if t >= cutoff}
    assert not {n for n in expired if relkind(engine, f"voice.{n}")}
