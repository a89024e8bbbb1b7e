"""PostgreSQL: the real pg_dump and pg_restore, driven so that a kill never leaves half a restore.

Backup: tdbctl opens a REPEATABLE READ transaction, exports its snapshot, and hands it to pg_dump
(``--snapshot``); while pg_dump runs, the same snapshot counts the rows for the manifest, so the
counts describe exactly the data in the dump. Connections are psycopg's alone (tdbctl.ops.libpq):
pg_dump starts before SQLAlchemy is imported, and the rest of the backup overlaps the dump.

Restore: ``pg_restore -f -`` writes the archive as SQL straight into psql's input, a pipe that
tdbctl holds open too: tdbctl writes BEGIN (and, when replacing, the DROP SCHEMAs) before
pg_restore starts, and COMMIT only once pg_restore has exited cleanly. If anything dies first
(pg_restore, psql, tdbctl itself), psql's input ends without COMMIT and the server rolls
everything back.
With ``--jobs`` pg_restore must load through several connections, so there is no single
transaction: the schemas are dropped first and a kill mid-way leaves a partial database, which
a second ``tdbctl restore --force`` replaces.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

from tdbctl.backup import pgtools
from tdbctl.backup.manifest import Manifest, TableCount
from tdbctl.backup.psql_session import NotConnected, PsqlSession
from tdbctl.backup.strategy import BackupStrategy, Snapshot, quote_table
from tdbctl.config import Settings
from tdbctl.dialects.postgresql import sql_literal
from tdbctl.errors import DatabaseError, LockHeld, UsageError
from tdbctl.ops import libpq
from tdbctl.schemas import ALL_SCHEMAS, TOOL_SCHEMA, VERSION_TABLE

DUMP_FILE = "database.pgdump"
DUMP_DIR = "database.dir"
ESTIMATE_ABOVE = 5_000_000
"""Tables whose planner estimate exceeds this many rows get the estimate, not a count(*)."""
WITHOUT_DATA = (f"{TOOL_SCHEMA}.claims",)
"""Tables dumped without their rows: the claims of runs going on at the time mean nothing in a
restored copy (and a restore checks the target against the counts, which say 0 for them)."""
RESTORE_LOCK = "migrate"
"""Restore holds migrate's lock: a migration must not run against a database being replaced."""


