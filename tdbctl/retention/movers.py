"""The ways rows leave, and which ones a policy takes, table by table: one chooser for both commands.

``steps(...)`` reads the catalog and answers, for one selected policy, the list of moves a run
makes, in order: a partition wholly past the cutoff goes whole (dropped, or archived as one
batch), then the rest goes row by row (deleted in batches, archived into files, or marked in
place). A dry run shows the same list; each command carries out a step by its mover's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

import sqlalchemy as sa

MOVERS = {
    "drop_partition": ("cleanup", "DROP TABLE of a partition whose whole range is past the cutoff"),
    "delete_rows": ("cleanup", "DELETE in short batches, by ranges of pages or by keys, with what ON DELETE takes"),
    "archive_partition": ("archive", "a partition wholly past the cutoff: COPY out, verify, DROP, one batch"),
    "archive_rows": ("archive", "rows and what cascades with them into verified files, in batches"),
    "archive_in_place": ("archive", "rows marked archived where they are; nothing deleted"),
}
"""Each mover: the command that carries it out, and what it does."""


@dataclass
class Step:
    mover: str
    partition: object = None
    """tdbctl.partitions.catalog.Partition, for a partition mover."""
    table: sa.Table | None = None
    """Where a row mover works: a partition as a table of its own, or None for the policy's table."""

    def describe(self) -> dict:
        p = self.partition
        return {"name": f"{p.schema}.{p.name}", "from": p.lower.isoformat() if p.lower else None,
                "to": p.upper.isoformat() if p.upper else None, "rows_estimate": p.rows}


def physical(parent: sa.Table, name: str) -> sa.Table:
    """One partition as a table with the parent's columns (no foreign keys: nothing references it)."""
    return sa.Table(name, sa.MetaData(),
                    *(sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in parent.columns),
                    schema=parent.schema, info={"partition_of": parent.fullname})


def steps(conn, dialect, metadata: sa.MetaData, target, command: str, tree=None) -> list[Step]:
    """The moves a ``command`` run makes for ``target`` (archive: ``tree`` is its cascade tree).
    Reads on ``conn``, in its transaction."""
    policy = target.policy
    if command == "archive" and policy.archive_status:
        return [Step("archive_in_place")]
    split = _split(conn, dialect, metadata, target)
    parent = metadata.tables[policy.table]
    if command == "cleanup":
        if split is None:
            return [Step("delete_rows")]
        whole, rest = split
        return ([Step("drop_partition", p) for p in whole]
                + [Step("delete_rows", p, physical(parent, p.name)) for p in rest])
    # A partition goes whole only where no row of another table goes or changes with its rows.
    alone = not (policy.archive_table or tree.cascades or tree.detached or tree.parents_of(tree.root))
    whole = split[0] if split is not None and alone else []
    return [Step("archive_partition", p, physical(parent, p.name)) for p in whole] + [Step("archive_rows")]


def _split(conn, dialect, metadata, target):
    """None where the table is not partitioned here; else (the partitions wholly past the cutoff,
    the partitions that may hold some of the policy's rows)."""
    from tdbctl.partitions import partitioned_here
    from tdbctl.partitions.catalog import partitions
    from tdbctl.schema import partitioning_of

    policy, cutoff = target.policy, target.cutoff
    if not partitioned_here(conn, dialect, metadata, policy.table):
        return None
    declaration = partitioning_of(metadata)[policy.table]
    found = dialect.with_shard_figures(conn, partitions(conn, declaration.schema, declaration.name))
    if cutoff is not None and cutoff.tzinfo is None:  # UTC wall time, for a column without a zone
        cutoff = cutoff.replace(tzinfo=timezone.utc)
    by_age = policy.age_column == declaration.column and cutoff is not None
    whole = [p for p in found if by_age and policy.condition is None and not p.default
             and p.upper is not None and p.upper <= cutoff]
    rest = [p for p in found if p not in whole and (not by_age or p.default or p.lower is None or p.lower < cutoff)]
    return whole, rest
