"""`tdbctl stats` on a real PostgreSQL: each figure against a situation built for it."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest

import pg15
from conftest import run_cli, url_text
from stats_support import Session, migrate, settings_for, wait_for, waiting_on_lock, write_toml

needs_pg15 = pytest.mark.skipif(not pg15.available(), reason="Debian PostgreSQL 15 binaries not installed")


@pytest.fixture
def pg_db(pg_url):
    migrate(pg_url)
    return pg_url


def _collect(url, tmp_path, **thresholds):
    from tdbctl.stats import collect

    return collect(settings_for(url, tmp_path, thresholds))


def _flushed_dead_tuples(url, table: str, expected: int) -> None:
    """Statistics reach the views asynchronously: wait until the DELETE's dead tuples show."""
    with psycopg.connect(url_text(url), autocommit=True) as conn:
        wait_for(lambda: conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = %s::regclass", (table,)).fetchone()[0]
            == expected)


def test_tables_and_indexes_dead_tuples_unused_invalid(pg_db, tmp_path):
    with psycopg.connect(url_text(pg_db), autocommit=True) as conn:
        conn.execute("CREATE TABLE voice.stats_probe (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO voice.stats_probe SELECT i, 'v' || (i % 10) FROM generate_series(1, 3000) i")
        conn.execute("CREATE INDEX stats_probe_v_idx ON voice.stats_probe (v)")
        conn.execute("CREATE INDEX stats_probe_v_copy ON voice.stats_probe (v)")
        conn.execute("DELETE FROM voice.stats_probe WHERE id <= 2000")
        # A unique index over duplicate values cannot be built: CONCURRENTLY leaves it invalid.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY stats_probe_v_unique ON voice.stats_probe (v)")
        conn.execute("SELECT pg_stat_force_next_flush()")
    _flushed_dead_tuples(pg_db, "voice.stats_probe", 2000)

    report = _collect(pg_db, tmp_path, unused_index_min_bytes=0)
    table = next(t for t in report["tables"] if (t["schema"], t["table"]) == ("voice", "stats_probe"))
    assert (table["rows"], table["dead_tuples"], table["dead_tuple_ratio"]) == (1000, 2000, 0.6667)
    assert table["rows_source"] == "pg_stat_user_tables.n_live_tup"
    assert table["sizes_from"] == "files" and table["table_bytes"] > 0 and table["index_bytes"] > 0
    assert table["seq_scans"] >= 1

    probe = {i["index"]: i for i in report["indexes"] if i["table"] == "stats_probe"}
    assert set(probe) == {"stats_probe_pkey", "stats_probe_v_idx", "stats_probe_v_copy", "stats_probe_v_unique"}
    assert [probe[n]["valid"] for n in sorted(probe)] == [True, True, True, False]
    assert probe["stats_probe_v_unique"]["leftover"] is False
    assert probe["stats_probe_v_idx"]["unused"] and probe["stats_probe_v_idx"]["scans"] == 0
    assert probe["stats_probe_pkey"]["unused"] is False  # it enforces the key: never "unused"
    assert probe["stats_probe_v_idx"]["duplicate_of"] is None
    assert probe["stats_probe_v_copy"]["duplicate_of"] == "stats_probe_v_idx"

    found = {(f["check"], f["subject"]): f["severity"] for f in report["findings"]}
    assert found[("dead_tuples", "voice.stats_probe")] == "critical"
    assert found[("invalid_index", "voice.stats_probe_v_unique")] == "warning"
    assert found[("unused_index", "voice.stats_probe_v_idx")] == "info"
    assert found[("duplicate_index", "voice.stats_probe_v_copy")] == "info"
    assert report["status"] == "critical"


