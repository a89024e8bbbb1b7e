"""Batch files on disk: written owner-only and durably, read back, and checked against a manifest.

A batch directory holds one ``<schema>.<table>.jsonl.gz`` per table (gzip'd JSON Lines, readable
with ``zcat``), ``<schema>.<table>.links.jsonl.gz`` for SET NULL references it must restore, and
``manifest.json``. Directories are 0700 and files 0600: an archive holds whole rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tdbctl.errors import ExitCode, TdbError
from tdbctl.ops.files import ensure_private_dir, fsync_dir

FORMAT = "tdbctl-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".jsonl.gz"
BUFFER = 1 << 20
IN_FLIGHT = 4
GZIP_WBITS = 31  # zlib's gzip container: a standard .gz that gzip, zcat and every library read


class ArchiveDamaged(TdbError):
    """An archive batch cannot be trusted: a file is missing, altered, truncated or unreadable."""

    exit_code = ExitCode.CHECK_FAILED


class ArchiveWriteError(TdbError):
    """A batch file could not be written (a full disk, a quota): nothing was deleted."""


@dataclass
class FileStats:
    name: str
    table: str
    role: str
    """rows: the table's rows; links: SET NULL references to put back on restore."""
    rows: int
    bytes: int
    sha256: str
    """Of the file as stored (gzip bytes): what sha256sum prints."""
    content_sha256: str
    """Of the uncompressed lines."""

    def document(self) -> dict:
        return asdict(self)


