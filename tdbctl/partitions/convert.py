"""Turn a plain table into a range-partitioned one while it is in use, and back.

The way there (``swap``, in the migration's transaction) takes one short lock: the plain table is
renamed aside, a partitioned table of the same name takes its place with the same columns,
defaults, checks, keys, indexes, foreign keys, triggers, grants and sequences, and the views over
it are pointed at it; new rows go there from that moment. ``move_rows`` then moves the old rows
across in batches, each one statement (DELETE ... RETURNING feeding INSERT) in a transaction of
its own that also records the running count and checksum (of the rows as they arrived) in
tdbctl.partition_conversions: a kill
rolls back at most the batch in flight, and the next run continues from what is left. The old
table is dropped only when it is empty and every row moved is accounted for.

Until the move has finished, a query sees the rows already moved plus every new one: the history
fills in, newest pages first. The way back (``unswap``) copies everything into a plain table in
one transaction (a downgrade is not an online operation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from tdbctl.errors import TdbError
from tdbctl.partitions import ranges
from tdbctl.partitions.catalog import kind, quoted
from tdbctl.partitions.catalog import with_time_zone as with_time_zone_of

SUFFIX = "_unpartitioned"
ASIDE = "_partitioned"
BATCH_ROWS = 50_000
LOCK_TIMEOUT = "2s"
STATEMENT_TIMEOUT = "60s"
CONVERSIONS = "tdbctl.partition_conversions"


class ConversionError(TdbError):
    pass


@dataclass(frozen=True)
class Spec:
    """A table's partitioning as a migration froze it."""

    schema: str
    table: str
    column: str
    interval: str
    key: tuple[str, ...]
    """The primary key on the partitioned table (empty: none)."""
    nullable: bool
    """Whether the column allowed NULL before (the key makes it NOT NULL; the way back restores it)."""
    premake: int = 3

    @property
    def qualified(self) -> str:
        return quoted(self.schema, self.table)

    @property
    def old(self) -> str:
        return self.table[: 63 - len(SUFFIX)] + SUFFIX


def _aside(name: str, suffix: str) -> str:
    return name[: 63 - len(suffix)] + suffix


def _rows(conn, sql: str, **params):
    return conn.exec_driver_sql(sql, params).all()


