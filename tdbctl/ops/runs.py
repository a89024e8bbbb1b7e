"""Run history: every data-changing run is recorded in tdbctl.runs, whatever its end."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import sqlalchemy as sa

from tdbctl import __version__
from tdbctl.migrate.ledger import applied_by
from tdbctl.schema.bookkeeping import runs


@dataclass
class RunRecord:
    id: int
    command: str
    status: str = "succeeded"
    rows: dict[str, int] = field(default_factory=dict)
    message: str | None = None

    def add_rows(self, table: str, count: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + count


def mark_killed(engine, command: str) -> int:
    """Call while holding the command's lock: any 'running' run of it is dead."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(runs)
            .where(runs.c.command == command, runs.c.status == "running")
            .values(status="killed", message="the process ended without finishing (killed or lost connection)")
        )
        return result.rowcount


@contextmanager
def recorded_run(engine, command: str, options: dict, *, dry_run: bool = False) -> Iterator[RunRecord]:
    """Record the run in short transactions of its own, so the record survives the work failing."""
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.insert(runs).values(
                command=command, status="running", user_host=applied_by(), pid=os.getpid(),
                tdbctl_version=__version__, options=options,
            ).returning(runs.c.id)
        ).scalar_one()
    record = RunRecord(run_id, command, status="dry_run" if dry_run else "succeeded")
    try:
        yield record
    except BaseException as exc:
        record.status = "failed"
        record.message = record.message or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        try:
            _finish(engine, record)
        except Exception:  # the server is gone too: the record stays 'running' until the next run marks it
            pass
        raise
    _finish(engine, record)


def _finish(engine, record: RunRecord) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(runs).where(runs.c.id == record.id).values(
                status=record.status, finished_at=sa.func.now(), rows=record.rows, message=record.message,
            )
        )


def save_progress(engine, record: RunRecord) -> None:
    """Write the rows counted so far while the run goes on, so a killed run's record tells how
    far it got (its status stays 'running' until the next run marks it killed)."""
    with engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == record.id, runs.c.status == "running").values(rows=record.rows))


def recent(engine, command: str | None = None, limit: int = 20) -> list[dict]:
    query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
    if command:
        query = query.where(runs.c.command == command)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
