"""Delete one policy's rows in keyset batches, each its own short transaction.

A batch selects up to ``batch_size`` rows past the last key (primary key order; the row locator
for a table without one), locks them (FOR UPDATE SKIP LOCKED on PostgreSQL: rows a user holds are
left for the next pass), counts what ON DELETE will take with them, and deletes exactly the rows
selected, by locator, under lock_timeout and statement_timeout. Kill the process at any moment
and the open batch rolls back whole; the next run finds the rest by the same condition.

On PostgreSQL a table with nothing to count per batch (no ON DELETE CASCADE or SET NULL reaches
from it) is walked by physical position instead (_PageWalk, _page_batch): its rows lie in
insertion order, which is age order, while a random UUID key sends each batch all over the heap
and the row locks write every tuple twice. A range of pages is one plain DELETE of the policy's
rows, the cost of the single big DELETE spread over short transactions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc

from tdbctl.ops import cascade
from tdbctl.cleanup.request import DEFAULT_BATCH_SIZE, DEFAULT_PAGE_BATCH_SIZE
from tdbctl.errors import TdbError
from tdbctl.ops.retry import Stopped, with_retries

MAX_ATTEMPTS = 10
"""Consecutive failed attempts at one batch (lock timeouts, busy database) before giving up."""


@dataclass
class PolicyOutcome:
    policy: str
    table: str
    action: str
    age: str
    cutoff: datetime | None
    declared_age: str | None = None
    """The policy's own age, where --older-than or --before replaced it."""
    status: str = "done"
    """done, nothing (no row matched), stopped, failed, would_delete (dry run), archive (left alone)."""
    rows: dict[str, int] = field(default_factory=dict)
    """Rows deleted per table: the policy's table first, then what ON DELETE CASCADE took."""
    cleared: dict[str, int] = field(default_factory=dict)
    """Rows whose reference ON DELETE SET NULL cleared, per table."""
    kept_referenced: int | None = None
    """Rows matching the policy that stay because a child references them without ON DELETE."""
    blocked_by: list[str] = field(default_factory=list)
    batches: int = 0
    retries: int = 0
    passes: int = 0
    seconds: float = 0.0
    longest_batch: float = 0.0
    message: str | None = None
    partitions: list[dict] = field(default_factory=list)
    """Partitions dropped whole (would be, in a dry run): name, from, to, rows_estimate."""
    deleted_from: set[str] = field(default_factory=set)
    """The tables (partitions, for a partitioned one) rows were deleted from one by one."""

    def vacuum_targets(self) -> set[str]:
        """What a VACUUM after the run has dead tuples to find in: not a partition dropped whole."""
        touched = {t for t, n in (*self.rows.items(), *self.cleared.items()) if n}
        return (touched - {self.table}) | self.deleted_from

    def add(self, rows: dict[str, int], cleared: dict[str, int]) -> None:
        for target, counts in ((self.rows, rows), (self.cleared, cleared)):
            for table, n in counts.items():
                target[table] = target.get(table, 0) + n

    @property
    def deleted(self) -> int:
        return self.rows.get(self.table, 0)

    def to_json(self) -> dict:
        return {
            "policy": self.policy, "table": self.table, "action": self.action, "age": self.age,
            "declared_age": self.declared_age,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None, "status": self.status,
            "rows": self.rows, "set_null": self.cleared, "kept_referenced": self.kept_referenced,
            "blocked_by": self.blocked_by, "batches": self.batches, "retries": self.retries,
            "seconds": round(self.seconds, 3), "longest_batch_seconds": round(self.longest_batch, 4),
            "partitions_dropped": self.partitions, "message": self.message,
        }


PROBE_LOCK_TIMEOUT = 0.005
"""How long a page-range DELETE may wait for a row lock before the range is done with SKIP LOCKED."""


PAGE_BATCH_SECONDS = 0.5
"""A range that took longer than this makes the next one smaller (the issue's cap is 1 s)."""


