"""PostgreSQL: build an empty table's secondary indexes after a bulk load instead of during it.

Maintaining a B-tree row by row costs the server more than the COPY itself (the seed's
academy.conversation_logs carries nine indexes); one sorted build per index after the load is
what pg_restore does. Only tables that hold no row are treated so (rebuilding over existing rows
would cost more than it saves), and only indexes nothing else depends on: not those behind a
primary key, unique or exclusion constraint (foreign keys and ON CONFLICT rely on them), not a
replica identity or CLUSTER index, not one an extension owns.

Everything happens in the load's transaction: the DROP INDEX is undone with it if the load fails
or is killed, and the table is locked (ACCESS EXCLUSIVE) from the drop to the commit, so nobody
sees it without its indexes. A table someone is using at the start keeps its indexes: the lock is
asked for with NOWAIT inside a savepoint, and refused means "load with the indexes in place".
"""

from __future__ import annotations

from dataclasses import dataclass

from tdbctl.dialects.postgresql import sql_literal

_DROPPABLE = """
SELECT c.relname, pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class')
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %(t)s::regclass
  AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion
  AND NOT i.indisclustered AND NOT i.indisreplident AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = i.indexrelid AND d.deptype IN ('e', 'x'))
ORDER BY c.relname
"""


@dataclass(frozen=True)
class DeferredIndex:
    schema: str
    name: str
    definition: str
    comment: str | None


def drop_for_load(conn, table) -> list[DeferredIndex]:
    """Drop ``table``'s secondary indexes if it is empty and free; what was dropped, to rebuild."""
    import sqlalchemy as sa

    qualified = f'"{table.schema}"."{table.name}"'
    found = conn.exec_driver_sql(_DROPPABLE, {"t": qualified}).all()
    if not found:
        return []
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(f"LOCK TABLE {qualified} IN ACCESS EXCLUSIVE MODE NOWAIT")
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # not lock_not_available: a real failure
            raise
        savepoint.rollback()  # in use right now: load it as it is
        return []
    if conn.exec_driver_sql(f"SELECT EXISTS (SELECT FROM {qualified})").scalar():
        savepoint.rollback()  # which also releases the lock: readers are not held up for nothing
        return []
    dropped = [DeferredIndex(table.schema, name, definition, comment) for name, definition, comment in found]
    for index in dropped:
        conn.exec_driver_sql(f'DROP INDEX "{index.schema}"."{index.name}"')
    savepoint.commit()
    return dropped


def rebuild(conn, dropped: list[DeferredIndex]) -> None:
    """Create the indexes again, as they were (name, definition, comment)."""
    for index in dropped:
        # A partitioned table's index reads "ON ONLY": built so, its partitions would get none.
        conn.exec_driver_sql(index.definition.replace(" ON ONLY ", " ON ", 1))
        if index.comment is not None:
            conn.exec_driver_sql(f'COMMENT ON INDEX "{index.schema}"."{index.name}" IS {sql_literal(index.comment)}')
