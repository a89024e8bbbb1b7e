"""Claims (tdbctl/ops/claims.py): one run changes the data at a time, on every dialect, and a run
that loses its claim can never commit a batch, nor a run that takes it over interleave with one.

The archive tests run the real `tdbctl archive` in a subprocess on real PostgreSQL (and SQLite),
pause it inside or between batches (TDB_ARCHIVE_PAUSE_AT), and do to its claim what production
does: a server-side idle_session_timeout, a lease that was not renewed, a takeover. In the end
live + archived rows are always exactly the original rows.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from test_archive import batch_files
from test_archive_data import _pg_template, _sqlite_template, archive_db, fill, snapshot  # noqa: F401
from test_archive_kill import POLICY, VOICE, _uuid, catalog, run_statuses, start_paused
from tdbctl.errors import LockHeld
from tdbctl.ops import claims as claims_module
from tdbctl.ops.claims import ClaimLost, claimed, take
from tdbctl.runtime import Database
from tdbctl.schema.bookkeeping import archive_batches, claims, runs

NOW = datetime.now(timezone.utc)
ONLY_POSTGRESQL = pytest.mark.parametrize("archive_db", ["postgresql"], indirect=True)
"""Server-side timeouts, terminated backends and leases: PostgreSQL's (a SQLite claim lasts as
long as its process, which the other tests kill)."""


def database(db) -> Database:
    from tdbctl.dialects import dialect_for

    return Database(db.settings, db.engine, dialect_for(db.dialect))


@contextmanager
def migrated_pg(url):
    """The database at head, opened as a command opens it."""
    from tdbctl.config import resolve
    from tdbctl.migrate.commands import upgrade
    from tdbctl.runtime import open_database

    settings = resolve(url_text(url))
    upgrade(settings)
    with open_database(settings) as db:
        yield db


def claim_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(claims).order_by(claims.c.id)).all()


def pretend_holder(engine, command: str, *, host: str, pid: int, lease_until=None) -> None:
    """Another run's claim, as its own process would have written it."""
    with engine.begin() as conn:
        conn.execute(sa.insert(claims).values(token=f"t-{host}-{pid}-{command}", command=command,
                                              scope=claims_module.SCOPES[command], host=host, pid=pid,
                                              lease_until=lease_until))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the mechanism ---------------------------------------------------------------------------------


def test_what_excludes_what(archive_db):
    db = database(archive_db)
    with claimed(db, "cleanup"):
        for command in ("archive", "seed", "archive restore", "cleanup", "migrate"):
            with pytest.raises(LockHeld, match=r"another tdbctl cleanup \(pid \d+ on "):
                take(db, command)
        with claimed(db, "reindex"):  # a reindex runs beside a cleanup, not beside another reindex
            with pytest.raises(LockHeld, match="another tdbctl reindex"):
                take(db, "reindex")
    with claimed(db, "migrate"):
        for command in ("archive", "cleanup", "reindex", "seed"):
            with pytest.raises(LockHeld, match="another tdbctl migrate"):
                take(db, command)
    assert claim_rows(db.engine) == []  # every claim given back


def test_a_claim_whose_process_is_gone_is_taken_over_at_once(archive_db):
    db = database(archive_db)
    pretend_holder(db.engine, "archive", host=socket.gethostname(), pid=dead_pid())
    pretend_holder(db.engine, "archive", host="elsewhere", pid=1)  # alive, as far as anyone here knows
    with pytest.raises(LockHeld, match="another tdbctl archive .pid 1 on elsewhere"):
        take(db, "cleanup")
    with db.engine.begin() as conn:
        conn.execute(sa.delete(claims).where(claims.c.host == "elsewhere"))
    with claimed(db, "cleanup") as claim:
        assert [r.id for r in claim_rows(db.engine)] == [claim.id]  # the dead one's row is gone


def test_a_lease_not_renewed_is_taken_over_and_its_holder_stops(pg_url):
    with migrated_pg(pg_url) as db:
        first = take(db, "archive")
        with pytest.raises(LockHeld):
            take(db, "cleanup")
        # Renewed meanwhile: a run that read the old lease must not remove it (compare-and-set).
        with db.engine.begin() as conn:
            conn.execute(sa.update(claims).values(lease_until=0))
        stale = claim_rows(db.engine)[0].lease_until
        assert first.renew()
        with db.engine.begin() as conn:
            assert conn.execute(sa.delete(claims).where(claims.c.lease_until == stale)).rowcount == 0
        # Not renewed for its lease: another run takes it over, and the first finds out in its next batch.
        first._stop.set()
        with db.engine.begin() as conn:
            conn.execute(sa.update(claims).values(lease_until=0))
        second = take(db, "cleanup")
        with db.engine.connect() as conn, conn.begin():
            with pytest.raises(ClaimLost, match="lost its claim"):
                first.check(conn)
            second.check(conn)
        assert first.release() is False and second.release() is True


