"""What a cleanup run was asked to do, checked before anything touches the database.

Every refusal here is a UsageError (exit 2): a cron line with a typo must change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

from tdbctl.errors import TdbError, UsageError
from tdbctl.ops.durations import parse_date, parse_duration

DEFAULT_BATCH_SIZE = 2000
# PostgreSQL deleting a table nothing references by ranges of pages: a batch costs what a plain
# DELETE of its rows costs (about 1 to 3 microseconds a row, so 10-30 ms here), and a batch's
# fixed cost (a round trip, a commit) is paid 5 times less often than at 2000.
DEFAULT_PAGE_BATCH_SIZE = 10_000
# A batch is one transaction holding its rows' locks: past this size it is no longer short, and
# its IN lists would pass SQLite's limit on bound parameters.
MAX_BATCH_SIZE = 10_000
DEFAULT_LOCK_TIMEOUT = 1.0
DEFAULT_STATEMENT_TIMEOUT = 10.0


@dataclass(frozen=True)
class CleanupRequest:
    policies: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    older_than: timedelta | None = None
    before: datetime | None = None
    batch_size: int | None = None
    """None: DEFAULT_BATCH_SIZE keys a batch, or DEFAULT_PAGE_BATCH_SIZE rows for a page walk."""
    max_runtime: timedelta | None = None
    dry_run: bool = False
    vacuum: bool | None = None
    """None: vacuum what was deleted from where a direct connection allows it (else say why not);
    True: the same, refused up front where it cannot; False: leave it to autovacuum."""
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
    # The text the user typed, for the run record and the summary ("90d", "2025-01-01").
    typed: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_options(
        cls,
        *,
        policies: Sequence[str] = (),
        tables: Sequence[str] = (),
        older_than: str | None = None,
        before: str | None = None,
        batch_size: int | None = None,
        max_runtime: str | None = None,
        dry_run: bool = False,
        vacuum: bool | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    ) -> "CleanupRequest":
        """Parse the command line's text; raises UsageError on anything malformed."""
        request = cls(
            policies=tuple(policies),
            tables=tuple(tables),
            older_than=parse_duration(older_than, option="--older-than") if older_than is not None else None,
            before=parse_date(before, option="--before") if before is not None else None,
            batch_size=batch_size,
            max_runtime=parse_duration(max_runtime, option="--max-runtime") if max_runtime is not None else None,
            dry_run=dry_run,
            vacuum=vacuum,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            typed={"older_than": older_than, "before": before, "max_runtime": max_runtime},
        )
        request.validate()
        return request

    def validate(self) -> None:
        if self.batch_size is None:
            pass
        elif isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise UsageError(f"--batch-size: {self.batch_size!r} is not a whole number")
        elif not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise UsageError(f"--batch-size: {self.batch_size} is out of range; give 1 to {MAX_BATCH_SIZE}")
        if self.older_than is not None and self.before is not None:
            raise UsageError("give --older-than or --before, not both")
        if self.older_than is not None and self.older_than <= timedelta(0):
            raise UsageError("--older-than: give a positive duration")
        if self.max_runtime is not None and self.max_runtime <= timedelta(0):
            raise UsageError("--max-runtime: give a positive duration")
        if self.policies and self.tables:
            raise UsageError("give --policy or --table, not both")
        for name, value in (("--lock-timeout", self.lock_timeout), ("--statement-timeout", self.statement_timeout)):
            if not value > 0:
                raise UsageError(f"{name}: give a positive number of seconds")

    def options(self) -> dict:
        """What tdbctl.runs records (never a URL)."""
        return {
            "policies": list(self.policies),
            "tables": list(self.tables),
            "older_than": self.typed.get("older_than") or _text(self.older_than),
            "before": self.typed.get("before") or (self.before.isoformat() if self.before else None),
            "batch_size": self.batch_size,
            "max_runtime": self.typed.get("max_runtime") or _text(self.max_runtime),
            "dry_run": self.dry_run,
            "vacuum": self.vacuum,
            "lock_timeout": self.lock_timeout,
            "statement_timeout": self.statement_timeout,
        }


def _text(value: timedelta | None) -> str | None:
    return None if value is None else f"{int(value.total_seconds())}s"


@dataclass(frozen=True)
class Target:
    """One selected policy, with the cutoff this run uses for it."""

    policy: object  # tdbctl.schema.policies.RetentionPolicy
    cutoff: datetime | None
    age: str
    """How the cutoff came about, for people: '90d (--older-than)', '7d (policy)', 'no age'."""
    declared: str | None = None
    """The policy's own age where an option replaced it with another: '180d'."""
    used: str | None = None
    """What replaced it, as typed: '90d', 'before 2025-01-01T00:00:00+00:00'."""

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def deletes(self) -> bool:
        return self.policy.action == "delete"


