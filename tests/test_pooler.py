"""tdbctl through a real PgBouncer in transaction pooling, as seed 004 deploys it.

The bouncer keeps one server connection per database (tests/pgbouncer.py), so the application's
next transaction runs on the very server connection tdbctl used: it must find the server's
defaults there, whatever command ran, and tdbctl's claims must keep runs apart through it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from pgbouncer import bouncer, through
from test_archive_data import _pg_template, fill, snapshot  # noqa: F401
from test_archive_kill import POLICY, VOICE, _uuid, start_paused
from tdbctl.schema import metadata
from tdbctl.schema.bookkeeping import claims

NOW = datetime.now(timezone.utc)

LEFT_BEHIND = """
SELECT current_setting('lock_timeout'), current_setting('statement_timeout'),
       current_setting('synchronous_commit'), current_setting('TimeZone'),
       current_setting('enable_hashjoin'), current_setting('enable_mergejoin'),
       current_setting('maintenance_work_mem'), current_setting('session_replication_role'),
       current_setting('transaction_isolation'),
       (SELECT count(*) FROM pg_prepared_statements),
       (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
       (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
       pg_backend_pid()
"""


@pytest.fixture(scope="module")
def bouncer_port(pg_server_url):
    with bouncer(pg_server_url) as port:
        yield port


class Bounced:
    """A migrated database, reached directly (``engine``) and through the bouncer (``text``)."""

    def __init__(self, direct: sa.URL, port: int):
        from tdbctl.config import resolve

        self.direct = direct
        self.url = through(direct, port)
        self.text = url_text(self.url)
        self.engine = sa.create_engine(direct, poolclass=sa.pool.NullPool)
        self.app = sa.create_engine(self.url, poolclass=sa.pool.NullPool, connect_args={"prepare_threshold": None})
        self.settings = resolve(self.text)
        self.dialect = "postgresql"

    def key(self, value) -> str:
        from test_archive_data import key_text

        return key_text(value, "postgresql")

    def left_behind(self) -> tuple:
        """What the application's next transaction meets on the pooled server connection."""
        with self.app.connect() as conn:
            return tuple(conn.exec_driver_sql(LEFT_BEHIND).one())

    def tdb(self, *args, **kwargs):
        return run_cli(*args, env={"TDB_DATABASE_URL": self.text}, **kwargs)


@pytest.fixture
def bounced(pg_server_url, bouncer_port, _pg_template):
    name = f"tdbctl_pool_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template}"')
    db = Bounced(pg_server_url.set(database=name), bouncer_port)
    try:
        yield db
    finally:
        db.engine.dispose()
        db.app.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_no_command_leaves_anything_on_the_pooled_connection(bounced, tmp_path):
    db = bounced
    defaults = db.left_behind()
    pid = defaults[-1]
    commands = [
        ["migrate"], ["migrate", "check"], ["info"],
        ["seed"], ["seed"], ["seed", "--synthetic", "-n", "20"], ["seed", "--synthetic", "-n", "20"],
        ["cleanup", "--dry-run"], ["cleanup", "--older-than", "1d"],
        ["archive", "--to", tmp_path / "archive", "--batch-size", "2"], ["archive", "list"], ["archive", "verify"],
        ["seed", "--remove-synthetic", "--yes"],
        ["stats"], ["stats", "--check"], ["stats", "--json"],
    ]
    for command in commands:
        result = db.tdb(*command)
        assert result.returncode in (0, 3), (command, result.stderr)  # stats --check may find something
        assert "prepared statement" not in result.stderr, (command, result.stderr)
        after = db.left_behind()
        assert after[-1] == pid, "the bouncer should keep one server connection"
        assert after == defaults, (command, defaults, after)


def test_two_runs_through_the_bouncer_never_overlap_and_a_killed_one_frees_its_claim(bounced, tmp_path):
    db = bounced
    fill(db.engine, NOW)
    before = snapshot(db.engine)
    to = tmp_path / "archive"
    # Between two batches: with one server connection, a run paused inside a transaction would
    # hold it, and nobody else could even ask.
    first = start_paused(db, to, "committed")
    for command in (["archive", "--to", to, "--policy", POLICY], ["cleanup", "--older-than", "1d"]):
        second = db.tdb(*command)
        assert second.returncode == 5, second.stderr
        assert "another tdbctl archive" in second.stderr
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    with db.engine.connect() as conn:  # its claim row is still there: nobody released it
        assert conn.execute(sa.select(sa.func.count()).select_from(claims)).scalar() == 1
    again = db.tdb("archive", "--to", to, "--policy", POLICY)
    assert again.returncode == 0, again.stderr  # taken over at once: its process is gone
    direct = run_cli("cleanup", "--older-than", "1d", env={"TDB_DATABASE_URL": url_text(db.direct)})
    assert direct.returncode == 0, direct.stderr
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(claims)).scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").scalar() == 0

    from test_archive import batch_files

    after, in_files = snapshot(db.engine), batch_files(to)
    for name in VOICE:
        archived = {db.key(_uuid(line["id"])) for line in in_files.get(name, [])}
        assert set(after[name]) | archived == set(before[name]) and not set(after[name]) & archived, name


def test_two_cleanups_started_together_through_the_bouncer(bounced):
    db = bounced
    fill(db.engine, NOW)
    command = [sys.executable, "-m", "tdbctl", "cleanup", "--older-than", "1d"]
    env = {**{k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")},
           "TDB_DATABASE_URL": db.text}
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 5]), results
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(claims)).scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").scalar() == 0
        runs = conn.exec_driver_sql("SELECT started_at, finished_at FROM tdbctl.runs WHERE command = 'cleanup' "
                                    "AND status = 'succeeded' ORDER BY started_at").all()
    assert len(runs) == codes.count(0)
    if len(runs) == 2:  # one after the other, never side by side
        assert runs[0].finished_at <= runs[1].started_at, runs
    assert db.tdb("cleanup", "--older-than", "1d").returncode == 0


