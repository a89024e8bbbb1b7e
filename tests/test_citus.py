"""tdbctl on a real Citus cluster: a coordinator and two workers (tests/citus.py), each test in a
database of its own. Skipped, saying how to enable them, where Citus is not built (scripts/citus
builds it from ../shared/citus, as scripts/test does)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import citus
from conftest import run_cli
from test_backup_data import checksums
from test_cleanup import snapshot
from tdbctl.schema import metadata
from tdbctl.schema.distribution import distribution_of, primary_key

UNAVAILABLE = citus.unavailable()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"no Citus here: {UNAVAILABLE}")

PLAN = distribution_of(metadata)


@pytest.fixture(scope="module")
def cluster():
    with citus.cluster() as running:
        yield running


@pytest.fixture
def url(cluster):
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


def tdb(url, *args, timeout=300):
    text = url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    return run_cli(*args, env={"TDB_DATABASE_URL": text}, timeout=timeout)


def ok(url, *args):
    done = tdb(url, *args)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return done


def engine_of(url) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def placements(url) -> dict[str, tuple]:
    """table -> (kind, distribution column, colocation id), from Citus's own catalog."""
    with engine_of(url).connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT logicalrelid::regclass::text, partmethod, repmodel, "
            "column_to_column_name(logicalrelid, partkey), colocationid FROM pg_dist_partition").all()
    kinds = {("h", "s"): "distributed", ("n", "t"): "reference", ("n", "s"): "local"}
    return {name: (kinds[(method, model)], column, colocation) for name, method, model, column, colocation in rows}


def nodes_of(conn, table: str, values) -> list[int]:
    """The worker port holding each distribution value's shard."""
    shard_node = dict(conn.exec_driver_sql(
        "SELECT shardid, nodeport FROM citus_shards WHERE table_name = %(t)s::regclass", {"t": table}).all())
    shards = conn.exec_driver_sql(
        "SELECT get_shard_id_for_distribution_column(%(t)s, v) FROM unnest(%(v)s::text[]) v",
        {"t": table, "v": [str(v) for v in values]}).scalars().all()
    return [shard_node[s] for s in shards]


def unparented(conn) -> dict[str, int]:
    """Child rows whose foreign key finds no parent, for every foreign key of the metadata the
    cluster holds or the engine keeps (NOT IN: Citus joins only colocated tables)."""
    found = {}
    for table in metadata.sorted_tables:
        for fk in table.foreign_key_constraints:
            if len(fk.columns) != 1 or fk.name in ("system_metrics_conversation_id_fkey",):
                continue  # NO ACTION on the cluster: a metric may outlive its conversation there
            column, parent = list(fk.columns)[0], fk.elements[0].column
            count = conn.execute(sa.select(sa.func.count()).select_from(table).where(
                column.is_not(None), column.not_in(sa.select(parent)))).scalar_one()
            if count:
                found[f"{table.fullname}.{column.name}"] = count
    return found


# --- migrate ------------------------------------------------------------------------------------


def test_migrate_places_every_table_as_declared_and_check_reports_one_that_is_not(url):
    done = ok(url, "migrate")
    assert "cluster: dispatch.call_transcripts: distributed by session_id, colocated with dispatch.call_sessions" \
        in done.stderr
    placed = placements(url)
    for name, declared in PLAN.items():
        if declared.kind == "local":
            assert placed.get(name, ("local",))[0] == "local", name
            continue
        kind, column, colocation = placed[name]
        assert (kind, column) == (declared.kind, declared.column), name
        if declared.colocate_with:
            assert colocation == placed[declared.colocate_with][2], name
    with engine_of(url).connect() as conn:
        inspector = sa.inspect(conn)
        for name, declared in PLAN.items():
            if declared.kind == "distributed":
                table = metadata.tables[name]
                assert inspector.get_pk_constraint(table.name, schema=table.schema)["constrained_columns"] \
                    == primary_key(metadata, name), name
        # A UNIQUE Citus cannot keep is a plain index of the same name and columns.
        indexes = {i["name"]: i for i in inspector.get_indexes("conversations", schema="voice")}
        assert indexes["conversations_session_id_key"]["column_names"] == ["session_id"]
        assert not indexes["conversations_session_id_key"]["unique"]
    assert ok(url, "migrate", "check").stderr.strip().endswith("matches the metadata at head")
    assert "nothing to do" in ok(url, "migrate").stderr

    with engine_of(url).connect() as conn:
        conn.exec_driver_sql("SELECT undistribute_table('academy.cache_entries')")
        conn.commit()
    check = tdb(url, "migrate", "check")
    assert check.returncode == 3
    assert "academy.cache_entries\ton the coordinator only, declared distributed by cache_key" in check.stdout
    assert "cluster: academy.cache_entries: distributed by cache_key" in ok(url, "migrate").stderr
    assert placements(url)["academy.cache_entries"][:2] == ("distributed", "cache_key")
    assert tdb(url, "migrate", "check").returncode == 0


