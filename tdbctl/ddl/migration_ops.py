"""Helpers for migration scripts: the parts of a migration that differ by dialect.

A migration hands each helper the SQL for every dialect; the helper runs the one that applies,
so the scripts themselves read as straight lists of changes.
"""

from __future__ import annotations

from typing import Mapping

from alembic import op


def dialect_name() -> str:
    return op.get_context().dialect.name


def is_postgresql() -> bool:
    return dialect_name() == "postgresql"


def create_schema(name: str) -> None:
    if is_postgresql():
        op.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')


def drop_schema(name: str) -> None:
    """Drop the schema if it is empty (RESTRICT): never takes along anything tdbctl did not create."""
    if is_postgresql():
        op.execute(f'DROP SCHEMA IF EXISTS "{name}" RESTRICT')


def create_extension(name: str) -> None:
    if is_postgresql():
        op.execute(f'CREATE EXTENSION IF NOT EXISTS "{name}"')


def drop_types(schema: str, *names: str) -> None:
    if is_postgresql():
        for name in names:
            op.execute(f'DROP TYPE IF EXISTS "{schema}"."{name}"')


def extension_installed(name: str) -> bool:
    context = op.get_context()
    if context.as_sql or not is_postgresql():
        return False
    return bool(op.get_bind().exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = %(n)s", {"n": name}).first())


def run_for_dialect(statements: Mapping[str, str], *, requires_extension: str | None = None) -> None:
    """Run the statement written for this dialect; none written means not on this dialect."""
    statement = statements.get(dialect_name())
    if not statement:
        return
    if requires_extension and not extension_installed(requires_extension):
        return
    op.execute(statement)