def test_lock_chain_long_query_and_idle_transaction(pg_db, tmp_path):
    holder = Session(pg_db, autocommit=False)
    waiter = Session(pg_db)
    sleeper = Session(pg_db)
    admin = psycopg.connect(url_text(pg_db), autocommit=True)
    try:
        holder.execute("LOCK TABLE voice.conversations IN ACCESS EXCLUSIVE MODE")
        waiter.start("SELECT count(*) FROM voice.conversations")
        sleeper.start("SELECT pg_sleep(30)")
        wait_for(lambda: waiting_on_lock(admin, waiter.pid))
        wait_for(lambda: admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s",
                                       (sleeper.pid,)).fetchone()[0] == "active")

        report = _collect(pg_db, tmp_path, long_query_warning_s=0, idle_in_transaction_warning_s=0,
                          lock_wait_warning_s=0)
        activity = report["activity"]
        assert activity["visible"] == "all" and activity["hidden_sessions"] == 0
        [wait] = [w for w in activity["blocking"] if w["pid"] == waiter.pid]
        assert wait["blocked_by"] == [holder.pid] and wait["root_blockers"] == [holder.pid]
        assert wait["lock"] == {"type": "relation", "mode": "AccessShareLock", "relation": "voice.conversations"}
        assert wait["query"] == "SELECT count(*) FROM voice.conversations"
        assert wait["blockers"][0]["state"] == "idle in transaction"
        long_running = {s["pid"]: s["query"] for s in activity["long_running"]}
        assert long_running[sleeper.pid] == "SELECT pg_sleep(30)"
        assert holder.pid in {s["pid"] for s in activity["idle_in_transaction"]}

        # The page still answers: the locked table's sizes come from the catalog, and the
        # platform figure that would queue behind the lock is a note, not a hang.
        conversations = next(t for t in report["tables"] if t["table"] == "conversations" and t["schema"] == "voice")
        assert conversations["sizes_from"] == "catalog (relation locked)"
        assert report["platform"]["figures"] is None
        assert any(n.startswith("platform: not read:") and "lock timeout" in n for n in report["notes"])

        checks = {(f["check"], f["subject"]) for f in report["findings"]}
        assert {("blocked_by_lock", f"pid {waiter.pid}"), ("long_running_query", f"pid {sleeper.pid}"),
                ("idle_in_transaction", f"pid {holder.pid}"), ("not_inspected", "platform")} <= checks
    finally:
        admin.execute("SELECT pg_cancel_backend(%s)", (sleeper.pid,))
        holder.conn.rollback()
        for s in (waiter, sleeper):
            s.join()
        assert isinstance(sleeper.error, psycopg.errors.QueryCanceled)
        for s in (holder, waiter, sleeper):
            s.close()
        admin.close()


def test_ordinary_application_role(pg_db, pg_server_url, tmp_path):
    """No superuser, no pg_monitor: the page works and says what it could not see."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    database = pg_db.database
    with psycopg.connect(url_text(pg_db), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        for schema in ("tdbctl", "dispatch", "voice", "academy", "chattrain"):
            conn.execute(f'GRANT USAGE ON SCHEMA {schema} TO "{role}"')
            conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO "{role}"')
    sleeper = Session(pg_db).start("SELECT pg_sleep(30)")
    try:
        result = run_cli("stats", "--json", cwd=tmp_path,
                         env={"TDB_DATABASE_URL": url_text(pg_db.set(username=role))})
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["activity"]["visible"] == "partial"
        assert report["activity"]["hidden_sessions"] >= 1
        assert any("pg_read_all_stats" in n for n in report["notes"])
        assert not any("not read" in n for n in report["notes"]), report["notes"]
        assert report["health"]["max_connections"] > 0 and report["health"]["database_bytes"] > 0
        assert {t["schema"] for t in report["tables"]} == {"tdbctl", "dispatch", "voice", "academy", "chattrain"}
        assert report["platform"]["figures"]["conversations"]["total"] == 0
        # Its probe does not say "ok" about sessions it cannot see.
        limited = [f for f in report["findings"] if f["check"] == "limited_view"]
        assert len(limited) == 1 and limited[0]["severity"] == "warning" and report["status"] != "ok"
        assert "pg_read_all_stats" in limited[0]["message"]
        check = run_cli("stats", "--check", cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(pg_db.set(username=role))})
        assert check.returncode == 3 and "limited_view" in check.stdout + check.stderr, check.stdout + check.stderr
    finally:
        with psycopg.connect(url_text(pg_db), autocommit=True) as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", (sleeper.pid,))
            sleeper.join()
            sleeper.close()
            conn.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(url_text(pg_server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'DROP ROLE "{role}"')


def test_index_bloat_estimate(pg_db, tmp_path):
    with psycopg.connect(url_text(pg_db), autocommit=True) as conn:
        conn.execute("CREATE TABLE voice.bloat_probe (id int PRIMARY KEY, n int)")
        conn.execute("INSERT INTO voice.bloat_probe SELECT i, i FROM generate_series(1, 20000) i")
        conn.execute("CREATE INDEX bloat_probe_n_idx ON voice.bloat_probe (n)")
        conn.execute("ANALYZE voice.bloat_probe")
        fresh = _bloat(_collect(pg_db, tmp_path))
        conn.execute("DELETE FROM voice.bloat_probe WHERE id > 2000")
        conn.execute("VACUUM ANALYZE voice.bloat_probe")
    report = _collect(pg_db, tmp_path, index_bloat_min_bytes=0)
    bloated = _bloat(report)
    assert fresh["bloat_probe_n_idx"] < 0.2 and fresh["bloat_probe_pkey"] < 0.2
    assert bloated["bloat_probe_n_idx"] > 0.8 and bloated["bloat_probe_pkey"] > 0.8
    found = {(f["check"], f["subject"]): f["severity"] for f in report["findings"]}
    assert found[("index_bloat", "voice.bloat_probe_n_idx")] == "critical"


def _bloat(report) -> dict:
    return {i["index"]: i["bloat_ratio"] for i in report["indexes"] if i["table"] == "bloat_probe"}


def test_top_queries_hint_when_pg_stat_statements_is_not_loaded(pg_db, tmp_path):
    result = run_cli("stats", "--no-platform", "--full", cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(pg_db)})
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "pg_stat_statements" in line]
    assert "shared_preload_libraries" in line and "CREATE EXTENSION pg_stat_statements" in line
    lines = result.stdout.splitlines()
    header = lines[lines.index("# Tables in voice") + 1]
    assert header.split("\t") == ["table", "rows", "size", "indexes", "toast", "dead", "vacuumed", "analyzed",
                                   "seq/idx scans"]


@pytest.fixture(scope="module")
def pg15_server():
    """One Debian PostgreSQL 15 for this module's tests (a server start costs seconds)."""
    if not pg15.available():
        pytest.skip("Debian PostgreSQL 15 binaries not installed")
    with pg15.server(["shared_preload_libraries=pg_stat_statements"]) as url:
        yield url


