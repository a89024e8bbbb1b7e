"""Dialect differences, behind one small interface every command uses.

``dialect_for(name)`` returns the PostgreSQL or SQLite implementation of :class:`Dialect`.
"""

from __future__ import annotations

from tdbctl.ddl.base import Dialect, ExtensionState


def dialect_for(name: str) -> Dialect:
    if name == "postgresql":
        from tdbctl.ddl.postgresql import PostgresDialect

        return PostgresDialect()
    if name == "sqlite":
        from tdbctl.ddl.sqlite import SqliteDialect

        return SqliteDialect()
    raise ValueError(f"no tdbctl dialect for {name!r}")


__all__ = ["Dialect", "ExtensionState", "dialect_for"]
