"""`tdbctl archive` SIGKILLed between its steps, and on a full disk: nothing is ever lost.

A subprocess archives voice.conversations one conversation per batch (files, archive table, SET
NULL links) and is told (TDB_ARCHIVE_PAUSE_AT) to stop after writing, after verifying, after
deleting but before committing, and after the first commit; each time it is SIGKILLed there.
Until the commit the live tables must be exactly as before; the next run discards the leftover
batch (files removed, catalog 'discarded', run 'killed'); in the end live + archived rows are the
original rows and restoring gives back the original database.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from conftest import run_cli
from test_archive import batch_files
from test_archive_data import _pg_template, _sqlite_template, archive_db, fill, snapshot  # noqa: F401
from tdbctl.archive.commands import ArchiveRequest, run
from tdbctl.archive.restore import restore, verify
from tdbctl.schema.bookkeeping import archive_batches, runs

NOW = datetime.now(timezone.utc)
POLICY = "voice.conversations"
VOICE = ("voice.conversations", "voice.conversation_turns", "voice.state_transitions", "voice.extracted_slots",
         "voice.appointments", "voice.user_feedback")


def _env(db, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL", "TDB_ARCHIVE_PAUSE_AT")}
    return {**env, "TDB_DATABASE_URL": db.text, **extra}


def start_paused(db, to: Path, point: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tdbctl", "archive", "--to", str(to), "--policy", POLICY, "--batch-size", "1"],
        env=_env(db, TDB_ARCHIVE_PAUSE_AT=point), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + 60
    while b"paused at" not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(remaining):
            proc.kill()
            raise AssertionError(f"never paused at {point}: {seen.decode(errors='replace')}")
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"ended before pausing at {point} ({proc.wait()}): {seen.decode(errors='replace')}")
        seen += chunk
    return proc


def sigkill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stderr.close()


def catalog(engine) -> dict[int, tuple[str, str]]:
    with engine.connect() as conn:
        return {row.id: (row.status, row.destination) for row in conn.execute(sa.select(archive_batches))}


def run_statuses(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(runs.c.status).where(runs.c.command == "archive").order_by(runs.c.id))
                    .scalars())


def test_sigkill_at_each_step_loses_nothing(archive_db, tmp_path):
    db = archive_db
    expected = fill(db.engine, NOW)
    before = snapshot(db.engine)
    to = tmp_path / "archive"
    leftovers = []

    for point in ("written", "verified", "deleted"):
        proc = start_paused(db, to, point)
        if point == "written":
            # The lock keeps a second archive (and a restore) out meanwhile: exit 5 at once.
            again = run_cli("archive", "--to", to, "--policy", POLICY, env={"TDB_DATABASE_URL": db.text})
            assert again.returncode == 5, again.stderr
        batch_id = max(catalog(db.engine))
        status, directory = catalog(db.engine)[batch_id]
        assert status == "writing"
        files = sorted(p.name for p in Path(directory).iterdir())
        assert "voice.conversations.jsonl.gz" in files and ("manifest.json" in files) == (point == "deleted")
        sigkill(proc)
        # Killed before its commit: the rows are all still live, exactly as they were.
        assert snapshot(db.engine) == before, point
        assert catalog(db.engine)[batch_id] == ("writing", directory)
        leftovers.append((batch_id, Path(directory)))

    proc = start_paused(db, to, "committed")
    sigkill(proc)
    after_first = snapshot(db.engine)
    states = catalog(db.engine)
    # The run after each kill discarded the killed run's batch and removed its files.
    for batch_id, directory in leftovers:
        assert states[batch_id][0] == "discarded" and not directory.exists()
    (first,) = [b for b, (s, _) in states.items() if s == "archived"]
    gone = set(before["voice.conversations"]) - set(after_first["voice.conversations"])
    assert len(gone) == 1 and set(after_first["voice.conversations_archive"]) == gone
    assert [r.ok for r in verify(db.settings, first)] == [True]
    with db.engine.connect() as conn:
        last_rows = conn.execute(sa.select(runs.c.rows).order_by(runs.c.id.desc()).limit(1)).scalar()
    assert last_rows["voice.conversations"] == 1  # its record counted the committed batch before the kill

    report = run(db.settings, ArchiveRequest(to=str(to), policies=[POLICY], batch_size=1))
    assert report.status == "succeeded" and report.recovered == []
    assert run_statuses(db.engine) == ["killed"] * 4 + ["succeeded"]

    # Live + archived = original, each archived row in the files exactly once.
    after = snapshot(db.engine)
    in_files = batch_files(to)
    for name in VOICE:
        taken = {db.key(k) for k in expected[name]}
        assert set(after[name]) == set(before[name]) - taken, name
        assert {row: before[name][row] for row in after[name]} == after[name], name
        keys = [db.key(_uuid(line["id"])) for line in in_files[name]]
        assert sorted(keys) == sorted(taken), name
    assert set(after["voice.conversations_archive"]) == {db.key(k) for k in expected["voice.conversations"]}
    assert all(r.ok for r in verify(db.settings))

    for batch_id in sorted(b for b, (s, _) in catalog(db.engine).items() if s == "archived"):
        assert restore(db.settings, batch_id).status == "restored"
    assert snapshot(db.engine) == before


def _uuid(text: str):
    import uuid

    return uuid.UUID(text)


def test_full_disk_stops_before_deleting(archive_db, tmp_path):
    """The archive directory is a 64 KiB tmpfs, filled up first (in a private mount namespace)."""
    db = archive_db
    fill(db.engine, NOW, transcripts=2)
    before = snapshot(db.engine)
    mount = tmp_path / "tiny"
    mount.mkdir()
    script = ('mount -t tmpfs -o size=64k tmpfs "$0" && { dd if=/dev/zero of="$0/filler" bs=4k 2>/dev/null; '
              'exec "$@"; }')
    # As root, only a mount namespace: a user namespace would map the PostgreSQL server's socket
    # owner to nobody. Otherwise the user namespace is what allows the mount.
    namespace = ["--mount"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--mount"]
    result = subprocess.run(
        ["unshare", *namespace, "sh", "-c", script, str(mount), sys.executable, "-m", "tdbctl", "archive", "--to", str(mount / "archive"), "--policy", "dispatch.completed_calls"],
        env=_env(db), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("tdbctl: error: cannot write archive batch") and "No space left on device" in error
    assert "nothing was deleted" in error and "Traceback" not in result.stderr
    assert snapshot(db.engine) == before
    assert [s for s, _ in catalog(db.engine).values()] == ["discarded"]
    assert run_statuses(db.engine) == ["failed"]
