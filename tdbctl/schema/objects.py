"""Schema objects that SQLAlchemy's Table does not model: views, functions, triggers, hypertables.

Each is declared once in its domain module, beside the tables it reads, with the SQL that creates
it on each dialect. A dialect missing from ``create`` means "not on this dialect": `tdbctl info`
lists it and `migrate check` does not expect it there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

ObjectKind = Literal["view", "function", "trigger", "hypertable"]

DROP_TEMPLATES: Mapping[str, Mapping[str, str]] = {
    "postgresql": {
        "view": "DROP VIEW IF EXISTS {schema}.{name}",
        "function": "DROP FUNCTION IF EXISTS {schema}.{name} CASCADE",
        "trigger": "DROP TRIGGER IF EXISTS {name} ON {schema}.{table}",
        "hypertable": "",
    },
    "sqlite": {
        "view": "DROP VIEW IF EXISTS {schema}.{name}",
        "trigger": "DROP TRIGGER IF EXISTS {schema}.{name}",
    },
}


@dataclass(frozen=True)
class SchemaObject:
    kind: ObjectKind
    schema: str
    name: str
    create: Mapping[str, str]
    """dialect name -> the statement that creates the object on that dialect."""
    table: str | None = None
    """For a trigger or hypertable: the table it belongs to."""
    requires_extension: str | None = None
    """Created only where this PostgreSQL extension is installed (timescaledb's hypertable)."""
    note: str = field(default="", compare=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def supported_on(self, dialect: str) -> bool:
        return dialect in self.create

    def create_sql(self, dialect: str) -> str:
        return self.create[dialect]

    def drop_sql(self, dialect: str) -> str:
        template = DROP_TEMPLATES[dialect][self.kind]
        return template.format(schema=self.schema, name=self.name, table=self.table)


def register(metadata, *objects: SchemaObject) -> None:
    metadata.info.setdefault("objects", []).extend(objects)


def objects_of(metadata) -> list[SchemaObject]:
    return list(metadata.info.get("objects", []))


def redundant_seed_indexes(metadata, schema: str, **kept_instead: str) -> None:
    """Indexes a seed names that tdbctl does not create, each with the index that has the same key.

    Declared so that the seed-conformance tests and docs/schema.md read one list, and a reader
    looking for a seed's name finds where its index went."""
    metadata.info.setdefault("redundant_seed_indexes", {}).update(
        {f"{schema}.{name}": f"{schema}.{kept}" for name, kept in kept_instead.items()})


def redundant_seed_indexes_of(metadata) -> dict[str, str]:
    """Qualified name of a seed index not created -> the qualified name of the index kept for it."""
    return dict(metadata.info.get("redundant_seed_indexes", {}))
