from __future__ import annotations

import fcntl
import os
import time
import zlib
from contextlib import contextmanager

from tdbctl.dialects.base import LOCK_POLL_SECONDS, Dialect


class SqliteDialect(Dialect):
    name = "sqlite"
    prefix = "Sqlite"
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
    @contextmanager
    def run_lock(self, engine, name: str, wait_seconds: float = 0.0):
        from tdbctl.errors import LockHeld

        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        handle = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _lock_offset(name))
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        waited = f" after waiting {wait_seconds:g}s" if wait_seconds else ""
                        raise LockHeld(f"another tdbctl {name} is running on this database{waited}") from None
                    time.sleep(LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(handle)  # and with it the lock

    # --- Claims: on this machine's files, so a claim lives exactly as long as its process -----------

    def server_clock(self):
        import sqlalchemy as sa

        return (sa.func.julianday("now") - 2440587.5) * 86400.0

    def serialize_claims(self, conn, claims, lock_timeout: float) -> None:
        self.set_batch_timeouts(conn, lock_timeout, lock_timeout)
        self.reserve_for_write(conn, [claims])

    # --- Batched deletes (tdbctl cleanup) ---------------------------------------------------------

    def row_locator(self, table):
        import sqlalchemy as sa

        return sa.sql.column("rowid", sa.Integer(), _selectable=table)

    def locator_keyset(self, table):
        from tdbctl.dialects.base import LocatorKeyset

        rowid = self.row_locator(table)
        # rowid is the table's b-tree key: ORDER BY rowid costs nothing.
        return LocatorKeyset(column=rowid, after=lambda last: rowid > last, order_by=(rowid,), sort_key=int)

    def set_batch_timeouts(self, conn, lock_timeout: float, statement_timeout: float) -> None:
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
        with self.user_triggers_off(conn, tables):
            yield

    def insert_new(self, conn, table, rows: list[dict]) -> int:
        from sqlalchemy.dialects import sqlite

        if not rows:
            return 0
        counted = list(table.primary_key.columns) or list(table.columns)[:1]
        return len(conn.execute(sqlite.insert(table).on_conflict_do_nothing().returning(*counted), rows).all())

    @contextmanager
    def user_triggers_off(self, conn, tables):
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
        convert = _stored_forms(table, tuple(columns))
        if convert is not None:
            rows = list(map(convert, rows))
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


_STORED_FORMS: dict = {}


def _stored_forms(table, columns: tuple):
    """A function turning a bulk row (tdbctl/dialects/bulkrows.py) into what SQLAlchemy stores on SQLite
    (timestamps, dates and times as text, UUIDs as 32 hex digits, arrays as JSON); None when every
    value is stored as it is. Compiled once per table and column list."""
    key = (table.fullname, columns)
    if key in _STORED_FORMS:
        return _STORED_FORMS[key]
    import json

    import sqlalchemy as sa

    from tdbctl.dialects import bulkrows

    def form(column_type) -> str | None:
        if _is_array(column_type):
            return "J"
        for sa_type, name in ((sa.DateTime, "TS"), (sa.Date, "D"), (sa.Time, "T"), (sa.Uuid, "U")):
            if isinstance(column_type, sa_type):
                return name
        return None

    forms = [form(table.c[c].type) for c in columns]
    convert = None
    if any(forms):
        names = [f"v{i}" for i in range(len(columns))]
        values = [name if f is None else (f"{f}({name})" if f != "U" else f"{name}.hex()") for name, f in zip(names, forms)]
        values = [v if f is None else f"None if {name} is None else {v}" for name, f, v in zip(names, forms, values)]
        unpack = ", ".join(names) + ("," if len(names) == 1 else "")
        source = f"def convert(r):\n    {unpack} = r\n    return (" + ", ".join(f"({v})" for v in values) + ",)\n"
        scope = {"TS": bulkrows.timestamp_text, "D": bulkrows.date_text, "T": bulkrows.time_text,
                 "J": lambda items: json.dumps(items) if isinstance(items, list) else items}
        exec(source, scope)  # noqa: S102
        convert = scope["convert"]
    _STORED_FORMS[key] = convert
    return convert


def _is_array(column_type) -> bool:
    import sqlalchemy as sa

    return isinstance(getattr(column_type, "_variant_mapping", {}).get("postgresql"), sa.ARRAY)
