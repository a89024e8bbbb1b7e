from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from tdbctl.errors import LockHeld

LOCK_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class ExtensionState:
    name: str
    available: bool
    installed_version: str | None

    @property
    def installed(self) -> bool:
        return self.installed_version is not None


class Dialect:
    """What differs between PostgreSQL and SQLite, for every command."""

    name: str
    extensions_of_interest = ("vector", "pg_trgm", "pg_stat_statements", "timescaledb")

    def prepare_schemas(self, execute, schemas) -> None:
        """Make sure each schema exists (PostgreSQL) or is attached (SQLite)."""

    def set_lock_timeout(self, execute, seconds: float) -> None:
        """Bound how long DDL waits for a lock inside the current transaction."""

    def server_version(self, conn) -> str:
        raise NotImplementedError

    def extensions(self, conn) -> dict[str, ExtensionState]:
        return {}

    def existing_objects(self, conn, schemas) -> set[tuple[str, str, str]]:
        """(kind, schema, name) of views, functions, triggers and hypertables in ``schemas``."""
        raise NotImplementedError

    def missing_prerequisites(self, conn) -> list[str]:
        """What the server lacks for the migrations (one sentence each, naming the fix)."""
        return []

    def count_rows(self, conn, qualified_table: str) -> int:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {qualified_table}").scalar()

    def try_lock(self, handle, name: str) -> bool:
        raise NotImplementedError

    def unlock(self, handle, name: str) -> None:
        raise NotImplementedError

    def open_lock_handle(self, engine):
        raise NotImplementedError

    @contextmanager
    def exclusive_run(self, engine, name: str, wait_seconds: float = 0.0) -> Iterator[None]:
        """Hold the named tdbctl lock for this database; raise LockHeld after ``wait_seconds``.

        The lock is polled (never a blocking wait): a blocking advisory lock can deadlock with
        CREATE INDEX CONCURRENTLY, and polling lets the loser give up on time.
        """
        handle = self.open_lock_handle(engine)
        try:
            deadline = time.monotonic() + wait_seconds
            while not self.try_lock(handle, name):
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait_seconds:g}s" if wait_seconds else ""
                    raise LockHeld(f"another tdbctl {name} is running on this database{waited}")
                time.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                self.unlock(handle, name)
        finally:
            self.close_lock_handle(handle)

    def close_lock_handle(self, handle) -> None:
        handle.close()
