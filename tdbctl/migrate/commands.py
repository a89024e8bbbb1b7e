"""The migrate library: one short function per `tdbctl migrate` action (cf. alembic.command).

Each takes the resolved Settings and its arguments, opens the database through the runtime, and
returns a plain result for the CLI to render. None of them holds SQL of its own.
"""

from __future__ import annotations

import io
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tdbctl.config import Settings
from tdbctl.errors import DatabaseError, PrerequisiteError, UsageError, ValidationFailed
from tdbctl.migrate import ledger
from tdbctl.runtime import CREATE, EXISTS, Database, open_database

MIGRATE_LOCK = "migrate"
DEFAULT_LOCK_WAIT_SECONDS = 60.0


@dataclass
class Revision:
    revision: str
    description: str
    script: str
    applied: bool = False
    applied_at: object = None
    applied_by: str | None = None
    execution_ms: int | None = None
    how: str | None = None
    """applied or baselined."""


@dataclass
class MigrationState:
    current: str | None
    head: str
    pending: list[Revision]


@dataclass
class MigrationResult:
    before: str | None
    after: str | None
    steps: list[Revision] = field(default_factory=list)
    sql: str | None = None
    partitions: object | None = None
    """What partition maintenance did after the migrations (tdbctl.partitions.MaintenanceReport)."""
    domains: tuple[str, ...] = ()
    """The domains the database runs after the upgrade."""
    added: list[str] = field(default_factory=list)
    """Domains installed by this run in a database that was migrated already."""
    unrequested: list[str] = field(default_factory=list)
    """Domains the database has that the configuration does not name: left as they are."""
    distributed: list[str] = field(default_factory=list)
    """On a Citus coordinator: the tables this run placed on the cluster, a line each."""


@dataclass
class DowngradePlan:
    current: str | None
    target: str
    steps: list[Revision]
    dropped_tables: dict[str, int]


@dataclass
class ChecksumProblem:
    revision: str
    script: str
    recorded: str | None
    actual: str | None

    def describe(self) -> str:
        if self.actual is None:
            return f"migration {self.revision} was applied but its script {self.script} is missing"
        if self.recorded is None:
            return f"migration {self.revision} ({self.script}) is applied but not in the ledger"
        return (
            f"migration {self.revision} ({self.script}) was edited after it was applied: "
            f"recorded checksum {self.recorded}, file now {self.actual}"
        )


# -- Alembic plumbing --------------------------------------------------------------------------


def alembic_config(settings: Settings, *, stdout=None, **attributes):
    from alembic.config import Config

    from tdbctl.resources import migrations_dir

    config = Config(stdout=stdout or io.StringIO(), output_buffer=stdout)
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes.update(url=settings.url, **attributes)
    return config


def script_directory(settings: Settings):
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(settings))


def single_head(script) -> str:
    heads = script.get_heads()
    if len(heads) != 1:
        raise DatabaseError(
            f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}): "
            "merge them into one (alembic merge) before migrating"
        )
    return heads[0]


def resolve_revision(script, revision: str) -> str:
    from alembic.util import CommandError

    if revision in ("head", "base"):
        return revision
    try:
        found = script.get_revision(revision)
    except (CommandError, KeyError) as exc:
        known = ", ".join(s.revision for s in script.walk_revisions())
        raise UsageError(f"unknown revision {revision!r} (known: {known}, head, base)") from exc
    if found is None:
        raise UsageError(f"unknown revision {revision!r}")
    return found.revision


def as_revision(script_obj) -> Revision:
    return Revision(
        revision=script_obj.revision,
        description=(script_obj.doc or "").strip(),
        script=Path(script_obj.path).name,
    )


def current_revision(conn) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from tdbctl.schema import TOOL_SCHEMA

    context = MigrationContext.configure(conn, opts={"version_table_schema": TOOL_SCHEMA})
    heads = context.get_current_heads()
    return heads[0] if heads else None


def steps_between(script, lower: str | None, upper: str) -> list[Revision]:
    """Revisions above ``lower`` up to ``upper``, oldest first."""
    revisions = script.iterate_revisions(upper, lower or "base")
    return [as_revision(r) for r in reversed(list(revisions))]


