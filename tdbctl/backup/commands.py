"""The backup library: one function per `tdbctl backup` / `tdbctl restore` action.

Each takes resolved Settings and plain arguments and returns a plain result for the CLI to
render; the dialect's work is done by its strategy (tdbctl.backup.strategy).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tdbctl import __version__
from tdbctl.backup import store
from tdbctl.backup.manifest import (
    BackupDamaged,
    Manifest,
    describe_files,
    fsync_tree,
    make_private,
    read_manifest,
    sha256_file,
    write_manifest,
)
from tdbctl.backup.strategy import Log, quiet, strategy_for
from tdbctl.config import Settings
from tdbctl.errors import CheckFailed, UsageError


@dataclass
class BackupResult:
    path: Path
    manifest: Manifest
    pruned: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)


@dataclass
class TableCheck:
    table: str
    expected: int
    restored: int | None
    estimated: bool

    @property
    def ok(self) -> bool:
        # An estimate is the planner's guess at dump time: reported, never a failure.
        return self.restored is not None and (self.estimated or self.restored == self.expected)


@dataclass
class VerifyReport:
    path: Path
    manifest: Manifest | None
    problems: list[str]
    deep: bool = False
    tables: list[TableCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.ok for t in self.tables)


@dataclass
class RestorePlan:
    path: Path
    manifest: Manifest
    target: Settings
    existing: dict[str, int]

    @property
    def replaces(self) -> bool:
        return bool(self.existing)

    def refuse_without_force(self, force: bool) -> None:
        if self.replaces and not force:
            from tdbctl.schemas import ALL_SCHEMAS

            others = sorted(t for t in self.existing if t.split(".", 1)[0] not in ALL_SCHEMAS)
            beside = f", {len(others)} of them outside tdbctl's schemas ({', '.join(others[:3])}" + (
                ", ...)" if len(others) > 3 else ")") if others else ""
            raise UsageError(
                f"{self.target.masked_url} already holds {len(self.existing)} tables "
                f"({sum(self.existing.values())} rows){beside}: pass --force to replace them with the backup's"
            )


@dataclass
class RestoreResult:
    revision: str | None
    head: str | None
    seconds: float

    @property
    def behind_head(self) -> bool:
        return self.revision != self.head


def _head(settings: Settings) -> str | None:
    # Read from the revision files, without Alembic: it runs beside pg_dump or pg_restore, and
    # importing Alembic and SQLAlchemy there took CPU the dump needed (see tdbctl.migrate.heads).
    from tdbctl.migrate.heads import single_head
    from tdbctl.resources import migrations_dir

    return single_head(migrations_dir() / "versions")


# -- backup -------------------------------------------------------------------------------------


def create(settings: Settings, *, to: str | None = None, jobs: int | None = None, pg_bin: str | None = None,
           keep: int | None = None, keep_days: float | None = None, log: Log = quiet) -> BackupResult:
    """Back the database up into a new timestamped directory, then prune (only after success)."""
    from tdbctl.backup.cluster import refuse_on_cluster

    refuse_on_cluster(settings)
    strategy = strategy_for(settings.dialect)
    if jobs is not None and settings.dialect != "postgresql":
        raise UsageError("--jobs applies to PostgreSQL (pg_dump's directory format)")
    options = settings.section("backup")
    pg_bin = pg_bin or options.get("pg_bin")
    keep = keep if keep is not None else options.get("keep")
    keep_days = keep_days if keep_days is not None else options.get("keep_days")
    _check_retention(keep, keep_days)  # before the dump: a bad [backup] keep must not cost a backup's time
    directory = store.backup_dir(settings, to)
    created = not directory.exists()
    store.ensure_dir(directory)
    cleaned = store.cleanup_leftovers(directory)
    started, clock = datetime.now(timezone.utc), time.monotonic()
    name = f"{strategy.label(settings)}-{started:%Y%m%dT%H%M%SZ}"
    partial = store.new_partial(directory, name)
    head: list[str | None] = []
    identity: list[str] = []

    def meanwhile() -> None:  # while the dump program works
        head.append(_head(settings))
        identity.append(strategy.identity(settings))

    try:
        # pg_dump sets session settings and holds one transaction for long: to the server itself
        # where a direct URL is configured (the backup keeps the configured URL's identity).
        snapshot = strategy.dump(settings.direct or settings, partial, jobs=jobs, pg_bin=pg_bin, log=log,
                                 meanwhile=meanwhile)
        make_private(partial)
        manifest = Manifest(
            created_at=started.isoformat(),
            dialect=settings.dialect,
            server_version=snapshot.server_version,
            tdbctl_version=__version__,
            revision=snapshot.revision,
            head=head[0],
            database=identity[0],
            source=settings.masked_url,
            method=snapshot.method,
            tool_version=snapshot.tool_version,
            tables=snapshot.tables,
            # Hashed from the files as written: the checksum proves what is on disk.
            files=describe_files(partial, snapshot.roles),
            duration_seconds=round(time.monotonic() - clock, 3),
        )
        write_manifest(partial, manifest)
        fsync_tree(partial)
        final = store.publish(partial, directory, name)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if created:  # a failed first backup leaves no empty ./backups behind
            try:
                directory.rmdir()
            except OSError:
                pass
        raise
    result = BackupResult(final, manifest, cleaned=cleaned)
    if keep is not None or keep_days is not None:
        result.pruned = prune(directory, manifest.database, keep=keep, keep_days=keep_days, newest=final)
    return result


def _check_retention(keep, keep_days) -> None:
    if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 1):
        raise UsageError(f"keep = {keep!r}: give a whole number of at least 1 (the newest backup is always kept)")
    if keep_days is not None and (not isinstance(keep_days, (int, float)) or isinstance(keep_days, bool)
                                  or not 0 <= keep_days <= 365 * 1000):
        raise UsageError(f"keep_days = {keep_days!r}: give a number of days, 0 or more")


def prune(directory: Path, database: str, *, keep: int | None, keep_days: float | None, newest: Path) -> list[str]:
    _check_retention(keep, keep_days)
    doomed = store.plan_prune(store.scan(directory), database, keep, keep_days, newest)
    for entry in doomed:
        store.remove(entry)
    return [entry.name for entry in doomed]


def list_backups(settings: Settings, directory: str | None = None) -> tuple[Path, list[store.Entry]]:
    path = store.backup_dir(settings, directory)
    return path, store.scan(path)


def locate(spec: str, settings: Settings, directory: str | None = None) -> Path:
    """BACKUP as typed: a path, a name in the backup directory, or ``latest`` (of the configured database)."""
    database = strategy_for(settings.dialect).identity(settings) if spec == "latest" else None
    return store.resolve(spec, store.backup_dir(settings, directory), database)


# -- verify ---------------------------------------------------------------------------------------


def check_files(path: Path, manifest: Manifest) -> list[str]:
    """Every file against the manifest: present, same size (a truncation), same sha256; nothing extra."""
    problems = []
    listed = set()
    for entry in manifest.files:
        file = path / entry.path
        listed.add(file)
        if not file.is_file():
            problems.append(f"{entry.path}: missing")
            continue
        size, digest = sha256_file(file)
        if size != entry.bytes:
            problems.append(f"{entry.path}: {size} bytes, the manifest says {entry.bytes} (truncated or appended)")
        elif digest != entry.sha256:
            problems.append(f"{entry.path}: sha256 {digest} differs from the manifest's {entry.sha256}")
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name != "manifest.json"):
        if file not in listed:
            problems.append(f"{file.relative_to(path).as_posix()}: not in the manifest")
    return problems


def verify(path: Path, *, deep: bool = False, settings: Settings | None = None, jobs: int | None = None,
           pg_bin: str | None = None, log: Log = quiet, scratch: Settings | None = None) -> VerifyReport:
    clock = time.monotonic()
    try:
        manifest = read_manifest(path)
    except BackupDamaged as exc:
        return VerifyReport(path, None, [exc.message], deep)
    report = VerifyReport(path, manifest, check_files(path, manifest), deep)
    if deep and not report.problems:
        if settings is None:
            raise UsageError("--deep needs a database to restore into (the configured one's server)")
        if scratch is not None and scratch.dialect != manifest.dialect:
            raise UsageError(f"--scratch-url is a {scratch.dialect} database; the backup is {manifest.dialect}")
        counts = strategy_for(manifest.dialect).scratch_counts(
            path, manifest, settings, jobs=jobs, pg_bin=pg_bin or settings.section("backup").get("pg_bin"), log=log,
            scratch=scratch)
        report.tables = [TableCheck(t, c.rows, counts.get(t), c.estimated) for t, c in sorted(manifest.tables.items())]
    report.seconds = round(time.monotonic() - clock, 3)
    return report


# -- restore --------------------------------------------------------------------------------------


def plan_restore(path: Path, target: Settings) -> RestorePlan:
    manifest = read_manifest(path)
    if manifest.dialect != target.dialect:
        raise UsageError(f"{path.name} is a {manifest.dialect} backup; the target {target.masked_url} is {target.dialect}")
    existing = strategy_for(target.dialect).existing_tables(target)
    return RestorePlan(path, manifest, target, existing)


def restore(plan: RestorePlan, *, force: bool = False, jobs: int | None = None, pg_bin: str | None = None,
            log: Log = quiet) -> RestoreResult:
    """Replace the target's tdbctl tables with the backup's. Refuses a target that holds some, unless forced."""
    plan.refuse_without_force(force)
    if jobs is not None and plan.target.dialect != "postgresql":
        raise UsageError("--jobs applies to PostgreSQL (parallel pg_restore)")
    problems = check_files(plan.path, plan.manifest)
    if problems:
        raise BackupDamaged(f"{plan.path.name} fails verification, nothing was restored: {problems[0]}")
    clock = time.monotonic()
    head: list[str | None] = []
    strategy = strategy_for(plan.target.dialect)
    strategy.restore(
        plan.path, plan.manifest, plan.target.direct or plan.target, replace=plan.replaces or force, jobs=jobs,
        pg_bin=pg_bin or plan.target.section("backup").get("pg_bin"), log=log,
        meanwhile=lambda: head.append(_head(plan.target)),
    )
    _check_restored(plan, *strategy.restored(plan.target))
    return RestoreResult(plan.manifest.revision, head[0], round(time.monotonic() - clock, 3))


def _check_restored(plan: RestorePlan, revision: str | None, counts: dict[str, int]) -> None:
    """The target holds what the backup holds, or the restore does not say it succeeded."""
    expected = plan.manifest
    problems = []
    if revision != expected.revision:
        problems.append(f"it is at revision {revision or 'none'}, the backup at {expected.revision or 'none'}")
    for table, count in sorted(expected.tables.items()):
        if table not in counts:
            problems.append(f"{table} is missing")
        elif not count.estimated and counts[table] != count.rows:
            problems.append(f"{table} holds {counts[table]} rows, the backup {count.rows}")
    if problems:
        raise CheckFailed(f"the restore ended, but {plan.target.masked_url} does not hold the backup "
                          f"{plan.path.name}: {'; '.join(problems[:3])}"
                          + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""))
