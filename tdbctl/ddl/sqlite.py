from __future__ import annotations

import fcntl
import os
import zlib
from contextlib import contextmanager

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

    def reserve_for_write(self, conn, tables) -> None:
        # A statement that writes nothing still takes the file's RESERVED lock. Taken at the start,
        # it keeps another writer from getting in between a read and the write that depends on it
        # (which SQLite would otherwise resolve by failing one of them with "database is locked").
        seen = set()
        for table in tables:
            if table.schema in seen:
                continue
            seen.add(table.schema)
            conn.exec_driver_sql(f'DELETE FROM "{table.schema}"."{table.name}" WHERE 0')

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

    # --- Batched deletes (tdbctl cleanup) ---------------------------------------------------------

    def row_locator(self, table):
        import sqlalchemy as sa

        return sa.sql.column("rowid", sa.Integer(), _selectable=table)

    def locator_keyset(self, table):
        from tdbctl.ddl.base import LocatorKeyset

        rowid = self.row_locator(table)
        # rowid is the table's b-tree key: ORDER BY rowid costs nothing.
        return LocatorKeyset(column=rowid, after=lambda last: rowid > last, order_by=(rowid,), sort_key=int)

    def set_batch_timeouts(self, conn, lock_timeout: float, statement_timeout: float, *, local: bool = True) -> None:
        # SQLite has one writer at a time and no statement timeout: a batch waits for the write
        # lock at most lock_timeout, then is retried after a pause like a PostgreSQL lock timeout.
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, int(lock_timeout * 1000))}")

    def transient_error(self, exc: BaseException) -> str | None:
        text = str(getattr(exc, "orig", exc)).lower()
        return "busy" if "database is locked" in text or "database table is locked" in text else None

    def vacuum(self, engine, tables: list[str]) -> list[str]:
        done = []
        schemas = sorted({name.split(".", 1)[0] for name in tables})
        # VACUUM refuses to run inside a transaction, and every SQLAlchemy connection here begins
        # one: use the DBAPI connection, which is in autocommit (isolation_level None).
        raw = engine.raw_connection()
        try:
            db = raw.driver_connection
            for schema in schemas:
                if db.execute(f'PRAGMA "{schema}".auto_vacuum').fetchone()[0] == 2:
                    statement = f'PRAGMA "{schema}".incremental_vacuum'
                else:
                    statement = f'VACUUM "{schema}"'
                db.execute(statement).fetchall()
                done.append(statement)
            for name in tables:
                schema, table = name.split(".", 1)
                statement = f'ANALYZE "{schema}"."{table}"'
                db.execute(statement)
                done.append(statement)
        finally:
            raw.close()
        return done

    # --- Bulk loading (tdbctl seed --synthetic) -----------------------------------------------

    @contextmanager
    def bulk_load(self, conn, tables):
        schemas = sorted({t.schema for t in tables})
        for schema in schemas:
            # 256 MiB of page cache: a large load transaction stays in memory until its commit.
            conn.exec_driver_sql(f'PRAGMA "{schema}".cache_size = -262144')
        # SQLite cannot disable a trigger: drop the tables' triggers and create them again before
        # the commit. DDL is transactional here, so a failed or killed load keeps them.
        triggers = []
        for table in tables:
            found = conn.exec_driver_sql(
                f'SELECT name, sql FROM "{table.schema}".sqlite_master WHERE type = \'trigger\' AND tbl_name = ?',
                (table.name,),
            ).all()
            for name, sql in found:
                conn.exec_driver_sql(f'DROP TRIGGER "{table.schema}"."{name}"')
                triggers.append((table.schema, sql))
        yield
        for schema, sql in triggers:
            conn.exec_driver_sql(_qualify_trigger(sql, schema))

    def bulk_insert(self, conn, table, columns, rows) -> None:
        if not rows:
            return
        arrays = [i for i, c in enumerate(columns) if _is_array(table.c[c].type)]
        if arrays:
            rows = [_arrays_as_json(row, arrays) for row in rows]
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        conn.connection.driver_connection.executemany(
            f'INSERT INTO "{table.schema}"."{table.name}" ({names}) VALUES ({marks})', rows
        )


def _lock_offset(name: str) -> int:
    return zlib.crc32(name.encode()) % 65521


def _qualify_trigger(sql: str, schema: str) -> str:
    """sqlite_master keeps CREATE TRIGGER without the schema it was created in: put it back."""
    import re

    return re.sub(r"^\s*CREATE\s+TRIGGER\s+(IF\s+NOT\s+EXISTS\s+)?", lambda m: f'{m.group(0)}"{schema}".', sql,
                  count=1, flags=re.I)


def _is_array(column_type) -> bool:
    import sqlalchemy as sa

    return isinstance(getattr(column_type, "_variant_mapping", {}).get("postgresql"), sa.ARRAY)


def _arrays_as_json(row: tuple, positions: list[int]) -> tuple:
    import json

    row = list(row)
    for i in positions:
        if isinstance(row[i], list):
            row[i] = json.dumps(row[i])
    return tuple(row)
