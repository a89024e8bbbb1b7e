"""Archive a whole partition as one batch: its rows out with COPY, the files fsynced and read back
against the manifest, then the partition dropped, all in the batch's one transaction.

Only where every row of the partition is the policy's (its whole range past the cutoff, no other
condition) and nothing hangs off the table (no child rows to take along). The partition is held
in SHARE mode from the first row read to the commit: a back-dated insert into it waits rather
than landing after the copy and going with the DROP.
"""

from __future__ import annotations

import sqlalchemy as sa

from tdbctl import __version__
from tdbctl.archive import catalog
from tdbctl.archive.codec import describe_columns
from tdbctl.archive.files import FORMAT, FORMAT_VERSION, BatchFile, read_manifest, remove_batch_dir, write_manifest
from tdbctl.errors import TdbError
from tdbctl.ops.files import fsync_dir


def write_partition(ctx, policy, tree, cutoff, partition, table: sa.Table, batch_id, directory, created, files):
    """The batch's transaction, up to the commit: None when the partition held no row."""
    from tdbctl.archive.batch import _iso, _name, pause

    conn, io = ctx.conn, ctx.io
    io.begin_batch(conn)
    ctx.dialect.set_lock_timeout(conn.exec_driver_sql, ctx.lock_timeout)
    ctx.claim.check(conn)
    conn.exec_driver_sql(f"LOCK TABLE {partition.qualified} IN SHARE MODE")
    key, age = table.c[tree.key.name], table.c[policy.age_column]
    count, key_min, key_max, time_min, time_max = conn.execute(
        sa.select(sa.func.count(), sa.func.min(key), sa.func.max(key), sa.func.min(age), sa.func.max(age))).one()
    if not count:
        conn.exec_driver_sql(f"DROP TABLE {partition.qualified}")
        catalog.mark(conn, batch_id, "discarded", note=f"partition {partition.name} was empty: dropped")
        remove_batch_dir(directory)
        return None
    handle = BatchFile(directory, _name(tree.root, "rows"), tree.root.fullname, "rows", ctx.level,
                       durable=lambda: pause("written"))
    files.append(handle)
    written = io.copy_rows(conn, table, handle)
    handle.finish()
    stats = handle.result()
    fsync_dir(directory)
    if written != count or stats.rows != count:
        raise TdbError(f"{partition.qualified}: {count} rows, {written} copied, {stats.rows} lines read back")
    pause("verified")
    counts = {tree.root.fullname: count}
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "batch": batch_id, "policy": policy.name,
        "description": policy.description, "mode": "files", "source_table": tree.root.fullname,
        "archive_table": None, "partition": f"{partition.schema}.{partition.name}",
        "created_at": created.isoformat(), "tdbctl_version": __version__, "database": ctx.settings.masked_url,
        "dialect": conn.dialect.name, "schema_revision": ctx.revision,
        "cutoff": cutoff.isoformat() if cutoff is not None else None,
        "key": {"column": tree.key.name, "min": str(key_min), "max": str(key_max)},
        "time": {"column": policy.age_column, "min": _iso(time_min), "max": _iso(time_max)},
        "rows": counts,
        "files": [{**stats.document(), "columns": describe_columns(tree.root, conn.dialect),
                   "primary_key": [c.name for c in tree.root.primary_key.columns], "parents": []}],
    }
    data, manifest_sha = write_manifest(directory, manifest)
    fsync_dir(directory)
    read_back, _ = read_manifest(directory)
    # The partition goes in the transaction that marks the batch archived: both or neither.
    conn.exec_driver_sql(f"DROP TABLE {partition.qualified}")
    size = stats.bytes + len(data)
    catalog.mark_archived(conn, batch_id, row_count=count, child_rows={}, key_min=str(key_min), key_max=str(key_max),
                          time_min=time_min, time_max=time_max, sha256=manifest_sha, size=size, manifest=read_back)
    pause("deleted")
    return batch_id, counts, size, None
