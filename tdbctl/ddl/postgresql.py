from __future__ import annotations

import zlib

from tdbctl.ddl.base import Dialect, ExtensionState

# First key of every tdbctl advisory lock ('td'), so they are easy to spot in pg_locks.
ADVISORY_CLASS_ID = 0x7464


def advisory_key(name: str) -> int:
    return zlib.crc32(f"tdbctl:{name}".encode()) & 0x7FFFFFFF


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


class PostgresDialect(Dialect):
    name = "postgresql"

    def prepare_schemas(self, execute, schemas) -> None:
        for schema in schemas:
            execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def set_lock_timeout(self, execute, seconds: float) -> None:
        execute(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'")

    def missing_prerequisites(self, conn) -> list[str]:
        extensions = self.extensions(conn)
        return [
            f"the server lacks the {package} extension ({name!r}): {fix}"
            for name, (package, fix) in REQUIRED_EXTENSIONS.items()
            if not extensions[name].installed and not extensions[name].available
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

    def open_lock_handle(self, engine):
        # A connection of its own, in autocommit, so the session lock outlives the migration's
        # transactions and never sits inside one.
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def try_lock(self, handle, name: str) -> bool:
        return bool(
            handle.exec_driver_sql(
                "SELECT pg_try_advisory_lock(%(cls)s, %(key)s)",
                {"cls": ADVISORY_CLASS_ID, "key": advisory_key(name)},
            ).scalar()
        )

    def unlock(self, handle, name: str) -> None:
        handle.exec_driver_sql(
            "SELECT pg_advisory_unlock(%(cls)s, %(key)s)",
            {"cls": ADVISORY_CLASS_ID, "key": advisory_key(name)},
        )