class BatchFile:
    """One gzip'd JSON Lines file being written; counts and hashes what goes through it.

    Compressing, hashing and writing happen on a thread of the file's own (zlib, hashlib and
    file writes release the GIL), so they overlap with the database producing the next rows.
    At most IN_FLIGHT buffers wait for it; its first error (a full disk) is raised by the next
    write or by close.
    """

    def __init__(self, directory: Path, name: str, table: str, role: str, level: int, durable=None):
        self.path = directory / name
        self.name, self.table, self.role = name, table, role
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        self._out = open(fd, "wb", buffering=0)
        self._zip = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)
        self._content = hashlib.sha256()
        self._digest = hashlib.sha256()
        self._pending = bytearray()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tdbctl-archive-file")
        self._queued: deque = deque()
        self.rows = 0
        self.bytes = 0
        self._closing = None
        self._durable = durable
        """Called on the file's thread once it is fsynced, before it is read back (a test hook)."""

    def write(self, data) -> None:
        self._pending += data
        if len(self._pending) >= BUFFER:
            self._drain()

    def _drain(self) -> None:
        if not self._pending:
            return
        chunk = bytes(self._pending)
        self._pending.clear()
        self.rows += chunk.count(b"\n")
        while self._queued and (len(self._queued) >= IN_FLIGHT or self._queued[0].done()):
            self._queued.popleft().result()
        self._queued.append(self._worker.submit(self._consume, chunk))

    def _consume(self, chunk: bytes) -> None:
        self._content.update(chunk)
        self._emit(self._zip.compress(chunk))

    def _emit(self, data: bytes) -> None:
        if data:
            self._digest.update(data)
            view = memoryview(data)
            while view:
                view = view[self._out.write(view):]
            self.bytes += len(data)

    def finish(self) -> None:
        """Start closing in the background: the last bytes compressed and written, the file
        fsynced, then read back and checked against what went in (ArchiveDamaged otherwise).
        The thread does it while the database produces the next table's rows; ``result``
        waits for it."""
        self._drain()
        self._closing = self._worker.submit(self._close_and_check)

    def _close_and_check(self) -> FileStats:
        self._emit(self._zip.flush())
        os.fsync(self._out.fileno())
        self._out.close()
        if self._durable is not None:
            self._durable()
        stats = FileStats(self.name, self.table, self.role, self.rows, self.bytes,
                          self._digest.hexdigest(), self._content.hexdigest())
        check_file(self.path.parent, stats)
        return stats

    def result(self) -> FileStats:
        """The file's stats once it is durable and read back; the first error of its thread."""
        try:
            while self._queued:
                self._queued.popleft().result()
            return self._closing.result()
        finally:
            self._worker.shutdown(wait=True, cancel_futures=True)

    def close(self) -> FileStats:
        """Finish the gzip stream, make the file durable (fsync), read it back and check it."""
        self.finish()
        return self.result()

    def abort(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        try:
            self._out.close()
        except OSError:
            pass


def read_back(path: Path) -> tuple[int, int, str, str]:
    """(rows, bytes, sha256, content sha256) of a batch file as it is on disk now."""
    digest, content = hashlib.sha256(), hashlib.sha256()
    unzip = zlib.decompressobj(GZIP_WBITS)
    rows = size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(BUFFER):
                size += len(chunk)
                digest.update(chunk)
                if unzip.eof:
                    raise ArchiveDamaged(f"{path}: data after the end of the gzip stream")
                data = unzip.decompress(chunk)
                rows += data.count(b"\n")
                content.update(data)
        data = unzip.flush()
        rows += data.count(b"\n")
        content.update(data)
    except FileNotFoundError:
        raise ArchiveDamaged(f"{path}: missing") from None
    except zlib.error as exc:
        raise ArchiveDamaged(f"{path}: not a readable gzip file ({exc})") from None
    if not unzip.eof:
        raise ArchiveDamaged(f"{path}: truncated (the gzip stream ends early)")
    return rows, size, digest.hexdigest(), content.hexdigest()


def chunks(path: Path):
    """The uncompressed content of a batch file, in pieces (not aligned to lines)."""
    unzip = zlib.decompressobj(GZIP_WBITS)
    with open(path, "rb") as handle:
        while chunk := handle.read(BUFFER):
            if data := unzip.decompress(chunk):
                yield data
    if data := unzip.flush():
        yield data


def check_file(directory: Path, expected: FileStats | dict) -> None:
    """Read one file back and compare it with what the manifest says; raise ArchiveDamaged."""
    if isinstance(expected, dict):
        expected = FileStats(**{k: expected[k] for k in FileStats.__dataclass_fields__})
    path = directory / expected.name
    if not path.exists():
        raise ArchiveDamaged(f"{path}: missing")
    size = path.stat().st_size
    if size != expected.bytes:
        raise ArchiveDamaged(f"{path}: {size} bytes, the manifest says {expected.bytes} (truncated or altered)")
    rows, size, sha256, content_sha256 = read_back(path)
    if sha256 != expected.sha256:
        raise ArchiveDamaged(f"{path}: sha256 {sha256} differs from the manifest's {expected.sha256}")
    if content_sha256 != expected.content_sha256 or rows != expected.rows:
        raise ArchiveDamaged(f"{path}: {rows} rows read back, the manifest says {expected.rows}")


# -- manifest ------------------------------------------------------------------------------------

def _digest(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def manifest_bytes(body: dict) -> bytes:
    """The manifest as written: its own checksum inside, so an edited manifest is caught too."""
    body = {k: v for k, v in body.items() if k != "manifest_sha256"}
    body["manifest_sha256"] = _digest(body)
    return (json.dumps(body, indent=2, default=str) + "\n").encode("utf-8")


def write_manifest(directory: Path, body: dict) -> tuple[bytes, str]:
    data = manifest_bytes(body)
    path = directory / MANIFEST
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return data, hashlib.sha256(data).hexdigest()


def read_manifest(directory: Path) -> tuple[dict, str]:
    """(manifest, sha256 of manifest.json); ArchiveDamaged when missing or altered."""
    path = directory / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArchiveDamaged(f"{path}: missing") from None
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise ArchiveDamaged(f"{path}: not valid JSON ({exc})") from None
    recorded = body.pop("manifest_sha256", None) if isinstance(body, dict) else None
    if recorded != _digest(body):
        raise ArchiveDamaged(f"{path}: its checksum does not match its content (altered)")
    if body.get("format") != FORMAT or body.get("format_version") != FORMAT_VERSION:
        raise ArchiveDamaged(f"{path}: not a {FORMAT} v{FORMAT_VERSION} manifest")
    return body, hashlib.sha256(data).hexdigest()


# -- directories --------------------------------------------------------------------------------


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "batch"


def batch_dir(root: Path, policy: str, batch_id: int, stamp: str) -> Path:
    return root / safe_name(policy) / f"{stamp}-batch{batch_id}"


def new_batch_dir(directory: Path) -> None:
    ensure_private_dir(directory.parent)
    directory.mkdir(mode=0o700)  # exclusive: a batch never writes into another's directory
    os.chmod(directory, 0o700)
    fsync_dir(directory.parent)


def remove_batch_dir(directory: Path) -> None:
    """Remove the files a batch wrote, then its directory; anything else there is left alone."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.is_file() and (path.name == MANIFEST or path.name.endswith(SUFFIX)):
            path.unlink()
    try:
        directory.rmdir()
    except OSError:
        return
    fsync_dir(directory.parent)
