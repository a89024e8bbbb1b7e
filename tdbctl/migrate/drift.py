"""`migrate check`: does the database match the metadata, and is it at head?"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from tdbctl.config import Settings
from tdbctl.runtime import CREATE, open_database


@dataclass
class DriftReport:
    current: str | None
    head: str
    pending: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.pending and not self.differences


def expected_objects(dialect_name: str, installed_extensions: set[str]):
    from tdbctl.schema import metadata, objects_of

    return [
        obj
        for obj in objects_of(metadata)
        if obj.supported_on(dialect_name)
        and (obj.requires_extension is None or obj.requires_extension in installed_extensions)
    ]


def describe_diff(diff) -> str:
    """One readable line for an Alembic autogenerate difference tuple."""
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(describe_diff(d) for d in diff)
    action, *rest = diff
    if action in ("add_table", "remove_table"):
        table = rest[0]
        where = "missing from the database" if action == "add_table" else "in the database but not in the metadata"
        return f"table {table.fullname} {where}"
    if action in ("add_index", "remove_index"):
        index = rest[0]
        where = "missing from the database" if action == "add_index" else "in the database but not in the metadata"
        return f"index {index.table.schema}.{index.name} on {index.table.name} {where}"
    if action in ("add_column", "remove_column"):
        schema, table, column = rest[0], rest[1], rest[2]
        where = "missing from the database" if action == "add_column" else "in the database but not in the metadata"
        return f"column {schema}.{table}.{column.name} {where}"
    if action.startswith("modify_"):
        schema, table, column, _info, old, new = rest
        what = action.removeprefix("modify_")
        return f"column {schema}.{table}.{column} {what} differs: database {old!r}, metadata {new!r}"
    if action in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = rest[0]
        where = "missing from the database" if action.startswith("add") else "in the database but not in the metadata"
        return f"constraint {constraint.name} on {constraint.table.fullname} {where}"
    return f"{action}: {rest}"


def missing_expression_indexes(conn, dialect_name: str) -> list[str]:
    """Alembic skips expression indexes (to_tsvector(...)); at least make sure they exist."""
    import sqlalchemy as sa

    from tdbctl.schema import metadata

    inspector = sa.inspect(conn)
    missing = []
    for table in metadata.sorted_tables:
        wanted = [
            index for index in table.indexes
            if any(not isinstance(e, sa.Column) for e in index.expressions)
            and getattr(getattr(index, "_ddl_if", None), "dialect", dialect_name) in (None, dialect_name)
        ]
        if not wanted or not inspector.has_table(table.name, schema=table.schema):
            continue
        present = {i["name"] for i in inspector.get_indexes(table.name, schema=table.schema)}
        missing += [f"index {table.schema}.{i.name} on {table.name} missing from the database"
                    for i in wanted if i.name not in present]
    return missing


def check(settings: Settings) -> DriftReport:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tdbctl.migrate.commands import current_revision, script_directory, single_head, steps_between
    from tdbctl.migrate.environment import alembic_options
    from tdbctl.schema import ALL_SCHEMAS, metadata

    script = script_directory(settings)
    head = single_head(script)
    with open_database(settings, CREATE) as db, db.connect() as conn:
        current = current_revision(conn)
        report = DriftReport(current, head, [r.revision for r in steps_between(script, current, head)])
        options = alembic_options(db.dialect.name)
        options.pop("transactional_ddl")
        context = MigrationContext.configure(conn, opts=options)
        with warnings.catch_warnings():
            # Expression indexes (to_tsvector) cannot be reflected for comparison; their
            # presence is what matters and PostgreSQL reports it through the index list.
            warnings.filterwarnings("ignore", message=".*expression-based index.*")
            diffs = compare_metadata(context, metadata)
        report.differences = [describe_diff(d) for d in diffs]
        report.differences += missing_expression_indexes(conn, db.dialect.name)
        installed = {n for n, e in db.dialect.extensions(conn).items() if e.installed}
        existing = db.dialect.existing_objects(conn, ALL_SCHEMAS)
        for obj in expected_objects(db.dialect.name, installed):
            if (obj.kind, obj.schema, obj.name) not in existing:
                report.differences.append(f"{obj.kind} {obj.qualified_name} missing from the database")
    return report