@contextmanager
def exclusive(db: Database, lock_wait: float):
    """migrate's own lock, which works on a database without tdbctl's tables (SQLite: for the
    run; PostgreSQL: inside the migration's transaction, see environment.py), and, once the
    database has them, the schema claim that keeps every other changing run out (and waits for
    none to be running): the migration transaction checks that claim as its first statement."""
    from tdbctl.ops.claims import claimed, has_claims_table

    started = time.monotonic()
    with db.dialect.run_lock(db.engine, MIGRATE_LOCK, lock_wait):
        with db.connect() as conn:
            claims = has_claims_table(conn)
        if not claims:
            yield
            return
        with claimed(db, MIGRATE_LOCK, max(0.0, lock_wait - (time.monotonic() - started))):
            yield


# -- actions --------------------------------------------------------------------------------


def state(settings: Settings) -> MigrationState:
    script = script_directory(settings)
    head = single_head(script)
    with open_database(settings, EXISTS) as db, db.connect() as conn:
        current = current_revision(conn)
    return MigrationState(current, head, steps_between(script, current, head))


def history(settings: Settings) -> list[Revision]:
    script = script_directory(settings)
    with open_database(settings, EXISTS) as db, db.connect() as conn:
        applied = {e.version: e for e in ledger.read(conn)}
    revisions = [as_revision(s) for s in reversed(list(script.walk_revisions()))]
    for rev in revisions:
        if rev.revision in applied:
            entry = applied[rev.revision]
            rev.applied, rev.applied_at, rev.applied_by, rev.execution_ms, rev.how = (
                True, entry.applied_at, entry.applied_by, entry.execution_ms, entry.how)
    return revisions


def checksum_problems(conn, script) -> list[ChecksumProblem]:
    problems = []
    entries = ledger.read(conn)
    recorded = {e.version for e in entries}
    for entry in entries:
        found = _find_script(script, entry.version)
        if found is None:
            problems.append(ChecksumProblem(entry.version, entry.script, entry.checksum, None))
            continue
        actual = ledger.script_checksum(found.path)
        if actual != entry.checksum:
            problems.append(ChecksumProblem(entry.version, Path(found.path).name, entry.checksum, actual))
    current = current_revision(conn)
    if current and entries:
        for applied in steps_between(script, None, current):
            if applied.revision not in recorded:
                problems.append(ChecksumProblem(applied.revision, applied.script, None, ""))
    return problems


def _find_script(script, revision: str):
    from alembic.util import CommandError

    try:
        return script.get_revision(revision)
    except (CommandError, KeyError):
        return None


def validate(settings: Settings) -> list[ChecksumProblem]:
    script = script_directory(settings)
    with open_database(settings, EXISTS) as db, db.connect() as conn:
        return checksum_problems(conn, script)


def _extensions_of(script, steps: list[Revision]) -> set[str]:
    """The extensions the steps' scripts create (migration_ops.create_extension('name')): a
    dispatch-only upgrade needs no pgvector."""
    needed = set()
    for step in steps:
        text = Path(script.get_revision(step.revision).path).read_text(encoding="utf-8")
        needed |= set(re.findall(r"create_extension\(\s*['\"](\w+)['\"]", text))
    return needed


def _refuse_edited(conn, script) -> None:
    problems = checksum_problems(conn, script)
    if problems:
        hint = "revert the edit, or run `tdbctl migrate repair` if it was deliberate"
        raise ValidationFailed(problems[0].describe() + f" ({hint})")


