"""Archiving in place, as ChatTrain's seed does: the rows stay, their status says 'archived'.

The seed's job is ``UPDATE sessions SET status = 'archived', metadata = COALESCE(metadata, '{}')
|| '{"archived_at": ...}'``; chk_session_status allows 'archived' for it (docs/schema.md). Here
each batch does that in one transaction, which also marks the catalog row 'archived', and adds
what undoing it needs under ``metadata.tdbctl_archive``: the batch, the status the row had, and
whether metadata was SQL NULL, an object (the two keys are removed again) or another JSON value
(kept there whole). Nothing is deleted, so children (messages, feedback) stay with their
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


def archive_in_place(ctx: Context, policy, cutoff, result: PolicyResult) -> PolicyResult:
    table = ctx.metadata.tables[policy.table]
    status, marker = columns_of(table, ctx.conn.dialect.name)
    key = table.primary_key.columns.values()[0]
    age = table.c[policy.age_column] if policy.age_column else sa.null()
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
            ctx.claim.check(ctx.conn)
            rows = ctx.conn.execute(ctx.dialect.lock_rows(query)).all()
            if not rows:
                catalog.mark(ctx.conn, batch_id, "discarded", note="nothing left to archive when the batch started")
                break
            now = datetime.now(timezone.utc).isoformat()
            updates = [{"k": row[0], "v_status": policy.archive_status,
                        "v_meta": _marked_metadata(row[3], bool(row[4]), batch_id, row[2], now)} for row in rows]
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
        ctx.committed({policy.table: len(rows)})
    result.stopped = stopped
    return result


def _marked_metadata(metadata, sql_null: bool, batch_id: int, status, now: str) -> dict:
    """The seed's archived_at, and under tdbctl_archive what it takes to put the row back as it was."""
    mark = {"batch": batch_id, "status": status}
    if sql_null:
        return {"archived_at": now, MARK: {**mark, "was": "sql_null"}}
    if isinstance(metadata, dict):
        return {**metadata, "archived_at": now, MARK: {**mark, "was": "object"}}
    return {"archived_at": now, MARK: {**mark, "was": "value", "metadata": metadata}}


def _original_metadata(metadata: dict):
    mark = metadata.get(MARK, {})
    if mark.get("was") == "sql_null":
        return sa.null()
    if mark.get("was") == "value":
        return mark.get("metadata")
    return {k: v for k, v in metadata.items() if k not in ("archived_at", MARK)}


def restore_in_place(conn, dialect, batch: catalog.Batch, metadata) -> dict[str, int]:
    """Undo one in-place batch: status and metadata as they were. Rows no longer marked are left."""
    table = metadata.tables[batch.source_table]
    status, marker = columns_of(table, conn.dialect.name)
    key = table.primary_key.columns.values()[0]
    archive_status = batch.manifest.get("archive_status")
    dialect.reserve_for_write(conn, [table, catalog.batches])
    rows = conn.execute(dialect.lock_rows(sa.select(key, marker).where(marked(table, batch.id),
                                                                   status == archive_status))).all()
    updates = [{"k": row_key, "v_status": meta.get(MARK, {}).get("status"), "v_meta": _original_metadata(meta)}
               for row_key, meta in rows]
    where = key == sa.bindparam("k", type_=key.type)
    values = {"v_status": sa.bindparam("v_status", type_=status.type)}
    plain = [u for u in updates if u["v_meta"] is not sa.null()]
    if plain:
        conn.execute(sa.update(table).where(where).values({
            status.name: values["v_status"], marker.name: sa.bindparam("v_meta", type_=marker.type)}), plain)
    nulls = [{"k": u["k"], "v_status": u["v_status"]} for u in updates if u["v_meta"] is sa.null()]
    if nulls:
        conn.execute(sa.update(table).where(where).values({status.name: values["v_status"], marker.name: sa.null()}),
                     nulls)
    return {batch.source_table: len(updates)}


def count_marked(conn, batch: catalog.Batch, metadata) -> int:
    table = metadata.tables[batch.source_table]
    status, _ = columns_of(table, conn.dialect.name)
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(
        marked(table, batch.id), status == batch.manifest.get("archive_status"))).scalar()