@dataclass
class _Shape:
    """What a table carries besides its columns, read from the catalogs before it moves aside."""

    indexes: list[tuple[str, str, str | None]]  # name, definition, constraint type (p, u) or None
    foreign_keys: list[tuple[str, str]]
    triggers: list[tuple[str, str]]
    views: list[tuple[str, str]]
    grants: list[tuple[str, str]]  # grantee (quoted or PUBLIC), privilege
    owner: str
    comment: str | None
    sequences: list[tuple[str, str]]  # sequence, column

    @classmethod
    def read(cls, conn, qualified: str) -> "_Shape":
        oid = {"t": qualified}
        return cls(
            indexes=[tuple(r) for r in _rows(
                conn,
                "SELECT i.relname, pg_get_indexdef(i.oid), con.contype::text FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid "
                "AND con.conrelid = x.indrelid WHERE x.indrelid = to_regclass(%(t)s) ORDER BY i.relname", **oid)],
            foreign_keys=[tuple(r) for r in _rows(
                conn, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%(t)s) "
                "AND contype = 'f' AND conparentid = 0 ORDER BY conname", **oid)],
            triggers=[tuple(r) for r in _rows(
                conn, "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = to_regclass(%(t)s) "
                "AND NOT tgisinternal AND tgparentid = 0 ORDER BY tgname", **oid)],
            views=[tuple(r) for r in _rows(
                conn, "SELECT DISTINCT v.oid::regclass::text, pg_get_viewdef(v.oid) FROM pg_depend d "
                "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
                "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass(%(t)s) "
                "AND v.oid <> d.refobjid AND v.relkind = 'v'", **oid)],
            grants=[tuple(r) for r in _rows(
                conn, "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
                "a.privilege_type FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = to_regclass(%(t)s) "
                "AND a.grantee <> c.relowner", **oid)],
            owner=conn.exec_driver_sql("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%(t)s)",
                                       oid).scalar(),
            comment=conn.exec_driver_sql("SELECT obj_description(to_regclass(%(t)s), 'pg_class')", oid).scalar(),
            sequences=[tuple(r) for r in _rows(
                conn, "SELECT s.oid::regclass::text, a.attname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
                "AND s.relkind = 'S' JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
                "WHERE d.refobjid = to_regclass(%(t)s) AND d.classid = 'pg_class'::regclass AND d.deptype = 'a'",
                **oid)],
        )

    def move_aside(self, conn, schema: str, table: str, aside: str, suffix: str) -> None:
        """Rename the table and its indexes out of the way; its triggers go with it to the new
        table (a row moving out must not fire them)."""
        for name, _trigger in self.triggers:
            conn.exec_driver_sql(f"DROP TRIGGER {quoted(name)} ON {quoted(schema, table)}")
        conn.exec_driver_sql(f"ALTER TABLE {quoted(schema, table)} RENAME TO {quoted(aside)}")
        for name, _definition, _constraint in self.indexes:
            conn.exec_driver_sql(f"ALTER INDEX {quoted(schema, name)} RENAME TO {quoted(_aside(name, suffix))}")

    def apply(self, conn, spec: Spec, *, partitioned: bool) -> None:
        """Give the new table (of the original name) everything the old one had."""
        target = spec.qualified
        if self.comment is not None:
            from tdbctl.dialects.postgresql import sql_literal

            conn.exec_driver_sql(f"COMMENT ON TABLE {target} IS {sql_literal(self.comment)}")
        for name, definition, constraint in self.indexes:
            if constraint == "p":
                columns = spec.key if partitioned else tuple(c for c in spec.key if c != spec.column)
                if columns:
                    conn.exec_driver_sql(f"ALTER TABLE {target} ADD CONSTRAINT {quoted(name)} PRIMARY KEY "
                                         f"({', '.join(quoted(c) for c in columns)})")
            elif constraint == "u" or " UNIQUE " in definition:
                raise ConversionError(f"{target}: unique index {name} would need {spec.column} in it to be partitioned")
            else:
                conn.exec_driver_sql(definition.replace(" ON ONLY ", " ON "))
        if partitioned and spec.key and not any(c == "p" for _n, _d, c in self.indexes):
            conn.exec_driver_sql(f"ALTER TABLE {target} ADD PRIMARY KEY ({', '.join(quoted(c) for c in spec.key)})")
        for name, definition in self.foreign_keys:
            conn.exec_driver_sql(f"ALTER TABLE {target} ADD CONSTRAINT {quoted(name)} {definition}")
        for _name, definition in self.triggers:
            conn.exec_driver_sql(definition)
        for sequence, column in self.sequences:
            conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {target}.{quoted(column)}")
        for view, definition in self.views:
            conn.exec_driver_sql(f"CREATE OR REPLACE VIEW {view} AS {definition}")
        for grantee, privilege in self.grants:
            conn.exec_driver_sql(f"GRANT {privilege} ON {target} TO {grantee}")
        if self.owner != conn.exec_driver_sql("SELECT current_user").scalar():
            conn.exec_driver_sql(f"ALTER TABLE {target} OWNER TO {quoted(self.owner)}")


ADJUST = "tdbctl.partition_conversion_adjust"


CHANGES = "tdbctl.partition_conversion_changes"


def _watch(conn, spec: Spec) -> None:
    """Until its rows have moved, the old table can still change by other hands than the move's:
    ON DELETE CASCADE or SET NULL from a parent deleted meanwhile. A trigger writes each such
    change down (a row a change: a counter updated in place would grow a version chain), and
    the totals the move is checked against take them in. The move's own deletes set
    tdbctl.moving, for their transaction only, and do not fire it. SECURITY DEFINER: the
    application's role, whose delete fires it, needs no right on tdbctl's tables."""
    checksum = "hashtextextended({row}::text, 0)::numeric"
    conn.exec_driver_sql(f"""
CREATE OR REPLACE FUNCTION {ADJUST}() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO {CHANGES} (table_name, rows, checksum) VALUES (TG_ARGV[0], -1, -{checksum.format(row='OLD')});
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO {CHANGES} (table_name, rows, checksum) VALUES (TG_ARGV[0], 1, {checksum.format(row='NEW')});
    END IF;
    RETURN NULL;
END $$""")
    from tdbctl.dialects.postgresql import sql_literal

    conn.exec_driver_sql(
        f"CREATE TRIGGER tdbctl_conversion_adjust AFTER INSERT OR UPDATE OR DELETE ON {quoted(spec.schema, spec.old)} "
        "FOR EACH ROW WHEN (current_setting('tdbctl.moving', true) IS DISTINCT FROM 'on') "
        f"EXECUTE FUNCTION {ADJUST}({sql_literal(f'{spec.schema}.{spec.table}')})")


