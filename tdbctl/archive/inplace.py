"""Archiving in place, as ChatTrain's seed does: the rows stay, their status says 'archived'.

The seed's job is ``UPDATE sessions SET status = 'archived', metadata = COALESCE(metadata, '{}')
|| '{"archived_at": ...}'``; chk_session_status allows 'archived' for it (docs/schema.md). Here
each batch does that in one transaction, which also marks the catalog row 'archived', and adds
what undoing it needs under ``metadata.tdbctl_archive``: the batch, the status the row had, and
whether metadata was NULL. Nothing is deleted, so children (messages, feedback) stay with their
session, untouched. The policy's table must have ``status`` and a JSON ``metadata`` column.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from tdbctl.archive import catalog
from tdbctl.archive.batch import Context, PolicyResult
from tdbctl.archive.codec import kind_of
from tdbctl.errors import TdbError

STATUS, MARKER = "status", "metadata"
MARK = "tdbctl_archive"


def columns_of(table: sa.Table, dialect_name: str) -> tuple[sa.Column, sa.Column]:
    if STATUS not in table.c or MARKER not in table.c or kind_of(table.c[MARKER], dialect_name) != "json":
        raise TdbError(f"{table.fullname}: archiving in place needs a {STATUS!r} column and a JSON {MARKER!r} column")
    return table.c[STATUS], table.c[MARKER]


def destination(policy) -> str:
    return f"in place: {policy.table}.{STATUS} = '{policy.archive_status}'"


def marked(table: sa.Table, batch_id: int) -> sa.ColumnElement[bool]:
    return table.c[MARKER][(MARK, "batch")].as_integer() == batch_id


def archive_in_place(ctx: Context, policy, cutoff) -> PolicyResult:
    table = ctx.metadata.tables[policy.table]
    status, marker = columns_of(table, ctx.conn.dialect.name)
    key = table.primary_key.columns.values()[0]
    age = table.c[policy.age_column] if policy.age_column else sa.null()
    result = PolicyResult(policy.name, policy.table, "in_place", destination(policy))
    after = None
    while not (stopped := ctx.out_of_time()):
        query = sa.select(key, age, status, marker, marker.is_(None)).where(policy.where(ctx.metadata, cutoff))
        if after is not None:
            query = query.where(key > after)
        query = query.order_by(key).limit(ctx.batch_size)
        if ctx.conn.execute(query.limit(1)).first() is None:
            ctx.conn.rollback()
            break
        ctx.conn.rollback()
        with ctx.conn.begin():
            batch_id = catalog.open_batch(ctx.conn, run_id=ctx.run_id, policy=policy.name,
                                          source_table=policy.table, destination=destination(policy))
        with ctx.conn.begin():
            ctx.dialect.set_lock_timeout(ctx.conn.exec_driver_sql, ctx.lock_timeout)
            ctx.dialect.reserve_for_write(ctx.conn, [table, catalog.batches])
            rows = ctx.conn.execute(query.with_for_update()).all()
            if not rows:
                catalog.mark(ctx.conn, batch_id, "discarded", note="nothing left to archive when the batch started")
                break
            now = datetime.now(timezone.utc).isoformat()
            updates = [{
                "k": row[0],
                "v_status": policy.archive_status,
                "v_meta": {**(row[3] if isinstance(row[3], dict) else {}), "archived_at": now,
                           MARK: {"batch": batch_id, "status": row[2], "metadata_was_null": bool(row[4] or row[3] is None)}},
            } for row in rows]
            ctx.conn.execute(
                sa.update(table).where(key == sa.bindparam("k", type_=key.type))
                .values({status.name: sa.bindparam("v_status", type_=status.type),
                         marker.name: sa.bindparam("v_meta", type_=marker.type)}),
                updates,
            )
            keys = [row[0] for row in rows]
            times = [row[1] for row in rows if row[1] is not None]
            catalog.mark_archived(
                ctx.conn, batch_id, row_count=len(rows), child_rows={}, key_min=str(min(keys)), key_max=str(max(keys)),
                time_min=min(times) if times else None, time_max=max(times) if times else None, sha256=None, size=None,
                manifest={"mode": "in_place", "policy": policy.name, "source_table": policy.table,
                          "status_column": STATUS, "archive_status": policy.archive_status,
                          "marker": f"{MARKER}.{MARK}.batch", "cutoff": cutoff.isoformat() if cutoff else None,
                          "schema_revision": ctx.revision},
            )
        after = max(keys)
        result.batches.append(batch_id)
        result.add({policy.table: len(rows)})
    result.stopped = stopped
    return result


def restore_in_place(conn, dialect, batch: catalog.Batch, metadata) -> dict[str, int]:
    """Undo one in-place batch: status and metadata as they were. Rows no longer marked are left."""
    table = metadata.tables[batch.source_table]
    status, marker = columns_of(table, conn.dialect.name)
    key = table.primary_key.columns.values()[0]
    archive_status = batch.manifest.get("archive_status")
    dialect.reserve_for_write(conn, [table, catalog.batches])
    rows = conn.execute(sa.select(key, marker).where(marked(table, batch.id), status == archive_status)
                        .with_for_update()).all()
    updates = []
    for row_key, meta in rows:
        mark = meta.get(MARK, {})
        if mark.get("metadata_was_null"):
            restored = None
        else:
            restored = {k: v for k, v in meta.items() if k not in ("archived_at", MARK)}
        updates.append({"k": row_key, "v_status": mark.get("status"), "v_meta": restored,
                        "v_null": restored is None})
    plain = [u for u in updates if not u["v_null"]]
    nulls = [u for u in updates if u["v_null"]]
    where = key == sa.bindparam("k", type_=key.type)
    if plain:
        conn.execute(sa.update(table).where(where).values({
            status.name: sa.bindparam("v_status", type_=status.type),
            marker.name: sa.bindparam("v_meta", type_=marker.type)}), plain)
    if nulls:
        conn.execute(sa.update(table).where(where).values({
            status.name: sa.bindparam("v_status", type_=status.type), marker.name: sa.null()}), nulls)
    return {batch.source_table: len(updates)}


def count_marked(conn, batch: catalog.Batch, metadata) -> int:
    table = metadata.tables[batch.source_table]
    status, _ = columns_of(table, conn.dialect.name)
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(
        marked(table, batch.id), status == batch.manifest.get("archive_status"))).scalar()
