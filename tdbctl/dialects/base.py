from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


LOCK_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class ExtensionState:
    name: str
    available: bool
    installed_version: str | None

    @property
    def installed(self) -> bool:
        return self.installed_version is not None


@dataclass(frozen=True)
class LocatorKeyset:
    """A walk over a table by row locator: ``after(last)`` is the clause for the rows past
    ``last``, ``order_by`` the ORDER BY (empty when the scan already returns locator order) and
    ``sort_key`` orders locator values the way the database does."""

    column: object
    after: object  # Callable[[value], ColumnElement[bool]]
    order_by: tuple
    sort_key: object  # Callable[[value], Any]
    unique: bool = True
    """False: rows may share a locator value; a batch then takes every row at the values it
    selected (each one the policy's, checked again), so it may delete more rows than it selected."""


class Dialect:
    """What differs between PostgreSQL and SQLite, for every command."""

    name: str
    prefix: str = ""
    """Of the classes that are each command's own part for this dialect: PostgresCollector."""
    partitioned = False
    """Whether the tables declared partitioned (tdbctl.schema.partitioning) are, here."""
    extensions_of_interest = ("vector", "pg_trgm", "pg_stat_statements", "timescaledb")

    PARTS = {
        "stats": "tdbctl.stats.{name}:{prefix}Collector",
        "archive": "tdbctl.archive.rowio_{name}:{prefix}RowIO",
        "backup": "tdbctl.backup.{name}:{prefix}Backup",
        "reindex": "tdbctl.reindex.{name}:{prefix}Reindex",
    }
    """Where each command keeps its part for a dialect (the stats collector, the archive's row
    mover, the backup strategy): found through the dialect, so no command asks which it is on."""

    clustered = False
    """Whether the database is a cluster that places tables on nodes (Citus)."""

    def refined(self, conn) -> "Dialect":
        """The dialect for this very database: a PostgreSQL that is a Citus coordinator is Citus."""
        return self

    def misplaced(self, conn, metadata, schemas) -> list[tuple[str, str]]:
        """(table, what differs) for each table not placed on the cluster as declared."""
        return []

    def cluster(self, conn, metadata, schemas) -> dict | None:
        """The cluster's nodes and how the tables of ``schemas`` are placed; None on one server."""
        return None

    def distribute(self, conn, metadata, schemas) -> list[str]:
        """Place the tables on the cluster as declared; what was done, a line a table."""
        return []

    def with_shard_figures(self, conn, partitions):
        """``partitions`` (tdbctl.partitions.catalog.Partition), with rows and bytes where this
        database keeps them elsewhere than in the table itself (Citus's shards)."""
        return partitions

    def unkept_links(self, metadata) -> set[str]:
        """Foreign keys of the metadata the database does not hold here, by name: their ON DELETE
        is then the deleting command's to do."""
        return set()

    def begin_load(self, conn, tables: list[str]) -> None:
        """First thing in a transaction that loads rows in bulk into ``tables`` (seed --synthetic)."""

    def implementation(self, part: str):
        from importlib import import_module

        module, _, attribute = self.PARTS[part].format(name=self.name, prefix=self.prefix).partition(":")
        try:
            found = getattr(import_module(module), attribute, None)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module is there, something it imports is not: say so
                raise
            found = None
        if found is None:
            raise ValueError(f"tdbctl has no {part} for {self.name}")
        return found

    def partition_tables(self, conn, schemas) -> set[tuple[str, str]]:
        """(schema, name) of the tables that are parts of a partitioned table: its partitions, and
        a plain table whose rows are still moving into it."""
        return set()

    def prepare_schemas(self, execute, schemas) -> None:
        """Make sure each schema exists (PostgreSQL) or is attached (SQLite)."""

    def set_lock_timeout(self, execute, seconds: float) -> None:
        """Bound how long DDL waits for a lock inside the current transaction."""

    def server_version(self, conn) -> str:
        raise NotImplementedError

    def extensions(self, conn) -> dict[str, ExtensionState]:
        return {}

    def existing_objects(self, conn, schemas) -> set[tuple[str, str, str]]:
        """(kind, schema, name) of views, functions, triggers and hypertables in ``schemas``."""
        raise NotImplementedError

    def missing_prerequisites(self, conn, extensions: set[str]) -> list[str]:
        """What the server lacks of ``extensions``, which the migrations to apply create (one
        sentence each, naming the fix)."""
        return []

    def count_rows(self, conn, qualified_table: str) -> int:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {qualified_table}").scalar()

    def reserve_for_write(self, conn, tables) -> None:
        """Take now the write locks a transaction will need for ``tables``, before it reads them.

        PostgreSQL locks rows as statements touch them: nothing to do. SQLite locks whole files.
        """

    @contextmanager
    def run_lock(self, engine, name: str, wait_seconds: float = 0.0) -> Iterator[None]:
        """A lock this process holds for a whole run, on a database that may have no tdbctl tables
        yet (migrate's first run); LockHeld after ``wait_seconds``. Nothing by default: a lock held
        across transactions by a session would stay behind on a pooled server connection."""
        yield

    def transaction_lock(self, conn, name: str, wait_seconds: float = 0.0) -> None:
        """The same lock, taken inside the open transaction and gone with it (polled: a blocking
        wait could deadlock with CREATE INDEX CONCURRENTLY); LockHeld after ``wait_seconds``."""

    def pooler(self, conn, settings) -> str | None:
        """Why the connection looks like it goes through a pooler or proxy; None when it does not
        (or cannot tell)."""
        return None

    # --- Claims (tdbctl/ops/claims.py) --------------------------------------------------------------

    claim_lease_seconds: float | None = None
    """How long a claim lives unless renewed; None: as long as its process."""

    def server_clock(self):
        """An SQL expression for the database's clock, in seconds since the epoch: every host
        compares leases on the one clock."""
        raise NotImplementedError

    def serialize_claims(self, conn, claims, lock_timeout: float) -> None:
        """In the open transaction: keep any other run from taking a claim until it ends."""
        raise NotImplementedError

    # --- Batched deletes (tdbctl cleanup) -------------------------------------------------------

    def row_locator(self, table):
        """The physical address of a row (ctid, rowid): how a batch is deleted exactly as it was
        selected, and the keyset of a table without a primary key."""
        raise NotImplementedError

    def locator_keyset(self, table) -> LocatorKeyset:
        """How to walk a table in batches by its row locator (tables without a primary key)."""
        raise NotImplementedError

    def lock_batch(self, select):
        """The batch SELECT, locking its rows and skipping those others hold."""
        return select.with_for_update(skip_locked=True)

    def lock_rows(self, select, of=None):
        """The SELECT, locking its rows (of the table ``of``) until the transaction ends."""
        return select.with_for_update(of=of)

    def locator_in(self, table, locators: list):
        """A clause matching the rows at these locators."""
        return self.row_locator(table).in_(locators)

    def set_batch_timeouts(self, conn, lock_timeout: float, statement_timeout: float) -> None:
        """Bound the current batch transaction: how long it may wait for a lock, and run. Only
        the transaction: nothing stays on the connection (a pooler hands it on)."""

    def transient_error(self, exc: BaseException) -> str | None:
        """'lock_timeout', 'statement_timeout', 'deadlock' or 'busy' when ``exc`` means "try this
        batch again after a pause"; None for an error that retrying will not cure."""
        return None

    def delete_batch_in_one_statement(self, conn, table, batch, key_names, recheck):
        """Select, lock and delete one batch in a single round trip, when the dialect can.

        ``batch`` is a SELECT of ``loc`` (the row locator) and the key columns ``key_names``,
        ordered and limited. Returns (selected, deleted, last key tuple or None), or None when the
        dialect has no such statement (the caller then selects and deletes in two statements).
        """
        return None

    def page_walk(self, conn, table) -> tuple[int, float | None] | None:
        """(pages the table has now, rows per page by the statistics or None when unknown) when
        the dialect can delete a batch as a range of physical pages (``delete_page_range``);
        None when it cannot (the caller then walks the key)."""
        return None

    def delete_page_range(self, conn, table, where, first: int, end: int, *, skip_locked: bool) -> int:
        """Delete the rows matching ``where`` on pages [first, end); returns how many went.

        skip_locked=False: one plain DELETE, which waits for a row another transaction holds
        (bounded by the transaction's lock_timeout). True: rows another transaction holds are
        left alone, without waiting for them."""
        raise NotImplementedError

    def vacuum(self, engine, tables: list[str]) -> list[str]:
        """Reclaim space and refresh statistics after deleting from ``tables``; returns what ran."""
        return []


    # --- Bulk loading (tdbctl seed --synthetic) ------------------------------------------------

    def bulk_load(self, conn, tables):
        """A context manager preparing the open transaction of ``conn`` to load ``tables`` in
        bulk (row triggers off, the session in UTC); what it changes ends with the transaction."""
        from contextlib import nullcontext

        return nullcontext()

    def insert_new(self, conn, table, rows: list[dict]) -> int:
        """Write ``rows`` (dicts of column values, the same keys each) into ``table``, leaving
        out those whose key the table already holds; returns how many it wrote."""
        raise NotImplementedError

    def user_triggers_off(self, conn, tables):
        """For the caller's transaction: the tables' own triggers do not fire (rows copied as
        they were, not touched again by a trigger); foreign keys are still checked."""
        raise NotImplementedError

    def bulk_insert(self, conn, table, columns, rows) -> None:
        """Write ``rows`` (tuples in ``columns`` order, values as tdbctl/dialects/bulkrows.py says) into
        ``table`` fast."""
        raise NotImplementedError

    def bulk_encoder(self, table, columns):
        """A picklable ``rows -> bytes`` that turns rows into what :meth:`bulk_write` takes, so
        that another process can do that work; None if the dialect writes rows as they are
        (:meth:`bulk_insert`)."""
        return None

    def bulk_write(self, conn, table, columns, data: bytes) -> None:
        """Write rows that ``bulk_encoder(table, columns)`` encoded."""
        raise NotImplementedError

    def bulk_load_workers(self) -> int:
        """How many domains may load at once, each on its own connection and transaction."""
        return 1

    def sync_sequences(self, conn, table) -> None:
        """After rows were written with explicit integer ids: the next generated id follows them."""