def create_partition(conn, spec: Spec, start: datetime, with_time_zone: bool) -> str:
    name = ranges.name_for(spec.table, start, spec.interval)
    end = ranges.following(start, spec.interval)
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {quoted(spec.schema, name)} PARTITION OF {spec.qualified} FOR VALUES FROM "
        f"({ranges.bound_literal(start, with_time_zone)}) TO ({ranges.bound_literal(end, with_time_zone)})")
    return name


def _hypertable(conn, spec: Spec) -> bool:
    """TimescaleDB partitions a hypertable its own way (seed 001's system_metrics, where installed)."""
    if not conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").first():
        return False
    return bool(conn.exec_driver_sql(
        "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = %(s)s AND hypertable_name = %(t)s",
        {"s": spec.schema, "t": spec.table}).first())


def swap(conn, spec: Spec, now: datetime) -> bool:
    """In the caller's transaction, under its lock_timeout: put a partitioned table in the plain
    one's place. False when there is nothing to do (already partitioned, or no such table)."""
    if kind(conn, spec.schema, spec.table) != "r" or _hypertable(conn, spec):
        return False
    table = spec.qualified
    column = quoted(spec.column)
    with_time_zone = with_time_zone_of(conn, spec.schema, spec.table, spec.column)
    # Read before the lock: the oldest row decides the first partition (later rows are newer).
    first = conn.exec_driver_sql(f"SELECT min({column}) FROM {table}").scalar()
    shape = _Shape.read(conn, table)
    conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    if spec.nullable and spec.key:
        missing = conn.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE {column} IS NULL").scalar()
        if missing:
            raise ConversionError(
                f"{spec.schema}.{spec.table}: {missing} row{'s have' if missing != 1 else ' has'} no {spec.column}; "
                f"a partitioned table keeps each row in the partition of its time. Give them one (UPDATE {table} "
                f"SET {column} = now() WHERE {column} IS NULL) and run tdbctl migrate again; nothing was changed")
    shape.move_aside(conn, spec.schema, spec.table, spec.old, SUFFIX)
    _watch(conn, spec)
    conn.exec_driver_sql(
        f"CREATE TABLE {table} (LIKE {quoted(spec.schema, spec.old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING COMMENTS INCLUDING STORAGE INCLUDING GENERATED) PARTITION BY RANGE ({column})")
    shape.apply(conn, spec, partitioned=True)
    current = ranges.floor(now, spec.interval)
    oldest = min(ranges.floor(first, spec.interval), current) if first is not None else current
    moments = ranges.starts(oldest, current, spec.interval)
    for _ in range(spec.premake):
        moments.append(ranges.following(moments[-1], spec.interval))
    for moment in moments:
        create_partition(conn, spec, moment, with_time_zone)
    conn.exec_driver_sql(f"CREATE TABLE {quoted(spec.schema, ranges.default_name(spec.table))} PARTITION OF {table} DEFAULT")
    conn.exec_driver_sql(
        f"INSERT INTO {CONVERSIONS} (table_name, old_table, status) VALUES (%(t)s, %(o)s, 'swapped') "
        "ON CONFLICT (table_name) DO UPDATE SET old_table = EXCLUDED.old_table, status = 'swapped', rows_total = NULL, "
        "checksum_total = NULL, rows_moved = 0, checksum_moved = 0, started_at = now(), finished_at = NULL",
        {"t": f"{spec.schema}.{spec.table}", "o": f"{spec.schema}.{spec.old}"})
    return True


