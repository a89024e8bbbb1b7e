"""A real PgBouncer (Debian's package) in front of the tests' PostgreSQL, on a free port.

Transaction pooling with one server connection per database and user, so that every client
transaction through it runs on the same server connection: whatever a command leaves behind
(a setting, a prepared statement, a lock, a temporary table) is met by the next client, as an
application's next transaction would meet it in production.

PgBouncer will not run as root: it runs as the owner of the PostgreSQL server's socket
directory, which is the one user that may open it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def bouncer(server_url: sa.URL, *, pool_mode: str = "transaction", pool_size: int = 1,
            users: tuple[str, ...] = ("postgres",)) -> Iterator[int]:
    """PgBouncer's port; every database of the server is reachable through it as itself."""
    host = server_url.query.get("host") or server_url.host or "localhost"
    port = server_url.port or 5432
    # Through a Unix socket as the directory's owner; to a TCP server (TDB_TEST_PG_URL) as nobody.
    owner = os.stat(host).st_uid if host.startswith("/") else pwd.getpwnam("nobody").pw_uid
    user = pwd.getpwuid(owner).pw_name if os.geteuid() == 0 else None
    work = Path(tempfile.mkdtemp(prefix="tdbctl-pgbouncer-"))
    listen = _free_port()
    (work / "users.txt").write_text("".join(f'"{name}" ""\n' for name in users))
    (work / "pgbouncer.ini").write_text(f"""
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
admin_users = postgres
auth_file = {work / 'users.txt'}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 200
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {work / 'pgbouncer.log'}
log_connections = 0
log_disconnections = 0
pidfile =
""")
    if user:
        for path in (work, *work.iterdir()):
            os.chown(path, owner, -1)
    args = [BINARY, *(["-u", user] if user else []), str(work / "pgbouncer.ini")]
    # Its log goes to the file only: an unread pipe would fill up and stop the bouncer.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = work / "pgbouncer.log"
                    raise RuntimeError(f"pgbouncer did not start: {log.read_text() if log.exists() else ''}")
                time.sleep(0.05)
        yield listen
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(work, ignore_errors=True)


def through(url: sa.URL, port: int) -> sa.URL:
    """``url``'s database and user, through the bouncer on ``port``."""
    return sa.URL.create("postgresql+psycopg", username=url.username or "postgres", host="127.0.0.1", port=port,
                         database=url.database)
