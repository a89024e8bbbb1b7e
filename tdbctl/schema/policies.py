"""Retention policies, declared in each domain module beside the tables they govern.

`tdbctl cleanup` and `tdbctl archive` read them from here; neither command holds a table list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import sqlalchemy as sa

Action = Literal["delete", "archive"]


@dataclass(frozen=True)
class RetentionPolicy:
    name: str
    """Unique, short, used on the command line: ``--policy abandoned_sessions``."""
    table: str
    """Schema-qualified table: ``chattrain.sessions``."""
    age_column: str | None
    """The row's age is measured on this column; None for a policy with no age (orphans)."""
    default_age: str | None
    """How old a row must be before the policy takes it: 90d, 12h, 2w, 6mo, 1y."""
    action: Action
    """delete: rows (and their ON DELETE CASCADE children) go; archive: they must be archived first."""
    description: str
    condition: Callable[[sa.Table], sa.ColumnElement[bool]] | None = None
    """Extra condition besides age, as a SQLAlchemy expression over the table."""
    archive_table: str | None = None
    """For archive policies with an in-database destination (voice.conversations_archive)."""
    archive_status: str | None = None
    """For archive policies that archive in place, as ChatTrain's seed does: set status to this."""
    source: str = ""
    """Where the rule comes from: the seed's words, or a decision in docs/schema.md."""

    @property
    def schema(self) -> str:
        return self.table.split(".", 1)[0]

    def table_object(self, metadata: sa.MetaData) -> sa.Table:
        return metadata.tables[self.table]

    def where(self, metadata: sa.MetaData, cutoff, table: sa.Table | None = None) -> sa.ColumnElement[bool]:
        """Rows this policy takes, given the cutoff time (older than cutoff); ``table``: one
        partition of the policy's table, with the same columns."""
        table = self.table_object(metadata) if table is None else table
        clauses = []
        if self.age_column is not None:
            clauses.append(table.c[self.age_column] < cutoff)
        if self.condition is not None:
            clauses.append(self.condition(table))
        return sa.and_(sa.true(), *clauses)


def register_policy(metadata: sa.MetaData, *policies: RetentionPolicy) -> None:
    metadata.info.setdefault("policies", []).extend(policies)


def policies_of(metadata: sa.MetaData) -> list[RetentionPolicy]:
    return list(metadata.info.get("policies", []))
