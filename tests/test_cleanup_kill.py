"""A cleanup SIGKILLed mid-run loses nothing it should keep, leaves no half-deleted batch, and
the next run finishes the job (and marks the dead run 'killed')."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from conftest import url_text
from test_cleanup import T, World, ago, expected_after, orphans, runs_rows, snapshot, wide
from tdbctl.config import resolve
from tdbctl.migrate.commands import upgrade
from tdbctl.runtime import open_database

EXPIRED, LIVE = 1500, 100


@pytest.fixture
def db(db_url):
    settings = resolve(url_text(db_url))
    upgrade(settings)
    with open_database(settings) as database:
        yield database


def start(db, *args) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    env["TDB_DATABASE_URL"] = url_text(db.settings.url)
    return subprocess.Popen([sys.executable, "-m", "tdbctl", "cleanup", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sessions_left(engine) -> set:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(T["chattrain.sessions"].c.id)).scalars())


def build(engine):
    """Abandoned sessions with messages, feedback and activity logs, beside live ones."""
    w = World(engine)
    with engine.begin() as conn:
        w.insert(conn, "chattrain.scenarios", [dict(id="sc", title="t", domain="d", version="1", smart_goals=[],
                                                    llm_profile={}, steps=[])])
        sessions = w.insert(conn, "chattrain.sessions", [
            dict(scenario_id="sc", user_id="old" if i < EXPIRED else "live", status="in_progress")
            for i in range(EXPIRED + LIVE)
        ])
        messages = w.insert(conn, "chattrain.messages", [
            dict(session_id=s["id"], role=role, content="hi") for s in sessions for role in ("user", "assistant")
        ])
        w.insert(conn, "chattrain.feedback", [
            dict(session_id=m["session_id"], message_id=m["id"], step_id="s", evaluation_type="manual") for m in messages[::2]
        ])
        w.insert(conn, "chattrain.user_activity_logs", [
            dict(session_id=s["id"], user_id="u", activity_type="session_start", timestamp=ago(8, naive=True))
            for s in sessions[EXPIRED - 50:EXPIRED + 50]
        ])
        table = T["chattrain.sessions"]
        for user, days in (("old", 10), ("live", 1)):
            conn.execute(sa.update(table).where(table.c.user_id == user).values(last_activity_at=ago(days, naive=True)))
    return {s["id"] for s in sessions[:EXPIRED]}


def expected(before: dict, sessions_gone: set) -> dict:
    """The database with exactly these sessions deleted: their messages and feedback with them,
    their activity logs kept with session_id cleared."""
    gone = {"chattrain.sessions": {(s,) for s in sessions_gone}}
    columns = {name: T[name].columns.keys() for name in ("chattrain.messages", "chattrain.feedback",
                                                          "chattrain.user_activity_logs")}
    for name in ("chattrain.messages", "chattrain.feedback"):
        index = columns[name].index("session_id")
        gone[name] = {k for k, row in before[name].items() if row[index] in sessions_gone}
    index = columns["chattrain.user_activity_logs"].index("session_id")
    cleared = {"chattrain.user_activity_logs": {
        k: "session_id" for k, row in before["chattrain.user_activity_logs"].items() if row[index] in sessions_gone}}
    return expected_after(before, gone, cleared)


def test_a_run_killed_mid_way_keeps_whole_batches_and_the_next_run_finishes(db):
    expired = build(db.engine)
    before = snapshot(db.engine)
    everything = sessions_left(db.engine)

    # Batches of one session: the run takes long enough to be caught in the middle.
    process = start(db, "--policy", "chattrain.abandoned_sessions", "--batch-size", "1")
    deadline = time.monotonic() + 60
    while len(everything - sessions_left(db.engine)) < 25:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    left = sessions_left(db.engine)
    deleted = everything - left
    assert deleted <= expired and 25 <= len(deleted) < EXPIRED, len(deleted)
    # Every session is there with all its messages, feedback and logs, or gone with its
    # messages and feedback and its logs' reference cleared: no batch was half done.
    assert snapshot(db.engine) == expected(before, deleted)
    assert orphans(db.engine) == {}
    assert [r["status"] for r in runs_rows(db.engine)] == ["running"]

    rerun = start(db, "--policy", "chattrain.abandoned_sessions", "--json")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    summary = json.loads(out)
    assert summary["rows"]["chattrain.sessions"] == EXPIRED - len(deleted)
    assert summary["rows"]["chattrain.messages"] == 2 * (EXPIRED - len(deleted))
    assert snapshot(db.engine) == expected(before, expired)
    assert orphans(db.engine) == {}
    assert [(r["status"], r["message"] is not None) for r in runs_rows(db.engine)] == [("killed", True), ("succeeded", False)]


def test_a_killed_run_of_a_table_without_cascades_keeps_every_live_row(db):
    """The same for activity logs, which PostgreSQL deletes by ranges of pages, a statement each."""
    logs = T["chattrain.user_activity_logs"]
    w = World(db.engine)
    with db.engine.begin() as conn:
        rows = w.insert(conn, "chattrain.user_activity_logs", [
            # Wide rows, a few a page: PostgreSQL's batches (a page at least) stay small too.
            dict(user_id="u", activity_type="message_sent", timestamp=ago(days, naive=True), user_agent=wide(1500))
            for days in [100] * 4000 + [10] * 200
        ])
    expired = {r["id"] for r in rows if r["timestamp"] < ago(90, naive=True)}
    live = {r["id"] for r in rows} - expired

    def left() -> set:
        with db.engine.connect() as conn:
            return set(conn.execute(sa.select(logs.c.id)).scalars())

    process = start(db, "--policy", "chattrain.activity_logs", "--batch-size", "1")
    deadline = time.monotonic() + 60
    # Watched with a count on one connection: fetching every id each time was slow enough, on a
    # busy machine, for the whole run (hundreds of one-page batches) to end between two looks.
    with db.engine.connect() as watcher:
        count = sa.select(sa.func.count()).select_from(logs)
        while watcher.execute(count).scalar() > len(rows) - 25:
            watcher.rollback()
            assert process.poll() is None and time.monotonic() < deadline, process.communicate() if process.poll() else "stuck"
            time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    remaining = left()
    assert live <= remaining and remaining - live < expired and len(remaining - live) > 0

    rerun = start(db, "--policy", "chattrain.activity_logs", "--json")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert json.loads(out)["rows"] == {"chattrain.user_activity_logs": len(remaining - live)}
    assert left() == live