def test_below_the_distributed_keys_migrate_down_refuses_and_changes_nothing(url):
    ok(url, "migrate")
    down = tdb(url, "migrate", "down", "0012", "--yes")
    assert down.returncode == 2, down.stderr
    assert "undistribute" in down.stderr and "nothing was changed" in down.stderr
    assert "Traceback" not in down.stderr
    assert tdb(url, "migrate", "check").returncode == 0


# --- seed -----------------------------------------------------------------------------------------


def test_seed_and_synthetic_seed_spread_rows_over_both_workers_with_each_tenant_on_one_node(url, cluster):
    ok(url, "migrate")
    ok(url, "seed")
    ok(url, "seed", "--synthetic", "-n", "200")
    workers = set(cluster.ports[1:])
    with engine_of(url).connect() as conn:
        for name, declared in PLAN.items():
            if declared.kind != "distributed" or name in ("academy.vector_embeddings", "chattrain.documents",
                                                          "voice.conversations_archive"):
                continue  # a handful of rows each, or none before an archive run
            table = metadata.tables[name]
            values = conn.execute(sa.select(table.c[declared.column])).scalars().all()
            assert len(values) >= 20, name
            assert set(nodes_of(conn, name, values)) == workers, name
        # A tenant's rows share its node: transcripts where their call session is.
        sessions = dict(conn.exec_driver_sql("SELECT id::text, id::text FROM dispatch.call_sessions").all())
        transcripts = conn.exec_driver_sql("SELECT session_id::text FROM dispatch.call_transcripts").scalars().all()
        session_node = dict(zip(sessions, nodes_of(conn, "dispatch.call_sessions", sessions)))
        assert nodes_of(conn, "dispatch.call_transcripts", transcripts) == [session_node[s] for s in transcripts]
        # Reference rows are on every node, the coordinator included.
        reference = conn.exec_driver_sql(
            "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'dispatch.training_scenarios'::regclass"
        ).scalar()
        assert reference == 3
        assert unparented(conn) == {}
        # The insert trigger fills an entity's session where the writer leaves it out... which on
        # a cluster it may not: the row cannot be routed without it.
        with pytest.raises(sa.exc.DBAPIError):
            conn.exec_driver_sql(
                "INSERT INTO dispatch.extracted_entities (transcript_id, entity_type, entity_value, "
                "confidence_score, start_char, end_char) SELECT id, 'X', 'y', 1, 0, 1 FROM dispatch.call_transcripts LIMIT 1")
    assert tdb(url, "migrate", "check").returncode == 0


# --- cleanup ----------------------------------------------------------------------------------------

POLICIES = ("dispatch.failed_calls", "voice.error_logs", "voice.system_metrics", "chattrain.abandoned_sessions",
            "chattrain.activity_logs")


def _cutoff() -> datetime:
    """The first of last month: the monthly partitions made for the synthetic rows (from the
    retention cutoffs on) include some wholly older, and the DEFAULT partition older rows."""
    first = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1)


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)