class _PageWalk:
    """Ranges of physical pages from the first to those the table had when the pass began.

    A range holds about ``batch_size`` of the policy's rows: sized from the rows per page the
    statistics give, then from the rows the last range actually had, growing at most twofold
    at a time over pages with nothing to delete.
    """

    def __init__(self, pages: int, per_page: float | None, batch_size: int):
        self.pages, self.batch_size = pages, batch_size
        self.next = 0
        self.size = max(1, int(batch_size / max(per_page or 100.0, 1.0)))
        # Never more pages than about ten batches of rows at the statistics' density.
        self.most = max(self.size, int(10 * batch_size / max(per_page or 1.0, 1.0)))

    def end(self) -> int:
        return self.next + self.size

    @property
    def done(self) -> bool:
        return self.next >= self.pages

    def advance(self, deleted: int, seconds: float) -> None:
        self.next += self.size
        wanted = self.batch_size * self.size / deleted if deleted else 2 * self.size
        if seconds > PAGE_BATCH_SECONDS:
            # A slow server or a table much wider than it looked: keep transactions short.
            wanted = min(wanted, self.size * PAGE_BATCH_SECONDS / seconds)
        self.size = max(1, min(int(wanted), 2 * self.size, self.most))

    def halve(self) -> None:
        self.batch_size = max(1, self.batch_size // 2)
        self.size = max(1, self.size // 2)


class _BatchChanged(Exception):
    """The rows deleted were not the rows selected: roll the batch back and select again."""


@dataclass
class _Keyset:
    columns: list  # the key columns, labelled k0, k1, ... in the batch SELECT
    order_by: tuple
    after: Callable
    sort_key: Callable | None  # None: rows come back in key order already
    names: list[str]
    unique: bool = True


def keyset_for(table: sa.Table, dialect) -> _Keyset:
    pk = list(table.primary_key.columns)
    if pk:
        def after(last):
            return pk[0] > last[0] if len(pk) == 1 else sa.tuple_(*pk) > sa.tuple_(*last)

        return _Keyset(pk, tuple(pk), after, None, [f"k{i}" for i in range(len(pk))])
    # No primary key (voice.system_metrics): walk by the physical row locator instead.
    locator = dialect.locator_keyset(table)
    return _Keyset([locator.column], locator.order_by, lambda last: locator.after(last[0]),
                   None if locator.order_by else (lambda row: locator.sort_key(row[0])), ["loc"], locator.unique)


class PolicyDeleter:
    """Runs the batches of one delete policy; ``should_stop`` is asked between batches."""

    def __init__(self, db, metadata, target, where, request, outcome: PolicyOutcome, claim, *,
                 on_batch: Callable[[int], None] | None = None, should_stop: Callable[[], bool] = lambda: False,
                 table: sa.Table | None = None):
        """``table``: one partition of the policy's table (``where`` then written over it); its
        rows count as the policy table's."""
        self.db, self.metadata, self.target, self.request = db, metadata, target, request
        self.claim = claim
        self.table = metadata.tables[target.policy.table] if table is None else table
        self.counted_as = target.policy.table
        self.where = where
        self.outcome = outcome
        self.on_batch = on_batch or (lambda n: None)
        self.should_stop = should_stop
        self.keyset = keyset_for(self.table, db.dialect)
        # Tables whose rows go (or change) with these: then each batch counts them before deleting.
        self.has_dependents = bool(cascade.impact(metadata, self.table, sa.false()).dependent_tables)
        self.batch_size = request.batch_size or DEFAULT_BATCH_SIZE
        self.pages: _PageWalk | None = None
        self.walk_pages = False

    def run(self) -> PolicyOutcome:
        """Pass after pass until a pass deletes nothing: a row skipped as locked, or stepped
        over by an unordered locator walk, is picked up by the next pass."""
        started = time.monotonic()
        # One connection for all the batches (each batch is its own transaction on it): the
        # engine does not pool, and a connection per batch would cost more than the batch.
        self.conn = self.db.engine.connect()
        try:
            while True:
                self.outcome.passes += 1
                deleted_this_pass, last = 0, None
                # Nothing to count per batch: walk the pages, where the dialect can.
                self.pages, self.walk_pages = None, not self.has_dependents
                while True:
                    if self.should_stop():
                        self.outcome.status = "stopped"
                        return self.outcome
                    result = self._batch_with_retries(last)
                    if result is None:  # stopped while pausing
                        self.outcome.status = "stopped"
                        return self.outcome
                    selected, last = result
                    deleted_this_pass += selected
                    if self.pages is not None:
                        # A range with nothing to delete is no end of the walk; its last page is.
                        if self.pages.done:
                            break
                    elif not selected:
                        break
                if not deleted_this_pass or not self._any_left():
                    break
        finally:
            self.conn.close()
            self.outcome.seconds += time.monotonic() - started
        if not self.outcome.rows.get(self.counted_as):
            self.outcome.status = "nothing"
        return self.outcome

    def _any_left(self) -> bool:
        with self.conn.begin():
            query = sa.select(sa.literal(1)).select_from(self.table).where(self.where).limit(1)
            return self.conn.execute(query).first() is not None

    def _batch_with_retries(self, last):
        """One batch, retried while it fails for a lock, a timeout or a change under it; None
        when told to stop while pausing between attempts."""
        def once():
            started = time.monotonic()
            if self.walk_pages and self.pages is None:
                # Sizing the table takes a lock (an ALTER TABLE holds it): under the timeouts.
                with self.conn.begin():
                    self.db.dialect.set_batch_timeouts(self.conn, self.request.lock_timeout, self.request.statement_timeout)
                    walk = self.db.dialect.page_walk(self.conn, self.table)
                self.walk_pages = walk is not None
                size = self.request.batch_size or DEFAULT_PAGE_BATCH_SIZE
                self.pages = _PageWalk(*walk, size) if walk else None
            if self.pages is not None:
                return self._page_batch(), time.monotonic() - started
            with self.conn.begin():
                self.db.dialect.set_batch_timeouts(self.conn, self.request.lock_timeout, self.request.statement_timeout)
                self.claim.check(self.conn)
                return self._batch(self.conn, last), time.monotonic() - started

        def transient(exc: BaseException) -> str | None:
            if isinstance(exc, _BatchChanged):
                return "changed"
            return self.db.dialect.transient_error(exc) if isinstance(exc, sa_exc.DBAPIError) else None

        def retrying(kind: str, attempt: int) -> None:
            self.outcome.retries += 1
            if kind == "statement_timeout":
                # The batch is too big for this table under this load: halve it for good.
                self.batch_size = max(1, self.batch_size // 2)
                if self.pages is not None:
                    self.pages.halve()

        def give_up(kind: str, attempts: int, exc: BaseException) -> TdbError:
            return TdbError(f"{self.target.name}: gave up after {attempts} attempts at one batch ({kind}); "
                            f"deleted so far stays deleted, the next run continues")

        try:
            (selected, new_last, rows, cleared), elapsed = with_retries(
                once, transient=transient, attempts=MAX_ATTEMPTS, on_retry=retrying, give_up=give_up,
                should_stop=self.should_stop)
        except Stopped:
            return None
        if self.pages is not None:
            self.pages.advance(selected, elapsed)
            new_last = None
        if selected:
            self.outcome.batches += 1
            self.outcome.longest_batch = max(self.outcome.longest_batch, elapsed)
            self.outcome.add(rows, cleared)
            self.outcome.deleted_from.add(self.table.fullname)
            self.on_batch(selected)
        return selected, new_last

    def _page_batch(self):
        """Delete the policy's rows on the walk's next range of pages.

        First a plain DELETE that may wait only PROBE_LOCK_TIMEOUT for a lock: when no row of the
        range is held by anyone (nearly always), that is the whole batch, at the cost of a plain
        DELETE. When one is, it gives up after those few milliseconds, and the range goes again
        with FOR UPDATE SKIP LOCKED: the held rows stay for a later pass and the others go.
        Each is a transaction of its own, its timeouts SET LOCAL (nothing stays on a pooled
        server connection), its claim checked inside it.
        """
        dialect, first, end = self.db.dialect, self.pages.next, self.pages.end()
        try:
            deleted = self._range(first, end, skip_locked=False)
        except (sa_exc.OperationalError, sa_exc.DBAPIError) as exc:
            if dialect.transient_error(exc) != "lock_timeout":
                raise
            deleted = self._range(first, end, skip_locked=True)
        return deleted, None, {self.counted_as: deleted} if deleted else {}, {}

    def _range(self, first: int, end: int, *, skip_locked: bool) -> int:
        lock_timeout = self.request.lock_timeout if skip_locked else min(PROBE_LOCK_TIMEOUT, self.request.lock_timeout)
        with self.conn.begin():
            self.db.dialect.set_batch_timeouts(self.conn, lock_timeout, self.request.statement_timeout)
            self.claim.check(self.conn)
            return self.db.dialect.delete_page_range(self.conn, self.table, self.where, first, end,
                                                     skip_locked=skip_locked)

    def _batch(self, conn, last):
        dialect, table, keyset = self.db.dialect, self.table, self.keyset
        locator = dialect.row_locator(table)
        columns = [locator.label("loc")]
        if keyset.names != ["loc"]:
            columns += [c.label(n) for c, n in zip(keyset.columns, keyset.names)]
        batch = (
            sa.select(*columns)
            .where(self.where, keyset.after(last) if last is not None else sa.true())
            .order_by(*keyset.order_by)
            .limit(self.batch_size)
        )
        batch = dialect.lock_batch(batch)
        name = self.counted_as
        if not self.has_dependents:
            one = dialect.delete_batch_in_one_statement(conn, table, batch, keyset.names, self.where)
            if one is not None:
                selected, deleted, new_last = one
                if deleted != selected:
                    raise _BatchChanged()
                return selected, new_last, {name: deleted} if deleted else {}, {}
        found = conn.execute(batch).all()
        if not found:
            return 0, None, {}, {}
        locators = [row.loc for row in found]
        keys = [tuple(row[1:]) if keyset.names != ["loc"] else (row.loc,) for row in found]
        new_last = keys[-1] if keyset.sort_key is None else max(keys, key=keyset.sort_key)
        rows, cleared = {}, {}
        if self.has_dependents:
            # The batch's rows are locked: no new child can reference them until we commit.
            reached = cascade.impact(self.metadata, table, dialect.locator_in(table, locators))
            rows, cleared = cascade.count(conn, reached, skip_root=True)
            cascade.clear_links(conn, reached.clearing, dialect.unkept_links(self.metadata))
        deleted = conn.execute(sa.delete(table).where(dialect.locator_in(table, locators), self.where)).rowcount
        if deleted < len(found) or (deleted > len(found) and keyset.unique):
            raise _BatchChanged()
        return deleted, new_last, {name: deleted, **{t: n for t, n in rows.items() if n}}, {t: n for t, n in cleared.items() if n}
