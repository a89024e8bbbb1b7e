"""`tdbctl reindex` on a real PostgreSQL: leftovers, writers during a rebuild, pgvector, bloat, SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import psycopg
import pytest

from conftest import run_cli, url_text
from stats_support import Session, migrate, settings_for, wait_for, waiting_on_lock


@pytest.fixture
def pg_db(pg_url):
    migrate(pg_url)
    with psycopg.connect(url_text(pg_url), autocommit=True) as conn:
        conn.execute("CREATE TABLE voice.rx_probe (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO voice.rx_probe SELECT i, i % 50 FROM generate_series(1, 1000) i")
        conn.execute("CREATE INDEX rx_probe_v_idx ON voice.rx_probe (v)")
    return pg_url


@pytest.fixture
def admin(pg_db):
    with psycopg.connect(url_text(pg_db), autocommit=True) as conn:
        yield conn


def _indexes(admin, table: str) -> dict[str, tuple[bool, int]]:
    return {name: (valid, node) for name, valid, node in admin.execute(
        "SELECT c.relname, i.indisvalid, c.relfilenode FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass", (table,))}


def _checksum(admin) -> str:
    return admin.execute("SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM voice.rx_probe").fetchone()[0]


def _reindex_backend(admin) -> int | None:
    row = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'tdbctl reindex' "
                        "AND wait_event_type = 'Lock' AND query LIKE 'REINDEX%'").fetchone()
    return row[0] if row else None


def _leave_a_ccnew(pg_db, admin) -> None:
    """A REINDEX CONCURRENTLY cancelled while it waits for an open writer leaves <index>_ccnew."""
    holder = Session(pg_db, autocommit=False)
    holder.execute("INSERT INTO voice.rx_probe VALUES (100001, 1)")
    rebuild = Session(pg_db).start("REINDEX INDEX CONCURRENTLY voice.rx_probe_v_idx")
    wait_for(lambda: waiting_on_lock(admin, rebuild.pid))
    admin.execute("SELECT pg_cancel_backend(%s)", (rebuild.pid,))
    rebuild.join()
    assert isinstance(rebuild.error, psycopg.errors.QueryCanceled)
    holder.conn.rollback()
    holder.close()
    rebuild.close()


def test_leftover_of_a_cancelled_reindex_is_reported_then_dropped(pg_db, admin, tmp_path):
    _leave_a_ccnew(pg_db, admin)
    before = _indexes(admin, "voice.rx_probe")
    assert {n for n, (valid, _) in before.items() if not valid} == {"rx_probe_v_idx_ccnew"}
    checksum = _checksum(admin)
    env = {"TDB_DATABASE_URL": url_text(pg_db)}

    stats = json.loads(run_cli("stats", "--json", "--no-platform", cwd=tmp_path, env=env).stdout)
    [leftover] = [i for i in stats["indexes"] if i["index"] == "rx_probe_v_idx_ccnew"]
    assert leftover["leftover"] is True and leftover["valid"] is False
    [finding] = [f for f in stats["findings"] if f["subject"] == "voice.rx_probe_v_idx_ccnew"]
    assert "tdbctl reindex --table voice.rx_probe drops it" in finding["message"]

    dry = run_cli("reindex", "--table", "voice.rx_probe", "--dry-run", cwd=tmp_path, env=env)
    assert "voice.rx_probe_v_idx_ccnew" in dry.stdout and _indexes(admin, "voice.rx_probe") == before

    result = run_cli("reindex", "--table", "voice.rx_probe", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.index("dropping leftover voice.rx_probe_v_idx_ccnew") < result.stderr.index("[1/2]")
    after = _indexes(admin, "voice.rx_probe")
    assert set(after) == {"rx_probe_pkey", "rx_probe_v_idx"} and all(valid for valid, _ in after.values())
    assert all(after[n][1] != before[n][1] for n in after)  # each rebuilt into a new file
    assert _checksum(admin) == checksum
    status, rows, message = admin.execute(
        "SELECT status, rows, message FROM tdbctl.runs WHERE command = 'reindex' ORDER BY id DESC").fetchone()
    assert (status, rows) == ("succeeded", {"voice.rx_probe": 2})
    assert message == "rebuilt 2 indexes, dropped 1 leftovers, 0 failed"


def test_writes_go_on_during_a_concurrent_reindex(pg_db, admin, tmp_path):
    from tdbctl import reindex

    holder = Session(pg_db, autocommit=False)  # an open writer the rebuild must wait for
    holder.execute("INSERT INTO voice.rx_probe VALUES (100001, 7)")
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=reindex.run(
        settings_for(pg_db, tmp_path), reindex.Selection(indexes=("voice.rx_probe_v_idx",)))))
    worker.start()
    try:
        wait_for(lambda: _reindex_backend(admin))
        in_progress = "SELECT count(*) FROM pg_stat_progress_create_index WHERE command = 'REINDEX CONCURRENTLY'"
        assert admin.execute(in_progress).fetchone()[0] == 1
        with psycopg.connect(url_text(pg_db), autocommit=True) as writer:
            writer.execute("SET lock_timeout = '2s'")
            writer.execute("INSERT INTO voice.rx_probe SELECT i, i % 50 FROM generate_series(2001, 2100) i")
            writer.execute("UPDATE voice.rx_probe SET v = 49 WHERE id <= 10")
            writer.execute("DELETE FROM voice.rx_probe WHERE id = 999")
        assert admin.execute(in_progress).fetchone()[0] == 1  # the rebuild was still running meanwhile
    finally:
        holder.conn.commit()
        worker.join(60)
        holder.close()
    [entry] = outcome["result"]["rebuilt"]
    assert entry["error"] is None and entry["statement"] == 'REINDEX INDEX CONCURRENTLY "voice"."rx_probe_v_idx"'
    assert _indexes(admin, "voice.rx_probe")["rx_probe_v_idx"][0] is True
    expected_ids = ({i for i in range(1, 1001) if i != 999 and i % 50 == 49} | {i for i in range(1, 11)}
                    | {i for i in range(2001, 2101) if i % 50 == 49})
    admin.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in admin.execute("EXPLAIN SELECT id FROM voice.rx_probe WHERE v = 49"))
    assert "rx_probe_v_idx" in plan
    assert {r[0] for r in admin.execute("SELECT id FROM voice.rx_probe WHERE v = 49")} == expected_ids


def test_vector_indexes_rebuilt_with_maintenance_work_mem_and_new_lists(pg_db, admin, tmp_path):
    from tdbctl import reindex

    admin.execute("CREATE TABLE chattrain.vec_probe (id int PRIMARY KEY, embedding vector(8))")
    admin.execute("INSERT INTO chattrain.vec_probe SELECT i, ARRAY[i % 7, i % 11, i % 13, i % 17, i % 19, "
                  "i % 23, i % 29, i]::vector FROM generate_series(1, 2500) i")
    admin.execute("CREATE INDEX vec_probe_ivf ON chattrain.vec_probe USING ivfflat (embedding vector_l2_ops) "
                  "WITH (lists = 1)")
    admin.execute("INSERT INTO academy.vector_embeddings (content_type, content, embedding) SELECT 'scenario', "
                  "'c' || i, (SELECT array_agg(((i * j) % 101) / 101.0) FROM generate_series(1, 1536) j)::vector "
                  "FROM generate_series(1, 300) i")
    before = {**_indexes(admin, "chattrain.vec_probe"), **_indexes(admin, "academy.vector_embeddings")}
    selection = reindex.Selection(indexes=("chattrain.vec_probe_ivf", "academy.idx_vector_embeddings_embedding"))

    result = reindex.run(settings_for(pg_db, tmp_path), selection,
                         reindex.Options(retune_ivfflat=True, maintenance_work_mem="1MB"))
    entries = {e["index"]: e for e in result["rebuilt"]}
    assert [e["error"] for e in entries.values()] == [None, None]
    assert entries["vec_probe_ivf"]["lists"] == (1, 2)  # 2,500 rows / 1000
    assert admin.execute("SELECT reloptions FROM pg_class WHERE relname = 'vec_probe_ivf'").fetchone()[0] == [
        "lists=2"]
    # pgvector says so when the HNSW graph outgrows maintenance_work_mem: proof the setting applied.
    assert any("hnsw graph no longer fits into maintenance_work_mem" in n for n in result["notices"])
    after = {**_indexes(admin, "chattrain.vec_probe"), **_indexes(admin, "academy.vector_embeddings")}
    for name in ("vec_probe_ivf", "idx_vector_embeddings_embedding"):
        assert after[name][0] is True and after[name][1] != before[name][1]

    admin.execute("SET enable_seqscan = off")
    admin.execute("SET ivfflat.probes = 2")
    nearest = "SELECT id FROM chattrain.vec_probe ORDER BY embedding <-> '[2,8,12,10,18,22,26,1234]' LIMIT 1"
    assert "vec_probe_ivf" in "\n".join(r[0] for r in admin.execute("EXPLAIN " + nearest))
    assert admin.execute(nearest).fetchone()[0] == 1234

    roomy = reindex.run(settings_for(pg_db, tmp_path, reindex={"maintenance_work_mem": "256MB"}),
                        reindex.Selection(indexes=("academy.idx_vector_embeddings_embedding",)),
                        reindex.options_from_settings(settings_for(pg_db, tmp_path,
                                                                   reindex={"maintenance_work_mem": "256MB"})))
    assert roomy["rebuilt"][0]["error"] is None and roomy["notices"] == []


def test_bloated_rebuilds_exactly_the_bloated_indexes(pg_db, admin, tmp_path):
    admin.execute("CREATE TABLE voice.bloat_probe (id int PRIMARY KEY, n int)")
    admin.execute("INSERT INTO voice.bloat_probe SELECT i, i FROM generate_series(1, 20000) i")
    admin.execute("CREATE INDEX bloat_probe_n_idx ON voice.bloat_probe (n)")
    admin.execute("DELETE FROM voice.bloat_probe WHERE id > 2000")
    admin.execute("VACUUM ANALYZE voice.bloat_probe")
    admin.execute("ANALYZE voice.rx_probe")
    sizes = {n: admin.execute("SELECT pg_relation_size(%s::regclass)", (f"voice.{n}",)).fetchone()[0]
             for n in ("bloat_probe_pkey", "bloat_probe_n_idx")}
    (tmp_path / "tdbctl.toml").write_text("[stats.thresholds]\nindex_bloat_min_bytes = 0\n")
    env = {"TDB_DATABASE_URL": url_text(pg_db)}
    plan = json.loads(run_cli("reindex", "--bloated", "--dry-run", "--json", cwd=tmp_path, env=env).stdout)
    assert {t["index"] for t in plan["targets"]} == {"bloat_probe_pkey", "bloat_probe_n_idx"}
    assert all(t["reason"].startswith("bloat ") for t in plan["targets"])

    result = run_cli("reindex", "--bloated", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    rebuilt = {e["index"]: e for e in json.loads(result.stdout)["rebuilt"]}
    assert set(rebuilt) == set(sizes)
    for name, size in sizes.items():
        assert rebuilt[name]["bytes_before"] == size and rebuilt[name]["bytes_after"] < size / 4
    again = json.loads(run_cli("reindex", "--bloated", "--dry-run", "--json", cwd=tmp_path, env=env).stdout)
    assert again["targets"] == []


def test_sigkill_mid_reindex_then_the_next_run_cleans_up(pg_db, admin, tmp_path):
    checksum = _checksum(admin)
    holder = Session(pg_db, autocommit=False)
    holder.execute("INSERT INTO voice.rx_probe VALUES (100001, 7)")
    env = {"TDB_DATABASE_URL": url_text(pg_db)}
    process = subprocess.Popen([sys.executable, "-m", "tdbctl", "reindex", "--index", "voice.rx_probe_v_idx"],
                               cwd=tmp_path, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        backend = wait_for(lambda: _reindex_backend(admin))
        process.kill()
        process.wait(10)
        # The server process does not notice its client is gone while it waits; a DBA ends it.
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        wait_for(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                       (backend,)).fetchone()[0] == 0)
    finally:
        holder.conn.rollback()
        holder.close()
    assert admin.execute("SELECT status FROM tdbctl.runs").fetchall() == [("running",)]
    assert not _indexes(admin, "voice.rx_probe")["rx_probe_v_idx_ccnew"][0]

    result = run_cli("reindex", "--index", "voice.rx_probe_v_idx", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "dropping leftover voice.rx_probe_v_idx_ccnew" in result.stderr
    assert [r[0] for r in admin.execute("SELECT status FROM tdbctl.runs ORDER BY id")] == ["killed", "succeeded"]
    indexes = _indexes(admin, "voice.rx_probe")
    assert set(indexes) == {"rx_probe_pkey", "rx_probe_v_idx"} and all(v for v, _ in indexes.values())
    assert _checksum(admin) == checksum


def test_a_rebuild_that_fails_drops_its_own_leftover_and_the_run_says_failed(pg_db, admin, tmp_path):
    from tdbctl import reindex

    holder = Session(pg_db, autocommit=False)
    holder.execute("INSERT INTO voice.rx_probe VALUES (100001, 7)")
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=reindex.run(
        settings_for(pg_db, tmp_path), reindex.Selection(indexes=("voice.rx_probe_v_idx",)))))
    worker.start()
    try:
        backend = wait_for(lambda: _reindex_backend(admin))
        admin.execute("SELECT pg_cancel_backend(%s)", (backend,))
    finally:
        holder.conn.rollback()  # dropping the _ccnew waits for this writer too
        holder.close()
        worker.join(60)
    result = outcome["result"]
    [entry] = result["rebuilt"]
    assert "canceling statement due to user request" in entry["error"]
    assert result["dropped"] == entry["dropped_after_failure"] == ["voice.rx_probe_v_idx_ccnew"]
    indexes = _indexes(admin, "voice.rx_probe")
    assert set(indexes) == {"rx_probe_pkey", "rx_probe_v_idx"} and all(v for v, _ in indexes.values())
    assert result["analyzed"] == []
    assert admin.execute("SELECT status, message FROM tdbctl.runs").fetchone() == (
        "failed", "rebuilt 0 indexes, dropped 1 leftovers, 1 failed")


def test_reindex_sees_the_schemas_beside_tdbctls(pg_url, tmp_path):
    """An application's own table beside tdbctl's: `--all` plans its index too, `--schema` takes it."""
    import psycopg

    migrate(pg_url)
    with psycopg.connect(url_text(pg_url), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA billing")
        conn.execute("CREATE TABLE billing.invoices (id int PRIMARY KEY, total int)")
        conn.execute("CREATE INDEX invoices_total ON billing.invoices (total)")
    env = {"TDB_DATABASE_URL": url_text(pg_url)}
    planned = run_cli("reindex", "--all", "--dry-run", "--json", cwd=tmp_path, env=env)
    assert planned.returncode == 0, planned.stderr
    names = {(i["schema"], i["index"]) for i in json.loads(planned.stdout)["targets"]}
    assert ("billing", "invoices_total") in names and ("voice", "conversations_pkey") in names
    done = run_cli("reindex", "--schema", "billing", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