def test_taking_over_waits_for_the_batch_in_flight(pg_url):
    """A batch holds its claim row (FOR KEY SHARE) until it commits: an expired lease cannot be
    taken from under it, so the batch commits under its claim or not at all."""
    with migrated_pg(pg_url) as db:
        first = take(db, "archive")
        first._stop.set()
        with db.engine.connect() as batch:
            with batch.begin():
                first.check(batch)
                with db.engine.begin() as conn:  # the lease runs out while the batch is in flight
                    conn.execute(sa.update(claims).values(lease_until=0))
                started = time.monotonic()
                with pytest.raises(LockHeld, match="finishing a transaction under its claim"):
                    take(db, "cleanup")
                assert time.monotonic() - started >= claims_module.TAKE_LOCK_TIMEOUT * 0.9
                first.check(batch)  # still ours
        assert len(claim_rows(db.engine)) == 1


# -- archive runs that lose, or nearly lose, their claim ------------------------------------------------


def originals(db) -> tuple[dict, dict]:
    expected = fill(db.engine, NOW)
    return expected, snapshot(db.engine)


def assert_nothing_lost(db, before, to) -> None:
    """Live + archived = the original rows, each archived row in the files exactly once."""
    after = snapshot(db.engine)
    in_files = batch_files(to) if to.exists() else {}
    for name in VOICE:
        archived = [db.key(_uuid(line["id"])) for line in in_files.get(name, [])]
        assert len(archived) == len(set(archived)), name
        assert set(after[name]) | set(archived) == set(before[name]), name
        assert not set(after[name]) & set(archived), name
        assert {row: before[name][row] for row in after[name]} == after[name], name


def archive_cli(db, to, *args, **env):
    return run_cli("archive", "--to", to, "--policy", POLICY, *args, env={"TDB_DATABASE_URL": db.text, **env})


@ONLY_POSTGRESQL
def test_an_idle_session_timeout_does_not_let_a_second_run_in(archive_db, tmp_path):
    """The claim lives in no session: the server closing idle sessions (here after 1 s) cannot
    release it while the run goes on (it did, with the old session advisory lock)."""
    db = archive_db
    _, before = originals(db)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{db.url.database}" SET idle_session_timeout = \'1s\'')
    to = tmp_path / "archive"
    first = start_paused(db, to, "written:4")
    time.sleep(2.5)
    for command in (["archive", "--to", to, "--policy", POLICY], ["cleanup", "--older-than", "1d"]):
        second = run_cli(*command, env={"TDB_DATABASE_URL": db.text})
        assert second.returncode == 5, second.stderr
        assert "another tdbctl archive" in second.stderr
    err = first.communicate(timeout=120)[1].decode()
    assert first.returncode == 0, err
    assert_nothing_lost(db, before, to)
    assert run_statuses(db.engine) == ["succeeded"]


def test_a_run_whose_claim_was_taken_over_stops_before_its_next_batch(archive_db, tmp_path):
    db = archive_db
    _, before = originals(db)
    to = tmp_path / "archive"
    first = start_paused(db, to, "committed:3")  # after its first batch, between two batches
    with db.engine.begin() as conn:  # another run took the claim over (its lease ran out)
        conn.execute(sa.delete(claims))
        conn.execute(sa.insert(claims).values(token="other", command="cleanup", scope="data", host="elsewhere",
                                              pid=1))
    err = first.communicate(timeout=120)[1].decode()
    assert first.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("tdbctl: error: tdbctl archive lost its claim on the database")
    with db.engine.connect() as conn:
        status, message = conn.execute(sa.select(runs.c.status, runs.c.message).order_by(runs.c.id.desc())).first()
    assert status == "failed" and "lost its claim" in message
    archived_by_first = [b for b, (s, _) in catalog(db.engine).items() if s == "archived"]
    assert len(archived_by_first) == 1  # it committed its first batch and nothing after the takeover
    assert_nothing_lost(db, before, to)

    with db.engine.begin() as conn:
        conn.execute(sa.delete(claims))  # the other run ended
    again = archive_cli(db, to)
    assert again.returncode == 0, again.stderr
    assert_nothing_lost(db, before, to)
    left = snapshot(db.engine)
    assert all(not s == "writing" for s, _ in catalog(db.engine).values())
    assert len(left[POLICY]) < len(before[POLICY])


