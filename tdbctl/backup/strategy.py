"""What a dialect must do for backup, restore and deep verification: one class per dialect.

``strategy_for(name)`` picks the implementation; the commands never ask which dialect they are on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tdbctl.backup.manifest import Manifest, TableCount
from tdbctl.config import Settings

Log = Callable[[str], None]


def quiet(_: str) -> None:
    pass


@dataclass
class Snapshot:
    """What a dump found, in the same consistent view of the database as the dump itself."""

    server_version: str
    revision: str | None
    tables: dict[str, TableCount]
    method: str
    tool_version: str | None
    roles: dict[str, str] = field(default_factory=dict)
    """Top-level file name in the backup -> its role (main, a schema, dump)."""


class BackupStrategy:
    dialect: str

    def identity(self, settings: Settings) -> str:
        """Which database this is, stable across runs: backups are listed and pruned per identity."""
        raise NotImplementedError

    def label(self, settings: Settings) -> str:
        """Short name that starts the backup's directory name."""
        raise NotImplementedError

    def dump(self, settings: Settings, workdir: Path, *, jobs: int | None, pg_bin: str | None, log: Log,
             meanwhile: Callable[[], None] = lambda: None) -> Snapshot:
        """Write a consistent copy of the database into ``workdir``.

        ``meanwhile`` is this process's own work, run while a dump program works, when there is
        one: overlapped in the same thread, never in another (two threads importing alembic or
        SQLAlchemy's dialects at once can each get a half-initialised module).
        """
        raise NotImplementedError

    def existing_tables(self, settings: Settings) -> dict[str, int]:
        """tdbctl's tables already in the target, with their row counts (empty: nothing to lose)."""
        raise NotImplementedError

    def restored(self, settings: Settings) -> tuple[str | None, dict[str, int]]:
        """The target's revision and its tdbctl tables' row counts (the planner's estimate where
        a table is huge), to check a restore before saying it succeeded."""
        raise NotImplementedError

    def restore(self, backup: Path, manifest: Manifest, target: Settings, *, replace: bool,
                jobs: int | None, pg_bin: str | None, log: Log, meanwhile: Callable[[], None] = lambda: None) -> None:
        """Put the backup in place of the target's tdbctl tables (``replace``: there are some).

        ``meanwhile`` as for ``dump``: run while pg_restore works, when there is one.
        """
        raise NotImplementedError

    def scratch_counts(self, backup: Path, manifest: Manifest, settings: Settings, *,
                       jobs: int | None, pg_bin: str | None, log: Log, scratch: Settings | None = None) -> dict[str, int]:
        """Restore into a throwaway database (``scratch``: an empty one given, left empty again),
        count every table of the manifest, throw it away."""
        raise NotImplementedError


def strategy_for(dialect: str) -> BackupStrategy:
    from tdbctl.dialects import dialect_for
    from tdbctl.errors import UsageError

    try:
        return dialect_for(dialect).implementation("backup")()
    except ValueError:
        raise UsageError(f"tdbctl cannot back up a {dialect} database") from None


def quote_table(qualified: str) -> str:
    schema, table = qualified.split(".", 1)
    return f'"{schema}"."{table}"'
