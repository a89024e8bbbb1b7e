"""One batch of one policy into files (and an archive table): the crash-safe order of work.

1. The batch's catalog row is committed ('writing'), naming its directory.
2. One transaction: lock the next roots (FOR UPDATE), keep new children off them (PostgreSQL:
   REPEATABLE READ, where a row joining the batch meanwhile rolls it back to run again), write every table's rows (root and ON DELETE CASCADE descendants) and the SET NULL links
   into the files, fsync them, read them back and compare counts and checksums, write the
   manifest, delete the rows (copying the roots into the archive table first, if the policy
   has one), and mark the batch 'archived'. COMMIT.
A kill before COMMIT leaves the rows live and the batch 'writing': the next run removes its files
and marks it 'discarded' (tdbctl/archive/recovery.py). After COMMIT the rows are only in the
verified files.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc

from tdbctl import __version__
from tdbctl.archive import catalog
from tdbctl.archive.codec import describe_columns
from tdbctl.archive.partition import write_partition
from tdbctl.archive.files import (
    FORMAT, FORMAT_VERSION, SUFFIX, ArchiveWriteError, BatchFile, batch_dir, new_batch_dir,
    read_manifest, remove_batch_dir, write_manifest,
)
from tdbctl.archive.rowio import keys_table
from tdbctl.errors import ConnectionLost, TdbError
from tdbctl.ops.files import fsync_dir
from tdbctl.ops.cascade import CascadeTree, cascade_tree, clear_links
from tdbctl.ops.retry import with_retries
from tdbctl.partitions import partitioned_here

PAUSE_ENV = "TDB_ARCHIVE_PAUSE_AT"
"""Test hook: a batch stops at that point and sleeps, so a test can SIGKILL the process there:
'written' (the root table's file, the last, fsynced and not yet read back), 'verified' (every
file read back and checked, no manifest yet), 'deleted'
(rows deleted and batch marked, not committed), 'committed' (after the first batch's commit).
'point:SECONDS' sleeps that long there and goes on. Never set it in production."""

RETRIES = 5
"""Times one batch is run again after a concurrent change rolled it back (RowIO.retryable)."""


@dataclass
class Context:
    settings: object
    metadata: sa.MetaData
    conn: sa.Connection
    dialect: object
    io: object
    run_id: int | None
    to: Path | None
    batch_size: int
    lock_timeout: float
    level: int
    should_stop: object
    """The run's time budget (tdbctl.retention.run.Run.should_stop), asked before each batch."""
    revision: str | None
    log: object
    progress: object = None
    """Called with each committed batch's rows per table (the run record keeps count)."""
    claim: object = None
    """The run's claim (tdbctl.ops.claims.Claim), checked inside every batch's transaction."""

    def out_of_time(self) -> bool:
        return self.should_stop()

    def committed(self, counts: dict[str, int]) -> None:
        if self.progress is not None:
            self.progress(counts)


@dataclass
class PolicyResult:
    policy: str
    table: str
    mode: str
    destination: str
    batches: list[int] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    blocked: int = 0
    held_by: list[str] = field(default_factory=list)
    """Tables referencing the root without ON DELETE: what holds the ``blocked`` rows back."""
    stopped: bool = False

    def add(self, counts: dict[str, int]) -> None:
        for table, count in counts.items():
            self.rows[table] = self.rows.get(table, 0) + count

    def document(self) -> dict:
        return dict(vars(self))


def pause(point: str) -> None:
    where, _, seconds = os.environ.get(PAUSE_ENV, "").partition(":")
    if where == point:
        sys.stderr.write(f"tdbctl: paused at {point} ({PAUSE_ENV})\n")
        sys.stderr.flush()
        time.sleep(float(seconds) if seconds else 3600)


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def eligible(tree: CascadeTree, policy, metadata, cutoff, after=None, walk=None) -> sa.Select:
    """The root rows the policy takes: key and age, in key order; with ``walk`` (the dialect's
    LocatorKeyset) also the row locator, in locator order, past ``after``."""
    root, key = tree.root, tree.key
    age = root.c[policy.age_column] if policy.age_column else sa.null()
    if walk is None:
        query = sa.select(key, age).where(policy.where(metadata, cutoff), tree.unblocked())
        if after is not None:
            query = query.where(key > after)
        return query.order_by(key)
    query = sa.select(key, age, walk.column).where(policy.where(metadata, cutoff), tree.unblocked())
    if after is not None:
        query = query.where(walk.after(after))
    return query.order_by(*walk.order_by)


def _name(table: sa.Table, role: str) -> str:
    return f"{table.fullname}{'.links' if role == 'links' else ''}{SUFFIX}"


def archive_policy(ctx: Context, policy, cutoff, result: PolicyResult, partitions=()) -> PolicyResult:
    """The ``archive_partition`` steps (``partitions``: each a batch of its own), then ``archive_rows``."""
    tree = cascade_tree(ctx.metadata, policy.table, ctx.dialect.unkept_links(ctx.metadata))
    archive_table = ctx.metadata.tables[policy.archive_table] if policy.archive_table else None
    age = tree.root.c[policy.age_column] if policy.age_column else None
    # Batches follow the rows' physical order (ctid, rowid), not the key's: with random keys
    # (UUIDs) a key-ordered batch would touch nearly every page of the table and its children.
    # A partitioned table's locators repeat in each partition: it goes in key order.
    walk = (_key_walk(tree.key) if partitioned_here(ctx.conn, ctx.dialect, ctx.metadata, policy.table)
            else ctx.dialect.locator_keyset(tree.root))
    ctx.conn.rollback()
    per_transaction = ctx.io.keys_per_transaction
    keys = keys_table(tree.key, age, walk.column.type, per_transaction=per_transaction)
    if not per_transaction:
        keys.create(ctx.conn)
        ctx.conn.commit()
    try:
        # Partitions wholly past the cutoff go first, each one batch; then the rest row by row.
        for step in partitions:
            if ctx.out_of_time():
                result.stopped = True
                break
            outcome = _one_batch(ctx, policy, lambda *a, s=step: write_partition(
                ctx, policy, tree, cutoff, s.partition, s.table, *a))
            if outcome is not None:
                _committed(ctx, result, outcome)
        after, swept = None, False
        while True:
            if ctx.out_of_time():
                result.stopped = True
                break
            probe = eligible(tree, policy, ctx.metadata, cutoff, after, walk).limit(1)
            found = ctx.conn.execute(probe).first() is not None
            ctx.conn.rollback()
            if not found:
                if after is None or swept:
                    break
                # One more pass from the start takes rows that moved behind the walk meanwhile
                # (an update gives a PostgreSQL row a new ctid).
                after, swept = None, True
                continue
            # A concurrent change to the batch's rows rolls it back and discards it whole: again.
            outcome = with_retries(
                lambda: _one_batch(ctx, policy, lambda *a: _write_and_delete(
                    ctx, policy, tree, archive_table, keys, cutoff, after, walk, *a)),
                transient=lambda exc: "concurrent change" if ctx.io.retryable(exc) else None,
                attempts=RETRIES + 1,
                on_retry=lambda kind, attempt: ctx.log(f"{policy.name}: batch rolled back after a {kind}, retrying"))
            if outcome is None:
                break
            after = _committed(ctx, result, outcome)
        result.blocked = _blocked(ctx, tree, policy, cutoff)
        result.held_by = tree.held_by if result.blocked else []
    except BaseException:
        try:  # the temporary table goes with the session anyway: never let it hide the real error
            _drop_keys(ctx, keys)
        except Exception:
            pass
        raise
    _drop_keys(ctx, keys)
    return result


def _committed(ctx: Context, result: PolicyResult, outcome):
    """Count a committed batch in; the key the next batch starts after."""
    batch_id, counts, size, after = outcome
    result.batches.append(batch_id)
    result.add(counts)
    ctx.committed(counts)
    pause("committed")
    result.bytes += size
    return after


def _drop_keys(ctx: Context, keys: sa.Table) -> None:
    ctx.conn.rollback()
    if not ctx.io.keys_per_transaction:
        keys.drop(ctx.conn)
        ctx.conn.commit()


def _blocked(ctx: Context, tree: CascadeTree, policy, cutoff) -> int:
    count = tree.count_held_back(ctx.conn, policy.where(ctx.metadata, cutoff))
    ctx.conn.rollback()
    return count


def _one_batch(ctx: Context, policy, write):
    """A batch from its catalog entry to its commit; ``write(batch_id, directory, created, files)``
    does its transaction's work (rows or a whole partition) and returns the outcome, or None."""
    conn = ctx.conn
    created = datetime.now(timezone.utc)
    with conn.begin():
        batch_id = catalog.open_batch(conn, run_id=ctx.run_id, policy=policy.name, source_table=policy.table,
                                      destination=str(ctx.to))
        directory = batch_dir(ctx.to, policy.name, batch_id, stamp(created))
        catalog.set_destination(conn, batch_id, str(directory))
    files: list[BatchFile] = []
    committing = False
    try:
        new_batch_dir(directory)
        with conn.begin():
            outcome = write(batch_id, directory, created, files)
            committing = True
        return outcome
    except BaseException as exc:
        for handle in files:
            handle.abort()
        if committing or not _rolled_back_here(exc):
            # The COMMIT may have reached the server, or the claim or the connection is gone: the
            # batch is left as it is for the next run's recovery, which asks the live tables.
            if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
                raise ConnectionLost(
                    f"lost the connection to {ctx.settings.masked_url} during archive batch {batch_id} "
                    f"({policy.name}): " + ("its COMMIT was under way, so the next run checks the live tables "
                                            "and keeps or discards it" if committing else
                                            "nothing of that batch was committed") +
                    "; run tdbctl archive again to continue") from exc
            raise
        left = _discard(ctx, batch_id, directory, _reason(exc))
        if isinstance(exc, OSError):
            raise ArchiveWriteError(
                f"cannot write archive batch {batch_id} in {directory}: {exc.strerror or exc}; nothing was deleted"
                f"{left}") from exc
        raise


def _rolled_back_here(exc: BaseException) -> bool:
    """The batch's transaction surely rolled back, and this run may still tidy up after it."""
    from tdbctl.ops.claims import ClaimLost

    if isinstance(exc, (ClaimLost, KeyboardInterrupt, SystemExit)):
        return False
    return not (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated)


def _discard(ctx: Context, batch_id: int, directory: Path, reason: str) -> str:
    """Discard a batch whose transaction rolled back; what became of it, for the error message."""
    conn = ctx.conn
    try:
        with conn.begin():
            ctx.claim.check(conn)
            catalog.move(conn, batch_id, "writing", "leftover", note=reason)
        remove_batch_dir(directory)
        with conn.begin():
            catalog.move(conn, batch_id, "leftover", "discarded")
    except OSError as exc:
        return (f"; its files could not be removed either ({exc.strerror or exc}): batch {batch_id} is left "
                f"'leftover', which `tdbctl archive discard {batch_id}` clears")
    except Exception:
        return f"; batch {batch_id} is left to the next run, which discards it"
    return f" (batch {batch_id} was discarded)"


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"failed before its delete committed: {text}"


def _write_and_delete(ctx: Context, policy, tree, archive_table, keys, cutoff, after, walk, batch_id, directory,
                      created, files):
    conn, io = ctx.conn, ctx.io
    io.begin_batch(conn)
    ctx.dialect.set_lock_timeout(conn.exec_driver_sql, ctx.lock_timeout)
    ctx.claim.check(conn)
    touched = [*tree.members, *(link.child for link in tree.detached),
               *([archive_table] if archive_table is not None else []), catalog.batches]
    ctx.dialect.reserve_for_write(conn, touched)
    if ctx.io.keys_per_transaction:
        keys.create(conn)
    else:
        conn.execute(sa.delete(keys))
    select = ctx.dialect.lock_rows(eligible(tree, policy, ctx.metadata, cutoff, after, walk).limit(ctx.batch_size),
                                   of=tree.root)
    conn.execute(sa.insert(keys).from_select([c.name for c in keys.columns], select))
    taken = conn.execute(sa.select(*keys.columns).order_by(keys.c.k)).all()
    if not taken:
        catalog.mark(conn, batch_id, "discarded", note="nothing left to archive when the batch started")
        remove_batch_dir(directory)
        return None
    io.keys_chosen(conn, keys, tree)

    def in_keys(column):
        return column.in_(sa.select(keys.c.k))

    def where(table):
        return tree.rows_of(table, in_keys)

    links = []
    for link in tree.detached:
        handle = BatchFile(directory, _name(link.child, "links"), link.child.fullname, "links", ctx.level)
        files.append(handle)
        links.append((handle, link, io.take_links(conn, link, tree.referencing(link, in_keys), handle)))
        handle.finish()
    clear_links(conn, [(link, tree.referencing(link, in_keys)) for link in tree.detached],
                        ctx.dialect.unkept_links(ctx.metadata))
    if archive_table is not None:
        names = [c.name for c in tree.root.columns]
        conn.execute(sa.insert(archive_table).from_select(
            names, sa.select(*(tree.root.c[n] for n in names)).where(in_keys(tree.key))))
        # Counted, not rowcount: an INSERT ... SELECT reports none through SQLAlchemy on psycopg.
        copied = conn.execute(sa.select(sa.func.count()).select_from(archive_table)
                              .where(in_keys(archive_table.c[tree.key.name]))).scalar()
        if copied != len(taken):
            raise TdbError(f"{archive_table.fullname}: {copied} rows copied for {len(taken)} archived")
    counts: dict[str, int] = {}
    tables = []
    for table in tree.delete_order():
        handle = BatchFile(directory, _name(table, "rows"), table.fullname, "rows", ctx.level,
                           durable=(lambda: pause("written")) if table is tree.root else None)
        files.append(handle)
        counts[table.fullname] = io.take_rows(conn, table, where(table), handle)
        handle.finish()  # fsynced, read back and checked on its own thread, beside the next table's rows
        tables.append((handle, table))
    if counts[tree.root.fullname] != len(taken):
        raise TdbError(f"{tree.root.fullname}: {counts[tree.root.fullname]} rows written for {len(taken)} locked")
    stats = {handle.name: handle.result() for handle in files}
    fsync_dir(directory)
    for handle, _table in tables:
        if stats[handle.name].rows != counts[handle.table]:
            raise TdbError(f"{handle.path}: {stats[handle.name].rows} lines for {counts[handle.table]} rows")
    pause("verified")
    key_values = [row[0] for row in taken]
    times = [row[1] for row in taken if len(row) > 1 and row[1] is not None]
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "batch": batch_id, "policy": policy.name,
        "description": policy.description, "mode": "files+table" if archive_table is not None else "files",
        "source_table": tree.root.fullname, "archive_table": policy.archive_table,
        "created_at": created.isoformat(), "tdbctl_version": __version__, "database": ctx.settings.masked_url,
        "dialect": conn.dialect.name, "schema_revision": ctx.revision,
        "cutoff": cutoff.isoformat() if cutoff is not None else None,
        "key": {"column": tree.key.name, "min": str(min(key_values)), "max": str(max(key_values))},
        "time": {"column": policy.age_column, "min": _iso(min(times) if times else None),
                 "max": _iso(max(times) if times else None)},
        "rows": counts,
        "files": [
            {**stats[handle.name].document(),
             "columns": describe_columns(table, conn.dialect),
             "primary_key": [c.name for c in table.primary_key.columns],
             "parents": [{"columns": [c.name for c in link.columns], "table": link.parent.fullname,
                          "refers_to": [c.name for c in link.referred]} for link in tree.parents_of(table)]}
            for handle, table in reversed(tables)
        ] + [
            {**stats[handle.name].document(),
             "columns": describe_columns(_partial(link), conn.dialect),
             "primary_key": [c.name for c in link.child.primary_key.columns],
             "restores": {"columns": [c.name for c in link.columns], "table": link.parent.fullname,
                          "refers_to": [c.name for c in link.referred]}}
            for handle, link, _count in links
        ],
    }
    data, manifest_sha = write_manifest(directory, manifest)
    fsync_dir(directory)
    written, _ = read_manifest(directory)
    io.finish_delete(conn, tree, where, counts)
    size = sum(s.bytes for s in stats.values()) + len(data)
    catalog.mark_archived(
        conn, batch_id, row_count=len(taken),
        child_rows={t: n for t, n in counts.items() if t != tree.root.fullname},
        key_min=str(min(key_values)), key_max=str(max(key_values)),
        time_min=min(times) if times else None, time_max=max(times) if times else None,
        sha256=manifest_sha, size=size, manifest=written,
    )
    pause("deleted")
    return batch_id, counts, size, max((row[2] for row in taken), key=walk.sort_key)


def _key_walk(key: sa.Column):
    from tdbctl.dialects.base import LocatorKeyset

    return LocatorKeyset(column=key.label("loc"), after=lambda last: key > last, order_by=(key,),
                         sort_key=lambda value: value)


def _partial(link) -> sa.Table:
    columns = [*link.child.primary_key.columns, *link.columns]
    return sa.Table(link.child.name, sa.MetaData(), *(sa.Column(c.name, c.type, primary_key=c.primary_key)
                                                     for c in columns), schema=link.child.schema)


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