def unswap(conn, spec: Spec) -> bool:
    """The way back, in the caller's transaction: a plain table with every row, moved or not."""
    if kind(conn, spec.schema, spec.table) != "p":
        return False
    table = spec.qualified
    shape = _Shape.read(conn, table)
    conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    aside = _aside(spec.table, ASIDE)
    shape.move_aside(conn, spec.schema, spec.table, aside, ASIDE)
    conn.exec_driver_sql(
        f"CREATE TABLE {table} (LIKE {quoted(spec.schema, aside)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING COMMENTS INCLUDING STORAGE INCLUDING GENERATED)")
    conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {quoted(spec.schema, aside)}")
    unmoved = quoted(spec.schema, spec.old)
    if kind(conn, spec.schema, spec.old) == "r":
        conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {unmoved}")
        conn.exec_driver_sql(f"DROP TABLE {unmoved}")
    shape.apply(conn, spec, partitioned=False)
    if spec.nullable:
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {quoted(spec.column)} DROP NOT NULL")
    conn.exec_driver_sql(f"DROP TABLE {quoted(spec.schema, aside)}")
    for bookkeeping in (CHANGES, CONVERSIONS):
        conn.exec_driver_sql(f"DELETE FROM {bookkeeping} WHERE table_name = %(t)s", {"t": f"{spec.schema}.{spec.table}"})
    return True


# -- the row move, after the migration ---------------------------------------------------------


@dataclass
class Conversion:
    table: str
    old_table: str
    status: str
    rows_total: int | None
    rows_moved: int
    checksum_total: int | None
    checksum_moved: int

    def to_json(self) -> dict:
        return {"table": self.table, "old_table": self.old_table, "status": self.status,
                "rows_total": self.rows_total, "rows_moved": self.rows_moved}


def pending(conn) -> list[Conversion]:
    if conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": CONVERSIONS}).scalar() is None:
        return []
    rows = conn.exec_driver_sql(
        f"SELECT table_name, old_table, status, rows_total, rows_moved, checksum_total, checksum_moved "
        f"FROM {CONVERSIONS} WHERE status <> 'done' ORDER BY table_name").all()
    return [Conversion(*r) for r in rows]


def _timeouts(conn) -> None:
    conn.exec_driver_sql(
        "SELECT set_config('lock_timeout', %(l)s, true), set_config('statement_timeout', %(s)s, true)",
        {"l": LOCK_TIMEOUT, "s": STATEMENT_TIMEOUT})


_CHECKSUM = "coalesce(sum(hashtextextended({row}::text, 0)::numeric), 0)"


def move_rows(engine, dialect, *, claim=None, on_progress: Callable[[Conversion], None] | None = None,
              should_stop: Callable[[], bool] = lambda: False) -> list[Conversion]:
    """Finish every conversion a migration started; returns them as they ended."""
    with engine.connect() as conn:
        todo = pending(conn)
        conn.rollback()
    for conversion in todo:
        _move_one(engine, conversion, claim, on_progress or (lambda c: None), should_stop, dialect.transient_error)
    return todo


def _split(qualified: str) -> tuple[str, str]:
    schema, name = qualified.split(".", 1)
    return schema, name


def _move_one(engine, conversion: Conversion, claim, on_progress, should_stop, transient) -> None:
    table, old = quoted(*_split(conversion.table)), quoted(*_split(conversion.old_table))
    key = {"t": conversion.table}
    with engine.connect() as conn:
        if _finished_elsewhere(conn, conversion):
            return
        if conversion.status == "swapped":
            # New rows go to the new table: the old one changes only by the move, and by what the
        # trigger set at the swap accounts for.
            with conn.begin():
                # SHARE: a cascade from a parent waits for the count rather than slip past it.
                conn.exec_driver_sql(f"LOCK TABLE {old} IN SHARE MODE")
                rows, checksum = conn.exec_driver_sql(
                    f"SELECT count(*), {_CHECKSUM.format(row='o')} FROM {old} o").one()
                # Changes made before now are in the count already.
                conn.exec_driver_sql(f"DELETE FROM {CHANGES} WHERE table_name = %(t)s", key)
                conn.exec_driver_sql(
                    f"UPDATE {CONVERSIONS} SET status = 'moving', rows_total = %(r)s, checksum_total = %(c)s "
                    "WHERE table_name = %(t)s", {**key, "r": rows, "c": checksum})
            conversion.status, conversion.rows_total, conversion.checksum_total = "moving", rows, int(checksum)
        while not should_stop():
            with conn.begin():
                pages, per_page = conn.exec_driver_sql(
                    "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, "
                    "CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages END "
                    "FROM pg_class c WHERE c.oid = to_regclass(%(o)s)", {"o": old}).one()
            step = max(1, int(BATCH_ROWS / float(per_page or 100)))
            # Newest pages first: the recent history a user looks at comes back first.
            end = int(pages)
            while end > 0 and not should_stop():
                first = max(0, end - step)
                _batch(conn, conversion, table, old, first, end, claim, transient)
                on_progress(conversion)
                end = first
            with conn.begin():
                left = conn.exec_driver_sql(f"SELECT 1 FROM {old} LIMIT 1").first()
            if left is None:
                break
        if should_stop():
            return
        _finish(conn, conversion, table, old)