class PostgresBackup(BackupStrategy):
    dialect = "postgresql"

    def identity(self, settings: Settings) -> str:
        found = libpq.params(settings)
        host = found.get("host") or "localhost"
        port = found.get("port") or 5432
        if host.startswith("/"):  # a Unix socket directory
            return f"postgresql://[{host}]:{port}/{found.get('dbname', '')}"
        return f"postgresql://{host}:{port}/{found.get('dbname', '')}"

    def label(self, settings: Settings) -> str:
        from tdbctl.backup.store import safe_label

        return safe_label(libpq.dbname_of(settings) or "postgres")

    # -- backup ---------------------------------------------------------------------------------

    def dump(self, settings, workdir, *, jobs, pg_bin, log, meanwhile=lambda: None) -> Snapshot:
        # The snapshot is held through psql, not psycopg, whose import took 0.2 s before pg_dump could start.
        uri, env = libpq.client_uri(settings)
        with pgtools.ToolSearch(pg_bin) as search:
            psql = search.newest()
            if psql is None:  # no client programs: psycopg asks the server which ones the message names
                with libpq.connect(settings, autocommit=True) as conn:
                    major, _ = server_version(conn)
                psql = search.result(major, purpose=_for_server(major))  # finds none: raises, saying so
            try:
                with PsqlSession(psql.program("psql"), uri, env, scrub_with(settings), settings.masked_url) as conn:
                    return self._dump(conn, search, uri, env, settings, workdir, jobs, log, meanwhile)
            except NotConnected:
                # Why, in the words every other command uses (a URL libpq cannot read is a usage error).
                with libpq.connect(settings, autocommit=True):
                    pass
                raise

    def _dump(self, conn, search, uri, env, settings, workdir, jobs, log, meanwhile) -> Snapshot:
        """pg_dump from a snapshot exported on ``conn``; the counts and ``meanwhile`` run in it meanwhile."""
        major, version = server_version(conn)
        tools = search.result(major, purpose=_for_server(major))
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        target, method = (workdir / DUMP_DIR, ["-Fd", "-j", str(jobs)]) if jobs else (workdir / DUMP_FILE, ["-Fc"])
        args = [tools.program("pg_dump"), *method, "--no-password", f"--snapshot={snapshot_id}",
                *(f"--exclude-table-data={table}" for table in WITHOUT_DATA), "-f", str(target),
                "-d", uri]
        log(f"pg_dump {tools.version} ({tools.bin_dir}) {' '.join(method)} -> {target}")
        found = {}

        def in_the_snapshot() -> None:  # counted and read while pg_dump runs, in the snapshot it dumps
            found.update(revision=_revision(conn), tables=_counts(conn))
            meanwhile()

        pgtools.run(args, env, "pg_dump", scrub_with(settings), in_the_snapshot)
        conn.execute("COMMIT")
        return Snapshot(version, found["revision"], found["tables"], f"pg_dump {' '.join(method)}", tools.version)

    # -- restore ----------------------------------------------------------------------------------

    def existing_tables(self, settings) -> dict[str, int]:
        try:
            with libpq.connect(settings, autocommit=True) as conn:
                return {table: count.rows for table, count in _counts(conn).items()}
        except libpq.MissingDatabase:
            return {}  # restore creates it

    def restored(self, settings) -> tuple[str | None, dict[str, int]]:
        with libpq.connect(settings, autocommit=True) as conn:
            return _revision(conn), {table: count.rows for table, count in _counts(conn).items()}

    def restore(self, backup, manifest, target, *, replace, jobs, pg_bin, log, meanwhile=lambda: None) -> None:
        archive = _archive(backup, manifest)
        with pgtools.ToolSearch(pg_bin) as search:
            # Everything that can refuse is asked before anything is created.
            major = _target_major(target)
            dumped_on = int((manifest.server_version or "0").split(".")[0])
            if major < dumped_on:
                raise UsageError(f"the backup comes from PostgreSQL {dumped_on}, the target server runs {major}: "
                                 "restore it into a server of the same or a newer major version; nothing was changed")
            tools = self._tools(manifest, major, search)
            created = _ensure_database(target, log)
            try:
                with libpq.connect(target, autocommit=True) as conn, held(conn, RESTORE_LOCK), \
                        _schema_claim(conn):
                    self._restore(archive, target, conn, tools, replace, jobs, log, meanwhile)
            except BaseException:
                if created:  # a failed restore leaves no database behind that it made
                    _drop_database(target, log)
                raise

    def _restore(self, archive, target, conn, tools, replace, jobs, log, meanwhile) -> None:
        """pg_restore --jobs straight into the target, or piped into psql as one transaction."""
        env = libpq.environment(target)
        clean = scrub_with(target)
        with tempfile.TemporaryDirectory(prefix="tdbctl-restore-") as scratch:
            listed = _without_present_extensions(tools, env, archive, conn, Path(scratch), log)
            if jobs:
                log(f"pg_restore {tools.version} --jobs {jobs} (several connections: not one transaction)")
                if replace:
                    drop_tool_schemas(conn)
                pgtools.run([tools.program("pg_restore"), "--no-owner", "--no-password", "--exit-on-error",
                             "--clean", "--if-exists", "-j", str(jobs), *listed,
                             "-d", conninfo_dbname(libpq.params(target)["dbname"]), str(archive)],
                            env, "pg_restore", clean, meanwhile)
            else:
                log(f"pg_restore {tools.version} | psql, in one transaction")
                single_transaction_restore(tools, env, archive, replace, clean, meanwhile, listed)

    def _tools(self, manifest: Manifest, server_major: int, search: pgtools.ToolSearch) -> pgtools.PgTools:
        dumped_with = int((manifest.tool_version or "0").split(".")[0])
        needed = max(server_major, dumped_with)
        return search.result(needed, purpose=f" (the backup was made by pg_dump "
                             f"{manifest.tool_version}; the server is PostgreSQL {server_major})")

    # -- deep verification --------------------------------------------------------------------------

    def scratch_counts(self, backup, manifest, settings, *, jobs, pg_bin, log, scratch=None) -> dict[str, int]:
        if scratch is not None:
            return self._counts_in(backup, manifest, scratch, jobs=jobs, pg_bin=pg_bin, log=log)
        if settings.dialect != "postgresql":
            raise UsageError("verifying a PostgreSQL backup --deep needs a PostgreSQL server to restore it into: "
                             "pass --database-url postgresql://... (a scratch database is created there and dropped)")
        archive = _archive(backup, manifest)
        # CREATE/DROP DATABASE run from the configured database, which surely exists.
        with pgtools.ToolSearch(pg_bin) as search, libpq.connect(settings, autocommit=True) as admin:
            major, _ = server_version(admin)
            tools = self._tools(manifest, major, search)
            scratch = _claim_scratch(admin, log)
            log(f"restoring into scratch database {scratch}")
            admin.execute(f'CREATE DATABASE "{scratch}"')
            try:
                args = [tools.program("pg_restore"), "--no-owner", "--no-password", "--exit-on-error",
                        "-d", conninfo_dbname(scratch), str(archive)]
                if jobs:
                    args[1:1] = ["-j", str(jobs)]
                pgtools.run(args, libpq.environment(settings, database=scratch), "pg_restore into the scratch database",
                            scrub_with(settings))
                with libpq.connect(settings, database=scratch, autocommit=True) as conn:
                    present = set(_tables(conn))
                    return {t: int(conn.execute(f"SELECT count(*) FROM {quote_table(t)}").fetchone()[0])
                            for t in manifest.tables if t in present}
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


    def _counts_in(self, backup, manifest, scratch: Settings, *, jobs, pg_bin, log) -> dict[str, int]:
        """Restore into an empty database someone else created (--scratch-url: no CREATEDB
        needed), count, and leave it empty again."""
        archive = _archive(backup, manifest)
        with pgtools.ToolSearch(pg_bin) as search, libpq.connect(scratch, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid "
                "AND d.deptype = 'e')").fetchone()[0]
            if int(tables):
                raise UsageError(f"--scratch-url {scratch.masked_url} is not empty ({tables} tables): give an empty "
                                 "database for the scratch restore; nothing was changed")
            major, _ = server_version(conn)
            tools = self._tools(manifest, major, search)
            env = libpq.environment(scratch)
            log(f"restoring into the scratch database {scratch.masked_url}")
            with tempfile.TemporaryDirectory(prefix="tdbctl-verify-") as work:
                listed = _without_present_extensions(tools, env, archive, conn, Path(work), log)
                args = [tools.program("pg_restore"), "--no-owner", "--no-password", "--exit-on-error", *listed,
                        *(["-j", str(jobs)] if jobs else []),
                        "-d", conninfo_dbname(libpq.params(scratch)["dbname"]), str(archive)]
                try:
                    pgtools.run(args, env, "pg_restore into the scratch database", scrub_with(scratch))
                    present = set(_tables(conn))
                    return {t: int(conn.execute(f"SELECT count(*) FROM {quote_table(t)}").fetchone()[0])
                            for t in manifest.tables if t in present}
                finally:
                    drop_tool_schemas(conn)


