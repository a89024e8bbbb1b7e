"""Time partitions: list them, keep future ones ready, empty the DEFAULT partition, finish conversions.

The tables and their intervals are declared beside the tables (tdbctl.schema.partitioning); this
package reads the catalogs for the rest. Only dialects with ``partitioned = True`` (PostgreSQL)
have partitions; elsewhere every function here reports plain tables and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import sqlalchemy as sa

from tdbctl.partitions import ranges
from tdbctl.partitions.catalog import Partition, kind, partitions, quoted, with_time_zone


@dataclass
class TableState:
    table: str
    column: str
    interval: str
    partitioned: bool
    cutoff: datetime | None
    """Where retention starts (the table's age policy), if it has one."""
    partitions: list[Partition] = field(default_factory=list)
    conversion: dict | None = None
    ahead: int = 0
    """Partitions after the current one."""

    @property
    def default_rows(self) -> int:
        return sum(p.rows or 0 for p in self.partitions if p.default)

    def to_json(self, now: datetime) -> dict:
        return {
            "table": self.table, "column": self.column, "interval": self.interval, "partitioned": self.partitioned,
            "retention_cutoff": self.cutoff.isoformat() if self.cutoff else None, "ahead": self.ahead,
            "conversion": self.conversion,
            "partitions": [{"name": p.name, "from": p.lower.isoformat() if p.lower else None,
                            "to": p.upper.isoformat() if p.upper else None, "rows_estimate": p.rows, "bytes": p.bytes,
                            "state": p.state(now, self.cutoff)} for p in self.partitions],
        }


def retention_cutoff(metadata: sa.MetaData, declaration, now: datetime) -> datetime | None:
    """The earliest cutoff of the table's age policies on its partition column: partitions that
    end before it are past retention (never created ahead, dropped by cleanup)."""
    from tdbctl.retention.selection import policy_age
    from tdbctl.schema import policies_of

    ages = [policy_age(p, None) for p in policies_of(metadata)
            if p.table == declaration.table and p.age_column == declaration.column and p.default_age
            and p.condition is None]
    return now - min(ages) if ages else None


def partitioned_here(conn, dialect, metadata: sa.MetaData, table: str) -> bool:
    """Whether ``table`` (schema-qualified) is a partitioned table in this database: its rows'
    physical locators then repeat from partition to partition, and a walk must go by key."""
    from tdbctl.schema import partitioning_of

    declaration = partitioning_of(metadata).get(table)
    return bool(declaration and dialect.partitioned and kind(conn, declaration.schema, declaration.name) == "p")


def state(conn, metadata: sa.MetaData, declaration, now: datetime) -> TableState:
    from tdbctl.partitions.convert import CONVERSIONS

    partitioned = kind(conn, declaration.schema, declaration.name) == "p"
    found = partitions(conn, declaration.schema, declaration.name) if partitioned else []
    current = ranges.floor(now, declaration.interval)
    conversion = None
    if conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": CONVERSIONS}).scalar() is not None:
        row = conn.exec_driver_sql(
            f"SELECT status, rows_total, rows_moved FROM {CONVERSIONS} WHERE table_name = %(t)s AND status <> 'done'",
            {"t": declaration.table}).first()
        if row is not None:
            conversion = {"status": row[0], "rows_total": row[1], "rows_moved": row[2]}
    return TableState(declaration.table, declaration.column, declaration.interval, partitioned,
                      retention_cutoff(metadata, declaration, now), found, conversion,
                      sum(1 for p in found if p.lower is not None and p.lower > current))


def inspect(db, metadata: sa.MetaData, now: datetime) -> list[TableState]:
    from tdbctl.schema import partitioning_of

    declarations = [d for d in partitioning_of(metadata).values() if db.holds(d.table)]
    if not db.dialect.partitioned:
        return [TableState(d.table, d.column, d.interval, False, retention_cutoff(metadata, d, now)) for d in declarations]
    with db.connect() as conn:
        out = [state(conn, metadata, d, now) for d in declarations]
        for table in out:
            table.partitions = db.dialect.with_shard_figures(conn, table.partitions)
        conn.rollback()
    return out


@dataclass
class MaintenanceReport:
    created: list[str] = field(default_factory=list)
    moved_from_default: dict[str, int] = field(default_factory=dict)
    """Rows moved out of a table's DEFAULT partition into the partitions made for them."""
    left_in_default: dict[str, int] = field(default_factory=dict)
    """Rows past retention left in the DEFAULT partition: cleanup takes them row by row."""
    conversions: list[dict] = field(default_factory=list)
    dry_run: bool = False

    def to_json(self) -> dict:
        return {"dry_run": self.dry_run, "created": self.created, "moved_from_default": self.moved_from_default,
                "left_in_default": self.left_in_default, "conversions": self.conversions}


LOCK_TIMEOUT = "2s"


def maintain(db, metadata: sa.MetaData, now: datetime, *, premake: int | None = None, dry_run: bool = False,
             claim=None, on_progress: Callable | None = None,
             cover: tuple[datetime, datetime] | None = None) -> MaintenanceReport:
    """Finish conversions a migration started, create the partitions each table needs ahead
    (never one already past retention), and move rows out of the DEFAULT partition into
    partitions of their own; ``cover``: also the partitions for the intervals of this range (a
    bulk load's). Each change is a short transaction under lock_timeout, retried."""
    from tdbctl.schema import partitioning_of

    report = MaintenanceReport(dry_run=dry_run)
    if not db.dialect.partitioned:
        return report
    if not dry_run:
        from tdbctl.partitions.convert import move_rows

        report.conversions = [c.to_json() for c in move_rows(db.engine, db.dialect, claim=claim, on_progress=on_progress)]
    for declaration in [d for d in partitioning_of(metadata).values() if db.holds(d.table)]:
        _maintain_table(db, metadata, declaration, now, premake, dry_run, claim, report, cover)
    return report


def _maintain_table(db, metadata, declaration, now, premake, dry_run, claim, report, cover) -> None:
    from tdbctl.partitions.convert import Spec

    with db.connect() as conn:
        table = state(conn, metadata, declaration, now)
        zone = with_time_zone(conn, declaration.schema, declaration.name, declaration.column)
        default = next((p for p in table.partitions if p.default), None)
        in_default = _default_intervals(conn, declaration, default, zone) if default else {}
        conn.rollback()
    if not table.partitioned:
        return
    spec = Spec(declaration.schema, declaration.name, declaration.column, declaration.interval, (), False)
    covered = {p.lower for p in table.partitions if not p.default}
    wanted = [ranges.floor(now, declaration.interval)]
    for _ in range(declaration.premake if premake is None else premake):
        wanted.append(ranges.following(wanted[-1], declaration.interval))
    if cover is not None:
        wanted += ranges.starts(cover[0], cover[1], declaration.interval)
    for start, rows in in_default.items():
        end = ranges.following(start, declaration.interval)
        if table.cutoff is not None and end <= table.cutoff:
            report.left_in_default[declaration.table] = report.left_in_default.get(declaration.table, 0) + rows
        elif start not in wanted:
            wanted.append(start)
    for start in sorted(set(wanted)):
        end = ranges.following(start, declaration.interval)
        if start in covered or (table.cutoff is not None and end <= table.cutoff):
            continue
        name = ranges.name_for(declaration.name, start, declaration.interval)
        moving = in_default.get(start, 0)
        if dry_run:
            report.created.append(f"{declaration.schema}.{name}")
            if moving:
                report.moved_from_default[declaration.table] = report.moved_from_default.get(declaration.table, 0) + moving
            continue
        moved = _with_retries(db, claim, lambda conn: _create(conn, spec, default, start, end, zone))
        report.created.append(f"{declaration.schema}.{name}")
        if moved:
            report.moved_from_default[declaration.table] = report.moved_from_default.get(declaration.table, 0) + moved


def make_room(conn, dialect, metadata: sa.MetaData, tables, start: datetime, end: datetime, now: datetime) -> list[str]:
    """In the caller's transaction (a bulk load's): the partitions these tables need for rows
    from ``start`` to ``end``, none already past retention (those rows go to the DEFAULT
    partition, for cleanup). A rollback takes them away with the load."""
    from tdbctl.partitions.convert import Spec
    from tdbctl.schema import partitioning_of

    created = []
    for table in tables:
        declaration = partitioning_of(metadata).get(table.fullname)
        if declaration is None or not partitioned_here(conn, dialect, metadata, table.fullname):
            continue
        current = state(conn, metadata, declaration, now)
        covered = {p.lower for p in current.partitions if not p.default}
        default = next((p for p in current.partitions if p.default), None)
        zone = with_time_zone(conn, declaration.schema, declaration.name, declaration.column)
        spec = Spec(declaration.schema, declaration.name, declaration.column, declaration.interval, (), False)
        for begin in ranges.starts(start, end, declaration.interval):
            finish = ranges.following(begin, declaration.interval)
            if begin in covered or (current.cutoff is not None and finish <= current.cutoff):
                continue
            _create(conn, spec, default, begin, finish, zone)
            created.append(f"{declaration.schema}.{ranges.name_for(declaration.name, begin, declaration.interval)}")
    return created


def _default_intervals(conn, declaration, default: Partition, zone: bool) -> dict[datetime, int]:
    column = quoted(declaration.column)
    moment = f"{column} AT TIME ZONE 'UTC'" if zone else column
    rows = conn.exec_driver_sql(
        f"SELECT date_trunc('{declaration.interval}', {moment}), count(*) FROM {default.qualified} "
        f"WHERE {column} IS NOT NULL GROUP BY 1").all()
    return {ranges.floor(start, declaration.interval): n for start, n in rows}


def _create(conn, spec, default: Partition | None, start, end, zone: bool) -> int:
    """One transaction: the DEFAULT partition's rows of this range aside (a temporary table that
    goes at commit), the partition created (PostgreSQL checks the DEFAULT holds none of its
    range), the rows into it."""
    from tdbctl.partitions.convert import create_partition

    moved = 0
    column = quoted(spec.column)
    bounds = (f"{column} >= {ranges.bound_literal(start, zone)} AND "
              f"{column} < {ranges.bound_literal(end, zone)}")
    if default is not None:
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE tdbctl_moving ON COMMIT DROP AS "
                             f"WITH moved AS (DELETE FROM {default.qualified} WHERE {bounds} RETURNING *) "
                             f"SELECT * FROM moved")
        moved = conn.exec_driver_sql("SELECT count(*) FROM tdbctl_moving").scalar()
    name = create_partition(conn, spec, start, zone)
    if moved:
        conn.exec_driver_sql(f"INSERT INTO {quoted(spec.schema, name)} SELECT * FROM tdbctl_moving")
    if default is not None:
        conn.exec_driver_sql("DROP TABLE tdbctl_moving")
    return moved


def _with_retries(db, claim, work):
    """``work(conn)`` in a short transaction under lock_timeout, retried while it waits in vain."""
    from tdbctl.ops.retry import with_retries

    def once():
        with db.connect() as conn, conn.begin():
            conn.exec_driver_sql("SELECT set_config('lock_timeout', %(l)s, true)", {"l": LOCK_TIMEOUT})
            if claim is not None:
                claim.check(conn)
            return work(conn)

    return with_retries(once, transient=db.dialect.transient_error)


def drop(db, partition: Partition, claim=None) -> None:
    """Drop one partition: a single short transaction (its ACCESS EXCLUSIVE lock on the parent
    lasts as long as unlinking its files), retried under lock_timeout. With a DEFAULT partition
    present PostgreSQL refuses DETACH ... CONCURRENTLY, and one transaction leaves no partition
    detached but not dropped to keep track of (docs/schema.md)."""
    _with_retries(db, claim, lambda conn: conn.exec_driver_sql(f"DROP TABLE {partition.qualified}"))


__all__ = ["MaintenanceReport", "Partition", "TableState", "drop", "inspect", "maintain", "make_room", "partitioned_here", "retention_cutoff", "state"]
