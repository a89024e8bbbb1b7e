"""Which retention policies a run takes, and the cutoff each one uses: cleanup's and archive's one answer.

A run names policies (--policy) or tables (--table, schema.table or a bare name one schema has);
each selected policy gets a Target: its cutoff from --before, else now less --older-than, else
now less the policy's declared age, in the age column's own kind of time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable

from tdbctl.errors import TdbError, UsageError
from tdbctl.ops.durations import parse_duration

ACTIONS = {"cleanup": "delete", "archive": "archive"}
"""The policy action each command carries out; cleanup lists the others as left alone."""


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
    acts: bool = True
    """False for a policy the command leaves to the other one (cleanup lists archive policies)."""

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def deletes(self) -> bool:
        return self.policy.action == "delete"


def select(policies: Iterable, command: str, *, names: Iterable[str] = (), tables: Iterable[str] = (),
           older_than: timedelta | None = None, before: datetime | None = None, typed: dict | None = None,
           now: datetime, metadata=None) -> list[Target]:
    """The policies a run of ``command`` takes, in declaration order, each with its cutoff.

    cleanup also returns the archive policies it was pointed at, as targets that do not act (it
    lists them as left to `tdbctl archive`); a selection with nothing to act on is refused.
    With ``metadata``, a cutoff on a column without a time zone is naive UTC wall time
    (``in_column_time``); without it every cutoff is an aware UTC datetime.
    """
    action = ACTIONS[command]
    typed = typed or {}
    names, tables = list(names), list(tables)
    candidates = [p for p in policies if command == "cleanup" or p.action == action]
    by_name = {p.name: p for p in candidates}
    policy_tables = sorted({p.table for p in candidates})
    if names and tables:
        raise UsageError("give --policy or --table, not both")
    if names:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise UsageError(f"unknown policy {', '.join(map(repr, unknown))}; valid policies: "
                             f"{', '.join(by_name) or 'none'}")
        chosen = [p for p in candidates if p.name in set(names)]
    elif tables:
        wanted = {_qualified(t, policy_tables, metadata) for t in tables}
        unknown = [t for t in tables if _qualified(t, policy_tables, metadata) not in policy_tables]
        if unknown:
            raise UsageError(f"no {'retention' if command == 'cleanup' else action} policy for table "
                             f"{', '.join(map(repr, unknown))}; tables with one: {', '.join(policy_tables) or 'none'}")
        chosen = [p for p in candidates if p.table in wanted]
    else:
        chosen = candidates
    if (names or tables) and not any(p.action == action for p in chosen):
        listed = ", ".join(f"{p.name} ({_archive_destination(p)})" for p in chosen)
        raise UsageError(
            f"nothing to clean up: the selected polic{'y archives' if len(chosen) == 1 else 'ies archive'} "
            f"rows, which cleanup never deletes: {listed}; use `tdbctl archive`")
    targets = [_target(p, action, older_than, before, typed, now) for p in chosen]
    if metadata is None:
        return targets
    from dataclasses import replace

    return [replace(t, cutoff=in_column_time(t.policy, metadata, t.cutoff)) for t in targets]


def _qualified(given: str, tables: list[str], metadata) -> str:
    if "." in given or metadata is None:
        return given
    return qualify_table(metadata, given, tables)


def qualify_table(metadata, given: str, choices: list[str]) -> str:
    """schema.table as given, or a bare table name when exactly one schema has it."""
    if "." in given:
        if given not in metadata.tables:
            raise UsageError(f"--table {given!r}: no such table; tables with a policy: {', '.join(choices)}")
        return given
    found = sorted(name for name in metadata.tables if name.split(".", 1)[-1] == given)
    if not found:
        raise UsageError(f"--table {given!r}: no such table; tables with a policy: {', '.join(choices)}")
    if len(found) > 1:
        raise UsageError(f"--table {given!r} is ambiguous: {', '.join(found)}; give schema.table")
    return found[0]


def _instead(declared: str | None) -> str:
    return f", instead of the declared {declared}" if declared else ""


def _text(value: timedelta | None) -> str | None:
    return None if value is None else f"{int(value.total_seconds())}s"


def _archive_destination(policy) -> str:
    if policy.archive_table:
        return f"to {policy.archive_table}"
    if policy.archive_status:
        return f"in place, status {policy.archive_status!r}"
    return "archive"


def age_overrides(targets: Iterable[Target]) -> list[dict]:
    """The policies whose declared age an option replaces: what the cron line's --older-than does."""
    return [{"policy": t.name, "table": t.policy.table, "declared": t.declared, "used": t.used}
            for t in targets if t.declared and t.acts]


def _target(policy, action: str, older_than, before, typed: dict, now: datetime) -> Target:
    if policy.action != action:
        return Target(policy, None, f"{policy.default_age or 'no age'} (archive: tdbctl archive)", acts=False)
    if policy.age_column is None:
        # Condition-only policies (orphans): an age option has nothing to measure here.
        return Target(policy, None, "no age (condition only)")
    if before is not None:
        cutoff = before.astimezone(timezone.utc)
        if cutoff > now:
            raise UsageError(f"--before {typed.get('before') or cutoff.isoformat()} is in the future")
        declared = policy.default_age
        used = f"before {cutoff.isoformat()}"
        return Target(policy, cutoff, f"{used} (--before{_instead(declared)})", declared, used)
    if older_than is not None:
        shown = typed.get("older_than") or _text(older_than)
        declared = policy.default_age
        if declared and parse_duration(declared, option=f"policy {policy.name}", allow_zero=True) == older_than:
            declared = None
        return Target(policy, now - older_than, f"{shown} (--older-than{_instead(declared)})", declared, shown)
    if not policy.default_age:
        raise TdbError(f"policy {policy.name} has an age column but no default age: fix its declaration")
    return Target(policy, now - policy_age(policy, None), f"{policy.default_age} (policy)")


def policy_age(policy, older_than: timedelta | None) -> timedelta | None:
    """--older-than when given, else the policy's own age; None for a policy without an age."""
    if policy.age_column is None:
        return None
    if older_than is not None:
        return older_than
    return parse_duration(policy.default_age or "0d", option=f"policy {policy.name}", allow_zero=True)


def in_column_time(policy, metadata, cutoff: datetime | None) -> datetime | None:
    """``cutoff`` as the policy's age column holds time.

    Columns without a time zone (ChatTrain's TIMESTAMPs) hold UTC wall time. Compared with an
    aware cutoff, PostgreSQL would read them in the session's TimeZone: on a server set to
    Pacific/Kiritimati every row would look 14 hours older than it is, and a 12h cleanup would
    take rows 2 hours old. A naive UTC cutoff compares wall time with wall time on both dialects.
    """
    if cutoff is None or policy.age_column is None:
        return cutoff
    column = policy.table_object(metadata).c[policy.age_column]
    if getattr(column.type, "timezone", True):
        return cutoff
    return cutoff.astimezone(timezone.utc).replace(tzinfo=None)
