"""What migrations/env.py runs: configure Alembic for tdbctl's schemas, ledger and timeouts."""

from __future__ import annotations

from tdbctl.dialects import dialect_for
from tdbctl.migrate.ledger import Recorder
from tdbctl.schema import ALL_SCHEMAS, TOOL_SCHEMA, metadata
from tdbctl.schemas import VERSION_TABLE

DEFAULT_LOCK_TIMEOUT_SECONDS = 10.0


def include_name(name, type_, parent_names, schemas=ALL_SCHEMAS) -> bool:
    if type_ == "schema":
        return name in schemas
    if type_ == "table":
        return not (name == VERSION_TABLE and parent_names.get("schema_name") == TOOL_SCHEMA)
    return True


def expression_index_names() -> set[str]:
    """Indexes over expressions (to_tsvector(...)): Alembic compares their text, which PostgreSQL
    rewrites (casts, parentheses), so they are checked by name instead (drift.py)."""
    import sqlalchemy as sa

    return {
        index.name
        for table in metadata.tables.values()
        for index in table.indexes
        if any(not isinstance(e, (sa.Column, sa.UnaryExpression)) for e in index.expressions)
    }


def alembic_options(dialect_name: str, schemas=ALL_SCHEMAS) -> dict:
    """``schemas``: what autogenerate compares (the tool's and the installed domains')."""
    skipped_indexes = expression_index_names()

    def include_for_dialect(obj, name, type_, reflected, compare_to):
        if type_ == "index" and name in skipped_indexes:
            return False
        if type_ == "table" and obj.schema not in schemas:
            return False
        condition = getattr(obj, "_ddl_if", None)
        if condition is not None and condition.dialect is not None:
            return condition.dialect == dialect_name
        return True

    return dict(
        target_metadata=metadata,
        version_table_schema=TOOL_SCHEMA,
        include_schemas=True,
        include_name=lambda name, type_, parents: include_name(name, type_, parents, schemas),
        include_object=include_for_dialect,
        compare_type=True,
        transactional_ddl=True,
    )


def run_migrations(context) -> None:
    config = context.config
    attributes = config.attributes
    lock_timeout = attributes.get("lock_timeout_seconds", DEFAULT_LOCK_TIMEOUT_SECONDS)
    if context.is_offline_mode():
        url = attributes["url"]
        dialect = dialect_for(url.get_backend_name())
        context.configure(
            url=url,
            literal_binds=True,
            on_version_apply=Recorder(),
            **alembic_options(dialect.name),
        )
    else:
        connection = attributes["connection"]
        dialect = dialect_for(connection.dialect.name)
        context.configure(connection=connection, on_version_apply=Recorder(), **alembic_options(dialect.name))
    with context.begin_transaction():
        dialect.set_lock_timeout(context.execute, lock_timeout)
        if not context.is_offline_mode():
            from tdbctl.migrate.commands import MIGRATE_LOCK

            dialect.transaction_lock(connection, MIGRATE_LOCK, attributes.get("lock_wait", 0.0))
            if attributes.get("claim") is not None:
                attributes["claim"].check(connection)
            # Under the lock: another migrate may have done the work while this one waited.
            attributes["started_from"] = context.get_context().get_current_revision()
        from tdbctl.migrate import scope

        scope.restrict(context.get_context().impl)
        schemas = attributes.get("schemas")
        with scope.scoped(schemas):
            dialect.prepare_schemas(context.execute, [s for s in ALL_SCHEMAS if scope.allows_schema(s)])
            _install_domains(context, attributes)
            context.run_migrations()
            _distribute(context, attributes, dialect)


def _distribute(context, attributes, dialect) -> None:
    """At head, on a Citus coordinator: the tables placed on the cluster as declared, in the
    migration's transaction (tdbctl/ddl/distribution.py). Before head the keys may not be ready."""
    if context.is_offline_mode():
        return
    from alembic.script import ScriptDirectory

    from tdbctl.migrate import scope
    from tdbctl.schema import metadata

    connection = attributes["connection"]
    cluster = dialect.refined(connection)
    if not cluster.clustered:
        return
    head = ScriptDirectory.from_config(context.config).get_current_head()
    if context.get_context().get_current_revision() != head:
        return
    from tdbctl import domains

    schemas = [d for d in domains.installed(connection) if scope.allows_schema(d)]
    attributes["distributed"] = cluster.distribute(connection, metadata, schemas)


def _install_domains(context, attributes) -> None:
    """Domains added to a database that is already migrated: its applied revisions replayed on
    them alone, then recorded, in the migration's transaction (after the lock: another migrate
    may have installed them meanwhile)."""
    from tdbctl import domains
    from tdbctl.migrate import scope

    at = attributes.get("started_from")
    if context.is_offline_mode() or not attributes.get("install") or not at:
        return
    connection = attributes["connection"]
    new = [d for d in attributes["install"] if d not in domains.installed(connection)]
    if not new:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(context.config)
    scope.replay(context.get_context(), script, new, at)
    domains.record(connection, new, at)
    attributes["installed"] = new
