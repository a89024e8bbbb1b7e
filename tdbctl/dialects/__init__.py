"""Dialect differences, behind one small interface every command uses.

``dialect_for(name)`` returns the implementation of :class:`Dialect` registered for a SQLAlchemy
dialect name: a new dialect is one module here and one line in ``REGISTRY``. A name with no
implementation is refused, never served by another dialect's. ``dialect_of(conn)`` is the one
for that very database: a PostgreSQL that is a Citus coordinator gets Citus's.
"""

from __future__ import annotations

from importlib import import_module

from tdbctl.dialects.base import Dialect, ExtensionState

REGISTRY = {
    "postgresql": "tdbctl.dialects.postgresql:PostgresDialect",
    "citus": "tdbctl.dialects.citus:CitusDialect",
    "sqlite": "tdbctl.dialects.sqlite:SqliteDialect",
}


def dialect_for(name: str) -> Dialect:
    try:
        module, _, cls = REGISTRY[name].partition(":")
    except KeyError:
        raise ValueError(f"no tdbctl dialect for {name!r}; tdbctl runs on {', '.join(REGISTRY)}") from None
    return getattr(import_module(module), cls)()


def dialect_of(conn) -> Dialect:
    return dialect_for(conn.dialect.name).refined(conn)


__all__ = ["REGISTRY", "Dialect", "ExtensionState", "dialect_for", "dialect_of"]
