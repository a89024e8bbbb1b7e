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
from tdbctl.errors import ConfigError, ConnectFailed, DatabaseError, TdbError
from tdbctl.runtime import driver_message, scrub

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


def client_uri(settings: Settings, *, base=None) -> tuple[str, dict[str, str]]:
    """The URL for a client program's ``-d``, with its password taken out, and the environment
    that carries the password (PGPASSWORD), without psycopg: nothing secret goes on a command line.

    The password is found where libpq looks for it: in the user part (up to the first ``@`` or
    ``/`` after ``://``) and in a ``password`` query parameter, which wins when both are given.
    libpq itself parses the rest, in the client program.
    """
    from urllib.parse import unquote

    _, _, rest = settings.text.partition("://")
    env = dict(os.environ if base is None else base)
    password = None
    end = next((i for i, char in enumerate(rest) if char in "@/"), len(rest))
    if end < len(rest) and rest[end] == "@":
        user, colon, secret = rest[:end].partition(":")
        if colon:
            password = unquote(secret)
            rest = user + rest[end:]
    head, question, query = rest.partition("?")
    if question:
        kept = []
        for pair, key, value in _query_pairs(query):
            if key == "password":
                password = value
            elif key == "sslpassword":
                raise ConfigError("database URL parameter 'sslpassword' would show in the process list of pg_dump: "
                                  "use an unencrypted key file or a service file (PGSERVICEFILE) instead")
            else:
                kept.append(pair)
        rest = head + ("?" + "&".join(kept) if kept else "")
    if password:
        env["PGPASSWORD"] = password
    return f"postgresql://{rest}", env


def dbname_of(settings: Settings) -> str | None:
    """The database the URL names (its path, or a ``dbname`` query parameter), read without psycopg."""
    from urllib.parse import unquote

    uri, _ = client_uri(settings, base={})  # the password is out of the way of the path
    head, _, query = uri.removeprefix("postgresql://").partition("?")
    named = {key: value for _, key, value in _query_pairs(query)}
    return named.get("dbname") or unquote(head.partition("/")[2]) or None


def _query_pairs(query: str) -> list[tuple[str, str, str]]:
    """(pair as written, key, value) of each ``key=value`` of a URL's query, decoded."""
    from urllib.parse import unquote

    return [(pair, unquote(pair.partition("=")[0]), unquote(pair.partition("=")[2])) for pair in query.split("&") if pair]


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
        conn = psycopg.connect(**params(settings, database=database), autocommit=autocommit, prepare_threshold=None)
    except psycopg.Error as exc:
        failure = MissingDatabase if "does not exist" in str(exc) and "database" in str(exc) else ConnectFailed
        raise failure(f"cannot connect to {settings.masked_url}: {driver_message(exc, settings)}") from exc
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
        raise DatabaseError(f"database error: {driver_message(exc, settings)}") from exc


class MissingDatabase(ConnectFailed):
    """The server answered that the database does not exist (restore creates it)."""