SCRATCH_PREFIX = "tdbctl_verify_"
_SCRATCH_LOCK = 0x74646276
"""Advisory lock class ('tdbv') a deep verify holds, for its scratch database, while it lives."""


def _claim_scratch(admin, log) -> str:
    """A new scratch database name, locked for this verify, after dropping those a killed verify left.

    The name holds the configured database's oid, and the verify holds a session advisory lock
    (taken on the configured database) on the name for as long as it runs: a scratch database
    of this prefix whose lock can be taken has no live verify behind it. Scratch databases made
    from another database are left to verifies run from there (advisory locks are per database).
    """
    oid = int(admin.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0])
    prefix = f"{SCRATCH_PREFIX}{oid}_"
    scratch = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin.execute("SELECT pg_advisory_lock(%s::int, hashtext(%s))", (_SCRATCH_LOCK, scratch))
    left = admin.execute("SELECT datname FROM pg_database WHERE left(datname, %s) = %s ORDER BY 1",
                         (len(prefix), prefix)).fetchall()
    for (name,) in left:
        if name != scratch and admin.execute("SELECT pg_try_advisory_lock(%s::int, hashtext(%s))",
                                             (_SCRATCH_LOCK, name)).fetchone()[0]:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                log(f"dropped scratch database {name}, left by a verify that did not finish")
            finally:
                admin.execute("SELECT pg_advisory_unlock(%s::int, hashtext(%s))", (_SCRATCH_LOCK, name))
    return scratch


