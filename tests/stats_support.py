"""Shared by the stats and reindex tests: migrated databases, settings with thresholds, and
sessions held open in the background (a lock holder, a waiting query, a long sleep)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa

from conftest import url_text


def migrate(url) -> None:
    from tdbctl.config import resolve
    from tdbctl.migrate.commands import upgrade

    upgrade(resolve(url_text(url)))


def settings_for(url, directory: Path, thresholds: dict | None = None, reindex: dict | None = None):
    """Settings as a command in ``directory`` sees them, with a tdbctl.toml when asked."""
    from tdbctl.config import resolve

    write_toml(directory, thresholds, reindex)
    return resolve(url_text(url), directory=directory)


def write_toml(directory: Path, thresholds: dict | None = None, reindex: dict | None = None) -> None:
    lines = []
    if thresholds:
        lines.append("[stats.thresholds]")
        lines += [f"{k} = {v}" for k, v in thresholds.items()]
    if reindex:
        lines.append("[reindex]")
        lines += [f"{k} = {v!r}" for k, v in reindex.items()]
    (directory / "tdbctl.toml").write_text("\n".join(lines) + "\n")


def engine(url) -> sa.Engine:
    """tdbctl's own engine: on SQLite it attaches the domain files."""
    from tdbctl.engine import create_engine

    return create_engine(url)


def libpq(url) -> str:
    """A URL psycopg takes directly (no SQLAlchemy driver suffix)."""
    return url_text(url)


class Session:
    """A psycopg connection of its own; ``start(sql)`` runs a statement in a thread (it may block)."""

    def __init__(self, url, autocommit: bool = True):
        self.conn = psycopg.connect(libpq(url), autocommit=autocommit)
        self.pid = self.conn.info.backend_pid
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def execute(self, sql: str, params=None):
        return self.conn.execute(sql, params)

    def start(self, sql: str) -> "Session":
        def run():
            try:
                self.conn.execute(sql)
            except BaseException as exc:  # the cancel the test sends
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def join(self, timeout: float = 30) -> None:
        if self.thread:
            self.thread.join(timeout)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def backend_state(admin: psycopg.Connection, pid: int):
    return admin.execute("SELECT state, wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()


def waiting_on_lock(admin: psycopg.Connection, pid: int) -> bool:
    row = backend_state(admin, pid)
    return bool(row and row[1] == "Lock")
