"""Upsert the checked entries of a domain's seed files, in one transaction per domain.

Each entry is looked up on its natural key (within its parent row for a child). Not there: it is
inserted. There and equal: left alone. There and different: the file's columns are updated,
and only those. There but written by someone else (the kind's owner column names another
writer): kept as it is. Nothing is ever deleted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from tdbctl.errors import DatabaseError, TdbError
from tdbctl.seed.files import SeedFile
from tdbctl.seed.spec import SEED_MARKER, Entry
from tdbctl.seed.values import canonical

ACTIONS = ("insert", "update", "unchanged", "kept")


@dataclass
class Change:
    domain: str
    table: str
    entry: str
    """File and place of the entry, as in error messages."""
    action: str
    columns: list[str] = field(default_factory=list)
    """For an update: the columns that differed."""
    owner: str | None = None
    """For a kept row: who owns it."""


@dataclass
class ReferenceReport:
    dry_run: bool
    domains: list[str]
    files: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """table -> action -> rows, tables in the order first met."""
        out: dict[str, Counter] = {}
        for change in self.changes:
            out.setdefault(change.table, Counter())[change.action] += 1
        return {table: {a: counts.get(a, 0) for a in ACTIONS} for table, counts in out.items()}

    @property
    def changed(self) -> int:
        return sum(1 for c in self.changes if c.action in ("insert", "update"))

    def rows_changed(self) -> dict[str, int]:
        rows = Counter(c.table for c in self.changes if c.action in ("insert", "update"))
        return dict(rows)


class AmbiguousSeedRow(TdbError):
    """Two rows match one entry's natural key: tdbctl cannot tell which one the seed means."""


def apply_domain(conn, domain: str, files: list[SeedFile], report: ReferenceReport, translate) -> None:
    """Upsert every entry of ``files``; the caller owns the transaction."""
    for seed_file in files:
        for entry in seed_file.entries:
            _upsert(conn, domain, entry, parent_id=None, scopes=[], report=report, translate=translate)


def _upsert(conn, domain: str, entry: Entry, parent_id, scopes: list[dict], report, translate) -> None:
    kind = entry.kind
    table = kind.table_object
    values = dict(entry.values)
    for ref in kind.refs:
        values[ref.column] = _resolve(ref, entry.refs[ref.field], scopes)
    if kind.parent_column:
        values[kind.parent_column] = parent_id
    lookup = [table.c[k] == values[k] for k in kind.key]
    if kind.parent_column:
        lookup.append(table.c[kind.parent_column] == parent_id)
    if kind.scope is not None:
        lookup.append(kind.scope(table))
    where = f"{entry.file}: {entry.where}"
    try:
        found = conn.execute(sa.select(table).where(*lookup)).mappings().all()
        if len(found) > 1:
            raise AmbiguousSeedRow(
                f"{where}: {len(found)} rows of {kind.table} have this {'/'.join(kind.key)}: "
                "tdbctl seed cannot tell which one to update; remove or rename the extra rows"
            )
        if not found:
            row_id = _insert(conn, kind, table, values)
            change = Change(domain, kind.table, where, "insert")
        else:
            row = found[0]
            row_id = _primary_key(table, row)
            owner = row[kind.owner] if kind.owner else None
            if owner not in (None, SEED_MARKER):
                report.changes.append(Change(domain, kind.table, where, "kept", owner=owner))
                return None  # nor its children: the whole entry is someone else's now
            differing = [c for c, v in values.items() if canonical(table.c[c], row[c]) != canonical(table.c[c], v)]
            if differing:
                _update(conn, kind, table, row_id, {c: values[c] for c in differing})
                change = Change(domain, kind.table, where, "update", differing)
            else:
                change = Change(domain, kind.table, where, "unchanged")
    except sa.exc.DBAPIError as exc:
        # The file was read and checked before: this is the database's answer (a constraint, a
        # row already there), an operational failure rather than bad input.
        diag = getattr(exc.orig, "diag", None)
        column = getattr(diag, "column_name", None) or getattr(diag, "constraint_name", None)
        raise DatabaseError(f"{where}: the database refused the row for {kind.table}"
                            + (f" ({column})" if column else "") + f": {translate(exc.orig)}") from exc
    report.changes.append(change)
    if entry.children:
        own_scope = {}
        for child in entry.children:
            child_scopes = [own_scope, *scopes]
            child_id = _upsert(conn, domain, child, _single(row_id), child_scopes, report, translate)
            if child_id is not None and not child.kind.refs:  # link rows are never referred to
                own_scope.setdefault(child.kind.name, {})[child.label] = _single(child_id)
    return row_id


def _resolve(ref, name, scopes: list[dict]):
    for scope in scopes:
        if ref.kind in scope and name in scope[ref.kind]:
            return scope[ref.kind][name]
    raise AssertionError(f"{ref.kind} {name!r} was checked when the file was read")  # pragma: no cover


def _insert(conn, kind, table: sa.Table, values: dict):
    values = dict(values)
    if kind.owner:
        values[kind.owner] = SEED_MARKER
    if kind.stable_id:
        (pk,) = table.primary_key.columns
        values[pk.name] = kind.stable_uuid(values)
    returned = conn.execute(sa.insert(table).values(values).returning(*table.primary_key.columns)).one()
    return tuple(returned)


def _update(conn, kind, table: sa.Table, row_id: tuple, values: dict) -> None:
    values = dict(values)
    if kind.owner:
        values[kind.owner] = SEED_MARKER
    if "updated_at" in table.c:
        values["updated_at"] = sa.func.now()
    match = [c == v for c, v in zip(table.primary_key.columns, row_id)]
    conn.execute(sa.update(table).where(*match).values(values))


def _primary_key(table: sa.Table, row) -> tuple:
    return tuple(row[c.name] for c in table.primary_key.columns)


def _single(row_id: tuple):
    # Children point at a single-column primary key (every parent kind has one).
    return row_id[0]