def _for_server(major: int) -> str:
    return f" for this PostgreSQL {major} server"


# The queries below run on a psycopg connection or on a PsqlSession (text values, no parameters):
# they hold only tdbctl's own names, as literals, and read numbers with int().


def _tables(conn) -> dict[str, int]:
    """Every table pg_dump dumps (tdbctl's and any other schema's, not an extension's own), with
    the planner's row estimates: what the backup holds, what a restore would replace."""
    return {table: int(estimate) for table, estimate in conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.reltuples::bigint FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
        "AND d.deptype = 'e') ORDER BY 1"
    ).fetchall()}


def _counts(conn) -> dict[str, TableCount]:
    counts = {}
    for table, estimate in _tables(conn).items():
        if table in WITHOUT_DATA:
            counts[table] = TableCount(0)
        elif estimate > ESTIMATE_ABOVE:
            counts[table] = TableCount(estimate, estimated=True)
        else:
            counts[table] = TableCount(int(conn.execute(f"SELECT count(*) FROM {quote_table(table)}").fetchone()[0]))
    return counts


def _revision(conn) -> str | None:
    qualified = f'"{TOOL_SCHEMA}"."{VERSION_TABLE}"'
    if not int(conn.execute(f"SELECT (to_regclass({sql_literal(qualified)}) IS NOT NULL)::int").fetchone()[0]):
        return None
    row = conn.execute(f"SELECT version_num FROM {qualified}").fetchone()
    return row[0] if row else None


@contextmanager
def held(conn, name: str):
    """migrate's advisory lock, on this connection: no migration runs against a database being replaced."""
    from tdbctl.dialects.postgresql import ADVISORY_CLASS_ID, advisory_key

    key = (ADVISORY_CLASS_ID, advisory_key(name))
    if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
        raise LockHeld(f"another tdbctl {name} is running on this database")
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)


