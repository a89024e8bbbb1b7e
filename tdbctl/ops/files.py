"""Files shared by backup and archive: durable (what is on disk survives a power cut), owner-only,
and a destination proven writable before any work starts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a new, renamed or removed file) durable, not only the files."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (and parents) owner-only; an existing one is left as it is."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)
        fsync_dir(path.parent)
    if not directory.is_dir():
        raise NotADirectoryError(20, "not a directory", str(directory))


def ensure_writable(directory: Path, option: str) -> None:
    """Create ``directory`` owner-only if needed and prove a file can be written there, before any
    work starts; a UsageError naming ``option`` otherwise."""
    from tdbctl.errors import UsageError

    try:
        ensure_private_dir(directory)
        fd, probe = tempfile.mkstemp(prefix=".tdbctl-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{option} {directory}: cannot write there ({exc.strerror or exc})") from None
