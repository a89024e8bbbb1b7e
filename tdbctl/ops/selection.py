"""Which retention policies a run takes (--policy, --table), and the cutoff each one uses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

import sqlalchemy as sa

from tdbctl.errors import UsageError
from tdbctl.ops.durations import parse_duration
from tdbctl.schema.policies import RetentionPolicy, policies_of


def select_policies(
    metadata: sa.MetaData, action: str, names: Iterable[str] = (), tables: Iterable[str] = ()
) -> list[RetentionPolicy]:
    """The policies of ``action``; with --policy or --table, those named (either way matches).

    An unknown policy or a table without such a policy is a usage error naming the valid choices;
    a bare table name found in more than one schema is refused as ambiguous.
    """
    candidates = [p for p in policies_of(metadata) if p.action == action]
    names, tables = list(names), list(tables)
    if not names and not tables:
        return candidates
    by_name = {p.name: p for p in candidates}
    chosen: list[RetentionPolicy] = []
    for name in names:
        if name not in by_name:
            raise UsageError(f"--policy {name!r}: no {action} policy of that name; "
                             f"{action} policies: {', '.join(sorted(by_name)) or 'none'}")
        chosen.append(by_name[name])
    policy_tables = sorted({p.table for p in candidates})
    for given in tables:
        table = qualify_table(metadata, given, policy_tables)
        matching = [p for p in candidates if p.table == table]
        if not matching:
            raise UsageError(f"--table {given!r}: no {action} policy covers it; "
                             f"tables with one: {', '.join(policy_tables) or 'none'}")
        chosen.extend(matching)
    return [p for p in candidates if p in chosen]


def qualify_table(metadata: sa.MetaData, given: str, choices: list[str]) -> str:
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


def policy_age(policy: RetentionPolicy, older_than: timedelta | None) -> timedelta | None:
    """--older-than when given, else the policy's own age; None for a policy without an age."""
    if policy.age_column is None:
        return None
    if older_than is not None:
        return older_than
    return parse_duration(policy.default_age or "0d", option=f"policy {policy.name}", allow_zero=True)


def policy_cutoff(
    policy: RetentionPolicy, metadata: sa.MetaData, older_than: timedelta | None, now: datetime,
    before: datetime | None = None,
) -> datetime | None:
    """The time before which the policy's rows qualify (``before``, else now less the age), in the
    age column's own kind of time."""
    if before is not None and policy.age_column is not None:
        return in_column_time(policy, metadata, before.astimezone(timezone.utc))
    age = policy_age(policy, older_than)
    if age is None:
        return None
    return in_column_time(policy, metadata, now.astimezone(timezone.utc) - age)


def in_column_time(policy: RetentionPolicy, metadata: sa.MetaData, cutoff: datetime | None) -> datetime | None:
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
