"""Open the database a command works on, and turn driver errors into one clear line."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from tdbctl.config import Settings, mask_secrets
from tdbctl.errors import ConnectFailed, ConnectionLost, DatabaseError, TdbError


@dataclass
class Database:
    settings: Settings
    engine: object  # sqlalchemy.Engine
    dialect: object  # tdbctl.ddl.Dialect
    claim: object = None
    """The claim this run holds on the database (tdbctl.ops.claims.claimed), if any."""

    def connect(self):
        return self.engine.connect()


@contextmanager
def open_database(settings: Settings) -> Iterator[Database]:
    from tdbctl.ddl import dialect_for
    from tdbctl.engine import create_engine

    engine = create_engine(settings.url)
    try:
        with translate_errors(settings):
            yield Database(settings, engine, dialect_for(settings.dialect))
    finally:
        engine.dispose()


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
    text = mask_secrets(text)
    if settings.password:
        text = text.replace(settings.password, "***")
    return text
