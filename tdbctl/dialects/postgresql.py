from __future__ import annotations

import zlib
from contextlib import contextmanager

from tdbctl.dialects.base import Dialect, ExtensionState

# First key of every tdbctl advisory lock ('td'), so they are easy to spot in pg_locks.
ADVISORY_CLASS_ID = 0x7464


def advisory_key(name: str) -> int:
    return zlib.crc32(f"tdbctl:{name}".encode()) & 0x7FFFFFFF


def sql_literal(text: str) -> str:
    """``text`` as a string literal, the way PostgreSQL's quote_literal writes it: right whether
    standard_conforming_strings is on or off, for SQL that takes no parameters (DDL, psql input)."""
    quoted = text.replace("'", "''")
    return "E'" + quoted.replace("\\", "\\\\") + "'" if "\\" in text else "'" + quoted + "'"


# Extensions the migrations create, with the fix to name when the server cannot provide one.
REQUIRED_EXTENSIONS = {
    "vector": (
        "pgvector",
        "install pgvector on the server (Debian/Ubuntu: apt install postgresql-<major>-pgvector; "
        "see github.com/pgvector/pgvector), then run tdbctl migrate again",
    ),
    "pg_trgm": (
        "pg_trgm",
        "install the PostgreSQL contrib package for your server (postgresql-contrib), then run tdbctl migrate again",
    ),
}


# --- Batched deletes (tdbctl cleanup) -------------------------------------------------------------

# SQLSTATEs after which a cleanup batch is rolled back and tried again after a pause.
TRANSIENT_SQLSTATES = {
    "55P03": "lock_timeout",  # lock_not_available
    "57014": "statement_timeout",  # query_canceled
    "40P01": "deadlock",
    "40001": "serialization",
}

_TID_TYPE = None


def tid_type():
    """SQLAlchemy has no type for ctid's tid; made on first use, so that importing stays light."""
    global _TID_TYPE
    if _TID_TYPE is None:
        import sqlalchemy as sa

        class TID(sa.types.UserDefinedType):
            cache_ok = True

            def get_col_spec(self, **kw):
                return "TID"

        _TID_TYPE = TID
    return _TID_TYPE()


def tid_sort_key(value: str) -> tuple[int, int]:
    """'(12,3)' -> (12, 3): the order PostgreSQL gives tids."""
    block, offset = value.strip("()").split(",")
    return int(block), int(offset)