def test_work_that_needs_the_server_itself_uses_the_direct_url_or_says_so(bounced, tmp_path):
    db = bounced
    fill(db.engine, NOW)
    before = snapshot(db.engine)
    defaults = db.left_behind()
    info = db.tdb("info")
    assert info.returncode == 0 and "pooler" in info.stdout and "TDB_DIRECT_URL" in info.stdout, info.stdout
    for command in (["reindex", "--all"], ["cleanup", "--older-than", "1d", "--vacuum"], ["reindex", "--all", "--dry-run"]):
        refused = db.tdb(*command)
        assert refused.returncode == 2, (command, refused.stderr)
        assert "needs a direct connection" in refused.stderr and "TDB_DIRECT_URL" in refused.stderr
        assert len(refused.stderr.splitlines()) == 1
    assert snapshot(db.engine) == before  # refused before anything was deleted

    direct = {"TDB_DATABASE_URL": db.text, "TDB_DIRECT_URL": url_text(db.direct)}
    for command in (["reindex", "--schema", "dispatch"], ["cleanup", "--older-than", "1d", "--vacuum"],
                    ["backup", "--to", tmp_path / "backups"]):
        done = run_cli(*command, env=direct)
        assert done.returncode == 0, (command, done.stderr)
        assert db.left_behind() == defaults, command
    # Not asked for, the vacuum is left out with a note: the nightly cleanup still runs.
    logs = metadata.tables["chattrain.user_activity_logs"]
    with db.engine.begin() as conn:
        conn.execute(sa.insert(logs), [{"user_id": "u", "activity_type": "message_sent",
                                        "timestamp": NOW.replace(tzinfo=None) - timedelta(days=100)}] * 5)
    unvacuumed = db.tdb("cleanup", "--older-than", "1d", "--json")
    assert unvacuumed.returncode == 0, unvacuumed.stderr
    document = json.loads(unvacuumed.stdout)
    assert document["rows"] == {"chattrain.user_activity_logs": 5}
    assert document["vacuumed"] == [] and "TDB_DIRECT_URL" in document["not_vacuumed"]
    assert "note: not vacuumed: VACUUM needs a direct connection" in unvacuumed.stderr
    assert db.left_behind() == defaults
    shown = run_cli("info", env=direct)
    assert "direct" in shown.stdout and "TDB_DIRECT_URL" in shown.stdout