@contextmanager
def _schema_claim(conn):
    """The `schema` claim in the target for the restore (tdbctl/ops/claims.py, taken through
    libpq: no SQLAlchemy beside pg_restore). Refused while a running cleanup, archive or seed holds
    one, rather than waiting behind its batches. The restore replaces the claims table itself, so
    others are kept out by its lock until the restore commits; a failed restore gives it back."""
    import os
    import socket

    from tdbctl.dialects.postgresql import ADVISORY_CLASS_ID, advisory_key
    from tdbctl.ops.claims import LEASE_SECONDS, process_start

    if not int(conn.execute(f"SELECT (to_regclass({sql_literal(TOOL_SCHEMA + '.claims')}) IS NOT NULL)::int")
               .fetchone()[0]):
        yield
        return
    token = str(uuid.uuid4())
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS_ID, advisory_key("claims")))
        _refuse_live_claims(conn)
        conn.execute(
            "INSERT INTO tdbctl.claims (token, command, scope, host, pid, process_start, lease_until) "
            "VALUES (%s, 'restore', 'schema', %s, %s, %s, extract(epoch FROM clock_timestamp()) + %s)",
            (token, socket.gethostname(), os.getpid(), process_start(os.getpid()), LEASE_SECONDS))
    try:
        yield
    finally:
        try:  # gone with the replaced table after a restore; still there after a failed one
            conn.execute("DELETE FROM tdbctl.claims WHERE token = %s", (token,))
        except Exception:
            pass


def _refuse_live_claims(conn) -> None:
    import socket
    from types import SimpleNamespace

    from tdbctl.ops.claims import Holder, gone_from_this_host

    host = socket.gethostname()
    rows = conn.execute("SELECT command, host, pid, process_start, acquired_at, lease_until, "
                        "extract(epoch FROM clock_timestamp())::float8 FROM tdbctl.claims").fetchall()
    for command, claim_host, pid, started, acquired, lease, now in rows:
        row = SimpleNamespace(host=claim_host, pid=pid, process_start=started)
        if (lease is None or lease >= now) and not gone_from_this_host(row, host):
            raise LockHeld(f"another {Holder(command, claim_host, pid, acquired).describe()} is running on the "
                           "target database, which a restore replaces: wait for it to end; nothing was changed")


def _without_present_extensions(tools, env, archive: Path, conn, scratch: Path, log) -> list[str]:
    """pg_restore's ``-L`` list without the extensions the target already has (and their
    comments): a managed database's owner does not own them (an admin role created pgvector),
    and may neither comment on nor drop them. Tables use them as they are."""
    present = {row[0] for row in conn.execute("SELECT extname FROM pg_extension").fetchall()}
    listing = subprocess.run([tools.program("pg_restore"), "-l", str(archive)], env=env, capture_output=True,
                             text=True)
    if listing.returncode != 0:
        return []  # pg_restore itself says what is wrong with the archive, next
    kept, skipped = [], []
    for line in listing.stdout.splitlines():
        found = re.search(r"\b(?:EXTENSION - |COMMENT - EXTENSION )(\S+)", line)
        if found and found[1] in present and not line.startswith(";"):
            kept.append(";" + line)
            skipped.append(found[1])
        else:
            kept.append(line)
    if not skipped:
        return []
    log(f"leaving the target's own extensions as they are: {', '.join(sorted(set(skipped)))}")
    path = scratch / "toc.list"
    path.write_text("\n".join(kept) + "\n")
    return ["-L", str(path)]


