"""What PostgreSQL's catalogs say about a partitioned table: its partitions and their ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

_RANGE = re.compile(r"FOR VALUES FROM \((.+?)\) TO \((.+?)\)$")


LOCKED = ("EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = c.oid AND l.mode = 'AccessExclusiveLock' "
          "AND l.granted)")
"""A partition someone holds exclusively: measuring its files would wait for that lock."""


def quoted(*names: str) -> str:
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


@dataclass
class Partition:
    schema: str
    name: str
    lower: datetime | None
    """None: MINVALUE, or the DEFAULT partition."""
    upper: datetime | None
    """None: MAXVALUE, or the DEFAULT partition."""
    default: bool
    rows: int | None
    """The planner's estimate (None: never analyzed)."""
    bytes: int
    locked: bool = False
    """Held ACCESS EXCLUSIVE by someone: reading it would wait."""

    @property
    def qualified(self) -> str:
        return quoted(self.schema, self.name)

    def state(self, now: datetime, cutoff: datetime | None) -> str:
        if self.default:
            return "default"
        if cutoff is not None and self.upper is not None and self.upper <= cutoff:
            return "expired"
        if cutoff is not None and self.lower is not None and self.lower < cutoff:
            return "straddles cutoff"
        if self.lower is not None and self.lower > now:
            return "future"
        if self.upper is not None and self.upper <= now:
            return "past"
        return "current"


def _moment(text: str) -> datetime | None:
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    value = datetime.fromisoformat(text.strip("'"))
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _bound_from_name(name: str) -> str | None:
    from tdbctl.partitions import ranges

    if name.endswith("_default"):
        return "DEFAULT"
    match = re.search(r"_p(\d{6}|\d{8})$", name)
    if not match:
        return None
    digits = match.group(1)
    interval = "month" if len(digits) == 6 else "day"
    start = datetime.strptime(digits + ("01" if interval == "month" else ""), "%Y%m%d").replace(tzinfo=timezone.utc)
    end = ranges.following(start, interval)
    return f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"


def with_time_zone(conn, schema: str, table: str, column: str) -> bool:
    """Whether the partition column is timestamptz: bounds are then written in UTC with an offset,
    else as UTC wall time (ranges.bound_literal)."""
    return conn.exec_driver_sql(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass(%(t)s) AND attname = %(c)s",
        {"t": quoted(schema, table), "c": column}).scalar() == "timestamp with time zone"


def kind(conn, schema: str, table: str) -> str | None:
    """'p' partitioned, 'r' plain, None missing."""
    return conn.exec_driver_sql("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%(t)s)",
                                {"t": quoted(schema, table)}).scalar()


def partitions(conn, schema: str, table: str) -> list[Partition]:
    """Oldest first, the DEFAULT partition last; bounds as UTC (a timestamptz bound's text carries
    the session's offset, which the parse honours)."""
    rows = conn.exec_driver_sql(
        f"SELECT n.nspname, c.relname, CASE WHEN {LOCKED} THEN NULL ELSE pg_get_expr(c.relpartbound, c.oid) END, "
        "c.reltuples, "
        f"CASE WHEN {LOCKED} THEN c.relpages::bigint * current_setting('block_size')::bigint "
        f"ELSE pg_total_relation_size(c.oid) END, {LOCKED} "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE i.inhparent = to_regclass(%(t)s)",
        {"t": quoted(schema, table)},
    ).all()
    out = []
    for part_schema, name, bound, reltuples, size, locked in rows:
        if bound is None:  # locked: pg_get_expr would wait; tdbctl's names say the range
            bound = _bound_from_name(name)
        match = _RANGE.search(bound or "")
        lower, upper = (_moment(match.group(1)), _moment(match.group(2))) if match else (None, None)
        out.append(Partition(part_schema, name, lower, upper, bound == "DEFAULT",
                             int(reltuples) if reltuples is not None and reltuples >= 0 else None, int(size),
                             bool(locked)))
    far = datetime.max.replace(tzinfo=timezone.utc)
    return sorted(out, key=lambda p: (p.default, p.lower or (far if p.default else datetime.min.replace(tzinfo=timezone.utc))))


def partition_tables(conn, schemas) -> set[tuple[str, str]]:
    """Every partition in these schemas: they are part of their parent, not tables of their own."""
    rows = conn.exec_driver_sql(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relispartition AND c.relkind IN ('r', 'p') AND n.nspname = ANY(%(s)s)", {"s": list(schemas)}).all()
    return {(s, t) for s, t in rows}
