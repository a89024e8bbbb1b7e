"""What deleting a row takes with it, read from the metadata's foreign keys.

``cascade_tree(metadata, table)`` follows ON DELETE CASCADE from ``table`` to every table whose
rows would go with it (children, grandchildren...), and sorts the other foreign keys that point
into that set: SET NULL ones (deleting changes rows outside the set: their links must be kept if
the delete is ever to be undone) and NO ACTION / RESTRICT ones (they make the delete fail, so the
rows they hold cannot go). Cleanup and archive both read it; neither keeps a table list.

``impact(metadata, table, rows)`` is the same walk seen from one delete: every row it deletes or
clears, as clauses per table, for counting (cleanup's dry run, and each batch's report). It asks
nothing of the table's key, so it serves tables without one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import sqlalchemy as sa

from tdbctl.errors import TdbError


@dataclass(frozen=True)
class Link:
    """One foreign key: ``child.columns`` refer to ``parent.referred``."""

    child: sa.Table
    parent: sa.Table
    columns: tuple[sa.Column, ...]
    referred: tuple[sa.Column, ...]
    ondelete: str
    """CASCADE, SET NULL, SET DEFAULT, RESTRICT or NO ACTION (what no ON DELETE means)."""
    name: str | None = None

    def describe(self) -> str:
        cols = ", ".join(c.name for c in self.columns)
        return f"{self.child.fullname}({cols}) -> {self.parent.fullname} ON DELETE {self.ondelete}"


def links_of(metadata: sa.MetaData) -> list[Link]:
    found = []
    for table in metadata.sorted_tables:
        for constraint in table.foreign_key_constraints:
            elements = constraint.elements
            found.append(Link(
                child=table,
                parent=elements[0].column.table,
                columns=tuple(e.parent for e in elements),
                referred=tuple(e.column for e in elements),
                ondelete=(constraint.ondelete or "NO ACTION").upper(),
                name=constraint.name,
            ))
    return found


RootCondition = Callable[[sa.ColumnElement], sa.ColumnElement[bool]]
"""Given a column holding root keys, the condition "this key is one of the roots in hand"."""


@dataclass
class CascadeTree:
    root: sa.Table
    members: list[sa.Table]
    """The root first, then every table ON DELETE CASCADE reaches, parents before children."""
    cascades: list[Link] = field(default_factory=list)
    """CASCADE links between members: how each member's rows are found from the root's."""
    internal: list[Link] = field(default_factory=list)
    """Other links between members (a child's SET NULL to a sibling): they only order the work."""
    detached: list[Link] = field(default_factory=list)
    """SET NULL / SET DEFAULT links from tables outside the tree: deleting rewrites those rows."""
    blocking: list[Link] = field(default_factory=list)
    """NO ACTION / RESTRICT links from outside the tree: a referenced row cannot be deleted."""

    @property
    def key(self) -> sa.Column:
        return self.root.primary_key.columns.values()[0]

    @property
    def children(self) -> list[sa.Table]:
        return self.members[1:]

    def delete_order(self) -> list[sa.Table]:
        """Referencing tables before the ones they reference: children first, the root last."""
        return list(reversed(self.members))

    def parents_of(self, table: sa.Table) -> list[Link]:
        return [link for link in self.cascades if link.child is table]

    def rows_of(self, table: sa.Table, in_roots: RootCondition) -> sa.ColumnElement[bool]:
        """WHERE clause over ``table``: its rows that belong to the roots ``in_roots`` accepts."""
        if table is self.root:
            return in_roots(self.key)
        clauses = []
        for link in self.parents_of(table):
            if link.parent is self.root:
                clauses.append(in_roots(link.columns[0]))
                continue
            inner = sa.select(*link.referred).where(self.rows_of(link.parent, in_roots))
            target = link.columns[0] if len(link.columns) == 1 else sa.tuple_(*link.columns)
            clauses.append(target.in_(inner))
        return sa.or_(*clauses)

    def referencing(self, link: Link, in_roots: RootCondition) -> sa.ColumnElement[bool]:
        """WHERE clause over ``link.child`` (outside the tree): rows pointing at the roots' rows."""
        if link.parent is self.root and link.referred == (self.key,):
            return in_roots(link.columns[0])
        inner = sa.select(*link.referred).where(self.rows_of(link.parent, in_roots))
        target = link.columns[0] if len(link.columns) == 1 else sa.tuple_(*link.columns)
        return target.in_(inner)

    @property
    def held_by(self) -> list[str]:
        """The tables whose NO ACTION / RESTRICT references can hold the root's rows back."""
        return sorted({link.child.fullname for link in self.blocking})

    def count_held_back(self, conn, rows: sa.ColumnElement[bool]) -> int:
        """How many of the root's ``rows`` such a reference holds back now (0 without a query
        when nothing can)."""
        if not self.blocking:
            return 0
        return conn.execute(sa.select(sa.func.count()).select_from(self.root).where(rows, ~self.unblocked())).scalar()

    def unblocked(self) -> sa.ColumnElement[bool]:
        """WHERE clause over the root: rows that no NO ACTION / RESTRICT reference holds back."""
        def this_root(column):
            return column == self.key

        return sa.and_(sa.true(), *(~sa.exists().where(self.referencing(link, this_root)) for link in self.blocking))


class CascadeError(TdbError):
    """The foreign keys form a shape that rows cannot be followed through (a cascade cycle)."""


def cascade_tree(metadata: sa.MetaData, root: sa.Table | str, unkept: frozenset[str] | set[str] = frozenset()) -> CascadeTree:
    """``unkept``: foreign keys the database does not hold (Dialect.unkept_links): one without
    ON DELETE holds no row back there."""
    root = metadata.tables[root] if isinstance(root, str) else root
    links = links_of(metadata)
    if len(root.primary_key.columns) != 1 and any(link.parent is root for link in links):
        raise CascadeError(f"{root.fullname}: rows are followed by a single-column primary key, and it has "
                           f"{len(root.primary_key.columns) or 'no'} key columns")
    members, cascades = [root], []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for link in links:
            if link.parent is not parent or link.ondelete != "CASCADE":
                continue
            if link.child is parent:
                raise CascadeError(f"{link.describe()}: a table that cascades to itself cannot be followed")
            if link.parent is root and link.referred != (root.primary_key.columns.values()[0],):
                raise CascadeError(f"{link.describe()}: children must refer to the root's primary key")
            cascades.append(link)
            if link.child not in members:
                members.append(link.child)
                frontier.append(link.child)
    _check_acyclic(root, cascades)
    order = {table: index for index, table in enumerate(metadata.sorted_tables)}
    members = [root, *sorted(members[1:], key=order.__getitem__)]
    tree = CascadeTree(root=root, members=members, cascades=cascades)
    for link in links:
        if link.parent not in members or link in cascades:
            continue
        if link.child in members:
            tree.internal.append(link)
        elif link.ondelete in ("SET NULL", "SET DEFAULT"):
            tree.detached.append(link)
        elif link.ondelete != "CASCADE" and link.name not in unkept:
            tree.blocking.append(link)
    return tree


def _check_acyclic(root: sa.Table, cascades: list[Link]) -> None:
    children: dict[sa.Table, list[sa.Table]] = {}
    for link in cascades:
        children.setdefault(link.parent, []).append(link.child)
    visiting: set = set()

    def visit(table, path):
        if table in visiting:
            raise CascadeError("ON DELETE CASCADE cycle: " + " -> ".join(t.fullname for t in [*path, table]))
        visiting.add(table)
        for child in children.get(table, []):
            visit(child, [*path, table])
        visiting.discard(table)

    visit(root, [])


def deleted_with(metadata: sa.MetaData, tables) -> set[str]:
    """``tables`` and every table ON DELETE CASCADE reaches from them: what deleting their rows
    touches. Unlike cascade_tree, it asks nothing of their keys (a table without one is fine)."""
    cascades = [link for link in links_of(metadata) if link.ondelete == "CASCADE"]
    reached, frontier = set(), list(tables)
    while frontier:
        name = frontier.pop()
        if name not in reached:
            reached.add(name)
            frontier.extend(link.child.fullname for link in cascades if link.parent.fullname == name)
    return reached


def cascade_children(metadata: sa.MetaData, table: sa.Table | str) -> list[str]:
    """Names of the tables whose rows a delete from ``table`` takes along, parents first."""
    return [t.fullname for t in cascade_tree(metadata, table).children]


# -- one delete's reach, for counting ------------------------------------------------------------

_CLEARS = ("SET NULL", "SET DEFAULT")


@dataclass
class Impact:
    """The rows a delete reaches, as clauses per table (a row is reached when any clause holds)."""

    root: sa.Table
    deleted: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    cleared: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    tables: dict[str, sa.Table] = field(default_factory=dict)
    clearing: list[tuple[Link, sa.ColumnElement[bool]]] = field(default_factory=list)
    """Each SET NULL / SET DEFAULT link reached, with the rows it rewrites."""

    @property
    def dependent_tables(self) -> list[str]:
        return [t for t in (*self.deleted, *self.cleared) if t != self.root.fullname]


def _children_of(metadata: sa.MetaData) -> dict[str, list[Link]]:
    index: dict[str, list[Link]] = defaultdict(list)
    for link in links_of(metadata):
        index[link.parent.fullname].append(link)
    for children in index.values():
        children.sort(key=lambda link: (link.child.fullname, [c.name for c in link.columns]))
    return index


def _references(link: Link, parent_rows) -> sa.ColumnElement[bool]:
    """Rows of ``link.child`` pointing at one of ``parent_rows`` (a condition over the parent)."""
    # Never correlated: for a table referencing itself the subquery must scan its own copy.
    select = sa.select(*link.referred).where(parent_rows).correlate(None)
    target = link.columns[0] if len(link.columns) == 1 else sa.tuple_(*link.columns)
    return target.in_(select)


def impact(metadata: sa.MetaData, table: sa.Table, rows: sa.ColumnElement[bool], *, max_depth: int = 8) -> Impact:
    """Everything deleting ``rows`` of ``table`` deletes or clears, following every path of
    foreign keys (a table reached by two paths gets both clauses)."""
    result = Impact(root=table)
    result.deleted[table.fullname].append(rows)
    result.tables[table.fullname] = table
    children = _children_of(metadata)

    def walk(parent: sa.Table, parent_rows, path: tuple) -> None:
        for link in children.get(parent.fullname, []):
            if link in path or len(path) >= max_depth:
                # A cycle (a table referencing itself): its own rows are counted on the way in.
                continue
            if link.ondelete == "CASCADE":
                reached = _references(link, parent_rows)
                result.deleted[link.child.fullname].append(reached)
                result.tables[link.child.fullname] = link.child
                walk(link.child, reached, (*path, link))
            elif link.ondelete in _CLEARS:
                reached = _references(link, parent_rows)
                result.cleared[link.child.fullname].append(reached)
                result.clearing.append((link, reached))
                result.tables[link.child.fullname] = link.child

    walk(table, rows, ())
    return result


def count(conn, found: Impact, *, skip_root: bool = False,
          gone: dict[str, list] | None = None) -> tuple[dict[str, int], dict[str, int]]:
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


def clear_links(conn, reached: list[tuple[Link, sa.ColumnElement[bool]]], unkept: set[str]) -> None:
    """Do what the database does not for the links named in ``unkept`` (foreign keys a Citus
    cluster cannot hold): ON DELETE SET NULL, before the delete; ``reached``: links and the rows
    of their child the delete reaches (Impact.clearing)."""
    for link, rows in reached:
        if link.name in unkept and link.ondelete == "SET NULL":
            conn.execute(sa.update(link.child).where(rows).values({c.name: None for c in link.columns}))


def _count(conn, table: sa.Table, where, excluded) -> int:
    if excluded:
        where = sa.and_(where, sa.not_(sa.or_(*excluded)))
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()


def blocking_exclusion(table: sa.Table, metadata: sa.MetaData,
                       unkept: frozenset[str] | set[str] = frozenset()) -> tuple[sa.ColumnElement[bool], list[str]]:
    """Rows of ``table`` a delete can take: none of them, nor any row their delete cascades to,
    referenced through a foreign key without ON DELETE (the delete would fail). The clause, and
    the tables whose references hold rows back; TRUE and none when nothing can."""
    tree = cascade_tree(metadata, table, unkept)
    return tree.unblocked(), tree.held_by