def expected_after_cleanup(before: dict, cutoff: datetime) -> dict:
    """What the five policies leave, worked out row by row in Python from ``before`` (snapshot)."""
    def col(name, column):
        return list(metadata.tables[name].columns.keys()).index(column)

    def older(value):
        return value is not None and _aware(value) < cutoff

    after = {name: dict(rows) if isinstance(rows, dict) else list(rows) for name, rows in before.items()}
    calls = after["dispatch.call_sessions"]
    gone_calls = {k for k, r in calls.items() if r[col("dispatch.call_sessions", "status")] in ("terminated", "error")
                  and older(r[col("dispatch.call_sessions", "started_at")])}
    for name in ("dispatch.call_sessions",):
        after[name] = {k: r for k, r in after[name].items() if k not in gone_calls}
    calls_ids = {k[0] for k in gone_calls}
    gone_transcripts = {k for k, r in after["dispatch.call_transcripts"].items()
                        if r[col("dispatch.call_transcripts", "session_id")] in calls_ids}
    transcript_ids = {k[0] for k in gone_transcripts}
    after["dispatch.call_transcripts"] = {k: r for k, r in after["dispatch.call_transcripts"].items()
                                          if k not in gone_transcripts}
    after["dispatch.extracted_entities"] = {k: r for k, r in after["dispatch.extracted_entities"].items()
                                            if r[col("dispatch.extracted_entities", "transcript_id")] not in transcript_ids}
    after["dispatch.performance_metrics"] = {k: r for k, r in after["dispatch.performance_metrics"].items()
                                             if r[col("dispatch.performance_metrics", "session_id")] not in calls_ids}
    after["voice.error_logs"] = {k: r for k, r in after["voice.error_logs"].items()
                                 if not older(r[col("voice.error_logs", "created_at")])}
    time_at = col("voice.system_metrics", "time")
    after["voice.system_metrics"] = [r for r in before["voice.system_metrics"] if not older(r[time_at])]
    sessions = after["chattrain.sessions"]
    gone_sessions = {k[0] for k, r in sessions.items()
                     if r[col("chattrain.sessions", "status")] in ("created", "in_progress")
                     and older(r[col("chattrain.sessions", "last_activity_at")])}
    after["chattrain.sessions"] = {k: r for k, r in sessions.items() if k[0] not in gone_sessions}
    for name in ("chattrain.messages", "chattrain.feedback"):
        after[name] = {k: r for k, r in after[name].items() if r[col(name, "session_id")] not in gone_sessions}
    logs, session_at = {}, col("chattrain.user_activity_logs", "session_id")
    for k, r in after["chattrain.user_activity_logs"].items():
        if older(r[col("chattrain.user_activity_logs", "timestamp")]):
            continue
        if r[session_at] in gone_sessions:  # the link the engine clears on the cluster
            r = (*r[:session_at], None, *r[session_at + 1:])
        logs[k] = r
    after["chattrain.user_activity_logs"] = logs
    return after


def state(engine) -> dict:
    """snapshot(), with the keyless voice.system_metrics as its rows themselves, in one order."""
    found = snapshot(engine)
    with engine.connect() as conn:
        found["voice.system_metrics"] = sorted(map(tuple, conn.execute(sa.select(metadata.tables["voice.system_metrics"]))),
                                               key=repr)
    return found


def _policies() -> list[str]:
    return [arg for name in POLICIES for arg in ("--policy", name)]


def seeded(url, sessions: int):
    """(engine, cutoff, rows before, rows the five policies leave) of a migrated, seeded cluster."""
    ok(url, "migrate")
    ok(url, "seed", "--synthetic", "-n", str(sessions))
    cutoff = _cutoff()
    engine = engine_of(url)
    before = state(engine)
    return engine, cutoff, before, expected_after_cleanup(before, cutoff)


def test_cleanup_by_rows_and_by_partition_keeps_exactly_the_right_keys_across_shards(url):
    engine, cutoff, before, expected = seeded(url, 300)
    assert expected["dispatch.call_sessions"] != before["dispatch.call_sessions"]
    assert expected["voice.system_metrics"] != before["voice.system_metrics"]

    listed = {t["table"]: t for t in json.loads(ok(url, "partitions", "--json").stdout)}
    for name in ("voice.error_logs", "chattrain.user_activity_logs"):  # rows from the shards, not the shells
        assert sum(p["rows_estimate"] for p in listed[name]["partitions"]) == len(before[name]), name

    dry = json.loads(ok(url, "cleanup", *_policies(), "--before", cutoff.date().isoformat(), "--dry-run",
                        "--json").stdout)
    dropped = [p["name"] for o in dry["policies"] for p in o["partitions_dropped"]]
    assert any(name.startswith("voice.error_logs_p") for name in dropped)
    assert state(engine) == before

    done = json.loads(ok(url, "cleanup", *_policies(), "--before", cutoff.date().isoformat(), "--batch-size", "50",
                         "--json").stdout)
    assert done["status"] == "succeeded"
    assert state(engine) == expected
    for name in ("voice.error_logs", "chattrain.user_activity_logs", "dispatch.call_transcripts"):
        # Rows of dropped partitions counted from their shards, not the coordinator's shells.
        assert done["rows"][name] == len(before[name]) - len(expected[name]), name
    with engine.connect() as conn:
        assert unparented(conn) == {}
        left = set(conn.exec_driver_sql("SELECT logicalrelid::regclass::text FROM pg_dist_partition").scalars())
    assert not set(dropped) & left  # the partitions went whole, on every shard


