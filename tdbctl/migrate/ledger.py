"""The migration ledger: every applied revision with the checksum of its script as applied."""

from __future__ import annotations

import getpass
import hashlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tdbctl.schema.bookkeeping import migration_ledger

# The revision whose upgrade creates the ledger (and whose downgrade drops it).
LEDGER_REVISION = "0001"


def script_checksum(path: str | Path) -> str:
    """sha256 of the script with line endings normalised, so a checkout with CRLF still matches."""
    data = Path(path).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(data).hexdigest()


def applied_by() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a container without /etc/passwd entry
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class LedgerEntry:
    version: str
    script: str
    checksum: str
    applied_at: object
    applied_by: str | None
    execution_ms: int | None = None
    how: str = "applied"
    """applied (by tdbctl migrate) or baselined (by tdbctl migrate baseline)."""


def read(conn) -> list[LedgerEntry]:
    if not sa.inspect(conn).has_table(migration_ledger.name, schema=migration_ledger.schema):
        return []
    t = migration_ledger.c
    columns = [t.version, t.script, t.checksum, t.applied_at, t.applied_by, t.execution_ms]
    # `how` arrived with revision 0009: a database below it has no such column yet.
    present = {c["name"] for c in sa.inspect(conn).get_columns(migration_ledger.name, schema=migration_ledger.schema)}
    if "how" in present:
        columns.append(t.how)
    return [LedgerEntry(*row) for row in conn.execute(sa.select(*columns).order_by(t.id)).all()]


def record_baseline(conn, scripts) -> None:
    """Ledger rows for revisions whose schema was built otherwise: ``how`` says so."""
    conn.execute(migration_ledger.insert(), [
        {"version": s.revision, "script": Path(s.path).name, "description": (s.doc or "").strip()[:500],
         "checksum": script_checksum(s.path), "applied_by": applied_by(), "execution_ms": None, "how": "baselined"}
        for s in scripts])


class Recorder:
    """Alembic's on_version_apply callback: writes the ledger in the migration's own transaction."""

    def __init__(self):
        self._last = time.monotonic()

    def __call__(self, ctx, step, heads, run_args) -> None:
        now = time.monotonic()
        elapsed_ms, self._last = int((now - self._last) * 1000), now
        script = step.up_revision
        if step.is_upgrade:
            ctx.execute(
                migration_ledger.insert().values(
                    version=script.revision,
                    script=Path(script.path).name,
                    description=(script.doc or "").strip()[:500],
                    checksum=script_checksum(script.path),
                    applied_by=applied_by(),
                    execution_ms=elapsed_ms,
                )
            )
        elif script.revision != LEDGER_REVISION:
            ctx.execute(migration_ledger.delete().where(migration_ledger.c.version == script.revision))
