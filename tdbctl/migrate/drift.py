"""`migrate check`: does the database match the metadata, and is it at head?"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from tdbctl.config import Settings
from tdbctl.runtime import EXISTS, open_database


@dataclass
class DriftReport:
    current: str | None
    head: str
    pending: list[str] = field(default_factory=list)
    differences: list["Difference"] = field(default_factory=list)
    """Blocking first, then by table."""

    @property
    def clean(self) -> bool:
        return not self.pending and not self.differences

    @property
    def blocking(self) -> list["Difference"]:
        return [d for d in self.differences if d.blocking]

    def by_table(self) -> dict[str, list["Difference"]]:
        """Tables with a blocking difference first, each table's blocking differences first."""
        tables: dict[str, list[Difference]] = {}
        for difference in self.differences:  # compare() sorts them so
            tables.setdefault(difference.table, []).append(difference)
        return tables

    def document(self) -> dict:
        return {"clean": self.clean, "current": self.current, "head": self.head, "pending": self.pending,
                "blocking": len(self.blocking), "cosmetic": len(self.differences) - len(self.blocking),
                "tables": {table: [d.document() for d in found] for table, found in self.by_table().items()}}


def expected_objects(dialect_name: str, installed_extensions: set[str], schemas=None):
    from tdbctl.schema import metadata, objects_of

    return [
        obj
        for obj in objects_of(metadata)
        if obj.supported_on(dialect_name) and (schemas is None or obj.schema in schemas)
        and (obj.requires_extension is None or obj.requires_extension in installed_extensions)
    ]


@dataclass(frozen=True)
class Difference:
    """One way the database differs from the metadata, in plain words."""

    table: str
    """schema.table, or schema.name of a view, function or trigger."""
    blocking: bool
    """True where tdbctl's commands would fail or misbehave on it (a missing table or column, a
    type, nullability, key, constraint or index); False for what is cosmetic (comments, an index
    under another name, an extra nullable column or table)."""
    what: str

    @property
    def severity(self) -> str:
        return "blocking" if self.blocking else "cosmetic"

    def __str__(self) -> str:
        return f"{self.severity}: {self.table}: {self.what}"

    def document(self) -> dict:
        return {"table": self.table, "severity": self.severity, "difference": self.what}


def _type(value) -> str:
    if value is None:
        return "none"
    try:
        return str(value.compile())
    except Exception:
        return str(value)


def _columns(index) -> str:
    return ", ".join(str(e) if not hasattr(e, "name") else e.name for e in index.expressions)


def classify(diffs) -> list[Difference]:
    """Alembic's autogenerate tuples as Differences. An index missing under one name and present
    under another with the same definition is one cosmetic difference, not two blocking ones."""
    flat = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    added = {(d[1].table.fullname, _index_key(d[1])): d[1] for d in flat if d[0] == "add_index"}
    removed = {(d[1].table.fullname, _index_key(d[1])): d[1] for d in flat if d[0] == "remove_index"}
    renamed = set(added) & set(removed)
    found = []
    for key in sorted(renamed):
        found.append(Difference(key[0], False, f"index {removed[key].name} in the database is {added[key].name} in "
                                                   f"the metadata (same definition: {_columns(added[key])})"))
    for action, *rest in flat:
        if action in ("add_index", "remove_index") and (rest[0].table.fullname, _index_key(rest[0])) in renamed:
            continue
        found.append(_one(action, rest))
    return found


def _index_key(index) -> tuple:
    return (_columns(index), bool(index.unique))


