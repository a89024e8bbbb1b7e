"""PostgreSQL: the real pg_dump and pg_restore, driven so that a kill never leaves half a restore.

Backup: tdbctl opens a REPEATABLE READ transaction, exports its snapshot, and hands it to pg_dump
(``--snapshot``); while pg_dump runs, the same snapshot counts the rows for the manifest, so the
counts describe exactly the data in the dump.

Restore: ``pg_restore -f -`` turns the archive into SQL that tdbctl feeds to psql inside one
transaction it opens itself, after dropping the target's tdbctl schemas when replacing them.
COMMIT is sent only once pg_restore has exited cleanly; if anything dies first (pg_restore,
psql, tdbctl itself), psql's input ends without COMMIT and the server rolls everything back.
With ``--jobs`` pg_restore must load through several connections, so there is no single
transaction: the schemas are dropped first and a kill mid-way leaves a partial database, which
a second ``tdbctl restore --force`` replaces.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

from tdbctl.backup import pgtools
from tdbctl.backup.manifest import Manifest, TableCount
from tdbctl.backup.strategy import BackupStrategy, Snapshot, quote_table, tool_tables
from tdbctl.config import Settings
from tdbctl.errors import DatabaseError, UsageError

DUMP_FILE = "database.pgdump"
DUMP_DIR = "database.dir"
ESTIMATE_ABOVE = 5_000_000
"""Tables whose planner estimate exceeds this many rows get the estimate, not a count(*)."""
RESTORE_LOCK = "migrate"
"""Restore holds migrate's lock: a migration must not run against a database being replaced."""
PIPE_CHUNK = 1 << 20


