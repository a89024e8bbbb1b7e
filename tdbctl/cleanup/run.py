"""A cleanup run: select the policies, take the lock, delete (or count, for --dry-run), record."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc

from tdbctl.ops import cascade
from tdbctl.cleanup.batches import PolicyDeleter, PolicyOutcome
from tdbctl.cleanup.request import CleanupRequest
from tdbctl.errors import ConnectionLost, TdbError, UsageError
from tdbctl.ops.claims import ClaimLost
from tdbctl.ops.durations import utcnow
from tdbctl.retention import movers
from tdbctl.retention.run import Observer, retention_run
from tdbctl.retention.selection import Target, age_overrides
from tdbctl.runtime import open_direct

COMMAND = "cleanup"


@dataclass
class CleanupReport:
    dry_run: bool
    started_at: datetime
    run_id: int | None = None
    status: str = "succeeded"
    """succeeded, stopped (--max-runtime), failed (a policy failed; the others ran), dry_run."""
    outcomes: list[PolicyOutcome] = field(default_factory=list)
    vacuumed: list[str] = field(default_factory=list)
    age_overrides: list[dict] = field(default_factory=list)
    """Policies whose declared age --older-than or --before replaced: policy, table, declared, used."""
    not_vacuumed: str | None = None
    """Why the tables cleanup deleted from were left to autovacuum."""
    seconds: float = 0.0
    message: str | None = None

    @property
    def rows(self) -> dict[str, int]:
        return self._summed("rows")

    @property
    def cleared(self) -> dict[str, int]:
        return self._summed("cleared")

    def _summed(self, counts: str) -> dict[str, int]:
        """Per table over every policy: two policies can reach the same table."""
        totals: dict[str, int] = {}
        for outcome in self.outcomes:
            for table, n in getattr(outcome, counts).items():
                totals[table] = totals.get(table, 0) + n
        return totals

    @property
    def failures(self) -> list[PolicyOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id, "dry_run": self.dry_run, "status": self.status,
            "started_at": self.started_at.isoformat(), "seconds": round(self.seconds, 3),
            "rows": self.rows, "set_null": self.cleared, "policies": [o.to_json() for o in self.outcomes],
            "age_overrides": self.age_overrides,
            "vacuumed": self.vacuumed, "not_vacuumed": self.not_vacuumed, "message": self.message,
        }


def effective_where(metadata: sa.MetaData, target: Target, dialect) -> tuple[sa.ColumnElement[bool], list[str]]:
    """The policy's rows, less those a child references without ON DELETE (they cannot go)."""
    table = metadata.tables[target.policy.table]
    where = target.policy.where(metadata, target.cutoff)
    exclusion, blockers = cascade.blocking_exclusion(table, metadata, dialect.unkept_links(metadata))
    return sa.and_(where, exclusion), blockers