def _one(action: str, rest: list) -> Difference:
    if action == "add_table":
        return Difference(rest[0].fullname, True, "table missing from the database")
    if action == "remove_table":
        return Difference(rest[0].fullname, False, "table in the database that the metadata does not have")
    if action == "add_column":
        schema, table, column = rest[0], rest[1], rest[2]
        return Difference(f"{schema}.{table}", True, f"column {column.name} missing ({_type(column.type)})")
    if action == "remove_column":
        schema, table, column = rest[0], rest[1], rest[2]
        # An extra column only gets in the way of inserts when it must be given a value.
        must = not column.nullable and column.server_default is None and column.autoincrement is not True
        return Difference(f"{schema}.{table}", must, f"column {column.name} in the database that the metadata does "
                          "not have" + (" (NOT NULL without a default: inserts fail)" if must else ""))
    if action.startswith("modify_"):
        schema, table, column, _info, old, new = rest
        what = action.removeprefix("modify_")
        if what == "type":
            return Difference(f"{schema}.{table}", True, f"column {column}: type {_type(old)} in the database, "
                              f"{_type(new)} expected")
        if what == "nullable":
            return Difference(f"{schema}.{table}", True, f"column {column}: "
                              f"{'nullable' if old else 'NOT NULL'} in the database, "
                              f"{'nullable' if new else 'NOT NULL'} expected")
        if what == "comment":
            return Difference(f"{schema}.{table}", False, f"column {column}: comment differs")
        return Difference(f"{schema}.{table}", True, f"column {column}: {what} {old!r} in the database, {new!r} expected")
    if action in ("add_table_comment", "remove_table_comment"):
        return Difference(rest[0].fullname, False, "table comment differs")
    if action in ("add_index", "remove_index"):
        index = rest[0]
        kind = "unique index" if index.unique else "index"
        if action == "add_index":
            return Difference(index.table.fullname, True, f"{kind} {index.name} missing ({_columns(index)})")
        # An extra unique index can refuse rows the application writes; a plain one only costs writes.
        return Difference(index.table.fullname, bool(index.unique),
                          f"{kind} {index.name} in the database that the metadata does not have ({_columns(index)})")
    if action in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = rest[0]
        kind = "foreign key" if action.endswith("_fk") else "constraint"
        where = "missing" if action.startswith("add") else "in the database that the metadata does not have"
        return Difference(constraint.table.fullname, True, f"{kind} {constraint.name} {where}")
    return Difference("?", True, f"{action}: {rest}")


def missing_expression_indexes(conn, dialect_name: str) -> list[Difference]:
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
        missing += [Difference(table.fullname, True, f"index {i.name} missing (an expression index)")
                    for i in wanted if i.name not in present]
    return missing


def check(settings: Settings) -> DriftReport:
    from tdbctl.migrate.commands import current_revision, script_directory, single_head, steps_between

    script = script_directory(settings)
    head = single_head(script)
    with open_database(settings, EXISTS) as db, db.connect() as conn:
        current = current_revision(conn)
        report = DriftReport(current, head, [r.revision for r in steps_between(script, current, head)])
        report.differences = compare(conn, db.dialect)
    return report


def migration_context(conn, dialect_name: str, schemas=None):
    """Alembic's view of the database on ``conn``, configured as migrations run, for comparing and
    stamping; ``schemas``: the ones compared (default: every schema of tdbctl's)."""
    from alembic.runtime.migration import MigrationContext

    from tdbctl.migrate.environment import alembic_options

    options = alembic_options(dialect_name, *([schemas] if schemas is not None else []))
    options.pop("transactional_ddl")
    return MigrationContext.configure(conn, opts=options)


def _without_partitioning(diffs, conn, dialect, metadata) -> list:
    """Leave out what declared partitioning makes differ by design: the partitions (and a plain
    table still emptying into its partitioned successor) are parts of their table, not tables
    the metadata lacks; the partition and tenant columns, in the primary key, are NOT NULL."""
    from tdbctl.schema import ALL_SCHEMAS

    if not dialect.partitioned:
        return diffs
    parts = dialect.partition_tables(conn, ALL_SCHEMAS)
    from tdbctl.schema.distribution import primary_key

    # Columns PostgreSQL's primary key adds to the declared one: the partition and tenant columns.
    keyed = {(t.schema, t.name, c) for t in metadata.tables.values()
             for c in primary_key(metadata, t.fullname) if c not in {k.name for k in t.primary_key.columns}}

    def kept(diff) -> bool:
        if isinstance(diff, list):  # a column's modifications
            return not all(d[0] == "modify_nullable" and (d[1], d[2], d[3]) in keyed for d in diff)
        obj = diff[1]
        table = obj if diff[0].endswith("_table") else getattr(obj, "table", None)
        return table is None or (table.schema, table.name) not in parts

    return [d for d in diffs if kept(d)]