class PostgresBackup(BackupStrategy):
    dialect = "postgresql"

    def identity(self, settings: Settings) -> str:
        url = settings.url
        host = url.host or url.query.get("host") or "localhost"
        if host.startswith("/"):  # a Unix socket directory
            return f"postgresql://[{host}]:{url.port or 5432}/{url.database or ''}"
        return f"postgresql://{host}:{url.port or 5432}/{url.database or ''}"

    def label(self, settings: Settings) -> str:
        from tdbctl.backup.store import safe_label

        return safe_label(settings.url.database or "postgres")

    # -- backup ---------------------------------------------------------------------------------

    def dump(self, settings, workdir, *, jobs, pg_bin, log, meanwhile=lambda: None) -> Snapshot:
        from tdbctl.runtime import scrub, translate_errors

        with translate_errors(settings), _engine(settings.url) as engine, engine.connect() as conn:
            major, version = server_version(conn)
            conn.rollback()
            tools = pgtools.find_tools(major, pg_bin=pg_bin, purpose=f" for this PostgreSQL {major} server")
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
                target, method = (
                    (workdir / DUMP_DIR, ["-Fd", "-j", str(jobs)]) if jobs else (workdir / DUMP_FILE, ["-Fc"])
                )
                args = [tools.program("pg_dump"), *method, "--no-password", f"--snapshot={snapshot_id}", "-f", str(target)]
                log(f"pg_dump {tools.version} ({tools.bin_dir}) {' '.join(method)} -> {target}")
                errors = tempfile.TemporaryFile()
                process = pgtools.spawn(args, pgtools.libpq_environment(settings.url), stdout=subprocess.DEVNULL, stderr=errors)
                try:
                    # Imported, counted and read while pg_dump runs; the counts in the snapshot it dumps.
                    from tdbctl.migrate.commands import current_revision

                    revision = current_revision(conn)
                    tables = self._counts(conn)
                    meanwhile()
                except BaseException:
                    process.kill()
                    process.wait()
                    raise
                code = process.wait()
                if code != 0:
                    errors.seek(0)
                    pgtools.raise_failure("pg_dump", code, errors.read().decode(errors="replace"),
                                          lambda text: scrub(text, settings))
        return Snapshot(version, revision, tables, f"pg_dump {' '.join(method)}", tools.version)

    def _counts(self, conn) -> dict[str, TableCount]:
        import sqlalchemy as sa

        from tdbctl.schema import ALL_SCHEMAS

        tables = tool_tables(sa.inspect(conn), ALL_SCHEMAS)
        estimates = dict(conn.exec_driver_sql(
            "SELECT n.nspname || '.' || c.relname, c.reltuples::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(schemas)s)",
            {"schemas": list(ALL_SCHEMAS)},
        ).all())
        counts = {}
        for table in tables:
            estimate = estimates.get(table, -1)
            if estimate > ESTIMATE_ABOVE:
                counts[table] = TableCount(int(estimate), estimated=True)
            else:
                counts[table] = TableCount(conn.exec_driver_sql(f"SELECT count(*) FROM {quote_table(table)}").scalar())
        return counts

    # -- restore ----------------------------------------------------------------------------------

    def existing_tables(self, settings) -> dict[str, int]:
        import sqlalchemy as sa

        from tdbctl.runtime import translate_errors

        with translate_errors(settings), _engine(settings.url) as engine:
            try:
                conn = engine.connect()
            except sa.exc.OperationalError as exc:
                if "does not exist" in str(exc.orig):
                    return {}  # restore creates it
                raise
            with conn:
                return {table: count.rows for table, count in self._counts(conn).items()}

    def restore(self, backup, manifest, target, *, replace, jobs, pg_bin, log) -> None:
        from tdbctl.ddl import dialect_for
        from tdbctl.runtime import translate_errors

        archive = _archive(backup, manifest)
        with translate_errors(target):
            if not database_exists(target):
                log(f"creating database {target.url.database}")
                create_database(target.url)
            with _engine(target.url) as engine:
                with engine.connect() as conn:
                    major, _ = server_version(conn)
                tools = self._tools(manifest, major, pg_bin)
                env = pgtools.libpq_environment(target.url)
                clean = scrub_with(target)
                with dialect_for("postgresql").exclusive_run(engine, RESTORE_LOCK, 0.0):
                    if jobs:
                        log(f"pg_restore {tools.version} --jobs {jobs} (several connections: not one transaction)")
                        if replace:
                            drop_tool_schemas(engine)
                        pgtools.run([tools.program("pg_restore"), "--no-owner", "--no-password", "--exit-on-error",
                                     "--clean", "--if-exists", "-j", str(jobs), "-d", conninfo_dbname(target.url.database),
                                     str(archive)],
                                    env, "pg_restore", clean)
                    else:
                        log(f"pg_restore {tools.version} | psql, in one transaction")
                        single_transaction_restore(tools, env, archive, replace, clean)

    def _tools(self, manifest: Manifest, server_major: int, pg_bin):
        dumped_with = int((manifest.tool_version or "0").split(".")[0])
        needed = max(server_major, dumped_with)
        return pgtools.find_tools(needed, pg_bin=pg_bin, purpose=f" (the backup was made by pg_dump "
                                  f"{manifest.tool_version}; the server is PostgreSQL {server_major})")

    # -- deep verification --------------------------------------------------------------------------

    def scratch_counts(self, backup, manifest, settings, *, jobs, pg_bin, log) -> dict[str, int]:
        from tdbctl.runtime import translate_errors

        if settings.dialect != "postgresql":
            raise UsageError("verifying a PostgreSQL backup --deep needs a PostgreSQL server to restore it into: "
                             "pass --database-url postgresql://... (a scratch database is created there and dropped)")
        archive = _archive(backup, manifest)
        scratch = f"tdbctl_verify_{uuid.uuid4().hex[:12]}"
        with translate_errors(settings):
            with _engine(settings.url) as engine, engine.connect() as conn:
                major, _ = server_version(conn)
            tools = self._tools(manifest, major, pg_bin)
            # CREATE/DROP DATABASE run from the configured database, which surely exists.
            admin = settings.url
            log(f"restoring into scratch database {scratch}")
            _execute_autocommit(admin, f'CREATE DATABASE "{scratch}"')
            try:
                scratch_url = settings.url.set(database=scratch)
                args = [tools.program("pg_restore"), "--no-owner", "--no-password", "--exit-on-error",
                        "-d", conninfo_dbname(scratch), str(archive)]
                if jobs:
                    args[1:1] = ["-j", str(jobs)]
                pgtools.run(args, pgtools.libpq_environment(scratch_url), "pg_restore into the scratch database",
                            scrub_with(settings))
                with _engine(scratch_url) as engine, engine.connect() as conn:
                    import sqlalchemy as sa

                    from tdbctl.schema import ALL_SCHEMAS

                    present = set(tool_tables(sa.inspect(conn), ALL_SCHEMAS))
                    return {t: conn.exec_driver_sql(f"SELECT count(*) FROM {quote_table(t)}").scalar()
                            for t in manifest.tables if t in present}
            finally:
                _execute_autocommit(admin, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def single_transaction_restore(tools, env, archive: Path, replace: bool, scrub) -> None:
    """pg_restore's SQL through psql, in a transaction that commits only if pg_restore succeeded."""
    from tdbctl.schema import ALL_SCHEMAS

    restore_errors, psql_errors = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    psql = pgtools.spawn(
        [tools.program("psql"), "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_errors,
    )
    restore_args = [tools.program("pg_restore"), "--no-owner", "-f", "-"]
    if replace:
        # Objects outside tdbctl's schemas that the dump also holds (its extensions) are replaced too.
        restore_args += ["--clean", "--if-exists"]
    restore = pgtools.spawn([*restore_args, str(archive)], env, stdout=subprocess.PIPE, stderr=restore_errors)
    prologue = ["SET client_min_messages = warning;", "BEGIN;"]
    if replace:
        prologue += [f'DROP SCHEMA IF EXISTS "{schema}" CASCADE;' for schema in ALL_SCHEMAS]
    psql_gone = False
    try:
        psql.stdin.write(("\n".join(prologue) + "\n").encode())
        while chunk := restore.stdout.read1(PIPE_CHUNK):
            psql.stdin.write(chunk)
    except BrokenPipeError:
        psql_gone = True  # psql stopped at an error; its stderr says which
        restore.kill()
    restore_code = restore.wait()
    try:
        if restore_code == 0 and not psql_gone:
            psql.stdin.write(b"COMMIT;\n")
        psql.stdin.close()
    except BrokenPipeError:
        pass
    psql_code = psql.wait()
    if psql_code != 0:
        psql_errors.seek(0)
        pgtools.raise_failure("restore (psql, rolled back)", psql_code, psql_errors.read().decode(errors="replace"), scrub)
    if restore_code != 0:
        restore_errors.seek(0)
        pgtools.raise_failure("pg_restore (rolled back)", restore_code, restore_errors.read().decode(errors="replace"), scrub)


def drop_tool_schemas(engine) -> None:
    from tdbctl.schema import ALL_SCHEMAS

    with engine.begin() as conn:
        for schema in ALL_SCHEMAS:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def server_version(conn) -> tuple[int, str]:
    number = int(conn.exec_driver_sql("SHOW server_version_num").scalar())
    return number // 10000, conn.exec_driver_sql("SHOW server_version").scalar().split()[0]


def database_exists(settings) -> bool:
    import sqlalchemy.exc as sa_exc

    try:
        _execute_autocommit(settings.url, "SELECT 1")
    except sa_exc.OperationalError as exc:
        if "does not exist" in str(exc.orig):
            return False
        raise
    return True


def create_database(url) -> None:
    """CREATE DATABASE from a maintenance database, as createdb does (postgres, else template1)."""
    import sqlalchemy.exc as sa_exc

    try:
        _execute_autocommit(url.set(database="postgres"), f'CREATE DATABASE "{url.database}"')
    except sa_exc.OperationalError as exc:
        if "does not exist" not in str(exc.orig):
            raise
        _execute_autocommit(url.set(database="template1"), f'CREATE DATABASE "{url.database}"')


def conninfo_dbname(name: str) -> str:
    """A database name for -d that libpq cannot mistake for a connection string (name with '=')."""
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{escaped}'"


def scrub_with(settings):
    from tdbctl.runtime import scrub

    return lambda text: scrub(text, settings)


def _archive(backup: Path, manifest: Manifest) -> Path:
    for candidate in (backup / DUMP_FILE, backup / DUMP_DIR):
        if candidate.exists():
            return candidate
    raise DatabaseError(f"{backup}: neither {DUMP_FILE} nor {DUMP_DIR}: not a PostgreSQL backup")


def _execute_autocommit(url, sql: str, params=None):
    with _engine(url, isolation_level="AUTOCOMMIT") as engine, engine.connect() as conn:
        result = conn.exec_driver_sql(sql, params or {})
        return result.all() if result.returns_rows else None


@contextmanager
def _engine(url, **options):
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, **options)
    try:
        yield engine
    finally:
        engine.dispose()