def upgrade(
    settings: Settings,
    target: str = "head",
    *,
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS,
    lock_timeout: float | None = None,
    on_progress=None,
    domains: str | None = None,
    beside_existing: bool = False,
) -> MigrationResult:
    from alembic import command

    from tdbctl import domains as domain_choice
    from tdbctl.schemas import TOOL_SCHEMA

    requested = domain_choice.configured(settings, domains)
    script = script_directory(settings)
    head = single_head(script)
    target = head if target == "head" else resolve_revision(script, target)
    with open_database(settings, CREATE) as db, exclusive(db, lock_wait), db.connect() as conn:
        _refuse_edited(conn, script)
        before = current_revision(conn)
        if before and target not in ("base", before) and target in {
                r.revision for r in steps_between(script, None, before)}:
            raise UsageError(f"the database is at {before}, above {target}: `migrate` only goes up; "
                             f"`tdbctl migrate down {target}` reverts (it shows what it drops first)")
        if target == "base":
            raise UsageError("`migrate --to base` would go down: `tdbctl migrate down base` reverts everything")
        steps = steps_between(script, before, target)
        if before is None:
            from tdbctl.migrate.drift import built_otherwise

            problem = built_otherwise(conn, requested or domain_choice.DOMAINS, beside_existing=beside_existing)
            if problem:
                raise UsageError(problem)
        have = domain_choice.installed(conn) if before else ()
        running = requested or (have if before else domain_choice.DOMAINS)
        adding = [d for d in running if d not in have] if before else []
        wanted = [d for d in domain_choice.DOMAINS if d in have or d in running]
        needed = _extensions_of(script, steps) | (domain_choice.extensions_for(adding) if adding else set())
        problems = db.dialect.missing_prerequisites(conn, needed & domain_choice.extensions_for(wanted))
        if problems:
            raise PrerequisiteError("; ".join(problems) + "; nothing was changed")
        conn.commit()
        config = alembic_config(settings, connection=conn, claim=db.claim, lock_wait=lock_wait,
                                schemas=(TOOL_SCHEMA, *wanted), install=adding, **_timeouts(lock_timeout))
        command.upgrade(config, target)
        conn.commit()
        after = current_revision(conn)
        installed = domain_choice.installed(conn)
        conn.commit()  # through a pooler of one connection, maintenance needs it back
        db.domains = installed
        partitions = _maintain_partitions(db, after, head, on_progress, lock_wait)
    if config.attributes.get("started_from", before) != before:  # another migrate got there first
        before = config.attributes["started_from"]
        steps = steps_between(script, before, after) if after and before != after else []
    return MigrationResult(before, after, steps, partitions=partitions, domains=installed,
                           added=config.attributes.get("installed", []),
                           unrequested=[d for d in installed if requested and d not in requested],
                           distributed=config.attributes.get("distributed", []))


def _maintain_partitions(db, revision: str | None, head: str, on_progress, lock_wait: float):
    """At head, under migrate's claim: finish the row moves a partitioning migration started
    (a killed migrate continues here), and keep each partitioned table's partitions ahead. A
    migrate that began before the claims table existed holds no claim yet: it takes one now, so
    that two such migrates never maintain at once (the second waits, then finds it done)."""
    if revision != head or not db.dialect.partitioned:
        return None
    from tdbctl.ops.claims import claimed
    from tdbctl.ops.durations import utcnow
    from tdbctl.partitions import maintain
    from tdbctl.schema import metadata

    if db.claim is not None:
        return maintain(db, metadata, utcnow(), claim=db.claim, on_progress=on_progress)
    with claimed(db, MIGRATE_LOCK, lock_wait) as claim:
        return maintain(db, metadata, utcnow(), claim=claim, on_progress=on_progress)


def upgrade_sql(
    settings: Settings, target: str = "head", start: str | None = None, *, lock_timeout: float | None = None
) -> str:
    """The SQL a DBA would run for this upgrade, without changing the database: from ``start``
    (or START of ``--to START:END``, as Alembic writes it), else from the revision the database is
    at when it can be read, else from the beginning."""
    from alembic import command

    from tdbctl.errors import ConnectFailed, NotSetUp

    script = script_directory(settings)
    single_head(script)
    if ":" in target:
        start, target = target.split(":", 1)
    target = resolve_revision(script, target)
    if start is None:
        try:
            with open_database(settings) as db, db.connect() as conn:
                start = current_revision(conn)
        except (ConnectFailed, NotSetUp):
            start = None
        if start is not None and start == (script.get_current_head() if target == "head" else target):
            return f"-- the database is at {start} already: no SQL to apply\n"
    span = f"{resolve_revision(script, start)}:{target}" if start else target
    out = io.StringIO()
    command.upgrade(alembic_config(settings, stdout=out, **_timeouts(lock_timeout)), span, sql=True)
    return out.getvalue()


