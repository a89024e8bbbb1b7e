from __future__ import annotations

import fcntl
import os
import zlib

from tdbctl.ddl.base import Dialect


class SqliteDialect(Dialect):
    name = "sqlite"
    extensions_of_interest = ()

    def server_version(self, conn) -> str:
        return conn.exec_driver_sql("SELECT sqlite_version()").scalar()

    def existing_objects(self, conn, schemas) -> set[tuple[str, str, str]]:
        found = set()
        for schema in schemas:
            rows = conn.exec_driver_sql(
                f'SELECT type, name FROM "{schema}".sqlite_master WHERE type IN (\'view\', \'trigger\')'
            ).all()
            found |= {(kind, schema, name) for kind, name in rows}
        return found

    # Locks: byte-range locks on one file beside the database, one byte per lock name. The
    # kernel drops them when the process dies, so a killed run never leaves a stale lock.
    def open_lock_handle(self, engine):
        database = engine.url.database
        if not database or database == ":memory:":
            return None
        return os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def try_lock(self, handle, name: str) -> bool:
        if handle is None:
            return True
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _lock_offset(name))
        except OSError:
            return False
        return True

    def unlock(self, handle, name: str) -> None:
        if handle is not None:
            fcntl.lockf(handle, fcntl.LOCK_UN, 1, _lock_offset(name))

    def close_lock_handle(self, handle) -> None:
        if handle is not None:
            os.close(handle)


def _lock_offset(name: str) -> int:
    return zlib.crc32(name.encode()) % 65521


