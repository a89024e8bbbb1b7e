"""SQLite: the main file and every attached domain file, copied in one consistent moment.

Backup: one read transaction touches every attached file first, so it holds a shared lock on all
of them before copying any (rollback-journal mode: a writer cannot commit meanwhile; it waits on
its busy timeout), then SQLite's online backup API copies each file from that same connection.

Restore: each file is copied beside its target under a temporary name (and its sha256 checked
against the manifest on the way), then a plan listing the renames is written, then the files
are renamed over the targets, then the plan is removed. A kill before the plan leaves the old
database untouched (the temporaries are cleaned up by the next restore); a kill after it
leaves the renames half done, and the next ``tdbctl restore`` finishes them before anything
else. That window (a few renames) is the residual risk: a program opening the database during
it sees some files old and some new. Applications must be stopped during a restore anyway:
one holding a file open keeps writing to the replaced copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from contextlib import closing, contextmanager
from pathlib import Path

from tdbctl.backup.manifest import CHUNK, TableCount, write_private
from tdbctl.ops.files import fsync_dir
from tdbctl.backup.strategy import BackupStrategy, Snapshot, quote_table
from tdbctl.config import Settings
from tdbctl.dialects.sqlite_files import MEMORY, domain_file
from tdbctl.errors import DatabaseError, TdbError, UsageError

MAIN = "main"
SUFFIX = ".sqlite"
TEMP_SUFFIX = ".tdbctl-restoring"
PLAN_SUFFIX = ".restore-plan"
SIDE_FILES = ("-journal", "-wal", "-shm")
RESTORE_LOCK = "migrate"
WITHOUT_DATA = ("tdbctl.claims",)
"""Tables copied without their rows (as PostgreSQL's dump leaves them out)."""
BUSY_TIMEOUT_MS = 30_000


class SqliteBackup(BackupStrategy):
    dialect = "sqlite"

    def identity(self, settings: Settings) -> str:
        return main_file(settings)

    def label(self, settings: Settings) -> str:
        from tdbctl.backup.store import safe_label

        return safe_label(Path(main_file(settings)).stem)

    # -- backup ---------------------------------------------------------------------------------

    def dump(self, settings, workdir, *, jobs, pg_bin, log, meanwhile=lambda: None) -> Snapshot:
        from tdbctl.schema import ALL_SCHEMAS

        main = main_file(settings)
        if not Path(main).exists():
            raise TdbError(f"no database at {main}: nothing to back up (tdbctl migrate creates it)")
        sources = {MAIN: main, **{s: domain_file(main, s) for s in ALL_SCHEMAS if Path(domain_file(main, s)).exists()}}
        meanwhile()  # nothing runs beside an in-process copy: before it, not while it holds the locks
        log(f"SQLite online backup of {len(sources)} files")
        with _sqlite_errors(main), closing(_open_readonly(sources)) as conn:
            conn.execute("BEGIN")
            for name in sources:  # a shared lock on every file before any is copied
                conn.execute(f'SELECT count(*) FROM "{name}".sqlite_master').fetchone()
            tables = _tables(conn, [s for s in ALL_SCHEMAS if s in sources])
            counts = {t: TableCount(0 if t in WITHOUT_DATA else
                                    conn.execute(f"SELECT count(*) FROM {quote_table(t)}").fetchone()[0]) for t in tables}
            revision = _revision(conn, tables)
            version = conn.execute("SELECT sqlite_version()").fetchone()[0]
            for name in sources:
                with closing(sqlite3.connect(workdir / f"{name}{SUFFIX}")) as target:
                    conn.backup(target, name=name)
                    # The copy, not the database: the claims of runs going on now mean nothing in it.
                    for table in (t for t in WITHOUT_DATA if t in tables and t.split(".", 1)[0] == name):
                        target.execute(f'DELETE FROM "{table.split(".", 1)[1]}"')
                        target.commit()
            conn.execute("COMMIT")
        return Snapshot(version, revision, counts, "sqlite3 online backup API", sqlite3.sqlite_version,
                        roles={f"{name}{SUFFIX}": name for name in sources})

    # -- restore ----------------------------------------------------------------------------------

    def existing_tables(self, settings) -> dict[str, int]:
        from tdbctl.schema import ALL_SCHEMAS

        main = main_file(settings)
        sources = {s: domain_file(main, s) for s in ALL_SCHEMAS if Path(domain_file(main, s)).exists()}
        if not Path(main).exists() or not sources:
            return {}
        with _sqlite_errors(main), closing(_open_readonly({MAIN: main, **sources})) as conn:
            return {t: conn.execute(f"SELECT count(*) FROM {quote_table(t)}").fetchone()[0]
                    for t in _tables(conn, list(sources))}

    def restored(self, settings) -> tuple[str | None, dict[str, int]]:
        from tdbctl.schema import ALL_SCHEMAS

        main = main_file(settings)
        sources = {s: domain_file(main, s) for s in ALL_SCHEMAS if Path(domain_file(main, s)).exists()}
        with _sqlite_errors(main), closing(_open_readonly({MAIN: main, **sources})) as conn:
            tables = _tables(conn, list(sources))
            return _revision(conn, tables), {t: conn.execute(f"SELECT count(*) FROM {quote_table(t)}").fetchone()[0]
                                             for t in tables}

    def restore(self, backup, manifest, target, *, replace, jobs, pg_bin, log, meanwhile=lambda: None) -> None:
        from tdbctl.dialects import dialect_for
        from tdbctl.engine import create_engine
        from tdbctl.schema import ALL_SCHEMAS

        meanwhile()
        main = main_file(target)
        Path(main).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(target.url)  # only for its lock file: never connects
        try:
            with dialect_for("sqlite").run_lock(engine, RESTORE_LOCK, 0.0):
                if finish_interrupted(main):
                    log(f"finished an interrupted restore of {main} before this one")
                clean_temporaries(main, ALL_SCHEMAS)
                moves = []
                for entry in manifest.files:
                    final = main if entry.role == MAIN else domain_file(main, entry.role)
                    temporary = final + TEMP_SUFFIX
                    _copy_checked(backup / entry.path, Path(temporary), entry.sha256)
                    moves.append((temporary, final))
                restored = {final for _, final in moves}
                # A domain the backup does not have (added later) must not survive with newer tables.
                removals = [f for f in (domain_file(main, s) for s in ALL_SCHEMAS) if f not in restored]
                fsync_dir(Path(main).parent)
                write_private(plan_path(main), json.dumps({"moves": moves, "remove": removals}).encode())
                fsync_dir(Path(main).parent)
                _apply(main, moves, removals)
        finally:
            engine.dispose()

    # -- deep verification --------------------------------------------------------------------------

    def scratch_counts(self, backup, manifest, settings, *, jobs, pg_bin, log, scratch=None) -> dict[str, int]:
        if scratch is not None:
            raise UsageError("--scratch-url is for PostgreSQL backups: a SQLite backup is verified in a temporary file")
        with tempfile.TemporaryDirectory(prefix="tdbctl-verify-") as scratch:
            main = str(Path(scratch) / "scratch.db")
            sources = {}
            for entry in manifest.files:
                path = main if entry.role == MAIN else domain_file(main, entry.role)
                _copy_checked(backup / entry.path, Path(path), entry.sha256)
                sources[entry.role] = path
            log(f"restored {len(sources)} files into {scratch}")
            with _sqlite_errors(main), closing(_open_readonly(sources)) as conn:
                for name in sources:
                    verdict = conn.execute(f'PRAGMA "{name}".integrity_check').fetchone()[0]
                    if verdict != "ok":
                        raise DatabaseError(f"integrity check of the restored {name} file failed: {verdict}")
                present = set(_tables(conn, [n for n in sources if n != MAIN]))
                return {t: conn.execute(f"SELECT count(*) FROM {quote_table(t)}").fetchone()[0]
                        for t in manifest.tables if t in present}


def main_file(settings: Settings) -> str:
    database = settings.url.database
    if not database or database == MEMORY:
        raise UsageError("an in-memory SQLite database cannot be backed up or restored: give a file")
    return str(Path(database).absolute())


def plan_path(main: str) -> Path:
    return Path(main + PLAN_SUFFIX)


def finish_interrupted(main: str) -> bool:
    """Complete the renames of a restore killed after writing its plan. True if there was one."""
    plan = plan_path(main)
    if not plan.exists():
        return False
    try:
        steps = json.loads(plan.read_text())
    except ValueError:
        # The plan is written whole before any rename, so a torn plan means no rename happened.
        plan.unlink()
        return False
    _apply(main, [tuple(m) for m in steps["moves"]], steps["remove"])
    return True


def _apply(main: str, moves: list[tuple[str, str]], removals: list[str]) -> None:
    for temporary, final in moves:
        if os.path.exists(temporary):
            # A journal left by the old file would be "rolled back" into the new one: corruption.
            _remove_side_files(final)
            os.replace(temporary, final)
    for path in removals:
        _remove_side_files(path)
        if os.path.exists(path):
            os.unlink(path)
    fsync_dir(Path(main).parent)
    plan_path(main).unlink()
    fsync_dir(Path(main).parent)


def clean_temporaries(main: str, schemas) -> None:
    for path in [main, *(domain_file(main, s) for s in schemas)]:
        if os.path.exists(path + TEMP_SUFFIX):
            os.unlink(path + TEMP_SUFFIX)


def _remove_side_files(path: str) -> None:
    for suffix in SIDE_FILES:
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


def _copy_checked(source: Path, target: Path, sha256: str) -> None:
    """Copy, hashing on the way, and make the copy durable; a mismatch means the backup changed."""
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(source, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    if digest.hexdigest() != sha256:
        target.unlink()
        from tdbctl.backup.manifest import BackupDamaged

        raise BackupDamaged(f"{source}: sha256 {digest.hexdigest()} differs from the manifest's {sha256}")


def _open_readonly(files: dict[str, str]) -> sqlite3.Connection:
    """One connection over the main file with each other file attached under its name, read-only."""
    conn = sqlite3.connect(f"{Path(files[MAIN]).as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    for name, path in files.items():
        if name != MAIN:
            conn.execute(f'ATTACH DATABASE ? AS "{name}"', (f"{Path(path).as_uri()}?mode=ro",))
    return conn


def _tables(conn, schemas) -> list[str]:
    names = []
    for schema in schemas:
        rows = conn.execute(
            f"SELECT name FROM \"{schema}\".sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        names += [f"{schema}.{name}" for (name,) in rows]
    return sorted(names)


def _revision(conn, tables) -> str | None:
    from tdbctl.schema import TOOL_SCHEMA

    if f"{TOOL_SCHEMA}.alembic_version" not in tables:
        return None
    row = conn.execute(f'SELECT version_num FROM "{TOOL_SCHEMA}".alembic_version').fetchone()
    return row[0] if row else None


@contextmanager
def _sqlite_errors(main: str):
    try:
        yield
    except sqlite3.Error as exc:
        raise DatabaseError(f"SQLite error on {main}: {exc}") from exc