def _finished_elsewhere(conn, conversion: Conversion) -> bool:
    """Another run finished this conversion since it was read (its old table is gone)."""
    with conn.begin():
        status = conn.exec_driver_sql(f"SELECT status FROM {CONVERSIONS} WHERE table_name = %(t)s",
                                      {"t": conversion.table}).scalar()
    if status == "done":
        conversion.status = "done"
        return True
    return False


def _batch(conn, conversion, table, old, first, end, claim, transient) -> None:
    from tdbctl.ops.retry import with_retries

    def once():
        with conn.begin():
            _timeouts(conn)
            conn.exec_driver_sql("SELECT set_config('synchronous_commit', 'off', true), "
                                 "set_config('tdbctl.moving', 'on', true)")
            if claim is not None:
                claim.check(conn)
            # The checksum is of the rows as they arrived: summed over the move, it must come
            # to the old table's, taken at the swap.
            moved, inserted, moved_sum = conn.exec_driver_sql(
                f"WITH moved AS (DELETE FROM {old} WHERE ctid >= '({first},0)'::tid AND ctid < '({end},0)'::tid "
                f"RETURNING *), ins AS (INSERT INTO {table} SELECT * FROM moved RETURNING *) "
                f"SELECT (SELECT count(*) FROM moved), count(*), {_CHECKSUM.format(row='i')} FROM ins i").one()
            if moved != inserted:
                raise ConversionError(
                    f"{conversion.table}: pages {first}-{end}: {moved} rows left {conversion.old_table} but "
                    f"{inserted} arrived; the batch was rolled back")
            if moved:
                conn.exec_driver_sql(
                    f"UPDATE {CONVERSIONS} SET rows_moved = rows_moved + %(n)s, checksum_moved = checksum_moved + %(c)s "
                    "WHERE table_name = %(t)s", {"t": conversion.table, "n": moved, "c": moved_sum})
        conversion.rows_moved += moved
        conversion.checksum_moved += int(moved_sum)

    with_retries(once, transient=transient)


def _finish(conn, conversion: Conversion, table: str, old: str) -> None:
    with conn.begin():
        _timeouts(conn)
        # The totals as the trigger kept them, not as this run first read them.
        conversion.rows_total, conversion.checksum_total, conversion.rows_moved, conversion.checksum_moved = \
            conn.exec_driver_sql(
                f"SELECT c.rows_total + coalesce(sum(x.rows), 0), c.checksum_total + coalesce(sum(x.checksum), 0), "
                f"c.rows_moved, c.checksum_moved FROM {CONVERSIONS} c LEFT JOIN {CHANGES} x ON x.table_name = "
                "c.table_name WHERE c.table_name = %(t)s GROUP BY c.table_name", {"t": conversion.table}).one()
        verified = (conversion.rows_moved == conversion.rows_total
                    and conversion.checksum_moved == conversion.checksum_total)
        if not verified:
            conn.exec_driver_sql(f"UPDATE {CONVERSIONS} SET status = 'mismatch' WHERE table_name = %(t)s",
                                 {"t": conversion.table})
            conversion.status = "mismatch"
        else:
            conn.exec_driver_sql(f"DROP TABLE {old}")
            conn.exec_driver_sql(f"DELETE FROM {CHANGES} WHERE table_name = %(t)s", {"t": conversion.table})
            conn.exec_driver_sql(
                f"UPDATE {CONVERSIONS} SET status = 'done', finished_at = now(), rows_total = %(r)s, "
                "checksum_total = %(c)s WHERE table_name = %(t)s",
                {"t": conversion.table, "r": conversion.rows_total, "c": conversion.checksum_total})
            conversion.status = "done"
    if not verified:
        raise ConversionError(
            f"{conversion.table}: {conversion.rows_moved:,} of {conversion.rows_total:,} rows moved, or their checksum "
            f"differs from the old table's; {conversion.old_table} is kept for inspection")
    with conn.begin():
        conn.exec_driver_sql(f"ANALYZE {table}")