def plan_downgrade(settings: Settings, target: str) -> DowngradePlan:
    from alembic import command

    script = script_directory(settings)
    target = resolve_revision(script, target)
    with open_database(settings, CREATE) as db, db.connect() as conn:
        current = current_revision(conn)
        if current is None:
            raise UsageError("the database has no migrations applied: nothing to revert")
        lower = None if target == "base" else target
        if lower is not None and lower not in {r.revision for r in steps_between(script, None, current)}:
            raise UsageError(f"revision {target} is not below the current revision {current}")
        steps = list(reversed(steps_between(script, lower, current)))
        out = io.StringIO()
        command.downgrade(alembic_config(settings, stdout=out), f"{current}:{target}", sql=True)
        sql = out.getvalue()
        # SQLite changes a constraint by copying the table (_alembic_tmp_<name>): not a loss.
        rebuilt = set(re.findall(r'_alembic_tmp_(\w+)', sql))
        dropped = [name for name in re.findall(r"^DROP TABLE (?:IF EXISTS )?([\w.\"]+)", sql, re.M)
                   if name.replace('"', "").rsplit(".", 1)[-1] not in rebuilt]
        counts = {name.replace('"', ""): db.dialect.count_rows(conn, name.replace('"', "")) for name in dropped}
    return DowngradePlan(current, target, steps, counts)


def downgrade(
    settings: Settings,
    target: str,
    *,
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS,
    lock_timeout: float | None = None,
) -> MigrationResult:
    from alembic import command

    script = script_directory(settings)
    target = resolve_revision(script, target)
    with open_database(settings, CREATE) as db, exclusive(db, lock_wait), db.connect() as conn:
        _refuse_edited(conn, script)
        before = current_revision(conn)
        lower = None if target == "base" else target
        steps = list(reversed(steps_between(script, lower, before))) if before else []
        conn.commit()
        config = alembic_config(settings, connection=conn, claim=db.claim, lock_wait=lock_wait,
                                **_timeouts(lock_timeout))
        command.downgrade(config, target)
        conn.commit()
        after = current_revision(conn)
    return MigrationResult(before, after, steps)


def repair(settings: Settings) -> list[ChecksumProblem]:
    """Re-record checksums after a deliberate edit; returns what it changed."""
    import sqlalchemy as sa

    from tdbctl.schema.bookkeeping import migration_ledger

    script = script_directory(settings)
    problems = validate(settings)
    unrecorded = [p for p in problems if p.recorded is None]
    if unrecorded:
        # The version table says they ran, the ledger has no trace of it (a hand-made stamp?):
        # recorded only when the schema is the one they make.
        from tdbctl.migrate.drift import check

        drift = check(settings)
        if drift.current != drift.head or drift.blocking:
            raise ValidationFailed(
                f"migrations {', '.join(p.revision for p in unrecorded)} are marked applied but are not in the "
                "ledger, and the schema is not the one they make "
                f"({drift.blocking[0] if drift.blocking else f'at {drift.current}, head {drift.head}'}): "
                "nothing was recorded; run `tdbctl migrate check` to see the differences")
    with open_database(settings, CREATE) as db, exclusive(db, 0), db.connect() as conn:
        db.dialect.transaction_lock(conn, MIGRATE_LOCK)
        if db.claim is not None:
            db.claim.check(conn)
        problems = checksum_problems(conn, script)
        for problem in problems:
            if problem.actual is None:
                continue  # a missing script cannot be re-recorded; validate keeps reporting it
            found = script.get_revision(problem.revision)
            values = dict(script=Path(found.path).name, checksum=ledger.script_checksum(found.path))
            if problem.recorded is None:
                conn.execute(migration_ledger.insert().values(
                    version=problem.revision, applied_by=ledger.applied_by(),
                    description=(found.doc or "").strip()[:500], **values))
            else:
                conn.execute(
                    sa.update(migration_ledger).where(migration_ledger.c.version == problem.revision).values(**values)
                )
        conn.commit()
    return problems


