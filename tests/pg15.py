"""A throwaway Debian PostgreSQL 15 server: no pgvector, password authentication over TCP.

Used for the paths the embedded PostgreSQL 18 cannot show: a server without the vector extension, and a
wrong password. Runs as the ``postgres`` system user when the tests run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

BIN = Path(os.environ.get("TDB_TEST_PG15_BIN", "/usr/lib/postgresql/15/bin"))
PASSWORD = "s3cret-Pa55word"


def available() -> bool:
    return (BIN / "initdb").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(args: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *args] if owner else args


@contextmanager
def server(settings: Sequence[str] = ()):
    """Yields the postgres superuser's URL; ``settings`` are extra ``-c name=value`` server settings,
    e.g. ``["shared_preload_libraries=pg_stat_statements"]``."""
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="tdbctl-pg15-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    if owner:
        shutil.chown(root, owner)
        shutil.chown(sockets, owner)
        shutil.chown(pwfile, owner)
    port = _free_port()
    run = lambda args: subprocess.run(_as_owner(args, owner), check=True, capture_output=True)  # noqa: E731
    try:
        run([str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
             "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"])
        run([str(BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
             " ".join([f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", *(f"-c {s}" for s in settings)]),
             "start"])
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_owner([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def standby(primary_url: str):
    """A streaming hot standby of a ``server()``: pg_basebackup -R, started on a port of its own.
    Yields its URL (same superuser and password)."""
    from urllib.parse import urlsplit

    owner = "postgres" if os.geteuid() == 0 else None
    primary = urlsplit(primary_url)
    root = Path(tempfile.mkdtemp(prefix="tdbctl-pg15-standby-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if owner:
        shutil.chown(root, owner)
        shutil.chown(sockets, owner)
    port = _free_port()
    # The password goes through the environment, never the command line.
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    run = lambda args: subprocess.run(_as_owner(args, owner), check=True, capture_output=True, env=env)  # noqa: E731
    try:
        run([str(BIN / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-c", "fast",
             "-h", primary.hostname, "-p", str(primary.port), "-U", "postgres"])
        run([str(BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
             f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c hot_standby=on", "start"])
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_owner([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
