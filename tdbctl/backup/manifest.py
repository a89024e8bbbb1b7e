"""The manifest every backup carries: what it holds, and the checksums that prove it is intact.

The manifest checksums itself too (``manifest_sha256`` over its own canonical JSON), so a flipped
byte in a row count or a file's checksum is caught like one in the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from tdbctl.errors import ExitCode, TdbError
from tdbctl.ops.files import fsync_dir

MANIFEST = "manifest.json"
FORMAT = 1
CHUNK = 1 << 20


class BackupDamaged(TdbError):
    """The backup cannot be trusted: a file is missing, altered, or the manifest is unreadable."""

    exit_code = ExitCode.CHECK_FAILED


@dataclass
class FileEntry:
    path: str
    """Relative to the backup directory, with / separators."""
    bytes: int
    sha256: str
    role: str
    """main or a schema name (SQLite); dump (PostgreSQL)."""


@dataclass
class TableCount:
    rows: int
    estimated: bool = False
    """From the planner's statistics (pg_class.reltuples), not count(*): the table was huge."""


@dataclass
class Manifest:
    created_at: str
    """ISO 8601, UTC."""
    dialect: str
    server_version: str
    tdbctl_version: str
    revision: str | None
    head: str | None
    database: str
    """Which database this is a backup of (host:port/name or the SQLite file), for listing and pruning."""
    source: str
    """The URL, password masked."""
    method: str
    tool_version: str | None
    tables: dict[str, TableCount]
    files: list[FileEntry]
    duration_seconds: float = 0.0
    format: int = FORMAT
    extra: dict = field(default_factory=dict)

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def document(self) -> dict:
        body = asdict(self)
        body["manifest_sha256"] = _digest(body)
        return body

    @classmethod
    def from_document(cls, body: dict) -> "Manifest":
        body = dict(body)
        recorded = body.pop("manifest_sha256", None)
        if recorded != _digest(body):
            raise ValueError("the manifest's own checksum does not match its content")
        if body.get("format") != FORMAT:
            raise ValueError(f"manifest format {body.get('format')!r} is not one this tdbctl reads ({FORMAT})")
        body["tables"] = {k: TableCount(**v) for k, v in body["tables"].items()}
        body["files"] = [FileEntry(**f) for f in body["files"]]
        return cls(**body)


def _digest(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    try:
        return Manifest.from_document(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise BackupDamaged(f"{directory}: no {MANIFEST}: not a tdbctl backup, or an unfinished one") from None
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise BackupDamaged(f"{path}: damaged manifest: {exc}") from None


def write_manifest(directory: Path, manifest: Manifest) -> None:
    write_private(directory / MANIFEST, (json.dumps(manifest.document(), indent=2) + "\n").encode())


def write_private(path: Path, data: bytes) -> None:
    """Write owner-only and durably: the bytes are on disk before this returns."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def describe_files(directory: Path, roles: dict[str, str]) -> list[FileEntry]:
    """Every file under ``directory`` (but the manifest), hashed; ``roles`` maps top-level names to roles."""
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    # hashlib releases the GIL: a directory-format dump's files hash in parallel.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        hashed = list(pool.map(sha256_file, paths))
    entries = []
    for path, (size, digest) in zip(paths, hashed):
        relative = path.relative_to(directory)
        entries.append(FileEntry(relative.as_posix(), size, digest, roles.get(relative.parts[0], "dump")))
    return entries


def fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for folder in [*sorted(p for p in directory.rglob("*") if p.is_dir()), directory]:
        fsync_dir(folder)



def make_private(directory: Path) -> None:
    """Owner-only: directories 0700, files 0600 (a dump holds every row of the database)."""
    os.chmod(directory, 0o700)
    for path in directory.rglob("*"):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
