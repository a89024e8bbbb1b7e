"""Open the database a command works on, and turn driver errors into one clear line."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

from tdbctl.config import Settings, mask_secrets
from tdbctl.errors import ConnectFailed, ConnectionLost, DatabaseError, TdbError


@dataclass
class Database:
    settings: Settings
    engine: object  # sqlalchemy.Engine
    dialect: object  # tdbctl.dialects.Dialect
    claim: object = None
    """The claim this run holds on the database (tdbctl.ops.claims.claimed), if any."""

    def connect(self):
        return self.engine.connect()

    @cached_property
    def domains(self) -> tuple[str, ...]:
        """The domains this database runs (tdbctl/domains.py), read once; a caller that holds a
        connection (through a pooler of one, a second would wait for it) assigns it instead."""
        from tdbctl.domains import installed

        with self.connect() as conn:
            found = installed(conn)
            conn.rollback()
        return found

    def holds(self, schema_or_table: str) -> bool:
        """Whether a schema (or a schema-qualified table) is tdbctl's own or an installed domain's."""
        from tdbctl.schemas import DOMAINS

        schema = schema_or_table.split(".", 1)[0]
        return schema not in DOMAINS or schema in self.domains


CREATE = "create"
"""migrate: may create the database's files (SQLite)."""
EXISTS = "exists"
"""The database must exist; nothing is created."""
TOOL = "tool"
"""It must also hold every table of tdbctl's own schema (run history, archive catalog, claims)."""
HEAD = "head"
"""It must be at this tdbctl's head (every command that changes data)."""


@contextmanager
def open_database(settings: Settings, purpose: str = EXISTS) -> Iterator[Database]:
    """The database, opened for a purpose (CREATE, EXISTS, TOOL, HEAD): a database that does not
    serve it is a NotSetUp error (exit 7) naming the fix, before anything is created or changed."""
    from tdbctl.dialects import dialect_for
    from tdbctl.engine import create_engine

    if settings.dialect == "sqlite" and purpose != CREATE:
        _sqlite_files_exist(settings)
    engine = create_engine(settings.url, create=purpose == CREATE)
    try:
        with translate_errors(settings):
            db = Database(settings, engine, _dialect(engine, dialect_for(settings.dialect), purpose))
            if purpose in (TOOL, HEAD):
                _check_revision(db, purpose)
            yield db
    finally:
        engine.dispose()


def _dialect(engine, dialect, purpose: str):
    """The dialect for this very database (a Citus coordinator is Citus), asked once; a database
    that may not exist yet is asked by migrate itself."""
    from tdbctl.dialects.base import Dialect

    if purpose == CREATE or type(dialect).refined is Dialect.refined:
        return dialect
    with engine.connect() as conn:
        found = dialect.refined(conn)
        conn.rollback()
    return found


def _sqlite_files_exist(settings: Settings) -> None:
    import os

    from tdbctl.dialects.sqlite_files import all_files
    from tdbctl.errors import NotSetUp
    from tdbctl.schema import ALL_SCHEMAS

    missing = [path for path in all_files(settings.url.database, ALL_SCHEMAS) if not os.path.exists(path)]
    if len(missing) == len(ALL_SCHEMAS) + 1:
        raise NotSetUp(f"no tdbctl database at {settings.url.database}: run `tdbctl migrate` to create it")
    if missing:
        raise NotSetUp(f"{missing[0]} is missing beside {settings.url.database} (keep a database's files together): "
                       "restore it, or run `tdbctl migrate` to create an empty one")