def cleanup(
    db,
    request: CleanupRequest,
    *,
    metadata: sa.MetaData | None = None,
    policies=None,
    observer: Observer | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CleanupReport:
    """Apply the selected retention policies (or count what they would take, with dry_run).

    ``db`` is a tdbctl.runtime.Database. Raises UsageError for a bad request before touching the
    database, LockHeld when another cleanup runs on it. A policy that fails is reported in the
    outcome (status 'failed') and the others still run.
    """
    from tdbctl.schema import metadata as default_metadata
    from tdbctl.schema import policies_of

    request.validate()
    metadata = default_metadata if metadata is None else metadata
    policies = policies_of(metadata) if policies is None else policies
    observer = observer or Observer()
    now = utcnow()
    targets = request.targets(policies, COMMAND, now, metadata, db)
    report = CleanupReport(dry_run=request.dry_run, started_at=now, age_overrides=age_overrides(targets))
    started = time.monotonic()
    try:
        if request.dry_run:
            with retention_run(db, COMMAND, request) as run:
                _dry_run(db, metadata, targets, run, report, observer)
        else:
            with ExitStack() as stack:
                vacuum_db, not_vacuumed = _vacuum_connection(stack, db, request)
                run = stack.enter_context(retention_run(db, COMMAND, request, external_stop=should_stop))
                _delete(db, metadata, targets, request, report, observer, run, vacuum_db, not_vacuumed)
            report.status, report.message = run.record.status, run.record.message
    finally:
        report.seconds = time.monotonic() - started
    return report


def _vacuum_connection(stack: ExitStack, db, request) -> tuple:
    """(the database to VACUUM through, or None; why not). VACUUM goes to the server directly (it
    runs outside a transaction): found now, before any delete. Asked for with --vacuum, a pooler
    without a direct URL is an error; by default the run goes on, and says why if it deleted anything."""
    if request.vacuum is False:
        return None, None
    try:
        return stack.enter_context(open_direct(db.settings, "cleanup --vacuum")), None
    except UsageError as exc:
        if request.vacuum:
            raise
        return None, exc.message.replace("cleanup --vacuum needs", "VACUUM needs")


def _say_overrides(report: CleanupReport, observer: Observer) -> None:
    """Once the run has started (claimed, recorded): a refused run prints one line, no more."""
    if report.age_overrides:
        observer.ages_overridden(report.age_overrides)


def _outcome(target: Target) -> PolicyOutcome:
    policy = target.policy
    return PolicyOutcome(policy.name, policy.table, policy.action, target.age, target.cutoff, target.declared,
                         status="archive" if policy.action != "delete" else "done")


def _acting(targets, report, observer):
    """Each target with its outcome, which joins the report; archive policies, which cleanup leaves
    alone, are finished at once and not yielded."""
    for target in targets:
        outcome = _outcome(target)
        report.outcomes.append(outcome)
        if not target.deletes:
            observer.policy_finished(outcome)
            continue
        yield target, outcome


def _dry_run(db, metadata, targets, run, report, observer) -> None:
    record = run.record
    report.run_id = record.id
    report.status = "dry_run"
    _say_overrides(report, observer)
    # Rows an earlier policy of this run takes are not counted again by a later one.
    gone: dict[str, list] = {}
    with db.engine.connect() as conn:
        for target, outcome in _acting(targets, report, observer):
            observer.policy_started(outcome, None)
            table = metadata.tables[target.policy.table]
            where, outcome.blocked_by = effective_where(metadata, target, db.dialect)
            prior = gone.get(table.fullname)
            rows_clause = sa.and_(where, sa.not_(sa.or_(*prior))) if prior else where
            reached = cascade.impact(metadata, table, rows_clause)
            deleted, cleared = cascade.count(conn, reached, gone=gone)
            outcome.rows = {t: n for t, n in deleted.items() if n}
            outcome.cleared = {t: n for t, n in cleared.items() if n}
            if outcome.blocked_by:
                everything = target.policy.where(metadata, target.cutoff)
                outcome.kept_referenced = conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(everything, sa.not_(where))
                ).scalar_one()
            outcome.status = "would_delete" if outcome.rows else "nothing"
            outcome.partitions = [step.describe() for step in movers.steps(conn, db.dialect, metadata, target, COMMAND)
                                  if step.mover == "drop_partition"]
            for name, clauses in reached.deleted.items():
                gone.setdefault(name, []).extend(clauses)
            record.rows = dict(report.rows)
            observer.policy_finished(outcome)


