"""The archive catalog (tdbctl.archive_batches): one row per batch, whatever became of it.

writing    the batch's row is committed before its files are written; its rows are still live
archived   its rows left the live tables in the same transaction that set this status
discarded  an unfinished batch a later run cleaned up (its rows had never left), or a failed one
leftover   discarded, but its files are still to be removed (tdbctl/archive/recovery.py)
restored   its rows were put back
'verified' is never committed on its own: the read-back happens inside the transaction that
deletes, so a batch is seen either before (writing) or after (archived) it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from tdbctl.errors import UsageError
from tdbctl.schema.bookkeeping import archive_batches as batches

UNFINISHED = ("writing", "verified")


@dataclass
class Batch:
    id: int
    run_id: int | None
    policy: str
    source_table: str
    destination: str
    status: str
    row_count: int | None
    child_rows: dict | None
    key_min: str | None
    key_max: str | None
    time_min: datetime | None
    time_max: datetime | None
    sha256: str | None
    bytes: int | None
    manifest: dict | None
    created_at: datetime | None
    completed_at: datetime | None

    @property
    def directory(self) -> Path | None:
        return Path(self.destination) if self.destination.startswith("/") else None

    @property
    def in_place(self) -> bool:
        return bool(self.manifest and self.manifest.get("mode") == "in_place")

    @property
    def child_total(self) -> int:
        return sum((self.child_rows or {}).values())

    def document(self) -> dict:
        body = dict(vars(self))
        body.pop("manifest")
        return body


def _batch(row) -> Batch:
    return Batch(**{c.name: row._mapping[c.name] for c in batches.columns})


def open_batch(conn, *, run_id: int | None, policy: str, source_table: str, destination: str) -> int:
    return conn.execute(
        sa.insert(batches).values(run_id=run_id, policy=policy, source_table=source_table,
                                  destination=destination, status="writing").returning(batches.c.id)
    ).scalar_one()


def set_destination(conn, batch_id: int, destination: str) -> None:
    conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(destination=destination))


def mark_archived(conn, batch_id: int, *, row_count: int, child_rows: dict, key_min, key_max, time_min, time_max,
                  sha256: str | None, size: int | None, manifest: dict) -> None:
    conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(
        status="archived", row_count=row_count, child_rows=child_rows, key_min=key_min, key_max=key_max,
        time_min=_aware(time_min), time_max=_aware(time_max), sha256=sha256, bytes=size, manifest=manifest,
        completed_at=sa.func.now(),
    ))


def mark(conn, batch_id: int, status: str, *, note: str | None = None) -> None:
    values = {"status": status, "completed_at": sa.func.now()}
    if note is not None:
        current = conn.execute(sa.select(batches.c.manifest).where(batches.c.id == batch_id)).scalar()
        values["manifest"] = {**(current or {}), "note": note}
    conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(**values))


def move(conn, batch_id: int, was: str, now: str, *, note: str | None = None) -> bool:
    """Compare-and-set: the batch goes from ``was`` to ``now`` only if it is still ``was``."""
    values = {"status": now, "completed_at": sa.func.now()}
    if note is not None:
        current = conn.execute(sa.select(batches.c.manifest).where(batches.c.id == batch_id)).scalar()
        values["manifest"] = {**(current or {}), "note": note}
    return conn.execute(sa.update(batches).where(batches.c.id == batch_id, batches.c.status == was)
                        .values(**values)).rowcount == 1


def _aware(value):
    # ChatTrain's times are naive UTC; the catalog's columns carry a zone.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def unfinished(conn, *, leftover: bool = False) -> list[Batch]:
    statuses = (*UNFINISHED, "leftover") if leftover else UNFINISHED
    rows = conn.execute(sa.select(batches).where(batches.c.status.in_(statuses)).order_by(batches.c.id))
    return [_batch(r) for r in rows]


def get(conn, batch_id: int) -> Batch:
    row = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).first()
    if row is None:
        raise UsageError(f"no archive batch {batch_id}; `tdbctl archive list` shows them")
    return _batch(row)


def listing(conn, *, policy: str | None = None, status: str | None = None, limit: int | None = None) -> list[Batch]:
    query = sa.select(batches).order_by(batches.c.id.desc())
    if policy:
        query = query.where(batches.c.policy == policy)
    if status:
        query = query.where(batches.c.status == status)
    if limit:
        query = query.limit(limit)
    return [_batch(r) for r in conn.execute(query)]