def _check_revision(db: Database, purpose: str) -> None:
    import sqlalchemy as sa

    from tdbctl.errors import NotSetUp
    from tdbctl.migrate import heads
    from tdbctl.resources import migrations_dir
    from tdbctl.schema import metadata
    from tdbctl.schemas import TOOL_SCHEMA, VERSION_TABLE

    import sqlalchemy.exc as sa_exc

    from tdbctl.errors import LockHeld

    with db.connect() as conn:
        present = set(sa.inspect(conn).get_table_names(schema=TOOL_SCHEMA))
        if VERSION_TABLE not in present:
            raise NotSetUp(f"{db.settings.masked_url} has no tdbctl tables: run `tdbctl migrate` first")
        try:  # a restore or a migration replacing the tables holds them: say so, do not queue
            db.dialect.set_lock_timeout(conn.exec_driver_sql, 2.0)
            current = conn.exec_driver_sql(f'SELECT version_num FROM "{TOOL_SCHEMA}"."{VERSION_TABLE}"').scalar()
        except sa_exc.DBAPIError as exc:
            if db.dialect.transient_error(exc) != "lock_timeout":
                raise
            raise LockHeld("another tdbctl run (a restore or a migration) is replacing tdbctl's tables: "
                           "try again when it is done") from None
        conn.rollback()
    if purpose == HEAD:
        head = heads.single_head(migrations_dir() / "versions")
        if current != head:
            at = f"at revision {current}" if current else "not migrated (no revision applied)"
            raise NotSetUp(f"the database is {at}, this tdbctl's head is {head}: run `tdbctl migrate` first")
    missing = sorted(t.name for t in metadata.tables.values() if t.schema == TOOL_SCHEMA and t.name not in present)
    if missing:
        raise NotSetUp(f"the database is at revision {current or 'none'}, without tdbctl.{missing[0]}: "
                       "run `tdbctl migrate` first")


@contextmanager
def open_direct(settings: Settings, work: str) -> Iterator[Database]:
    """For ``work`` that cannot go through a transaction pooler (it runs outside a transaction
    with session settings, or for long): the direct URL where one is configured, else the URL,
    unless the server is seen to answer through a pooler there."""
    from tdbctl.errors import UsageError

    direct = settings.direct
    with open_database(direct or settings) as db:
        if direct is None:
            with db.connect() as conn:
                found = db.dialect.pooler(conn, settings)
            if found:
                raise UsageError(
                    f"{work} needs a direct connection to the server, and {settings.masked_url} looks like a "
                    f"pooler ({found}): set TDB_DIRECT_URL or [database] direct_url in tdbctl.toml")
        yield db


@contextmanager
def translate_errors(settings: Settings) -> Iterator[None]:
    """SQLAlchemy and driver exceptions become a DatabaseError with one scrubbed line."""
    import sqlalchemy.exc as sa_exc

    try:
        yield
    except TdbError:
        raise
    except sa_exc.DBAPIError as exc:
        reason = driver_message(exc.orig, settings)
        if _is_connect_failure(exc):
            raise ConnectFailed(f"cannot connect to {settings.masked_url}: {reason}") from exc
        if exc.connection_invalidated or _is_lost_connection(exc):
            raise ConnectionLost(
                f"lost the connection to {settings.masked_url} during the work ({reason}): what was not "
                "committed was rolled back; run the command again to continue") from exc
        raise DatabaseError(f"database error: {reason}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise DatabaseError(f"database error: {scrub(str(exc).splitlines()[0], settings)}") from exc


def _is_connect_failure(exc) -> bool:
    text = str(exc.orig).lower()
    return any(p in text for p in ("connection failed", "could not connect", "unable to open database", "connection to server"))


def _is_lost_connection(exc) -> bool:
    # SQLSTATE class 08 (connection exception), 57P01 (admin shutdown: pg_terminate_backend),
    # 57P05 (idle_session_timeout), or libpq's words for a socket that closed.
    state = getattr(exc.orig, "sqlstate", None) or ""
    text = str(exc.orig).lower()
    return (state.startswith("08") or state in ("57P01", "57P02", "57P03", "57P05")
            or "server closed the connection" in text or "consuming input failed" in text)


def driver_message(orig: BaseException, settings: Settings) -> str:
    text = " ".join(str(orig).split())
    text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    return scrub(text, settings)


def scrub(text: str, settings: Settings) -> str:
    """URLs' passwords masked, and the password itself wherever it stands as a whole token (never
    inside a word: with the password 'x', 'extension' stays 'extension')."""
    text = mask_secrets(text)
    if settings.password:
        text = re.sub(rf"(?<![\w]){re.escape(settings.password)}(?![\w])", "***", text)
    return text
