"""What deleting some rows takes with it, read from the metadata's foreign keys.

Deleting rows of a table also deletes, through ON DELETE CASCADE, the child rows that reference
them, and their children in turn; SET NULL children stay with the reference cleared; children with
no ON DELETE action (NO ACTION, RESTRICT) make the delete fail. The dry run counts all three,
and the real run counts the same things for each batch, so the two agree row for row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

_CASCADE = "CASCADE"
_CLEARS = ("SET NULL", "SET DEFAULT")


@dataclass
class Impact:
    """The rows a delete reaches, as clauses per table (a row is reached when any clause holds)."""

    root: sa.Table
    deleted: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    cleared: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    tables: dict[str, sa.Table] = field(default_factory=dict)

    @property
    def dependent_tables(self) -> list[str]:
        return [t for t in (*self.deleted, *self.cleared) if t != self.root.fullname]


def children_of(metadata: sa.MetaData) -> dict[str, list[tuple[sa.Table, sa.ForeignKeyConstraint]]]:
    """parent table -> [(child table, foreign key)], every foreign key in the metadata."""
    index: dict[str, list] = defaultdict(list)
    for table in metadata.tables.values():
        for fk in table.foreign_key_constraints:
            index[fk.referred_table.fullname].append((table, fk))
    for children in index.values():
        children.sort(key=lambda item: (item[0].fullname, item[1].column_keys))
    return index


def references(fk: sa.ForeignKeyConstraint, parent_rows) -> sa.ColumnElement[bool]:
    """Child rows whose key in ``fk`` points at one of ``parent_rows`` (a SELECT of the parent)."""
    parent = fk.referred_table
    child_columns = list(fk.columns)
    parent_columns = [parent.c[element.column.key] for element in fk.elements]
    # Never correlated: for a table referencing itself the subquery must scan its own copy.
    select = sa.select(*parent_columns).where(parent_rows).correlate(None)
    if len(child_columns) == 1:
        return child_columns[0].in_(select)
    return sa.tuple_(*child_columns).in_(select)


def blocking_exclusion(table: sa.Table, metadata: sa.MetaData) -> tuple[sa.ColumnElement[bool], list[str]]:
    """Rows no child references through a foreign key without ON DELETE (deleting them would fail).

    Returns the clause and the child tables it names; the clause is TRUE when there are none.
    """
    clauses, names = [], []
    for child, fk in children_of(metadata).get(table.fullname, []):
        if (fk.ondelete or "").upper() in (_CASCADE, *_CLEARS):
            continue
        names.append(child.fullname)
        referrer = child.alias("referrer") if child is table else child
        pairs = [(referrer.c[column.key], table.c[element.column.key]) for column, element in zip(fk.columns, fk.elements)]
        clauses.append(~sa.exists().where(*(c == p for c, p in pairs)))
    return sa.and_(sa.true(), *clauses), names


def impact(metadata: sa.MetaData, table: sa.Table, rows: sa.ColumnElement[bool], *, max_depth: int = 8) -> Impact:
    """Everything deleting ``rows`` of ``table`` deletes or clears, following every path of
    foreign keys (a table reached by two paths gets both clauses)."""
    result = Impact(root=table)
    result.deleted[table.fullname].append(rows)
    result.tables[table.fullname] = table
    children = children_of(metadata)

    def walk(parent: sa.Table, parent_rows, path: tuple) -> None:
        for child, fk in children.get(parent.fullname, []):
            if fk in path or len(path) >= max_depth:
                # A cycle (a table referencing itself): its own rows are counted on the way in.
                continue
            action = (fk.ondelete or "").upper()
            if action == _CASCADE:
                reached = references(fk, parent_rows)
                result.deleted[child.fullname].append(reached)
                result.tables[child.fullname] = child
                walk(child, reached, (*path, fk))
            elif action in _CLEARS:
                result.cleared[child.fullname].append(references(fk, parent_rows))
                result.tables[child.fullname] = child

    walk(table, rows, ())
    return result


def count(
    conn, found: Impact, *, skip_root: bool = False, gone: dict[str, list] | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """(deleted rows per table, cleared rows per table) for ``found``.

    ``gone``: clauses for rows an earlier policy of the same run already takes; they are not
    counted again (the dry run's prediction of a run with several policies).
    A cleared row that is deleted anyway (by another path) counts as deleted only.
    """
    gone = gone or {}
    deleted, cleared = {}, {}
    for name, clauses in found.deleted.items():
        if skip_root and name == found.root.fullname:
            continue
        deleted[name] = _count(conn, found.tables[name], sa.or_(*clauses), gone.get(name))
    for name, clauses in found.cleared.items():
        also_gone = [*gone.get(name, []), *found.deleted.get(name, [])]
        cleared[name] = _count(conn, found.tables[name], sa.or_(*clauses), also_gone)
    return deleted, cleared


def _count(conn, table: sa.Table, where, excluded) -> int:
    if excluded:
        where = sa.and_(where, sa.not_(sa.or_(*excluded)))
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
