"""The backup directory: naming, publishing, listing and pruning backups.

A backup is written into a hidden ``.partial-<name>-<pid>`` directory and renamed to its final
name only once its files and manifest are on disk, so a directory with a visible name is always
complete. Pruning renames a backup to ``.deleting-<name>`` before removing it, so a half-deleted
backup never passes for a good one either.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tdbctl.backup.manifest import BackupDamaged, Manifest, read_manifest
from tdbctl.ops.files import ensure_writable, fsync_dir
from tdbctl.errors import UsageError

DEFAULT_DIR = "backups"
PARTIAL = ".partial-"
DELETING = ".deleting-"
_PARTIAL_PID = re.compile(r"-(\d+)$")


@dataclass
class Entry:
    path: Path
    manifest: Manifest | None
    problem: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def good(self) -> bool:
        return self.manifest is not None


def backup_dir(settings, to: str | None) -> Path:
    """--to DIR, else tdbctl.toml's [backup] dir, else ./backups."""
    if to is not None and not to.strip():
        raise UsageError("--to: give a directory (an empty value would mean ./backups)")
    configured = to or settings.section("backup").get("dir") or DEFAULT_DIR
    return Path(str(configured)).expanduser().absolute()


def ensure_dir(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"backup directory {directory} is a file")
    ensure_writable(directory, "backup directory")


def safe_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "database"


def new_partial(directory: Path, name: str) -> Path:
    partial = directory / f"{PARTIAL}{name}-{os.getpid()}"
    partial.mkdir(mode=0o700)
    return partial


def publish(partial: Path, directory: Path, name: str) -> Path:
    """Rename the finished backup into view, under ``name`` or ``name-2``, ``-3``... if taken."""
    for attempt in range(1, 1000):
        final = directory / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            # A directory rename fails on an existing non-empty target: no backup is ever overwritten.
            if final.exists():
                continue
            os.rename(partial, final)
        except OSError:
            if final.exists():
                continue
            raise
        fsync_dir(directory)
        return final
    raise UsageError(f"too many backups named {name} in {directory}")


def cleanup_leftovers(directory: Path) -> list[str]:
    """Remove what killed runs left: partial backups whose process is gone, interrupted deletions."""
    removed = []
    for child in directory.iterdir() if directory.is_dir() else ():
        if child.name.startswith(DELETING):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child.name)
        elif child.name.startswith(PARTIAL):
            match = _PARTIAL_PID.search(child.name)
            if match and not _alive(int(match[1])):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scan(directory: Path) -> list[Entry]:
    """Every backup in the directory, newest first; damaged ones carry their problem."""
    if not directory.is_dir():
        return []
    entries = []
    for child in directory.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        try:
            entries.append(Entry(child, read_manifest(child)))
        except BackupDamaged as exc:
            entries.append(Entry(child, None, exc.message))
    return sorted(entries, key=_sort_key, reverse=True)


def _sort_key(entry: Entry) -> tuple:
    if entry.manifest is not None:
        return (entry.manifest.created, entry.name)
    return (datetime.fromtimestamp(entry.path.stat().st_mtime, timezone.utc), entry.name)


def resolve(spec: str, directory: Path, database: str | None) -> Path:
    """A backup named on the command line: a path, a name in the directory, or ``latest``."""
    given = Path(spec).expanduser()
    if given.is_file() and given.name == "manifest.json":
        return given.parent.absolute()
    if given.is_dir():
        return given.absolute()
    if spec == "latest":
        good = [e for e in scan(directory) if e.good and (database is None or e.manifest.database == database)]
        if not good:
            raise UsageError(f"no good backup of {database or 'any database'} in {directory}")
        return good[0].path
    named = directory / spec
    if "/" not in spec and named.is_dir():
        return named
    raise UsageError(f"no backup {spec!r}: not a directory, and no backup of that name in {directory}")


def plan_prune(entries: list[Entry], database: str, keep: int | None, keep_days: float | None,
               newest: Path, now: datetime | None = None) -> list[Entry]:
    """The good backups of ``database`` that fall outside both promises (union: kept if either keeps it).

    The newest backup is never among them, whatever the options say; damaged backups and other
    databases' backups are not touched.
    """
    now = now or datetime.now(timezone.utc)
    mine = [e for e in entries if e.good and e.manifest.database == database]
    mine.sort(key=lambda e: (e.manifest.created, e.name), reverse=True)
    kept = {newest.resolve()}
    if mine:
        kept.add(mine[0].path.resolve())
    if keep is not None:
        kept |= {e.path.resolve() for e in mine[:keep]}
    if keep_days is not None:
        horizon = now - timedelta(days=keep_days)
        kept |= {e.path.resolve() for e in mine if e.manifest.created >= horizon}
    if keep is None and keep_days is None:
        return []
    return [e for e in mine if e.path.resolve() not in kept]


def remove(entry: Entry) -> None:
    doomed = entry.path.with_name(f"{DELETING}{entry.name}")
    os.rename(entry.path, doomed)
    fsync_dir(entry.path.parent)
    shutil.rmtree(doomed)


def age(created: datetime, now: datetime | None = None) -> str:
    from tdbctl.ops.humanize import span

    return span(((now or datetime.now(timezone.utc)) - created).total_seconds())
