"""Distribution over a Citus cluster, declared in each domain module beside the tables.

Each table is one of:

- **distributed** by a tenant column (a call session, a conversation, a learner's progress), its
  rows hashed over the workers; a child is colocated with its parent, so that a tenant's rows
  share a node and the foreign keys between them hold;
- **reference**: copied to every node (scenarios, personas, configuration), so that any shard
  can join it and point at it;
- **local**: kept on the coordinator, for a table Citus cannot shard as the seed defines it.

On every PostgreSQL (not only Citus), a distributed table's primary key holds its tenant column
and a foreign key between two tables of one tenant is made over (key, tenant): migration 0013
widens them, so that a database moved into a cluster can be distributed as it is. On a Citus
coordinator, ``tdbctl migrate`` then distributes the tables (tdbctl/ddl/distribution.py), and
``migrate check`` reports a table that is not as declared. SQLite keeps the declared keys.
Decisions and their reasons: docs/schema.md (Distribution on Citus).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from tdbctl.schema.base import OnTable
from tdbctl.schema.partitioning import partitioning_of

Kind = Literal["distributed", "reference", "local"]


@dataclass(frozen=True)
class Distribution(OnTable):
    table: str
    """Schema-qualified table: ``voice.conversation_turns``."""
    kind: Kind
    column: str | None = None
    """The tenant column a distributed table's rows are hashed on."""
    colocate_with: str | None = None
    """The distributed table whose shards hold the same tenants' rows (its parent)."""
    loose: tuple[str, ...] = ()
    """Constraints Citus cannot keep, by name: a UNIQUE without the tenant column becomes a
    plain index, a foreign key to a table of another tenant is not created. Cluster only."""
    why: str = ""
    """For a local table, or a loose constraint: the reason, as migrate check prints it."""


def distributed(table: str, column: str, colocate_with: str | None = None, *, loose: tuple[str, ...] = (),
                why: str = "") -> Distribution:
    return Distribution(table, "distributed", column, colocate_with, loose, why)


def reference(*tables: str) -> list[Distribution]:
    return [Distribution(table, "reference") for table in tables]


def local(table: str, why: str) -> Distribution:
    return Distribution(table, "local", why=why)


def distribute(metadata: sa.MetaData, *declarations: Distribution | list[Distribution]) -> None:
    flat = [d for item in declarations for d in (item if isinstance(item, list) else [item])]
    plan = metadata.info.setdefault("distribution", {})
    for declaration in flat:
        table = metadata.tables[declaration.table]
        if declaration.kind == "distributed":
            if declaration.column not in table.c:
                raise ValueError(f"{declaration.table} has no column {declaration.column}")
            if declaration.colocate_with and declaration.colocate_with not in plan:
                raise ValueError(f"{declaration.table}: declare {declaration.colocate_with} first")
        names = {c.name for c in table.constraints} | {i.name for i in table.indexes}
        for name in declaration.loose:
            if name not in names:
                raise ValueError(f"{declaration.table} has no constraint {name}")
        plan[declaration.table] = declaration


def distribution_of(metadata: sa.MetaData) -> dict[str, Distribution]:
    return dict(metadata.info.get("distribution", {}))


def primary_key(metadata: sa.MetaData, table: str) -> list[str]:
    """The primary key on PostgreSQL: the declared one, then the partition column, then the
    tenant column, each where the key lacks it (a table without a key stays without one)."""
    pk = [c.name for c in metadata.tables[table].primary_key.columns]
    if not pk:
        return pk
    partitioning = partitioning_of(metadata).get(table)
    declared = distribution_of(metadata).get(table)
    for extra in (partitioning and partitioning.column, declared and declared.kind == "distributed" and declared.column):
        if extra and extra not in pk:
            pk.append(extra)
    return pk


@dataclass(frozen=True)
class TenantLink:
    """A foreign key between two tables of one tenant, made over (key, tenant) on PostgreSQL."""

    constraint: sa.ForeignKeyConstraint
    columns: tuple[str, ...]
    referred: tuple[str, ...]
    set_null: tuple[str, ...]
    """ON DELETE SET NULL clears only these (the link), never the tenant column."""

    @property
    def child(self) -> sa.Table:
        return self.constraint.table

    @property
    def parent(self) -> sa.Table:
        return self.constraint.referred_table


def tenant_links(metadata: sa.MetaData) -> list[TenantLink]:
    """The foreign keys a distributed table's widened key changes: from a table of the same
    tenant to a parent whose key gained the tenant column, and which do not already hold it."""
    plan = distribution_of(metadata)
    links = []
    for table in metadata.sorted_tables:
        mine = plan.get(table.fullname)
        if mine is None or mine.kind != "distributed":
            continue
        for fk in sorted(table.foreign_key_constraints, key=lambda c: c.name or ""):
            parent = plan.get(fk.referred_table.fullname)
            if parent is None or parent.kind != "distributed":
                continue
            columns = tuple(c.name for c in fk.columns)
            referred = tuple(e.column.name for e in fk.elements)
            if parent.column in referred:
                continue  # already over the tenant: the parent's own key
            if mine.column in columns:
                raise ValueError(f"{fk.name}: tenant column in a foreign key to another key")
            set_null = columns if (fk.ondelete or "").upper() == "SET NULL" else ()
            links.append(TenantLink(fk, columns + (mine.column,), referred + (parent.column,), set_null))
    return links