class PostgresDialect(Dialect):
    name = "postgresql"
    prefix = "Postgres"
    partitioned = True

    def refined(self, conn):
        from tdbctl.dialects import dialect_for

        citus = conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'citus'").first()
        return dialect_for("citus") if citus else self

    def partition_tables(self, conn, schemas) -> set[tuple[str, str]]:
        from tdbctl.partitions.catalog import partition_tables
        from tdbctl.partitions.convert import pending

        moving = {tuple(c.old_table.split(".", 1)) for c in pending(conn)}
        return partition_tables(conn, schemas) | moving

    def prepare_schemas(self, execute, schemas) -> None:
        for schema in schemas:
            execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def set_lock_timeout(self, execute, seconds: float) -> None:
        execute(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'")

    def missing_prerequisites(self, conn, extensions: set[str]) -> list[str]:
        found = self.extensions(conn)
        return [
            f"the server lacks the {package} extension ({name!r}): {fix}"
            for name, (package, fix) in REQUIRED_EXTENSIONS.items()
            if name in extensions and not found[name].installed and not found[name].available
        ]

    def server_version(self, conn) -> str:
        return conn.exec_driver_sql("SHOW server_version").scalar()

    def extensions(self, conn) -> dict[str, ExtensionState]:
        rows = conn.exec_driver_sql(
            "SELECT a.name, e.extversion FROM pg_available_extensions a "
            "LEFT JOIN pg_extension e ON e.extname = a.name WHERE a.name = ANY(%(names)s)",
            {"names": list(self.extensions_of_interest)},
        ).all()
        found = {name: ExtensionState(name, True, version) for name, version in rows}
        return {n: found.get(n, ExtensionState(n, False, None)) for n in self.extensions_of_interest}

    def existing_objects(self, conn, schemas) -> set[tuple[str, str, str]]:
        params = {"schemas": list(schemas)}
        rows = conn.exec_driver_sql(
            """
            SELECT 'view', n.nspname, c.relname FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY(%(schemas)s)
            UNION ALL
            SELECT 'function', n.nspname, p.proname FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = ANY(%(schemas)s)
            UNION ALL
            SELECT 'trigger', n.nspname, t.tgname FROM pg_trigger t
              JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT t.tgisinternal AND n.nspname = ANY(%(schemas)s)
            """,
            params,
        ).all()
        found = {tuple(r) for r in rows}
        has_timescale = conn.exec_driver_sql(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
        ).first()
        if has_timescale:
            hypertables = conn.exec_driver_sql(
                "SELECT 'hypertable', hypertable_schema, hypertable_name "
                "FROM timescaledb_information.hypertables WHERE hypertable_schema = ANY(%(schemas)s)",
                params,
            ).all()
            found |= {tuple(r) for r in hypertables}
        return found

    def transaction_lock(self, conn, name: str, wait_seconds: float = 0.0) -> None:
        import time

        from tdbctl.dialects.base import LOCK_POLL_SECONDS
        from tdbctl.errors import LockHeld

        deadline = time.monotonic() + wait_seconds
        while not conn.exec_driver_sql("SELECT pg_try_advisory_xact_lock(%(cls)s, %(key)s)",
                                       {"cls": ADVISORY_CLASS_ID, "key": advisory_key(name)}).scalar():
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait_seconds:g}s" if wait_seconds else ""
                raise LockHeld(f"another tdbctl {name} is running on this database{waited}")
            time.sleep(LOCK_POLL_SECONDS)

    def pooler(self, conn, settings) -> str | None:
        from tdbctl.ops import libpq

        asked = libpq.params(settings).get("port") or "5432"
        served = conn.exec_driver_sql("SELECT current_setting('port')").scalar()
        conn.rollback()
        if asked.split(",")[0] != served:
            return f"port {asked} answered for the server's port {served}"
        return None

    # --- Claims ------------------------------------------------------------------------------------

    claim_lease_seconds = 30.0

    def server_clock(self):
        import sqlalchemy as sa

        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Float(53))

    def serialize_claims(self, conn, claims, lock_timeout: float) -> None:
        # A transaction-level advisory lock: gone at COMMIT, so nothing stays behind on a pooled
        # server connection.
        self.set_lock_timeout(conn.exec_driver_sql, lock_timeout)
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(cls)s, %(key)s)",
                             {"cls": ADVISORY_CLASS_ID, "key": advisory_key("claims")})

    # --- Batched deletes (tdbctl cleanup) ---------------------------------------------------------

    def row_locator(self, table):
        import sqlalchemy as sa

        return sa.sql.column("ctid", tid_type(), _selectable=table)

    def locator_keyset(self, table):
        import sqlalchemy as sa

        from tdbctl.dialects.base import LocatorKeyset

        ctid = self.row_locator(table)
        # No ORDER BY: "ORDER BY ctid" sorts every remaining row for each batch, while "ctid > last"
        # alone is a TID range scan returning rows in ctid order as it goes. Were a plan to return
        # them otherwise, the caller's next pass from the start picks up what a batch stepped
        # over: the walk may skip a row, never delete a wrong one.
        return LocatorKeyset(
            column=ctid,
            after=lambda last: ctid > sa.cast(sa.literal(last, sa.Text()), tid_type()),
            order_by=(),
            sort_key=tid_sort_key,
        )

    def locator_in(self, table, locators):
        import sqlalchemy as sa
        from sqlalchemy.dialects.postgresql import ARRAY

        # One array parameter and a TID scan, whatever the batch size.
        array = sa.cast(sa.literal(list(locators), ARRAY(sa.Text())), ARRAY(tid_type()))
        return self.row_locator(table) == sa.any_(array)

    def set_batch_timeouts(self, conn, lock_timeout: float, statement_timeout: float) -> None:
        # One round trip for the three (set_config(..., true) is SET LOCAL). A batch lost in a
        # crash is deleted again by the next run: it need not wait for its WAL flush, which
        # would compete with the live writers' commits.
        conn.exec_driver_sql(
            "SELECT set_config('lock_timeout', %(lock)s, true), set_config('statement_timeout', %(statement)s, true), "
            "set_config('synchronous_commit', 'off', true)",
            {"lock": f"{max(1, int(lock_timeout * 1000))}ms", "statement": f"{max(1, int(statement_timeout * 1000))}ms"},
        )

    def transient_error(self, exc: BaseException) -> str | None:
        orig = getattr(exc, "orig", exc)
        return TRANSIENT_SQLSTATES.get(getattr(orig, "sqlstate", None) or "")

    def delete_batch_in_one_statement(self, conn, table, batch, key_names, recheck):
        import sqlalchemy as sa

        # One round trip: lock the batch (FOR UPDATE SKIP LOCKED, in ``batch``), delete exactly
        # the rows locked (by ctid: a TID scan, no second index search), return both counts and
        # the key the next batch starts after.
        locked = batch.cte("batch").prefix_with("MATERIALIZED")
        gone = (
            sa.delete(table)
            .where(self.row_locator(table).in_(sa.select(locked.c.loc)), recheck)
            .returning(sa.literal_column("1").label("one"))
            .cte("gone")
        )
        keys = [locked.c[name] for name in key_names]
        last = sa.select(*keys).order_by(*(k.desc() for k in keys)).limit(1).subquery("last")
        row = conn.execute(
            sa.select(
                sa.select(sa.func.count()).select_from(locked).scalar_subquery().label("selected"),
                sa.select(sa.func.count()).select_from(gone).scalar_subquery().label("deleted"),
                *(sa.select(last.c[n]).scalar_subquery().label(f"last_{i}") for i, n in enumerate(key_names)),
            )
        ).one()
        selected, deleted = row[0], row[1]
        return selected, deleted, (tuple(row[2:]) if selected else None)

    def page_walk(self, conn, table) -> tuple[int, float | None] | None:
        if int(conn.exec_driver_sql("SHOW server_version_num").scalar()) < 140000:
            return None  # no TID Range Scan: each range would read the whole table
        pages, per_page = conn.exec_driver_sql(
            "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, "
            "CASE WHEN c.relpages > 0 AND c.reltuples >= 0 THEN c.reltuples / c.relpages END "
            "FROM pg_class c WHERE c.oid = %(t)s::regclass",
            {"t": f'"{table.schema}"."{table.name}"'},
        ).one()
        return int(pages), (float(per_page) if per_page is not None else None)

    def delete_page_range(self, conn, table, where, first: int, end: int, *, skip_locked: bool) -> int:
        import sqlalchemy as sa

        # A TID Range Scan (PostgreSQL 14+) reads just these pages, in order, as a plain DELETE's
        # sequential scan would; ``where`` is the policy's whole condition, so exactly its rows go.
        ctid = self.row_locator(table)
        pages = sa.and_(ctid >= sa.cast(sa.literal(f"({first},0)", sa.Text()), tid_type()),
                        ctid < sa.cast(sa.literal(f"({end},0)", sa.Text()), tid_type()))
        if not skip_locked:
            return conn.execute(sa.delete(table).where(pages, where)).rowcount
        # Lock first, skipping rows others hold, then delete exactly the rows locked (a TID scan
        # of an array, cheaper than a join to a CTE); ``where`` is checked again on each.
        locked = sa.select(ctid).where(pages, where).with_for_update(skip_locked=True)
        return conn.execute(sa.delete(table).where(ctid == sa.any_(sa.func.array(locked.scalar_subquery())), where)).rowcount

    def vacuum(self, engine, tables: list[str]) -> list[str]:
        preparer = engine.dialect.identifier_preparer
        done = []
        # VACUUM cannot run inside a transaction block. It takes a SHARE UPDATE EXCLUSIVE lock:
        # writers carry on meanwhile. SKIP_LOCKED (12+): a table autovacuum is already vacuuming
        # is left to it, rather than waited for.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            skip = ", SKIP_LOCKED" if conn.dialect.server_version_info >= (12,) else ""
            for name in tables:
                schema, table = name.split(".", 1)
                statement = f"VACUUM (ANALYZE{skip}) {preparer.quote_schema(schema)}.{preparer.quote(table)}"
                conn.exec_driver_sql(statement)
                done.append(statement)
        return done

    # --- Bulk loading (tdbctl seed --synthetic) -----------------------------------------------

    @contextmanager
    def bulk_load(self, conn, tables):
        from tdbctl.ddl import deferred_indexes

        deferred = [index for table in tables for index in deferred_indexes.drop_for_load(conn, table)]
        with self._triggers_off(conn, tables):
            yield
        deferred_indexes.rebuild(conn, deferred)

    @contextmanager
    def _triggers_off(self, conn, tables):
        if conn.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar():
            # pg_restore --disable-triggers' way, for this transaction only: no per-row foreign key
            # checks or user triggers. The generator only writes keys it made or read under FOR
            # KEY SHARE, and the tests check every foreign key afterwards.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            yield
            return
        with self.user_triggers_off(conn, tables):
            yield

    @contextmanager
    def user_triggers_off(self, conn, tables):
        # The owner's way: user triggers off (ALTER TABLE is transactional: a failed or killed
        # load leaves them on), foreign keys still checked.
        names = [f'"{t.schema}"."{t.name}"' for t in tables]
        triggered = [
            name for name in names
            if conn.exec_driver_sql(
                "SELECT 1 FROM pg_trigger WHERE tgrelid = %(t)s::regclass AND NOT tgisinternal", {"t": name}
            ).first()
        ]
        for name in triggered:
            conn.exec_driver_sql(f"ALTER TABLE {name} DISABLE TRIGGER USER")
        yield
        for name in triggered:
            conn.exec_driver_sql(f"ALTER TABLE {name} ENABLE TRIGGER USER")

    def insert_new(self, conn, table, rows: list[dict]) -> int:
        # COPY into a staging table of the transaction, then one INSERT ... SELECT that skips
        # taken keys: COPY's speed with ON CONFLICT's semantics (and the target's checks).
        if not rows:
            return 0
        names = list(rows[0])
        adapt = [_copy_adapter(table.c[n]) for n in names]

        def fill(copy) -> None:
            for row in rows:
                copy.write_row([a(row[n]) if a else row[n] for a, n in zip(adapt, names)])

        return _insert_staged(conn, table, names, fill)

    def insert_new_copied(self, conn, table, names: list[str], data: bytes, count: int) -> int:
        """insert_new for ``count`` rows already in COPY's text format (another server's COPY ...
        TO STDOUT): straight into the table; through the staging table when a key is taken."""
        import psycopg

        if not data:
            return 0
        quoted = ", ".join(f'"{n}"' for n in names)
        statement = f'COPY "{table.schema}"."{table.name}" ({quoted}) FROM STDIN'
        try:
            with conn.begin_nested():
                with conn.connection.driver_connection.cursor() as cursor:
                    with cursor.copy(statement) as copy:
                        copy.write(data)
                return count
        except psycopg.errors.UniqueViolation:
            pass  # a key the table holds: the staging table's INSERT leaves those rows out
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            raise _as_sqlalchemy(exc, statement) from exc
        return _insert_staged(conn, table, names, lambda copy: copy.write(data))

    def bulk_insert(self, conn, table, columns, rows) -> None:
        self.bulk_write(conn, table, columns, self.bulk_encoder(table, columns)(rows) if rows else b"")

    def bulk_encoder(self, table, columns):
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

        from tdbctl.dialects.copybinary import CopyBinary

        return CopyBinary.for_table(table, columns, PGDialect_psycopg())

    def bulk_write(self, conn, table, columns, data: bytes) -> None:
        if not data:
            return
        with _copy_in(conn, table, columns) as copy:
            copy.write(data)

    def bulk_load_workers(self) -> int:
        # Every domain at once: rows are generated in child processes (seed/synthetic/producer.py)
        # and this process only streams them, so four backends and their generators keep both
        # cores of a small machine busy up to the end (with two, the last domain ran alone:
        # 8.7 s against 8.3 s for 842k rows). SQLite keeps 1 (one writer at a time).
        return 4

    def sync_sequences(self, conn, table) -> None:
        column = table.autoincrement_column
        if column is None:
            return
        qualified = f'"{table.schema}"."{table.name}"'
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence(%(t)s, %(c)s), max_id) "
            f'FROM (SELECT max("{column.name}") AS max_id FROM {qualified}) m WHERE max_id IS NOT NULL',
            {"t": qualified, "c": column.name},
        )


