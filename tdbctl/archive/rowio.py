"""Moving rows between tables and batch files: one implementation per dialect.

``rowio_for(dialect)`` picks it; the batch logic never asks which dialect it is on. Both write the
same line format (tdbctl.archive.codec). PostgreSQL's server writes and reads the lines itself
(COPY), which is what makes archiving fast there; SQLite's rows go through Python.
"""

from __future__ import annotations

from typing import Iterable, Protocol

import sqlalchemy as sa

from tdbctl.ops.cascade import CascadeTree, Link

KEYS_TABLE = "tdbctl_archive_keys"


class Sink(Protocol):
    def write(self, data) -> None: ...


class RowIO:
    """What a dialect does to take a batch's rows out, and to put them back."""

    dialect: str
    batch_size = 5000
    """Default root rows per batch: what keeps one batch's transaction around a second."""

    keys_per_transaction = False
    """True: the batch's keys table lives and dies with each batch's transaction (ON COMMIT DROP),
    so that nothing of a batch stays with a server connection a pooler hands on."""

    def prepare(self, conn) -> None:
        """Once per run: what the line format depends on (the server's version)."""

    def begin_batch(self, conn) -> None:
        """The first statements of a batch's transaction (its isolation level, its time zone)."""

    def retryable(self, exc: BaseException) -> bool:
        """``exc`` ended a batch only because of a concurrent change: the batch may run again."""
        return False

    def keys_chosen(self, conn, keys: sa.Table, tree: CascadeTree) -> None:
        """Inside the batch transaction, once the batch's root keys are in ``keys``."""

    def take_rows(self, conn, table: sa.Table, condition, sink: Sink) -> int:
        """Write the rows of ``table`` meeting ``condition`` to ``sink``; returns how many.

        May delete them as it goes, in the open transaction: they are gone only at commit."""
        raise NotImplementedError

    def copy_rows(self, conn, table: sa.Table, sink: Sink) -> int:
        """Write every row of ``table`` (a whole partition) to ``sink``, leaving them in place."""
        raise NotImplementedError

    def take_links(self, conn, link: Link, condition, sink: Sink) -> int:
        """Write key and foreign key of the rows of ``link.child`` meeting ``condition``, locked."""
        raise NotImplementedError

    def finish_delete(self, conn, tree: CascadeTree, where, counts: dict[str, int]) -> None:
        """Delete whatever ``take_rows`` left in place, checking the counts match what was written."""

    def load_lines(self, conn, table: sa.Table, lines: Iterable[bytes]) -> None:
        """Stage one file's lines for the calls below (replaces what was staged before)."""
        raise NotImplementedError

    def staged_keys(self, conn, table: sa.Table) -> list:
        """The primary key values (one column) of the staged lines."""
        raise NotImplementedError

    def insert_staged(self, conn, table: sa.Table) -> int:
        """Insert the staged rows, skipping those whose key is already there; returns rows inserted."""
        raise NotImplementedError

    def missing_staged(self, conn, table: sa.Table) -> int:
        """How many staged rows are not in ``table`` (by primary key)."""
        raise NotImplementedError

    def relink_staged(self, conn, link: Link) -> int:
        """Set ``link``'s columns back on the staged rows still there and still NULL."""
        raise NotImplementedError

    def insert_ignoring(self, table: sa.Table):
        """An INSERT construct that skips rows conflicting with existing ones."""
        raise NotImplementedError


def keys_table(key: sa.Column, time: sa.Column | None, locator_type, *, per_transaction: bool) -> sa.Table:
    """The batch's root keys, their age and row locator, in a temporary table of the connection
    (``per_transaction``: of the transaction)."""
    return sa.Table(KEYS_TABLE, sa.MetaData(),
                    sa.Column("k", key.type, primary_key=True),
                    sa.Column("t", time.type if time is not None else sa.DateTime(timezone=True)),
                    sa.Column("loc", locator_type),
                    prefixes=["TEMPORARY"], **({"postgresql_on_commit": "DROP"} if per_transaction else {}))


def rowio_for(dialect) -> RowIO:
    """``dialect``: the database's (tdbctl.dialects.Dialect)."""
    return dialect.implementation("archive")()
