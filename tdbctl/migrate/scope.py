"""Which schemas a migration run may touch: the tool's own and the database's domains.

The migrations stay one reviewed history. Each operation names its schema, so a database that
runs only some domains applies, of every revision, the operations on ``tdbctl`` and on those
domains, and skips the rest; adding a domain later replays the applied revisions' operations on
that domain alone (docs/schema.md, "Domains"). The filter sits on Alembic's impl, the one place
every operation passes through, so the scripts (and their recorded checksums) stay as they are.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar

from tdbctl.schemas import ALL_SCHEMAS, DOMAINS

_SCOPE: ContextVar[frozenset | None] = ContextVar("tdbctl_migration_scope", default=None)
_SCHEMA_NAMED = re.compile(r'(?<![\w."])"?(' + "|".join(ALL_SCHEMAS) + r')"?\s*\.(?=\s*"?\w)')
_SCHEMA_STATEMENT = re.compile(r'\b(?:CREATE|DROP)\s+SCHEMA\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"?(\w+)"?', re.I)
_EXTENSION_STATEMENT = re.compile(r'\bCREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?"?(\w+)"?', re.I)


@contextmanager
def scoped(schemas):
    """Operations inside touch only ``schemas`` (None: every schema)."""
    token = _SCOPE.set(None if schemas is None else frozenset(schemas))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def domains_in_scope() -> tuple[str, ...]:
    allowed = _SCOPE.get()
    return tuple(d for d in DOMAINS if allowed is None or d in allowed)


def allows_schema(schema: str | None) -> bool:
    allowed = _SCOPE.get()
    return allowed is None or schema not in ALL_SCHEMAS or schema in allowed


def allows_sql(sql: str) -> bool:
    """A statement runs when every one of tdbctl's schemas it names is in scope; CREATE EXTENSION
    when a domain in scope needs the extension."""
    allowed = _SCOPE.get()
    if allowed is None:
        return True
    extension = _EXTENSION_STATEMENT.search(sql)
    if extension:
        from tdbctl.domains import extensions_for

        return extension.group(1) in extensions_for(allowed)
    named = set(_SCHEMA_NAMED.findall(sql)) | {
        m for m in _SCHEMA_STATEMENT.findall(sql) if m in ALL_SCHEMAS}
    return all(schema in allowed for schema in named)


def _schema_of(construct) -> str | None:
    element = getattr(construct, "element", None)
    for candidate in (construct, element, getattr(element, "table", None), getattr(construct, "table", None)):
        schema = getattr(candidate, "schema", None)
        if isinstance(schema, str):
            return schema
    return None


def restrict(impl) -> None:
    """Make Alembic's impl skip what lies outside the scope. create_table and drop_table are
    wrapped whole: PostgreSQL's enum types come and go with them outside _exec."""
    from sqlalchemy.sql.elements import TextClause

    run, create_table, drop_table = impl._exec, impl.create_table, impl.drop_table

    def _exec(construct, *args, **kw):
        text = construct if isinstance(construct, str) else (construct.text if isinstance(construct, TextClause) else None)
        if text is not None:
            return run(construct, *args, **kw) if allows_sql(text) else None
        return run(construct, *args, **kw) if allows_schema(_schema_of(construct)) else None

    impl._exec = _exec
    impl.create_table = lambda table, **kw: create_table(table, **kw) if allows_schema(table.schema) else None
    impl.drop_table = lambda table, **kw: drop_table(table, **kw) if allows_schema(table.schema) else None


def replay(migration_context, script, domains, upto: str) -> list[str]:
    """Install ``domains`` in a database already at ``upto``: every revision up to it, its
    operations on those domains alone, in the caller's transaction; returns the revisions run."""
    from alembic.operations import Operations

    revisions = list(reversed(list(script.iterate_revisions(upto, "base"))))
    with Operations.context(migration_context), scoped(set(domains)):
        for revision in revisions:
            revision.module.upgrade()
    return [r.revision for r in revisions]