@needs_pg15
def test_top_queries_from_pg_stat_statements(pg15_server, tmp_path):
    url = pg15_server
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for _ in range(3):
            conn.execute("SELECT pg_sleep(0.1), 42 AS answer_marker")  # slow enough to lead the list
    result = run_cli("stats", "--json", "--top", "3", cwd=tmp_path, env={"TDB_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert pg15.PASSWORD not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    top = report["top_queries"]
    assert top["available"] is True and top["hint"] is None
    assert len(top["queries"]) == 3
    [marker] = [q for q in top["queries"] if "answer_marker" in q["query"]]
    assert marker["calls"] == 3 and marker["rows"] == 3
    # A server without the tdbctl schemas: the page still answers, with what there is.
    assert report["tables"] == [] and report["platform"]["figures"] == {
        "conversations": None, "errors_by_type": None, "slot_extraction": None, "training_sessions": None}
    assert report["health"]["server_version"].startswith("15")


@needs_pg15
def test_replication_lag_on_the_primary_and_on_a_standby(pg15_server, tmp_path):
    from tdbctl.config import resolve
    from tdbctl.stats import collect

    primary = pg15_server
    with pg15.standby(primary) as standby:
        with psycopg.connect(primary, autocommit=True) as conn:
            conn.execute("CREATE TABLE replicated (v int)")
            conn.execute("INSERT INTO replicated VALUES (1)")
            lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            wait_for(lambda: (conn.execute(
                "SELECT state = 'streaming' AND replay_lsn >= %s FROM pg_stat_replication", (lsn,)).fetchone()
                or (False,))[0])
        write_toml(tmp_path, {"replication_lag_warning_s": 0})
        on_primary = collect(resolve(primary, directory=tmp_path), platform=False)
        on_standby = collect(resolve(standby, directory=tmp_path), platform=False)

    replication = on_primary["replication"]
    assert replication["role"] == "primary" and replication["replay_lag_seconds"] is None
    [replica] = replication["replicas"]
    assert replica["state"] == "streaming" and replica["client"] == "127.0.0.1"
    assert replica["name"] == "walreceiver"  # what pg_basebackup -R's primary_conninfo does not rename
    standby_view = on_standby["replication"]
    assert standby_view["role"] == "replica" and standby_view["replicas"] == []
    # The standby has replayed the INSERT: its lag is the time since that commit, a few seconds at most.
    assert 0 <= standby_view["replay_lag_seconds"] < 60
    found = {(f["check"], f["subject"]): f["severity"] for f in on_standby["findings"]}
    assert found[("replication_lag", "this replica")] == "warning"



def test_the_page_covers_every_schema_of_the_database(pg_db, tmp_path):
    """An application's tables beside tdbctl's (here in public and a schema of its own) are on the
    page too, after tdbctl's domains."""
    with psycopg.connect(url_text(pg_db), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.app_accounts (id int PRIMARY KEY, balance int)")
        conn.execute("INSERT INTO public.app_accounts SELECT i, i FROM generate_series(1, 500) i")
        conn.execute("CREATE SCHEMA billing")
        conn.execute("CREATE TABLE billing.invoices (id int PRIMARY KEY)")
    deadline = time.monotonic() + 10
    while True:  # the insert's counts reach pg_stat_user_tables asynchronously
        report = _collect(pg_db, tmp_path)
        found = [t for t in report["tables"] if (t["schema"], t["table"]) == ("public", "app_accounts")]
        if (found and found[0]["rows"] == 500) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    schemas = [t["schema"] for t in report["tables"]]
    assert {"public", "billing"} <= set(schemas)
    domains = ["tdbctl", "dispatch", "voice", "academy", "chattrain"]
    first_other = min(schemas.index("public"), schemas.index("billing"))
    assert set(schemas[:first_other]) == set(domains) and not set(schemas[first_other:]) & set(domains)
    accounts = next(t for t in report["tables"] if (t["schema"], t["table"]) == ("public", "app_accounts"))
    assert accounts["rows"] == 500
    assert any(i["schema"] == "public" and i["index"] == "app_accounts_pkey" for i in report["indexes"])


def _on_terminal(url, tmp_path, columns: int, lines: int, *args) -> tuple[int, str, str]:
    """`tdbctl stats ARGS` on a pseudo-terminal of that size, with a pager that keeps what it is
    given: (exit code, what the terminal showed, what went through the pager, or None)."""
    import os

    from terminal import run_on_terminal, scrollback

    paged = tmp_path / "paged.txt"
    paged.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL", "LESS")}
    env.update(TDB_DATABASE_URL=url_text(url), COLUMNS=str(columns), LINES=str(lines), TERM="xterm",
               PAGER=f"cat > {paged}")
    code, output = run_on_terminal(["stats", *args], env=env, cwd=tmp_path)
    text = paged.read_text() if paged.exists() else None
    shown = "\n".join(scrollback(text if text is not None else output, columns))
    return code, shown, text


def test_the_first_screen_says_what_is_wrong(pg_db, tmp_path):
    holder = Session(pg_db, autocommit=False)
    waiter = Session(pg_db)
    admin = psycopg.connect(url_text(pg_db), autocommit=True)
    write_toml(tmp_path, {"lock_wait_warning_s": 0, "idle_in_transaction_warning_s": 0, "unused_index_min_bytes": 0})
    try:
        holder.execute("LOCK TABLE chattrain.user_activity_logs IN ACCESS EXCLUSIVE MODE")
        waiter.start("SELECT count(*) FROM chattrain.user_activity_logs")
        wait_for(lambda: waiting_on_lock(admin, waiter.pid))
        for columns, lines in ((80, 24), (160, 50)):
            code, shown, paged = _on_terminal(pg_db, tmp_path, columns, lines, "--full")
            assert code == 0 and paged is not None, shown  # taller than the terminal: through the pager
            first = shown.splitlines()[:lines]
            assert first[0].split()[:2] == ["status", "WARNING:"], first
            assert "not_inspected" not in "\n".join(first)  # the lock holds up no section
            assert any("Blocked sessions" in line for line in first), "\n".join(first)
            blocked = "\n".join(first).split("Blocked sessions", 1)[1]
            assert str(waiter.pid) in blocked and str(holder.pid) in blocked, "\n".join(first)  # and its root
            # Identifiers whole, however narrow: a long name wraps or its row becomes a block.
            assert "…" not in "\n".join(line for line in shown.splitlines() if "SELECT" not in line)
            assert "chattrain.user_activity_logs" in shown
    finally:
        holder.conn.rollback()
        waiter.join()
        for s in (holder, waiter):
            s.close()
        admin.close()

    code, shown, paged = _on_terminal(pg_db, tmp_path, 160, 50)
    assert code == 0 and paged is None  # the short page fits: no pager
    assert shown.splitlines()[0].split()[:2] == ["status", "OK:"] or "info" in shown.splitlines()[0]
    code, shown, paged = _on_terminal(pg_db, tmp_path, 80, 24, "--full", "--no-pager")
    assert code == 0 and paged is None and "Tables in voice" in shown
    piped = run_cli("stats", "--full", cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(pg_db),
                                                          "PAGER": f"cat > {tmp_path / 'paged.txt'}"})
    assert piped.returncode == 0 and "# Tables in voice" in piped.stdout
    assert not (tmp_path / "paged.txt").exists()  # a pipe never gets a pager
