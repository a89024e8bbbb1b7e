"""What a retention run was asked to do, checked before anything touches the database.

``RetentionRequest`` holds what cleanup and archive are both asked (which policies, what age, how
long, a dry run); each command's request adds its own (cleanup: vacuum, statement timeout;
archive: where the files go, compression). Every refusal is a UsageError (exit 2): a cron line
with a typo must change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Sequence

from tdbctl.errors import UsageError
from tdbctl.ops.durations import parse_date, parse_duration


@dataclass(frozen=True)
class RetentionRequest:
    policies: Sequence[str] = ()
    tables: Sequence[str] = ()
    older_than: timedelta | None = None
    before: datetime | None = None
    batch_size: int | None = None
    """None: the command's and dialect's own default."""
    max_runtime: timedelta | None = None
    dry_run: bool = False
    lock_timeout: float = 1.0
    typed: dict = field(default_factory=dict, compare=False)
    """The text the user typed, for the run record and the summary ("90d", "2025-01-01")."""

    MAX_BATCH_SIZE = None

    @staticmethod
    def parsed(older_than: str | None, before: str | None, max_runtime: str | None) -> dict:
        """The command line's text for the shared options, parsed (UsageError on anything malformed)."""
        return {
            "older_than": parse_duration(older_than, option="--older-than") if older_than is not None else None,
            "before": parse_date(before, option="--before") if before is not None else None,
            "max_runtime": parse_duration(max_runtime, option="--max-runtime") if max_runtime is not None else None,
            "typed": {"older_than": older_than, "before": before, "max_runtime": max_runtime},
        }

    def validate(self) -> None:
        if self.batch_size is not None:
            if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
                raise UsageError(f"--batch-size: {self.batch_size!r} is not a whole number")
            most = self.MAX_BATCH_SIZE
            if self.batch_size < 1 or (most is not None and self.batch_size > most):
                raise UsageError(f"--batch-size: {self.batch_size} is out of range; give 1 to {most}" if most
                                 else "--batch-size must be at least 1")
        if self.older_than is not None and self.before is not None:
            raise UsageError("give --older-than or --before, not both")
        if self.older_than is not None and self.older_than <= timedelta(0):
            raise UsageError("--older-than: give a positive duration")
        if self.before is not None and self.before > datetime.now(timezone.utc):
            raise UsageError(f"--before {self.typed.get('before') or self.before.isoformat()} is in the future")
        if self.max_runtime is not None and self.max_runtime <= timedelta(0):
            raise UsageError("--max-runtime: give a positive duration")
        if self.policies and self.tables:
            raise UsageError("give --policy or --table, not both")
        if not self.lock_timeout > 0:
            raise UsageError("--lock-timeout: give a positive number of seconds")

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
            "lock_timeout": self.lock_timeout,
        }

    def targets(self, policies, command: str, now: datetime, metadata=None, db=None):
        """The selected policies with their cutoffs; with ``db``, only those on the domains it has (a
        policy named, or a table given, on a domain it lacks is an error)."""
        from tdbctl.domains import only_installed
        from tdbctl.retention.selection import select

        found = select(policies, command, names=self.policies, tables=self.tables, older_than=self.older_than,
                       before=self.before, typed=self.typed, now=now, metadata=metadata)
        if db is None:
            return found
        return only_installed(found, db.domains, explicit=bool(self.policies or self.tables),
                              domain_of=lambda target: target.policy.table.split(".", 1)[0])


def _text(value: timedelta | None) -> str | None:
    return None if value is None else f"{int(value.total_seconds())}s"
