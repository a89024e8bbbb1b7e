"""The archive library: run the archive policies, list, verify and restore batches.

Each function opens the database itself and returns plain data; the CLI only renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from tdbctl.archive import catalog
from tdbctl.archive.batch import Context, PolicyResult, archive_policy, eligible
from tdbctl.ops.files import ensure_writable
from tdbctl.archive.recovery import recover
from tdbctl.archive.inplace import archive_in_place, destination as in_place_destination
from tdbctl.config import Settings
from tdbctl.errors import TdbError, UsageError
from tdbctl.ops.cascade import cascade_tree
from tdbctl.ops.claims import claimed
from tdbctl.ops.durations import utcnow
from tdbctl.ops.humanize import plural
from tdbctl.retention import movers
from tdbctl.retention.request import RetentionRequest
from tdbctl.retention.run import Observer, retention_run

COMMAND = "archive"
RESTORE_COMMAND = "archive restore"
DEFAULT_LEVEL = 1  # gzip -6 costs the archive more CPU than the server spends deleting the rows, for ~11% smaller files
DEFAULT_LOCK_TIMEOUT = 10.0

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class ArchiveRequest(RetentionRequest):
    """What an archive run was asked: the shared retention request, with where the files go."""

    to: str | None = None
    lock_wait: float = 0.0
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    level: int = DEFAULT_LEVEL

    def options(self) -> dict:
        return {**super().options(), "to": self.to, "level": self.level}


@dataclass
class RunReport:
    run_id: int | None
    status: str
    dry_run: bool
    policies: list[dict]
    recovered: list[dict]


def _destination(policy, directory: Path | None) -> str:
    if policy.archive_status:
        return in_place_destination(policy)
    return str(directory / policy.name) if directory else ""


def policy_mode(policy) -> str:
    if policy.archive_status:
        return "in_place"
    return "files+table" if policy.archive_table else "files"


def archive_dir(settings: Settings, to: str | None) -> Path | None:
    """--to DIR, else tdbctl.toml's [archive] dir; None when neither is set."""
    if to is not None and not to.strip():
        raise UsageError("--to: give a directory (an empty value would mean the configured one)")
    configured = to or settings.section("archive").get("dir")
    return Path(str(configured)).expanduser().absolute() if configured else None


def _metadata():
    from tdbctl.schema import metadata

    return metadata


def _check_destination(metadata, policies, directory: Path | None) -> None:
    needing = [p for p in policies if policy_mode(p) != "in_place"]
    if not needing or directory is not None:
        return
    message = (f"{', '.join(p.name for p in needing)} archive to files: give --to DIR "
               "(or [archive] dir in tdbctl.toml)")
    for policy in needing:
        children = cascade_tree(metadata, policy.table).children if policy.archive_table else []
        if children:
            message += (f"; {policy.name} moves its rows to {policy.archive_table}, but their children "
                        f"({', '.join(t.fullname for t in children)}) have no archive table and go to files")
    raise UsageError(message)