def single_transaction_restore(tools, env, archive: Path, replace: bool, scrub, meanwhile=lambda: None,
                               listed: list[str] = ()) -> None:
    """pg_restore's SQL into psql, in a transaction that commits only if pg_restore succeeded.

    pg_restore writes into psql's input pipe directly (no copy through this process); tdbctl
    holds the pipe's write end too, to write BEGIN before pg_restore and COMMIT after it.
    """
    restore_errors, psql_errors = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    reader, writer = os.pipe()
    try:
        psql = pgtools.spawn(
            [tools.program("psql"), "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "-f", "-"],
            env, stdin=reader, stdout=subprocess.DEVNULL, stderr=psql_errors,
        )
    finally:
        os.close(reader)
    with open(writer, "wb", buffering=0) as pipe:
        prologue = ["SET client_min_messages = warning;", "BEGIN;"]
        if replace:
            prologue += [f'DROP SCHEMA IF EXISTS "{schema}" CASCADE;' for schema in ALL_SCHEMAS]
        restore_args = [tools.program("pg_restore"), "--no-owner", *listed, "-f", "-"]
        if replace:
            # Objects outside tdbctl's schemas that the dump also holds (its extensions) are replaced too.
            restore_args += ["--clean", "--if-exists"]
        psql_gone = not _write(pipe, ("\n".join(prologue) + "\n").encode())
        restore = pgtools.spawn([*restore_args, str(archive)], env, stdout=pipe, stderr=restore_errors)
        restore_code = pgtools.finish(restore, meanwhile)
        if restore_code == 0 and not psql_gone:
            _write(pipe, b"COMMIT;\n")
    if restore_code != 0:
        try:  # psql stopped at an error, which broke pg_restore's pipe: psql's error is the one to tell
            psql.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            psql.kill()  # its session ends, rolled back, without working through what is still in the pipe
    psql_code = psql.wait()
    restore_errors.seek(0)
    psql_errors.seek(0)
    if restore_code != 0 and (restore_code != -signal.SIGPIPE or psql_code == 0):
        # pg_restore itself failed or was killed: what psql says then is about the half-sent
        # input it got (and may quote row data), so only pg_restore's own words are told.
        pgtools.raise_failure("pg_restore (the target was left as it was)", restore_code,
                              restore_errors.read().decode(errors="replace"), scrub)
    if psql_code != 0:
        # psql stopped at an error (which also broke pg_restore's pipe), or was killed: either
        # way its transaction never committed.
        pgtools.raise_failure("restore (psql; the target was left as it was)", psql_code,
                              _without_data(psql_errors.read().decode(errors="replace")), scrub)


def _without_data(stderr: str) -> str:
    """psql's error lines with their CONTEXT (which quotes the row a COPY was at) left out and
    quoted values cut: what failed, never the data."""
    kept = [line for line in stderr.splitlines() if not line.lstrip().startswith(("CONTEXT", "LINE", "^", "QUERY"))]
    return re.sub(r'"[^"\n]{40,}"', '"..."', "\n".join(kept))


def _write(pipe, data: bytes) -> bool:
    """False when psql has already stopped (at an error: its stderr says which)."""
    try:
        pipe.write(data)
        return True
    except BrokenPipeError:
        return False


def drop_tool_schemas(conn) -> None:
    with conn.transaction():
        for schema in ALL_SCHEMAS:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def server_version(conn) -> tuple[int, str]:
    number, text = conn.execute(
        "SELECT current_setting('server_version_num'), current_setting('server_version')").fetchone()
    return int(number) // 10000, text.split()[0]


def _ensure_database(target: Settings, log) -> bool:
    """Create the target database if the server has none of that name; True when it did."""
    try:
        with libpq.connect(target, autocommit=True):
            return False
    except libpq.MissingDatabase:
        log(f"creating database {libpq.params(target)['dbname']}")
        create_database(target)
        return True


def _target_major(target: Settings) -> int:
    """The target server's major version, asked of a maintenance database if the target's is missing."""
    for database in (None, "postgres", "template1"):
        try:
            with libpq.connect(target, database=database, autocommit=True) as conn:
                return server_version(conn)[0]
        except libpq.MissingDatabase:
            continue
    raise DatabaseError(f"cannot find a database to ask {target.masked_url}'s server its version")


def _drop_database(target: Settings, log) -> None:
    name = libpq.params(target)["dbname"]
    log(f"dropping database {name}, which this failed restore created")
    for database in ("postgres", "template1"):
        try:
            with libpq.connect(target, database=database, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
        except libpq.MissingDatabase:
            continue


def create_database(target: Settings) -> None:
    """CREATE DATABASE from a maintenance database, as createdb does (postgres, else template1)."""
    name = libpq.params(target)["dbname"]
    try:
        with libpq.connect(target, database="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except libpq.MissingDatabase:
        with libpq.connect(target, database="template1", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


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
