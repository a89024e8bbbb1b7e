"""tdbctl's pgBackRest engine beside pgBackRest run by hand, on one PostgreSQL 15 cluster.

    .venv/bin/python bench/pgbackrest.py [--gb 2] [--runs 4]

A Debian PostgreSQL 15 cluster archiving into a local repository (set up by `tdbctl backup
setup --apply`) gets about ``--gb`` GB of rows. Then, alternating, best of ``--runs``:

- backup: ``tdbctl backup --type full`` beside ``pgbackrest backup --type=full`` (same
  configuration file, same stanza, as the cluster's owner);
- restore: ``tdbctl restore --latest --no-start`` beside ``pgbackrest restore --type=default``
  into a new directory (the files only: what pgBackRest does by hand); and the whole of
  ``tdbctl restore --latest`` (restore, start, recovery to the end of the WAL, promoted);
- drill: ``tdbctl backup drill``: its measured recovery time beside the seeds' RTO of 2 hours,
  and the archive's lag beside the RPO of 15 minutes.

Needs root (pgBackRest runs as postgres through runuser) and Debian's postgresql-15 and pgbackrest.
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
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import pg15  # noqa: E402


def run(argv, **kw) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed: {done.stderr or done.stdout}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tdbctl-bench-pgbr-"))
    work.chmod(0o755)
    try:
        with pg15.server(["archive_mode=on", "max_wal_size=4GB", "checkpoint_timeout=30min"]) as url:
            bench(url, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(url: str, work: Path, args) -> None:
    repo = work / "repo"
    (work / "tdbctl.toml").write_text(f'[backup]\nengine = "pgbackrest"\n\n[backup.pgbackrest]\nrepo = "{repo}"\n')
    env = {**os.environ, "TDB_DATABASE_URL": url}
    tdb = lambda *a: run([sys.executable, "-m", "tdbctl", *a], cwd=work, env=env)  # noqa: E731
    tdb("migrate", "--to", "0004")
    tdb("backup", "setup", "--apply")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    rows = int(args.gb * 1024 ** 3 / 180)  # about 180 bytes a row with its index
    clock = time.perf_counter()
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE dispatch.bench_rows (id bigint PRIMARY KEY, at timestamptz, "
                             "body text)")
        step = 2_000_000
        for first in range(1, rows + 1, step):
            conn.exec_driver_sql(
                f"INSERT INTO dispatch.bench_rows SELECT g, now() - g * interval '1 second', "
                f"repeat(md5(g::text), 3) FROM generate_series({first}, {min(rows, first + step - 1)}) g")
        conn.exec_driver_sql("CHECKPOINT")
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    engine.dispose()
    print(f"cluster: PostgreSQL 15, {size / 1024 ** 3:.2f} GiB ({rows:,} rows, loaded in "
          f"{time.perf_counter() - clock:.0f}s); pgBackRest {subprocess.run(['pgbackrest', 'version'], capture_output=True, text=True).stdout.split()[1]}, "
          f"compress lz4, process-max 2, {os.cpu_count()} cores")

    config = repo / "tdbctl-postgres.conf"
    by_hand = ["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={config}", "--stanza=postgres"]
    backups = {"tdbctl": [], "pgbackrest": []}
    for i in range(args.runs):  # who goes first alternates: the page cache and expiry favour neither
        pair = [("tdbctl", lambda: tdb("backup", "--type", "full")),
                ("pgbackrest", lambda: run([*by_hand, "backup", "--type=full"]))]
        for name, job in (pair if i % 2 == 0 else pair[::-1]):
            backups[name].append(job())
    show("full backup", backups)

    restores = {"tdbctl": [], "pgbackrest": []}
    whole = []
    for i in range(args.runs):
        mine, theirs = work / f"mine-{i}", work / f"theirs-{i}"
        theirs.mkdir(mode=0o700)
        shutil.chown(theirs, "postgres", "postgres")
        pair = [("tdbctl", lambda: tdb("restore", "--latest", "--no-start", "--to", mine)),
                ("pgbackrest", lambda: run([*by_hand, "restore", f"--pg1-path={theirs}", "--type=default",
                                            "--archive-mode=off"]))]
        for name, job in (pair if i % 2 == 0 else pair[::-1]):
            restores[name].append(job())
        shutil.rmtree(mine)
        shutil.rmtree(theirs)
    show("restore (files)", restores)
    for i in range(args.runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tdbctl", "restore", "--latest", "--json", "--to",
                               work / f"whole-{i}"], cwd=work, env=env, capture_output=True, text=True)
        whole.append(time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(done.stderr)
        data = json.loads(done.stdout)["data_dir"]
        subprocess.run(["runuser", "-u", "postgres", "--", str(pg15.BIN / "pg_ctl"), "-D", data, "-m", "fast",
                        "stop"], capture_output=True)
        shutil.rmtree(data)
    print(f"restore, started and recovered (tdbctl restore --latest): best {min(whole):.2f}s")
    drill = subprocess.run([sys.executable, "-m", "tdbctl", "backup", "drill", "--json"], cwd=work, env=env,
                           capture_output=True, text=True)
    result = json.loads(drill.stdout)
    print(f"drill: {'passed' if result['ok'] else 'FAILED'}; recovery {result['recovery_seconds']:.1f}s beside the "
          f"RTO of {result['rto_seconds'] / 3600:.0f} h; archive lag {result['archive_lag_seconds']:.1f}s beside "
          f"the RPO of {result['rpo_seconds'] / 60:.0f} min")


def show(what: str, times: dict) -> None:
    mine, theirs = min(times["tdbctl"]), min(times["pgbackrest"])
    print(f"{what}: tdbctl best {mine:.2f}s, pgbackrest by hand best {theirs:.2f}s: tdbctl takes "
          f"{mine / theirs:.3f}x ({(mine / theirs - 1) * 100:+.1f}%)  runs: "
          + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(times["tdbctl"], times["pgbackrest"])))


if __name__ == "__main__":
    main()