def _delete(db, metadata, targets, request, report, observer, run, vacuum_db, not_vacuumed) -> None:
    record, claim, should_stop = run.record, run.claim, run.should_stop
    report.run_id = record.id
    _say_overrides(report, observer)

    def on_batch(outcome: PolicyOutcome, count: int) -> None:
        observer.rows_moved(outcome, count)
        record.rows = _merged(report.outcomes)
        run.save_now_and_then()

    for target, outcome in _acting(targets, report, observer):
        if run.reason:  # stopped during an earlier policy
            outcome.status = "stopped"
            observer.policy_finished(outcome)
            continue
        where, outcome.blocked_by = effective_where(metadata, target, db.dialect)
        total = None
        if observer.wants_totals:
            with db.engine.connect() as conn:
                table = metadata.tables[target.policy.table]
                total = conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
        observer.policy_started(outcome, total)
        try:
            with db.engine.connect() as conn:
                moves = movers.steps(conn, db.dialect, metadata, target, COMMAND)
                conn.rollback()
            work = _Work(db, metadata, request, claim, where, lambda n, o=outcome: on_batch(o, n), should_stop)
            for step in moves:
                MOVE[step.mover](work, target, outcome, step)
                if outcome.status == "stopped":
                    break
            if outcome.status != "stopped":
                outcome.status = "done" if outcome.deleted else "nothing"
        except ClaimLost:
            outcome.status = "failed"
            record.rows = _merged(report.outcomes)
            raise
        except (TdbError, sa_exc.SQLAlchemyError) as exc:
            outcome.status = "failed"
            outcome.message = _one_line(exc, db)
            if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
                record.rows = _merged(report.outcomes)
                raise ConnectionLost(
                    f"lost the connection to {db.settings.masked_url} during {target.name}, after "
                    f"{outcome.batches} committed batch{'es' if outcome.batches != 1 else ''} "
                    f"({outcome.message}): nothing of the batch in flight was committed; "
                    "run tdbctl cleanup again to continue") from exc
        record.rows = _merged(report.outcomes)
        run.save()
        observer.policy_finished(outcome)

    touched = sorted({t for o in report.outcomes for t in o.vacuum_targets()})
    if not_vacuumed and touched:
        report.not_vacuumed = not_vacuumed
    if vacuum_db is not None and touched and not run.reason:
        report.vacuumed = db.dialect.vacuum(vacuum_db.engine, touched)
    record.rows = _merged(report.outcomes)
    if report.failures:
        record.status = "failed"
        record.message = "; ".join(f"{o.policy}: {o.message}" for o in report.failures)


@dataclass
class _Work:
    """What cleanup's movers share within one policy."""

    db: object
    metadata: sa.MetaData
    request: CleanupRequest
    claim: object
    where: sa.ColumnElement[bool]
    """The policy's rows less those a child holds back without ON DELETE."""
    on_batch: Callable[[int], None]
    should_stop: Callable[[], bool]


def _drop_partition(work: _Work, target, outcome: PolicyOutcome, step) -> None:
    from tdbctl.partitions import drop

    if work.should_stop():
        outcome.status = "stopped"
        return
    drop(work.db, step.partition, work.claim)
    outcome.partitions.append(step.describe())
    outcome.add({target.policy.table: step.partition.rows or 0}, {})
    outcome.batches += 1
    work.on_batch(step.partition.rows or 0)


def _delete_rows(work: _Work, target, outcome: PolicyOutcome, step) -> None:
    where = work.where if step.table is None else target.policy.where(work.metadata, target.cutoff, step.table)
    PolicyDeleter(work.db, work.metadata, target, where, work.request, outcome, work.claim, on_batch=work.on_batch,
                  should_stop=work.should_stop, table=step.table).run()


MOVE = {"drop_partition": _drop_partition, "delete_rows": _delete_rows}
"""cleanup's movers (tdbctl.retention.movers), by name."""


def _merged(outcomes) -> dict[str, int]:
    totals: dict[str, int] = {}
    for outcome in outcomes:
        for table, n in outcome.rows.items():
            totals[table] = totals.get(table, 0) + n
    return totals


def _one_line(exc: BaseException, db) -> str:
    from tdbctl.runtime import driver_message

    if isinstance(exc, TdbError):
        return exc.message
    orig = getattr(exc, "orig", None)
    return driver_message(orig, db.settings) if orig is not None else " ".join(str(exc).split())
