"""Time partitioning, declared in each domain module beside the table it splits.

On PostgreSQL such a table is range-partitioned by its time column, a partition per interval,
with a DEFAULT partition so that no insert ever fails for want of one. Migrations, ``tdbctl
partitions``, cleanup, archive, stats and ``migrate check`` read this declaration; SQLite keeps
the plain table. Decisions and their reasons: docs/schema.md (Partitioned tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from tdbctl.schema.base import OnTable

INTERVALS = ("month", "day")


@dataclass(frozen=True)
class Partitioning(OnTable):
    table: str
    """Schema-qualified table: ``voice.error_logs``."""
    column: str
    """The time column the ranges are over; on PostgreSQL it joins the primary key."""
    interval: str = "month"
    premake: int = 3
    """Partitions kept ready after the current one (pg_partman's premake)."""
    source: str = ""

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"{self.table}: interval {self.interval!r} is not one of {', '.join(INTERVALS)}")

    def key(self, metadata: sa.MetaData) -> list[str]:
        """The primary key on PostgreSQL: the declared one plus the partition column, which a
        partitioned table's unique keys must hold; empty for a table without a key."""
        pk = [c.name for c in metadata.tables[self.table].primary_key.columns]
        return pk + [self.column] if pk and self.column not in pk else pk


def partition_by(metadata: sa.MetaData, *declarations: Partitioning) -> None:
    for declaration in declarations:
        table = metadata.tables[declaration.table]
        if declaration.column not in table.c:
            raise ValueError(f"{declaration.table} has no column {declaration.column}")
        referenced = [fk.parent.table.fullname for t in metadata.tables.values() for fk in t.foreign_keys
                      if fk.column.table is table]
        if referenced:
            # A key referenced from elsewhere would have to carry the time column too.
            raise ValueError(f"{declaration.table} is referenced by {', '.join(referenced)}: not partitioned")
        metadata.info.setdefault("partitioning", {})[declaration.table] = declaration


def partitioning_of(metadata: sa.MetaData) -> dict[str, Partitioning]:
    return dict(metadata.info.get("partitioning", {}))
