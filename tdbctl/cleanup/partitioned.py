"""Retention on a partitioned table: a partition whose whole range is past the cutoff is dropped
as one; the policy's other rows are deleted partition by partition (a row's physical locator is
unique only within its partition, and each partition has pages of its own to walk)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

import sqlalchemy as sa

from tdbctl.partitions.catalog import Partition


@dataclass
class PartitionPlan:
    whole: list[Partition]
    """Dropped whole: every row is the policy's."""
    by_rows: list[sa.Table]
    """The partitions that may hold some of the policy's rows, as tables of their own."""

    def describe(self) -> list[dict]:
        return [{"name": f"{p.schema}.{p.name}", "from": p.lower.isoformat() if p.lower else None,
                 "to": p.upper.isoformat() if p.upper else None, "rows_estimate": p.rows} for p in self.whole]


def physical(parent: sa.Table, name: str) -> sa.Table:
    """One partition as a table with the parent's columns (no foreign keys: nothing references it)."""
    return sa.Table(name, sa.MetaData(),
                    *(sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in parent.columns),
                    schema=parent.schema)


def plan(conn, dialect, metadata: sa.MetaData, target) -> PartitionPlan | None:
    """None for a table that is not partitioned here. Reads on ``conn``, in its transaction."""
    from tdbctl.partitions import partitioned_here
    from tdbctl.partitions.catalog import partitions
    from tdbctl.schema import partitioning_of

    if not partitioned_here(conn, dialect, metadata, target.policy.table):
        return None
    declaration = partitioning_of(metadata)[target.policy.table]
    found = partitions(conn, declaration.schema, declaration.name)
    policy, cutoff = target.policy, target.cutoff
    if cutoff is not None and cutoff.tzinfo is None:  # UTC wall time, for a column without a zone
        cutoff = cutoff.replace(tzinfo=timezone.utc)
    by_age = policy.age_column == declaration.column and cutoff is not None
    whole = [p for p in found if by_age and policy.condition is None and not p.default
             and p.upper is not None and p.upper <= cutoff]
    rest = [p for p in found if p not in whole and (not by_age or p.default or p.lower is None or p.lower < cutoff)]
    parent = metadata.tables[policy.table]
    return PartitionPlan(whole, [physical(parent, p.name) for p in rest])
