"""`tdbctl stats` on both dialects: the JSON layout, platform figures, Prometheus, --check, --watch."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from conftest import run_cli, url_text
from terminal import screen as terminal_screen
from stats_support import engine, migrate, settings_for, write_toml

# The report's layout: a change here is a change for every script and dashboard reading --json.
TOP_KEYS = {"schema_version", "generated_at", "elapsed_seconds", "database", "dialect", "status", "health",
            "activity", "replication", "tables", "indexes", "top_queries", "files", "integrity", "platform",
            "notes", "findings", "unindexed_foreign_keys", "partitions", "backups", "cluster"}
HEALTH_KEYS = {"server_version", "uptime_seconds", "database_bytes", "connections_used", "max_connections",
               "cache_hit_ratio", "cache_blocks", "xid_age", "xid_age_database", "stats_reset"}
ACTIVITY_KEYS = {"visible", "hidden_sessions", "long_running", "idle_in_transaction", "blocking"}
REPLICATION_KEYS = {"role", "replay_lag_seconds", "replicas"}
TABLE_KEYS = {"schema", "table", "rows", "rows_source", "table_bytes", "index_bytes", "toast_bytes", "sizes_from",
              "dead_tuples", "dead_tuple_ratio", "last_vacuum", "last_autovacuum", "last_analyze",
              "last_autoanalyze", "seq_scans", "index_scans", "cache_hit_ratio", "partition_of", "partitions"}
INDEX_KEYS = {"schema", "table", "index", "method", "bytes", "scans", "unique", "primary", "valid", "leftover",
              "unused", "duplicate_of", "bloat_bytes", "bloat_ratio", "definition"}
FOREIGN_KEY_KEYS = {"schema", "table", "constraint", "columns", "parent", "on_delete", "parent_deletes",
                    "parent_retention"}
FILE_KEYS = {"schema", "path", "bytes", "page_size", "page_count", "freelist_count"}
FINDING_KEYS = {"severity", "check", "subject", "value", "threshold", "message"}
PLATFORM_KEYS = {"conversations", "errors_by_type", "slot_extraction", "training_sessions"}

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _stats_json(url, cwd, *args):
    result = run_cli("stats", "--json", *args, cwd=cwd, env={"TDB_DATABASE_URL": url_text(url)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def migrated(db_url):
    migrate(db_url)
    return db_url


def test_json_layout_is_stable(migrated, tmp_path):
    report = _stats_json(migrated, tmp_path, "--integrity-check")
    assert set(report) == TOP_KEYS and report["schema_version"] == 1
    assert set(report["health"]) == HEALTH_KEYS
    assert set(report["activity"]) == ACTIVITY_KEYS
    assert set(report["replication"]) == REPLICATION_KEYS
    assert set(report["top_queries"]) == {"available", "hint", "queries"}
    assert set(report["backups"]) == {"archiving", "rpo_seconds", "pgbackrest"}
    assert report["backups"]["pgbackrest"] is None and report["backups"]["rpo_seconds"] == 900
    assert report["cluster"] is None  # one server: tests/test_citus.py shows a cluster
    archiving = report["backups"]["archiving"]
    assert archiving is None if report["dialect"] == "sqlite" else archiving["archive_mode"] == "off"
    assert {frozenset(t) for t in report["tables"]} == {frozenset(TABLE_KEYS)}
    assert {frozenset(i) for i in report["indexes"]} == {frozenset(INDEX_KEYS)}
    assert {frozenset(f) for f in report["findings"]} <= {frozenset(FINDING_KEYS)}
    assert set(report["platform"]) == {"since", "start", "figures"}
    assert set(report["platform"]["figures"]) == PLATFORM_KEYS
    from tdbctl.schema import metadata

    expected_tables = {(t.schema, t.name) for t in metadata.tables.values()} | {("tdbctl", "alembic_version")}
    assert {(t["schema"], t["table"]) for t in report["tables"] if not t["partition_of"]} == expected_tables
    parts = {t["partition_of"] for t in report["tables"] if t["partition_of"]}
    if report["dialect"] == "sqlite":
        assert parts == set()
        assert {frozenset(f) for f in report["files"]} == {frozenset(FILE_KEYS)}
        assert [r["ok"] for r in report["integrity"]] == [True] * 6
    else:
        assert parts == {"voice.system_metrics", "voice.error_logs", "academy.conversation_logs",
                         "chattrain.user_activity_logs"}
        assert {p["table"]: p["ahead"] for p in report["partitions"]} == dict.fromkeys(parts, 3)
        assert report["files"] == [] and report["integrity"] is None
        assert report["health"]["max_connections"] > 0


def _insert_platform_data(url) -> None:
    """Known rows inside and outside the 7- and 30-day windows."""
    from tdbctl.schema import metadata

    t = metadata.tables
    day = timedelta(days=1)
    conversations = []
    for age, status in [(1, "completed"), (1, "completed"), (1, "completed"), (1, "failed"),
                        (10, "completed"), (10, "completed"), (40, "completed")]:
        conversations.append({"id": uuid.uuid4(), "session_id": f"s-{len(conversations)}", "room_name": "r",
                              "status": status, "started_at": NOW - age * day})
    first = conversations[0]["id"]
    errors = [("timeout", "critical", 1), ("timeout", "warning", 1), ("asr", "warning", 1), ("timeout", "warning", 10),
              ("asr", "critical", 40)]
    slots = [("date", Decimal("0.90"), True, 1), ("date", Decimal("0.80"), False, 1), ("time", Decimal("0.50"), True, 10)]
    naive = NOW.replace(tzinfo=None)  # chattrain's timestamps carry no zone: UTC
    sessions = [(uuid.uuid4(), "completed", 1, [80, 60]), (uuid.uuid4(), "in_progress", 1, [90]),
                (uuid.uuid4(), "completed", 10, [10])]
    eng = engine(url)
    with eng.begin() as conn:
        conn.execute(sa.insert(t["voice.conversations"]), conversations)
        conn.execute(sa.insert(t["voice.error_logs"]), [
            {"error_type": kind, "error_message": "m", "severity": sev, "created_at": NOW - age * day,
             "conversation_id": first} for kind, sev, age in errors])
        conn.execute(sa.insert(t["voice.extracted_slots"]), [
            {"conversation_id": first, "slot_name": name, "slot_value": "v", "confidence_score": conf,
             "validated": ok, "created_at": NOW - age * day} for name, conf, ok, age in slots])
        conn.execute(sa.insert(t["chattrain.scenarios"]), [{
            "id": "onboarding.claims.v1", "title": "Claims", "domain": "insurance", "version": "1.0.0",
            "smart_goals": [], "llm_profile": {}, "steps": []}])
        for sid, status, age, scores in sessions:
            conn.execute(sa.insert(t["chattrain.sessions"]).values(
                id=sid, scenario_id="onboarding.claims.v1", user_id="u", status=status, started_at=naive - age * day))
            conn.execute(sa.insert(t["chattrain.feedback"]), [
                {"session_id": sid, "step_id": "s1", "evaluation_type": "rule_based", "score": s} for s in scores])
    eng.dispose()


def test_platform_figures_over_a_window(migrated, tmp_path):
    _insert_platform_data(migrated)
    week = _stats_json(migrated, tmp_path)["platform"]
    month = _stats_json(migrated, tmp_path, "--since", "30d")["platform"]
    assert week["since"] == "7d" and month["since"] == "30d"
    w, m = week["figures"], month["figures"]

    assert w["conversations"] == {"source": "table voice.conversations (the view voice.conversation_success_rate "
                                            "looks back a fixed 30 days)",
                                  "total": 4, "completed": 3, "success_rate": 0.75}
    assert m["conversations"] == {"source": "view voice.conversation_success_rate", "total": 6, "completed": 5,
                                  "success_rate": 0.8333}
    assert w["errors_by_type"] == {"source": "view voice.error_rate_by_type", "total": 3, "types": [
        {"error_type": "timeout", "errors": 2, "critical": 1, "per_100_conversations": 50.0},
        {"error_type": "asr", "errors": 1, "critical": 0, "per_100_conversations": 25.0}]}
    assert m["errors_by_type"]["source"].startswith("table voice.error_logs")
    assert [(t["error_type"], t["errors"], t["critical"]) for t in m["errors_by_type"]["types"]] == [
        ("timeout", 3, 1), ("asr", 1, 0)]
    assert w["slot_extraction"]["slots"] == [
        {"slot_name": "date", "extractions": 2, "validated": 1, "validated_ratio": 0.5, "avg_confidence": 0.85}]
    assert m["slot_extraction"]["source"] == "view voice.slot_extraction_accuracy"
    assert [(s["slot_name"], s["extractions"], s["validated"]) for s in m["slot_extraction"]["slots"]] == [
        ("date", 2, 1), ("time", 1, 1)]
    training = w["training_sessions"]
    assert (training["total"], training["completed"], training["completion_rate"], training["avg_score"]) == (
        2, 1, 0.5, 76.67)
    assert training["scenarios"] == [{"scenario_id": "onboarding.claims.v1", "title": "Claims", "sessions": 2,
                                      "completed": 1, "completion_rate": 0.5, "avg_score": 76.67}]
    assert m["training_sessions"]["avg_score"] == 60.0  # (80 + 60 + 90 + 10) / 4


def test_prometheus_output_parses(migrated, tmp_path):
    _insert_platform_data(migrated)
    env = {"TDB_DATABASE_URL": url_text(migrated)}
    text = run_cli("stats", "--format", "prometheus", cwd=tmp_path, env=env)
    assert text.returncode == 0, text.stderr
    report = _stats_json(migrated, tmp_path)
    families = {f.name: f for f in text_string_to_metric_families(text.stdout)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}

    assert families["tdbctl_table_rows"].type == "gauge"
    if report["dialect"] == "postgresql":
        assert families["tdbctl_table_seq_scans"].type == "counter"
    else:  # figures a dialect does not have are left out, not reported as zero
        assert "tdbctl_table_seq_scans" not in families and "tdbctl_connections" not in families
    for table in report["tables"]:
        labels = (("schema", table["schema"]), ("table", table["table"]))
        if table["partition_of"]:  # counted in its table's figures, not twice
            assert ("tdbctl_table_rows", labels) not in samples
            continue
        assert samples[("tdbctl_table_rows", labels)] == table["rows"]
    assert samples[("tdbctl_conversations", (("window", "7d"),))] == 4
    assert samples[("tdbctl_conversation_success_ratio", (("window", "7d"),))] == 0.75
    assert samples[("tdbctl_errors", (("error_type", "timeout"), ("severity", "critical"), ("window", "7d")))] == 1
    counts = {s: sum(1 for f in report["findings"] if f["severity"] == s) for s in ("info", "warning", "critical")}
    for severity, n in counts.items():
        assert samples[("tdbctl_findings", (("severity", severity),))] == n
    index = report["indexes"][0]
    assert samples[("tdbctl_index_valid", (("index", index["index"]), ("schema", index["schema"]),
                                           ("table", index["table"])))] == 1


def test_check_exit_codes(migrated, tmp_path):
    env = {"TDB_DATABASE_URL": url_text(migrated)}
    clean = run_cli("stats", "--check", cwd=tmp_path, env=env)
    assert clean.returncode == 0, clean.stderr
    # A fresh database: no finding at all about tdbctl's own schema, not even an info one.
    assert clean.stdout == "" and "status: ok (0 findings)" in clean.stderr

    _make_a_warning(migrated)
    write_toml(tmp_path, {"freelist_min_pages": 1, "freelist_ratio_warning": 0.1})
    found = run_cli("stats", "--check", cwd=tmp_path, env=env)
    assert found.returncode == 3, found.stderr
    warnings = [line.split("\t") for line in found.stdout.splitlines() if line.startswith("warning")]
    expected = ("invalid_index", "voice.probe_unique") if migrated.get_backend_name() == "postgresql" \
        else ("freelist", "voice")
    assert [tuple(w[1:3]) for w in warnings] == [expected]
    as_json = run_cli("stats", "--check", "--json", cwd=tmp_path, env=env)
    assert as_json.returncode == 3
    document = json.loads(as_json.stdout)
    assert set(document) == {"status", "findings", "notes"} and document["status"] == "warning"

    write_toml(tmp_path, {"no_such_threshold": 1})
    bad = run_cli("stats", "--check", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "unknown key 'no_such_threshold'" in bad.stderr


def test_an_unindexed_foreign_key_whose_parent_rows_get_deleted(migrated, tmp_path):
    def unindexed(report):
        return {(k["schema"], k["table"], tuple(k["columns"]), k["parent"], k["on_delete"], k["parent_retention"])
                for k in report["unindexed_foreign_keys"]}

    # tdbctl never deletes runs (their archive batches only name them): left unindexed on purpose.
    before = unindexed(_stats_json(migrated, tmp_path))
    assert before == {("tdbctl", "archive_batches", ("run_id",), "tdbctl.runs", "SET NULL", False)}
    eng = engine(migrated)
    with eng.begin() as conn:
        conn.exec_driver_sql("DROP INDEX chattrain.idx_feedback_message_id")
        # tdbctl's retention never deletes from dispatch.training_scenarios, and nobody else has yet.
        conn.exec_driver_sql("DROP INDEX dispatch.ix_call_sessions_scenario_id")
    eng.dispose()
    report = _stats_json(migrated, tmp_path)
    assert {frozenset(k) for k in report["unindexed_foreign_keys"]} == {frozenset(FOREIGN_KEY_KEYS)}
    # On PostgreSQL the link is a tenant link, over (message_id, session_id): docs/schema.md.
    link = ("message_id", "session_id") if report["dialect"] == "postgresql" else ("message_id",)
    assert unindexed(report) - before == {
        ("chattrain", "feedback", link, "chattrain.messages", "SET NULL", True),
        ("dispatch", "call_sessions", ("scenario_id",), "dispatch.training_scenarios", "CASCADE", False)}
    findings = [(f["severity"], f["check"], f["subject"]) for f in report["findings"]]
    assert findings == [("info", "unindexed_foreign_key", f"chattrain.feedback({', '.join(link)})")]


def test_the_nightly_cleanup_does_not_trip_the_probe(migrated, tmp_path):
    env = {"TDB_DATABASE_URL": url_text(migrated)}

    def seed(random_seed: str) -> None:
        done = run_cli("seed", "--synthetic", "--sessions", "600", "--random-seed", random_seed, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr

    seed("1")
    postgresql = migrated.get_backend_name() == "postgresql"
    if postgresql:
        # Without the vacuum, the same data leaves dead tuples the probe calls critical.
        kept = run_cli("cleanup", "--no-vacuum", "--policy", "voice.system_metrics", cwd=tmp_path, env=env)
        assert kept.returncode == 0, kept.stderr
        deadline = time.monotonic() + 10
        while True:
            probe = run_cli("stats", "--check", cwd=tmp_path, env=env)
            if "dead_tuples\tvoice.system_metrics" in probe.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert probe.returncode == 3 and "critical\tdead_tuples\tvoice.system_metrics" in probe.stdout, probe.stdout
        seed("2")
    cleanup = run_cli("cleanup", "--json", cwd=tmp_path, env=env)
    assert cleanup.returncode == 0, cleanup.stderr
    document = json.loads(cleanup.stdout)
    assert document["rows"]["voice.system_metrics"] > 1000 and document["vacuumed"]
    probe = run_cli("stats", "--check", cwd=tmp_path, env=env)
    assert probe.returncode == 0, probe.stdout
    assert "dead_tuples" not in probe.stdout and "freelist" not in probe.stdout


def _make_a_warning(url) -> None:
    eng = engine(url)
    if url.get_backend_name() == "postgresql":
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CREATE TABLE voice.probe (v int)")
            conn.exec_driver_sql("INSERT INTO voice.probe VALUES (1), (1)")
            with pytest.raises(sa.exc.IntegrityError):
                conn.exec_driver_sql("CREATE UNIQUE INDEX CONCURRENTLY probe_unique ON voice.probe (v)")
    else:  # pages freed by a DELETE stay on the file's freelist until VACUUM
        with eng.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE voice.probe (v text)")
            conn.exec_driver_sql("INSERT INTO voice.probe SELECT hex(randomblob(2000)) FROM "
                                 "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
                                 "SELECT i FROM n)")
        with eng.begin() as conn:
            conn.exec_driver_sql("DELETE FROM voice.probe")
    eng.dispose()


def test_sqlite_files_counts_and_integrity(sqlite_url, tmp_path):
    migrate(sqlite_url)
    _insert_platform_data(sqlite_url)
    from tdbctl.stats import collect

    report = collect(settings_for(sqlite_url, tmp_path), integrity_check=True)
    tables = {(t["schema"], t["table"]): t for t in report["tables"]}
    assert tables[("voice", "conversations")]["rows"] == 7 and tables[("voice", "error_logs")]["rows"] == 5
    assert tables[("chattrain", "feedback")]["rows"] == 4 and tables[("tdbctl", "migration_ledger")]["rows"] >= 6
    assert all(t["rows_source"] == "count(*)" and t["sizes_from"] == "dbstat" for t in tables.values())
    files = {f["schema"]: f for f in report["files"]}
    assert set(files) == {"main", "tdbctl", "dispatch", "voice", "academy", "chattrain"}
    for schema, f in files.items():
        assert f["bytes"] == os.path.getsize(f["path"]) == f["page_size"] * f["page_count"]
    assert report["health"]["database_bytes"] == sum(f["bytes"] for f in files.values())
    assert not [i for i in report["indexes"] if i["duplicate_of"]]  # migration 0008 dropped the seeds' duplicates
    assert report["top_queries"] == {"available": False, "hint": "SQLite keeps no per-query statistics",
                                     "queries": []}


def test_missing_sqlite_database_is_one_line(tmp_path):
    result = run_cli("stats", cwd=tmp_path)
    assert result.returncode == 7 and "run `tdbctl migrate` to create it" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _interruptible() -> None:
    # As from a shell: SIGINT delivered and not ignored, whatever this test process inherited or set.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as exc:
        return f"no /proc state ({exc})"
    return " ".join(line for line in status if line.startswith(("State", "Sig", "Threads"))) + f" wchan {wchan}"


def test_watch_refreshes_on_a_terminal(sqlite_url, tmp_path):
    migrate(sqlite_url)
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    # A small terminal and the full page: far taller than the screen.
    env.update(TDB_DATABASE_URL=url_text(sqlite_url), COLUMNS="80", LINES="16", TERM="xterm")
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "tdbctl", "stats", "--watch", "0.3", "--full"], cwd=tmp_path,
                               env=env,
                               stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True,
                               preexec_fn=_interruptible)
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + 30
    while screen.count(b"Ctrl-C to stop") < 3 and time.monotonic() < deadline:
        if select.select([controller], [], [], 0.5)[0]:
            try:
                screen += os.read(controller, 65536)
            except OSError:
                break
    process.send_signal(signal.SIGINT)
    # Keep draining the terminal: a full pty buffer would block the process's last writes. Once
    # the terminal reads EIO the process has closed its side and is on its way out: wait for it.
    interrupted = time.monotonic()
    deadline = interrupted + 30
    while process.poll() is None and time.monotonic() < deadline:
        if select.select([controller], [], [], 0.2)[0]:
            try:
                screen += os.read(controller, 65536)
            except OSError:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                break
    if process.poll() is None:
        state = _signal_state(process.pid)
        process.kill()
        raise AssertionError(f"stats --watch still running {time.monotonic() - interrupted:.1f} s after SIGINT; {state}; "
                             f"this process: SIGINT handler {signal.getsignal(signal.SIGINT)!r}, "
                             f"blocked {signal.pthread_sigmask(signal.SIG_BLOCK, [])}; screen ends {screen[-300:]!r}")
    assert process.wait(timeout=5) == 0
    # It may have exited between the last read and the poll: what it wrote last is still there.
    while select.select([controller], [], [], 0.2)[0]:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    assert screen.count(b"Ctrl-C to stop") >= 3
    # top's way: the alternate screen, redrawn in place from the top-left corner, left on exit.
    assert screen.startswith(b"\x1b[?1049h") and screen.count(b"\x1b[H") >= 3 and b"\x1b[?1049l" in screen
    last = screen[screen.rindex(b"\x1b[H"):screen.rindex(b"\x1b[?1049l")].decode(errors="replace")
    shown = terminal_screen(last, 80, 16)
    # The status stays on the first line; the rest is cut to the screen, saying how much more.
    assert shown[0].split()[:2] == ["status", "OK:"] and "every 0.3s; Ctrl-C to stop" in shown[-1]
    assert "more lines: tdbctl stats --full" in shown[-2]

    not_a_terminal = run_cli("stats", "--watch", "1", cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(sqlite_url)})
    assert not_a_terminal.returncode == 2 and "needs a terminal" in not_a_terminal.stderr