@ONLY_POSTGRESQL
def test_a_slow_commit_cannot_be_raced_by_a_second_run(archive_db, tmp_path):
    """The first run's batch has deleted its rows and waits to commit, its lease run out: a second
    run cannot take the claim until that batch has committed, so its recovery never sees the batch
    half-way (it lost 14,711 rows that way)."""
    db = archive_db
    _, before = originals(db)
    to = tmp_path / "archive"
    first = start_paused(db, to, "deleted:4")
    with db.engine.begin() as conn:
        conn.execute(sa.update(claims).values(lease_until=0))
    second = archive_cli(db, to)
    assert second.returncode == 5, second.stderr
    err = first.communicate(timeout=120)[1].decode()
    assert first.returncode == 0, err
    statuses = [s for s, _ in catalog(db.engine).values()]
    assert "writing" not in statuses and "discarded" not in statuses
    assert_nothing_lost(db, before, to)


def test_recovery_completes_a_batch_whose_rows_left_and_keeps_its_files(archive_db, tmp_path):
    """A batch the catalog still calls 'writing' although its rows are gone from the live tables is
    completed as archived from its manifest, never removed."""
    db = archive_db
    _, before = originals(db)
    to = tmp_path / "archive"
    done = archive_cli(db, to, "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    first = min(catalog(db.engine))
    with db.engine.begin() as conn:
        conn.execute(sa.update(archive_batches).where(archive_batches.c.id == first).values(status="writing"))
    again = archive_cli(db, to)
    assert again.returncode == 0, again.stderr
    assert "kept and completed as archived" in again.stderr
    assert catalog(db.engine)[first][0] == "archived"
    assert_nothing_lost(db, before, to)
    verified = run_cli("archive", "verify", env={"TDB_DATABASE_URL": db.text})
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_files_that_cannot_be_removed_leave_a_leftover_batch_that_does_not_block(archive_db, tmp_path):
    db = archive_db
    _, before = originals(db)
    to = tmp_path / "archive"
    proc = start_paused(db, to, "verified")
    batch_id = max(catalog(db.engine))
    directory = catalog(db.engine)[batch_id][1]
    from test_archive_kill import sigkill

    sigkill(proc)
    foreign = os.path.join(directory, "notes.txt")
    with open(foreign, "w") as handle:
        handle.write("someone else's file\n")
    again = archive_cli(db, to)
    assert again.returncode == 0, again.stderr
    assert f"batch {batch_id}" in again.stderr and f"tdbctl archive discard {batch_id}" in again.stderr
    assert catalog(db.engine)[batch_id][0] == "leftover"
    assert_nothing_lost(db, before, to)

    third = archive_cli(db, to)  # reported again, never in the way
    assert third.returncode == 0 and f"batch {batch_id}" in third.stderr
    refused = run_cli("archive", "discard", batch_id, env={"TDB_DATABASE_URL": db.text})
    assert refused.returncode == 1 and "nothing changed" in refused.stderr
    os.unlink(foreign)
    cleared = run_cli("archive", "discard", batch_id, env={"TDB_DATABASE_URL": db.text})
    assert cleared.returncode == 0, cleared.stderr
    assert catalog(db.engine)[batch_id][0] == "discarded" and not os.path.exists(directory)


def test_an_unwritable_destination_is_refused_before_any_batch(archive_db, tmp_path):
    db = archive_db
    _, before = originals(db)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = archive_cli(db, blocker / "archive")
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.startswith("tdbctl: error: --to ") and len(bad.stderr.splitlines()) == 1
    assert catalog(db.engine) == {} and snapshot(db.engine) == before
    good = archive_cli(db, tmp_path / "archive")
    assert good.returncode == 0, good.stderr
    assert_nothing_lost(db, before, tmp_path / "archive")


@ONLY_POSTGRESQL
def test_a_lost_worker_connection_says_so(archive_db, tmp_path):
    db = archive_db
    _, before = originals(db)
    to = tmp_path / "archive"
    proc = start_paused(db, to, "verified:2")
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        killed = conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'idle in transaction'").all()
    assert killed
    err = proc.communicate(timeout=120)[1].decode()
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("tdbctl: error: lost the connection to "), err
    assert "nothing of that batch was committed" in last and "does not exist" not in err
    assert snapshot(db.engine) == before
    again = archive_cli(db, to)
    assert again.returncode == 0, again.stderr
    assert_nothing_lost(db, before, to)


def test_cleanup_and_migrate_down_exclude_each_other(archive_db, tmp_path):
    db = archive_db
    with claimed(database(db), "cleanup"):
        down = run_cli("migrate", "down", "0006", "--yes", "--lock-wait", "0.5",
                       env={"TDB_DATABASE_URL": db.text})
    assert down.returncode == 5, down.stderr
    assert "another tdbctl cleanup" in down.stderr
