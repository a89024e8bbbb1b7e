"""PostgreSQL through libpq alone (psycopg, no SQLAlchemy): backup and restore's connections.

Those commands hand the work to pg_dump/pg_restore/psql, which take the connection from libpq's
environment variables. Parsing the URL with libpq itself means tdbctl and the client programs
read it the same way, and importing SQLAlchemy (a quarter of a second) waits until a client
program is already running.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from tdbctl.config import Settings
from tdbctl.errors import ConfigError, DatabaseError, TdbError
from tdbctl.runtime import scrub

# libpq's connection keywords, and the environment variable that carries each.
LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "requiressl": "PGREQUIRESSL",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
    "krbsrvname": "PGKRBSRVNAME",
    "client_encoding": "PGCLIENTENCODING",
}


def params(settings: Settings, *, database: str | None = None) -> dict[str, str]:
    """The URL's connection keywords as libpq reads them (``database`` replaces its dbname)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    _, _, rest = settings.text.partition("://")
    try:
        found = conninfo_to_dict(f"postgresql://{rest}")
    except ProgrammingError as exc:
        raise ConfigError(f"database URL from {settings.source}: {scrub(str(exc), settings)}") from None
    if database is not None:
        found["dbname"] = database
    return {key: str(value) for key, value in found.items()}


def environment(settings: Settings, *, database: str | None = None, base=None) -> dict[str, str]:
    """The environment that makes a client program connect where the settings point.

    The password goes in PGPASSWORD: /proc/<pid>/environ is readable by the owner alone, and
    unlike a temporary passfile it cannot be left behind on disk by a SIGKILL.
    """
    env = dict(os.environ if base is None else base)
    for key, value in params(settings, database=database).items():
        if key not in LIBPQ_ENV:
            raise ConfigError(f"database URL parameter {key!r} has no libpq environment variable for pg_dump/pg_restore")
        env[LIBPQ_ENV[key]] = value
    return env


@contextmanager
def connect(settings: Settings, *, database: str | None = None, autocommit: bool = False) -> Iterator:
    """A psycopg connection; a driver error becomes a DatabaseError of one scrubbed line."""
    import psycopg

    try:
        conn = psycopg.connect(**params(settings, database=database), autocommit=autocommit)
    except psycopg.Error as exc:
        failure = MissingDatabase if "does not exist" in str(exc) and "database" in str(exc) else DatabaseError
        raise failure(f"cannot connect to {settings.masked_url}: {message(exc, settings)}") from exc
    with conn, translate_errors(settings):
        yield conn


@contextmanager
def translate_errors(settings: Settings) -> Iterator[None]:
    import psycopg

    try:
        yield
    except TdbError:
        raise
    except psycopg.Error as exc:
        raise DatabaseError(f"database error: {message(exc, settings)}") from exc


class MissingDatabase(DatabaseError):
    """The server answered that the database does not exist (restore creates it)."""


def message(exc: BaseException, settings: Settings) -> str:
    return scrub(" ".join(str(exc).split()), settings)