def _without_distribution(diffs, conn, dialect, metadata) -> list:
    """Leave out what the distribution plan makes differ by design (tdbctl/schema/distribution.py):
    on PostgreSQL, a tenant link that the database holds over (key, tenant); on a Citus cluster,
    a constraint the plan calls loose, as the plan replaces it (a plain index, or nothing)."""
    import sqlalchemy as sa

    from tdbctl.schema.distribution import distribution_of, tenant_links

    if not dialect.partitioned:  # PostgreSQL's keys; SQLite keeps the declared ones
        return diffs
    inspector = sa.inspect(conn)
    widened = set()
    for link in tenant_links(metadata):
        child = link.child
        if inspector.has_table(child.name, schema=child.schema):
            held = {f["name"]: f["constrained_columns"] for f in inspector.get_foreign_keys(child.name, schema=child.schema)}
            if held.get(link.constraint.name) == list(link.columns):
                widened.add((child.fullname, link.constraint.name))
    loose = {(name, c) for name, d in distribution_of(metadata).items() for c in d.loose} if dialect.clustered else set()

    def kept(diff) -> bool:
        if isinstance(diff, list) or diff[0] not in ("add_fk", "remove_fk", "add_constraint", "remove_constraint",
                                                         "add_index", "remove_index"):
            return True
        obj = diff[1]
        key = (obj.table.fullname if obj.table is not None else "", obj.name)
        if diff[0].endswith("_fk") and key in widened:
            return False
        return key not in loose

    return [d for d in diffs if kept(d)]


def compare(conn, dialect, domains=None) -> list[Difference]:
    """What differs between the schema ``conn`` sees and the metadata, for tdbctl's own schema
    and ``domains`` (default: those the database has): blocking first, by table."""
    from alembic.autogenerate import compare_metadata

    from tdbctl.domains import installed
    from tdbctl.schema import TOOL_SCHEMA, metadata

    schemas = (TOOL_SCHEMA, *(installed(conn) if domains is None else domains))
    context = migration_context(conn, dialect.name, schemas)
    with warnings.catch_warnings():
        # Expression indexes (to_tsvector) cannot be reflected for comparison; their
        # presence is what matters and PostgreSQL reports it through the index list.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        diffs = compare_metadata(context, metadata)
    diffs = _without_distribution(_without_partitioning(diffs, conn, dialect, metadata), conn, dialect, metadata)
    differences = classify(diffs) + [
        d for d in missing_expression_indexes(conn, dialect.name) if d.table.split(".", 1)[0] in schemas]
    extensions = {n for n, e in dialect.extensions(conn).items() if e.installed}
    existing = dialect.existing_objects(conn, schemas)
    for obj in expected_objects(dialect.name, extensions, schemas):
        if (obj.kind, obj.schema, obj.name) not in existing:
            differences.append(Difference(obj.qualified_name, True, f"{obj.kind} missing"))
    differences += [Difference(table, True, what) for table, what in dialect.misplaced(conn, metadata, schemas)]
    return sorted(differences, key=lambda d: (not d.blocking, d.table, d.what))


def built_otherwise(conn, domains, *, beside_existing: bool = False) -> str | None:
    """Why a database without tdbctl's revision should not simply be migrated, or None: its
    domain schemas already hold tables tdbctl would create (built from the seeds' SQL: baseline
    takes it over), or, unless ``beside_existing``, another schema (public, SQLite's main) holds
    tables named as tdbctl's, which a migrate would leave behind empty schemas every command looks at."""
    import sqlalchemy as sa

    from tdbctl.domains import tables_held
    from tdbctl.schema import metadata
    from tdbctl.schemas import TOOL_SCHEMA, other_schemas

    inspector = sa.inspect(conn)
    for domain in domains:
        found = tables_held(inspector, domain)
        if found:
            return (f"{domain} already holds {len(found)} of tdbctl's tables ({', '.join(found[:4])}"
                    f"{', ...' if len(found) > 4 else ''}), which no tdbctl migrate created: `tdbctl migrate check` "
                    "shows how the schema differs, `tdbctl migrate baseline` takes it over; nothing was changed")
    if beside_existing:
        return None
    names = {t.name for t in metadata.tables.values() if t.schema != TOOL_SCHEMA}
    for schema in other_schemas(inspector.get_schema_names()):
        found = sorted(names & set(inspector.get_table_names(schema=schema)))
        if len(found) >= 3:
            return (f"{schema} holds {len(found)} tables named as tdbctl's ({', '.join(found[:4])}"
                    f"{', ...' if len(found) > 4 else ''}): a platform built from the seeds outside tdbctl's schemas? "
                    "Migrating creates empty schemas beside it, and every command would look at those; "
                    "give --beside-existing to migrate anyway; nothing was changed")
    return None
