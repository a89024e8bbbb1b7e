"""Create the SQLAlchemy engine for a database URL, with each dialect's connection set-up."""

from __future__ import annotations

import os

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL

from tdbctl.dialects.sqlite_files import MEMORY, all_files, domain_file

SQLITE_BUSY_TIMEOUT_MS = 5000


def create_engine(url: URL, *, schemas=None, echo: bool = False, create: bool = True) -> sa.Engine:
    """``create=False``: a SQLite database's missing files are not created (runtime.open_database
    refuses a missing database before that, for every command but migrate)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, schemas, echo, create)
    # No server-side prepared statements (psycopg prepares a query run 5 times): through a
    # transaction pooler they stay on a server connection the next client gets, and collide
    # ("prepared statement _pg3_0 already exists"). A command gains nothing from them.
    return sa.create_engine(url, echo=echo, pool_pre_ping=False, poolclass=sa.pool.NullPool,
                            connect_args={"prepare_threshold": None})


def _sqlite_engine(url: URL, schemas, echo: bool, create: bool = True) -> sa.Engine:
    if schemas is None:
        from tdbctl.schema import ALL_SCHEMAS as schemas
    engine = sa.create_engine(url, echo=echo, poolclass=sa.pool.NullPool)
    main_file = url.database

    @event.listens_for(engine, "do_connect")
    def _owner_only(dialect, conn_rec, cargs, cparams):
        # The files hold whole conversations: created owner-only, like backups and archives
        # (SQLite gives its journals the permissions of their database file).
        for path in all_files(main_file, schemas):
            if create and path != MEMORY and not os.path.exists(path):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))

    @event.listens_for(engine, "connect")
    def _attach_domains(dbapi_connection, _record):
        # Transactions are ours (BEGIN below), so that DDL is transactional too and a failed
        # migration leaves every attached file as it was.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        for schema in schemas:
            dbapi_connection.execute(f'ATTACH DATABASE ? AS "{schema}"', (domain_file(main_file, schema),))
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")

    return engine