def run(settings: Settings, options: ArchiveRequest, observer: Observer | None = None, *,
        policies=None) -> RunReport:
    """Run the archive policies (``policies`` replaces the declared ones: tests, one-off jobs)."""
    from tdbctl.archive.rowio import rowio_for
    from tdbctl.migrate.commands import current_revision
    from tdbctl.runtime import HEAD, open_database
    from tdbctl.schema import policies_of

    metadata = _metadata()
    options.validate()
    observer = observer or Observer()
    log = observer.note
    now = utcnow()
    directory = archive_dir(settings, options.to)
    with open_database(settings, HEAD) as db:
        targets = options.targets(policies_of(metadata) if policies is None else policies, COMMAND, now, metadata, db)
        if not options.dry_run:  # a preview counts rows; where they would go is not needed for that
            _check_destination(metadata, [t.policy for t in targets], directory)
        if directory is not None and not options.dry_run:
            ensure_writable(directory, "--to")
        with retention_run(db, COMMAND, options, lock_wait=options.lock_wait) as run:
            record = run.record
            with db.engine.connect() as conn:
                revision = current_revision(conn)
                conn.rollback()
                if revision is None:
                    raise TdbError("the database has no tdbctl schema yet: run `tdbctl migrate` first")
                if options.dry_run:
                    plans = [_plan(conn, db.dialect, metadata, t, directory) for t in targets]
                    for plan in plans:
                        for table, count in plan["rows"].items():
                            record.add_rows(table, count)
                    return RunReport(record.id, "dry_run", True, plans, [])
                recovered = recover(conn, run.claim, metadata, log)
                io = rowio_for(db.dialect)
                io.prepare(conn)
                conn.commit()
                results: list[PolicyResult] = []
                for target in targets:
                    policy, cutoff = target.policy, target.cutoff
                    log(f"{policy.name}: rows older than {cutoff.isoformat() if cutoff else '(no age)'}")
                    result = PolicyResult(policy.name, policy.table, policy_mode(policy), _destination(policy, directory))
                    observer.policy_started(result, None)

                    def progress(counts: dict[str, int], result=result) -> None:
                        run.progress(counts)
                        observer.rows_moved(result, counts.get(result.table, 0))

                    ctx = Context(settings, metadata, conn, db.dialect, io, record.id, directory,
                                  options.batch_size or io.batch_size, options.lock_timeout, options.level,
                                  run.should_stop, revision, log, progress, run.claim)
                    moves = movers.steps(conn, db.dialect, metadata, target, COMMAND,
                                         cascade_tree(metadata, policy.table, db.dialect.unkept_links(metadata)))
                    conn.rollback()
                    if moves[0].mover == "archive_in_place":
                        archive_in_place(ctx, policy, cutoff, result)
                    else:  # archive_partition steps, then archive_rows: one batch loop carries both out
                        archive_policy(ctx, policy, cutoff, result,
                                       [s for s in moves if s.mover == "archive_partition"])
                    results.append(result)
                    log(f"{policy.name}: {plural(sum(result.rows.values()), 'row')} in {plural(len(result.batches), 'batch')}")
                    observer.policy_finished(result)
                    if result.stopped:
                        break
        return RunReport(record.id, record.status, False, [r.document() for r in results], recovered)


def _plan(conn, dialect, metadata, target, directory: Path | None) -> dict:
    """What a run would do for one policy, counted without changing anything."""
    policy, cutoff = target.policy, target.cutoff
    mode = policy_mode(policy)
    table = metadata.tables[policy.table]
    if mode == "in_place":
        count = conn.execute(sa.select(sa.func.count()).select_from(table).where(
            policy.where(metadata, cutoff))).scalar()
        conn.rollback()
        return {"policy": policy.name, "table": policy.table, "mode": mode, "destination": in_place_destination(policy),
                "cutoff": cutoff, "rows": {policy.table: count}, "blocked": 0, "held_by": []}
    tree = cascade_tree(metadata, policy.table, dialect.unkept_links(metadata))
    whole = [s.describe() for s in movers.steps(conn, dialect, metadata, target, COMMAND, tree)
             if s.mover == "archive_partition"]
    conn.rollback()
    roots = eligible(tree, policy, metadata, cutoff).with_only_columns(tree.key).order_by(None).subquery()

    def in_roots(column):
        return column.in_(sa.select(roots.c[tree.key.name]))

    rows = {}
    for member in tree.members:
        rows[member.fullname] = conn.execute(
            sa.select(sa.func.count()).select_from(member).where(tree.rows_of(member, in_roots))).scalar()
    blocked = tree.count_held_back(conn, policy.where(metadata, cutoff))
    conn.rollback()
    where = str(directory / policy.name) if directory else "(files: give --to DIR)"
    if policy.archive_table:
        where = f"{policy.archive_table} + {where}"
    return {"policy": policy.name, "table": policy.table, "mode": mode, "destination": where, "cutoff": cutoff,
            "rows": rows, "blocked": blocked, "held_by": tree.held_by if blocked else [],
            "set_null": [link.describe() for link in tree.detached], "partitions": whole}


def discard(settings: Settings, batch_id: int) -> catalog.Batch:
    """Remove a leftover batch's files (its rows are live) and mark it discarded."""
    from tdbctl.archive.recovery import discard as discard_batch
    from tdbctl.runtime import HEAD, open_database

    with open_database(settings, HEAD) as db, claimed(db, COMMAND) as claim, db.engine.connect() as conn:
        return discard_batch(conn, claim, batch_id)


# -- list ---------------------------------------------------------------------------------------

def list_batches(settings: Settings, *, policy: str | None = None, status: str | None = None,
                 limit: int | None = None) -> list[catalog.Batch]:
    from tdbctl.runtime import TOOL, open_database

    with open_database(settings, TOOL) as db, db.engine.connect() as conn:
        return catalog.listing(conn, policy=policy, status=status, limit=limit)