def _timeouts(lock_timeout: float | None) -> dict:
    return {} if lock_timeout is None else {"lock_timeout_seconds": lock_timeout}


# -- baseline -------------------------------------------------------------------------------


@dataclass
class BaselineResult:
    revision: str
    differences: list = field(default_factory=list)
    """What differs from the metadata at ``revision``: all of it cosmetic, unless ``forced``."""
    recorded: list[str] = field(default_factory=list)
    """The revisions written to the ledger as baselined; empty when refused."""
    forced: bool = False
    created: list[str] = field(default_factory=list)
    """tdbctl's own tables that baseline created (run history, archive catalog, claims, ledger)."""

    @property
    def refused(self) -> bool:
        return not self.recorded

    @property
    def blocking(self) -> list:
        return [d for d in self.differences if d.blocking]


def baseline(settings: Settings, revision: str = "head", *, force: bool = False,
             lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS) -> BaselineResult:
    """Take over a database whose schema was built otherwise (from the seeds' SQL, by hand): if it
    agrees with the metadata at ``revision`` on everything that matters, record that revision
    (Alembic's stamp, Flyway's baseline) with every revision up to it in the ledger as baselined.

    In one transaction: tdbctl's own bookkeeping tables are created where missing, the schema is
    compared, and either the revision is recorded or nothing stays. ``force`` records over blocking
    differences, and the run history says so. Only head can be compared: the metadata is head's.
    """
    import sqlalchemy as sa

    from tdbctl import domains as domain_choice
    from tdbctl.migrate.drift import compare, migration_context
    from tdbctl.schema import TOOL_SCHEMA, metadata
    from tdbctl.schema.bookkeeping import runs

    script = script_directory(settings)
    head = single_head(script)
    target = head if revision == "head" else resolve_revision(script, revision)
    if target != head:
        raise UsageError(f"baseline compares the database with the metadata, which is head's ({head}); "
                         f"{target} is older: bring the schema to head's and baseline at head, or run the "
                         "migrations from an empty database")
    with open_database(settings, EXISTS) as db, exclusive(db, lock_wait), db.connect() as conn:
        db.dialect.transaction_lock(conn, MIGRATE_LOCK)
        current = current_revision(conn)
        if current is not None:
            raise UsageError(f"the database is already at revision {current}: tdbctl manages it; "
                             "`tdbctl migrate` takes it to head, `tdbctl migrate check` shows any drift")
        result = BaselineResult(target, forced=force)
        # The domains named in the configuration, else those whose schema holds any of their tables.
        chosen = domain_choice.configured(settings) or domain_choice.present(conn)
        inspector = sa.inspect(conn)
        if db.dialect.name == "postgresql":
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{TOOL_SCHEMA}"')
        ours = [t for t in metadata.sorted_tables if t.schema == TOOL_SCHEMA]
        result.created = [t.fullname for t in ours if not inspector.has_table(t.name, schema=t.schema)]
        metadata.create_all(conn, tables=ours, checkfirst=True)
        result.differences = compare(conn, db.dialect, chosen)
        if result.blocking and not force:
            conn.rollback()
            return result
        migration_context(conn, db.dialect.name).stamp(script, target)
        steps = steps_between(script, None, target)
        ledger.record_baseline(conn, [script.get_revision(s.revision) for s in steps])
        domain_choice.record(conn, chosen, target)
        blocking = result.blocking
        message = (f"baselined at {target} over {len(blocking)} blocking difference(s), with --force: "
                   + "; ".join(str(d) for d in blocking[:5]) if blocking else f"baselined at {target}")
        conn.execute(sa.insert(runs).values(
            command="baseline", status="succeeded", finished_at=sa.func.now(), user_host=ledger.applied_by(),
            pid=os.getpid(), options={"revision": target, "force": force},
            message=message[:2000]))
        conn.commit()
        result.recorded = [s.revision for s in steps]
    return result
