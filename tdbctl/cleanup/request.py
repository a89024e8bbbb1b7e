"""What a cleanup run was asked to do: the retention request (tdbctl.retention.request) and cleanup's own defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tdbctl.errors import UsageError
from tdbctl.retention.request import RetentionRequest

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
class CleanupRequest(RetentionRequest):
    """What a cleanup run was asked: the shared retention request, with VACUUM and a statement timeout."""

    vacuum: bool | None = None
    """None: vacuum what was deleted from where a direct connection allows it (else say why not);
    True: the same, refused up front where it cannot; False: leave it to autovacuum."""
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT

    MAX_BATCH_SIZE = MAX_BATCH_SIZE

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
        request = cls(policies=tuple(policies), tables=tuple(tables), batch_size=batch_size, dry_run=dry_run,
                      vacuum=vacuum, lock_timeout=lock_timeout, statement_timeout=statement_timeout,
                      **cls.parsed(older_than, before, max_runtime))
        request.validate()
        return request

    def validate(self) -> None:
        super().validate()
        if not self.statement_timeout > 0:
            raise UsageError("--statement-timeout: give a positive number of seconds")

    def options(self) -> dict:
        return {**super().options(), "vacuum": self.vacuum, "statement_timeout": self.statement_timeout}