def select_targets(policies: Iterable, request: CleanupRequest, now: datetime, metadata=None) -> list[Target]:
    """The policies the request selects, in declaration order, each with its cutoff.

    With ``metadata``, a cutoff on a column without a time zone is naive UTC wall time (see
    ``tdbctl.ops.selection.in_column_time``); without it every cutoff is an aware UTC datetime.

    Archive policies come back too (cleanup lists them as left to `tdbctl archive`); a selection
    of nothing but archive policies is refused, since cleanup would do nothing it was asked to.
    """
    policies = list(policies)
    by_name = {p.name: p for p in policies}
    tables = sorted({p.table for p in policies})
    if request.policies:
        unknown = [n for n in request.policies if n not in by_name]
        if unknown:
            raise UsageError(
                f"unknown policy {', '.join(map(repr, unknown))}; valid policies: {', '.join(by_name)}"
            )
        chosen = [p for p in policies if p.name in set(request.policies)]
    elif request.tables:
        wanted = {_qualified(t, tables, metadata) for t in request.tables}
        unknown = [t for t in request.tables if _qualified(t, tables, metadata) not in tables]
        if unknown:
            raise UsageError(
                f"no retention policy for table {', '.join(map(repr, unknown))}; "
                f"tables with policies: {', '.join(tables)}"
            )
        chosen = [p for p in policies if p.table in wanted]
    else:
        chosen = policies
    if (request.policies or request.tables) and not any(p.action == "delete" for p in chosen):
        names = ", ".join(f"{p.name} ({_archive_destination(p)})" for p in chosen)
        raise UsageError(
            f"nothing to clean up: the selected polic{'y archives' if len(chosen) == 1 else 'ies archive'} "
            f"rows, which cleanup never deletes: {names}; use `tdbctl archive`"
        )
    targets = [_target(p, request, now) for p in chosen]
    if metadata is None:
        return targets
    from tdbctl.ops.selection import in_column_time  # SQLAlchemy: only once a database is involved

    return [replace(t, cutoff=in_column_time(t.policy, metadata, t.cutoff)) for t in targets]


def _qualified(given: str, tables: list[str], metadata) -> str:
    """``schema.table`` for a bare name that one schema's policies have (archive takes the same)."""
    if "." in given or metadata is None:
        return given
    from tdbctl.ops.selection import qualify_table

    return qualify_table(metadata, given, tables)


def _instead(declared: str | None) -> str:
    return f", instead of the declared {declared}" if declared else ""


def age_overrides(targets: Iterable[Target]) -> list[dict]:
    """The policies whose declared age an option replaces: what the cron line's --older-than does."""
    return [{"policy": t.name, "table": t.policy.table, "declared": t.declared, "used": t.used}
            for t in targets if t.declared and t.deletes]


def _archive_destination(policy) -> str:
    if policy.archive_table:
        return f"to {policy.archive_table}"
    if policy.archive_status:
        return f"in place, status {policy.archive_status!r}"
    return "archive"


def _target(policy, request: CleanupRequest, now: datetime) -> Target:
    if policy.action != "delete":
        return Target(policy, None, f"{policy.default_age or 'no age'} (archive: tdbctl archive)")
    if policy.age_column is None:
        # Condition-only policies (orphans): an age option has nothing to measure here.
        return Target(policy, None, "no age (condition only)")
    if request.before is not None:
        cutoff = request.before.astimezone(timezone.utc)
        if cutoff > now:
            raise UsageError(f"--before {request.typed.get('before') or cutoff.isoformat()} is in the future")
        declared = policy.default_age
        used = f"before {cutoff.isoformat()}"
        return Target(policy, cutoff, f"{used} (--before{_instead(declared)})", declared, used)
    if request.older_than is not None:
        typed = request.typed.get("older_than") or _text(request.older_than)
        declared = policy.default_age
        if declared and parse_duration(declared, option=f"policy {policy.name}", allow_zero=True) == request.older_than:
            declared = None
        return Target(policy, now - request.older_than, f"{typed} (--older-than{_instead(declared)})", declared, typed)
    if not policy.default_age:
        raise TdbError(f"policy {policy.name} has an age column but no default age: fix its declaration")
    age = parse_duration(policy.default_age, option=f"policy {policy.name}", allow_zero=True)
    return Target(policy, now - age, f"{policy.default_age} (policy)")