STAGE = "tdbctl_insert_stage"


def _as_sqlalchemy(exc, statement: str):
    """A psycopg error met on the driver's own cursor (COPY), as SQLAlchemy raises it elsewhere."""
    import psycopg
    import sqlalchemy.exc as sa_exc

    kind = sa_exc.IntegrityError if isinstance(exc, psycopg.errors.IntegrityError) else sa_exc.DataError
    return kind(statement, None, exc)


def _insert_staged(conn, table, names: list[str], fill) -> int:
    import psycopg

    quoted = ", ".join(f'"{n}"' for n in names)
    qualified = f'"{table.schema}"."{table.name}"'
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{STAGE}")
    conn.exec_driver_sql(f"CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS SELECT {quoted} FROM {qualified} WITH NO DATA")
    statement = f"COPY pg_temp.{STAGE} ({quoted}) FROM STDIN"
    try:
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(statement) as copy:
                fill(copy)
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise _as_sqlalchemy(exc, statement) from exc
    written = conn.exec_driver_sql(
        f"INSERT INTO {qualified} ({quoted}) SELECT {quoted} FROM pg_temp.{STAGE} ON CONFLICT DO NOTHING").rowcount
    conn.exec_driver_sql(f"DROP TABLE pg_temp.{STAGE}")
    return written


def _copy_adapter(column):
    """How a Python value of ``column`` goes into COPY: JSON wrapped as JSON (psycopg would take
    a list for an array), a vector as pgvector's text; None when psycopg's own dumper does."""
    import json

    import sqlalchemy as sa
    from psycopg.types.json import Jsonb
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    kind = column.type.dialect_impl(PGDialect_psycopg())
    if "vector" in type(kind).__module__:
        return lambda v: v if v is None or isinstance(v, str) else json.dumps([float(x) for x in v])
    if type(kind).__name__ in ("JSON", "JSONB") or isinstance(kind, sa.JSON):
        return lambda v: None if v is None else Jsonb(v)
    return None


@contextmanager
def _copy_in(conn, table, columns):
    """psycopg's binary COPY ... FROM STDIN into ``columns`` of ``table``, on the connection's driver."""
    names = ", ".join(f'"{c}"' for c in columns)
    with conn.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f'COPY "{table.schema}"."{table.name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
            yield copy