def test_cleanup_killed_mid_run_then_run_again_loses_nothing(url):
    engine, cutoff, before, expected = seeded(url, 1200)
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    env["TDB_DATABASE_URL"] = url.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")
    run = subprocess.Popen([sys.executable, "-m", "tdbctl", "cleanup", *_policies(), "--before",
                            cutoff.date().isoformat(), "--batch-size", "10"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed_at = None
    for line in run.stderr:  # the first policy done: the kill falls inside the later ones
        if line.startswith("dispatch.failed_calls"):
            time.sleep(0.3)
            killed_at = time.monotonic()
            run.send_signal(signal.SIGKILL)
            break
    run.wait(timeout=60)
    assert killed_at is not None and run.returncode == -signal.SIGKILL
    middle = state(engine)
    assert middle != expected  # killed before the end
    for name, rows in middle.items():  # nothing went that should stay, and no batch went half
        if name == "voice.system_metrics":
            assert set(map(repr, expected[name])) <= set(map(repr, rows))
            continue
        assert set(expected[name]) <= set(rows), name
    with engine.connect() as conn:
        assert unparented(conn) == {}

    again = json.loads(ok(url, "cleanup", *_policies(), "--before", cutoff.date().isoformat(), "--json").stdout)
    assert again["status"] == "succeeded"
    assert state(engine) == expected
    with engine.connect() as conn:
        statuses = conn.exec_driver_sql("SELECT status FROM tdbctl.runs WHERE command = 'cleanup' ORDER BY id").scalars().all()
    assert statuses[-2:] == ["killed", "succeeded"]


# --- archive ----------------------------------------------------------------------------------------


def test_archive_and_restore_round_trip_distributed_rows(url, tmp_path):
    ok(url, "migrate")
    ok(url, "seed", "--synthetic", "-n", "300")
    before = checksums(url)
    cutoff = (datetime.now(timezone.utc) - timedelta(days=60)).date().isoformat()
    ok(url, "archive", "--to", tmp_path / "archive", "--policy", "dispatch.completed_calls", "--policy",
       "voice.conversations", "--before", cutoff, "--batch-size", "40")
    moved = checksums(url)
    for name in ("dispatch.call_sessions", "dispatch.call_transcripts", "voice.conversations",
                 "voice.conversation_turns"):
        assert moved[name] != before[name], name
    batches = json.loads(ok(url, "archive", "list", "--json").stdout)
    assert len(batches) >= 4
    for batch in batches:
        ok(url, "archive", "verify", str(batch["id"]))
        ok(url, "archive", "restore", str(batch["id"]))
    after = checksums(url)
    for name in ("dispatch.call_sessions", "dispatch.call_transcripts", "dispatch.extracted_entities",
                 "dispatch.performance_metrics", "voice.conversations", "voice.conversation_turns",
                 "voice.extracted_slots", "voice.appointments", "voice.state_transitions", "voice.user_feedback"):
        assert after[name] == before[name], name
    with engine_of(url).connect() as conn:
        assert unparented(conn) == {}


# --- stats, info, reindex, backup -------------------------------------------------------------------


def test_stats_shows_both_workers_and_a_skew_finding_when_one_tenant_dominates(url, cluster):
    ok(url, "migrate")
    ok(url, "seed", "--synthetic", "-n", "100")
    report = json.loads(ok(url, "stats", "--json").stdout)
    nodes = {n["node"]: n for n in report["cluster"]["nodes"]}
    workers = {f"{cluster.sockets}:{port}" for port in cluster.ports[1:]}
    assert {n for n, v in nodes.items() if v["role"] == "worker"} == workers
    assert all(nodes[w]["reachable"] and nodes[w]["distributed_rows"] > 0 for w in workers)
    assert report["cluster"]["skew"]["ratio"] < 1.5
    assert not [f for f in report["findings"] if f["check"] == "node_skew"]
    with engine_of(url).connect() as conn:
        # The rows the statistics count, shard by shard, add up to the table's.
        counted = conn.exec_driver_sql("SELECT count(*) FROM dispatch.call_transcripts").scalar()
        # One call session, and so one shard of one worker, gets 200,000 transcript lines.
        tenant = conn.exec_driver_sql("SELECT id FROM dispatch.call_sessions LIMIT 1").scalar()
        conn.exec_driver_sql(
            "INSERT INTO dispatch.call_transcripts (session_id, timestamp_ms, speaker, text) "
            "SELECT %(t)s, g, 'caller', 'help' FROM generate_series(1, 200000) g", {"t": tenant})
        conn.commit()
        (home,) = nodes_of(conn, "dispatch.call_sessions", [tenant])
    tables = {f"{t['schema']}.{t['table']}": t for t in report["tables"]}
    assert tables["dispatch.call_transcripts"]["rows"] == counted
    time.sleep(1)  # the workers' statistics flush
    skewed = json.loads(tdb(url, "stats", "--json").stdout)
    finding = [f for f in skewed["findings"] if f["check"] == "node_skew"]
    assert finding and finding[0]["subject"] == f"{cluster.sockets}:{home}", skewed["cluster"]["skew"]
    assert finding[0]["severity"] == "warning" and skewed["status"] == "warning"
    assert tdb(url, "stats", "--check").returncode == 3
    text = ok(url, "stats").stdout
    assert "Cluster nodes" in text and text.count("\tworker\tup\t") == 2
    metrics = ok(url, "stats", "--format", "prometheus").stdout
    for worker in workers:
        assert f'tdbctl_citus_node_up{{node="{worker}",role="worker"}} 1' in metrics
    assert "tdbctl_citus_skew_ratio " in metrics


def test_info_shows_the_nodes_and_the_placement(url, cluster):
    ok(url, "migrate")
    report = json.loads(ok(url, "info", "--json").stdout)["cluster"]
    assert [n["role"] for n in report["nodes"]] == ["coordinator", "worker", "worker"]
    declared = [d.kind for d in PLAN.values()]
    assert report["placed"]["distributed"] == declared.count("distributed")
    assert report["placed"]["reference"] == declared.count("reference")
    assert report["misplaced"] == []
    assert "as declared" in ok(url, "info").stdout


def _shard_index_files(url, index_prefix: str) -> dict:
    with engine_of(url).connect() as conn:
        found = {}
        for node, ok_, result in conn.exec_driver_sql(
                "SELECT nodeid, success, result FROM run_command_on_all_nodes($$SELECT coalesce(json_object_agg("
                f"relname, relfilenode), '{{}}') FROM pg_class WHERE relname LIKE '{index_prefix}%%'$$)").all():
            assert ok_, result
            found.update({(node, k): v for k, v in json.loads(result).items()})
        return found


def test_reindex_rebuilds_the_shards_indexes(url):
    ok(url, "migrate")
    ok(url, "seed", "--synthetic", "-n", "50")
    before = _shard_index_files(url, "call_transcripts_pkey_")
    assert len(before) == 32  # a shard index on the workers for each of the 32 shards
    done = ok(url, "reindex", "--table", "dispatch.call_transcripts", "--table", "voice.error_logs_p202612",
              "--table", "voice.error_logs")
    assert "rebuilt" in done.stderr
    after = _shard_index_files(url, "call_transcripts_pkey_")
    assert before.keys() == after.keys() and all(before[k] != after[k] for k in before)
    assert tdb(url, "migrate", "check").returncode == 0


def test_backup_of_a_cluster_is_refused_saying_what_a_consistent_one_needs(url, tmp_path):
    ok(url, "migrate")
    for engine in ("pg_dump", "pgbackrest"):
        done = tdb(url, "backup", "--engine", engine, *(["--to", tmp_path / "b"] if engine == "pg_dump" else []))
        assert done.returncode == 2, done.stderr
        assert "citus_create_restore_point" in done.stderr and "every node" in done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "b").exists()
