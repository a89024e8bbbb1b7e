"""Which of tdbctl's tables each table of a source database is, column by column.

A platform built from the seed documents' SQL has the seeds' table and column names, in
``public`` (or SQLite's main database) or in schemas named as tdbctl's domains. Each source
table is matched to the managed table of that name: in the schema of the same name when there
is one, else the one whose columns it shares most (seed 002's and seed 003's ``scenarios``).
Columns match by name; a value list a seed spells differently is declared on the target column
(``info={"import_values": {...}}``, next to the table), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from tdbctl.schemas import ALL_SCHEMAS, DOMAINS, TOOL_SCHEMA, other_schemas

MIN_SHARED = 0.5
"""Of a source table's columns, the share a managed table must have for the two to be one table."""


@dataclass
class ColumnMap:
    source: str
    target: str
    source_type: str
    target_type: str
    values: dict[str, str] | None = None
    """A seed's value -> the managed column's value."""

    @property
    def cast(self) -> str | None:
        return None if self.source_type == self.target_type else f"{self.source_type} -> {self.target_type}"

    def document(self) -> dict:
        return {"source": self.source, "target": self.target, "cast": self.cast, "values": self.values}


@dataclass
class TableMap:
    source: str
    """schema.table in the source."""
    target: str | None
    columns: list[ColumnMap] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    """The source columns that order and resume the copy (its primary key); none: a table without
    one is read in the order of all its columns and resumed by the count of rows read."""
    no_home: list[str] = field(default_factory=list)
    """Source columns the managed table has no column for: not copied."""
    left_to_default: list[str] = field(default_factory=list)
    """Managed columns the source lacks: their default (or NULL)."""
    blocking: str | None = None
    """Why the table cannot be copied, when it cannot."""
    rows: int | None = None

    @property
    def copies(self) -> bool:
        return self.target is not None and self.blocking is None

    def document(self) -> dict:
        return {"source": self.source, "target": self.target, "rows": self.rows, "key": self.key,
                "columns": [c.document() for c in self.columns], "no_home": self.no_home,
                "left_to_default": self.left_to_default, "blocking": self.blocking}


def _type_name(column_type, dialect) -> str:
    try:
        return column_type.compile(dialect=dialect)
    except Exception:
        return type(column_type).__name__.upper()


def source_tables(inspector, *, same_database: bool) -> list[tuple[str, str]]:
    """(schema, table) of every table the source has, but tdbctl's own (and, when the source is
    the target database itself, its managed schemas)."""
    ours = ALL_SCHEMAS if same_database else (TOOL_SCHEMA,)
    return [(schema, name) for schema in other_schemas(inspector.get_schema_names(), ours)
            for name in sorted(inspector.get_table_names(schema=schema))]


def _candidates(metadata, schema: str, name: str) -> list[sa.Table]:
    if schema in DOMAINS and f"{schema}.{name}" in metadata.tables:
        return [metadata.tables[f"{schema}.{name}"]]
    return [t for t in metadata.tables.values() if t.name == name and t.schema in DOMAINS]


def plan(source_engine, metadata, domains, target_dialect, *, same_database: bool = False) -> list[TableMap]:
    """The mapping of every source table, in the order the copy takes them (parents first)."""
    inspector = sa.inspect(source_engine)
    order = {t.fullname: i for i, t in enumerate(metadata.sorted_tables)}
    maps = []
    for schema, name in source_tables(inspector, same_database=same_database):
        columns = {c["name"]: c for c in inspector.get_columns(name, schema=schema)}
        key = list(inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or [])
        maps.append(_map_table(f"{schema}.{name}", columns, key, _candidates(metadata, schema, name),
                               domains, source_engine.dialect, target_dialect))
    return sorted(maps, key=lambda m: (m.target is None, order.get(m.target, len(order)), m.source))


def _map_table(source: str, columns: dict, key: list[str], candidates, domains, source_dialect,
               target_dialect) -> TableMap:
    if not candidates:
        return TableMap(source, None, no_home=list(columns), blocking="no table of tdbctl's has this name")
    table = max(candidates, key=lambda t: len(set(columns) & {c.name for c in t.columns}))
    shared = set(columns) & {c.name for c in table.columns}
    if len(shared) < MIN_SHARED * len(columns):
        return TableMap(source, None, no_home=list(columns),
                        blocking=f"shares {len(shared)} of its {len(columns)} columns with {table.fullname}: "
                                 "not the same table")
    if table.schema not in domains:
        return TableMap(source, table.fullname, no_home=list(columns),
                        blocking=f"domain {table.schema} is not installed")
    found = TableMap(source, table.fullname, key=key)
    for name, column in columns.items():
        if name not in table.c:
            found.no_home.append(name)
            continue
        target = table.c[name]
        found.columns.append(ColumnMap(name, name, _type_name(column["type"], source_dialect),
                                       _type_name(target.type, target_dialect),
                                       target.info.get("import_values")))
    for target in table.columns:
        if target.name in shared:
            continue
        if not target.nullable and target.server_default is None and not (
                target.primary_key and target.autoincrement in (True, "auto") and target.type._type_affinity is sa.Integer):
            found.blocking = f"{table.fullname}.{target.name} is NOT NULL without a default and the source has no such column"
        found.left_to_default.append(target.name)
    if not key:
        wanted = [c.name for c in table.primary_key.columns]
        if wanted and all(name in columns for name in wanted):
            found.key = wanted
        # else (seed 001's system_metrics): copied in the order of all its columns, resumed by count
    elif not all(name in table.c for name in key):
        found.blocking = found.blocking or f"its key ({', '.join(key)}) has no column in {table.fullname}"
    return found
