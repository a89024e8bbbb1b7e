"""The one run driver of cleanup and archive: claim, run record, time budget, progress.

    with retention_run(db, "archive", request) as run:
        for target in targets:
            if run.should_stop(): ...
            ... a mover moves rows, calling run.progress(counts) after each committed batch ...

A real run holds the command's claim (tdbctl.ops.claims) for its whole length and marks the
command's earlier 'running' records as killed; a dry run takes no claim. Either way the run is
recorded in tdbctl.runs in short transactions of its own, whatever its end: the rows counted so
far are written as it goes (at most every PROGRESS_EVERY seconds), so a killed run's record tells
how far it got, and the status says whether it finished, stopped on its time budget, or failed.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator

from tdbctl.ops.runs import RunRecord, mark_killed, recorded_run, save_progress

PROGRESS_EVERY = 10.0
"""Seconds between writes of the rows counted so far to the run record."""


class Observer:
    """What a front end hears while a retention run goes on (progress bars, plain lines): one
    protocol for cleanup and archive. Every method may be left as it is (nothing)."""

    wants_totals = False
    """True: count each policy's rows before moving them, for a progress bar's total."""

    def note(self, text: str) -> None:
        """A line of news: a batch retried, a killed run's batch recovered, a policy's summary."""

    def ages_overridden(self, overrides: list[dict]) -> None: ...

    def policy_started(self, outcome, total: int | None) -> None: ...

    def rows_moved(self, outcome, count: int) -> None:
        """A batch committed: ``count`` of the policy's own rows left (deleted, archived, marked)."""

    def policy_finished(self, outcome) -> None: ...


class Lines(Observer):
    """Each note as a line through ``say`` (the CLI's stderr)."""

    def __init__(self, say: Callable[[str], None]):
        self.note = say


class Run:
    def __init__(self, db, record: RunRecord, claim, request, external_stop: Callable[[], bool] | None):
        self.db, self.record, self.claim, self.request = db, record, claim, request
        self.started = time.monotonic()
        self.deadline = (self.started + request.max_runtime.total_seconds()) if request.max_runtime else None
        self._external_stop = external_stop or (lambda: False)
        self.reason: str | None = None
        """Why the run stopped before it was done: its time budget, or a request to stop."""
        self._saved = float("-inf")

    @property
    def id(self) -> int:
        return self.record.id

    def should_stop(self) -> bool:
        """Checked before each batch: a batch under way always finishes (or rolls back whole)."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.reason = f"stopped by --max-runtime {self.request.options()['max_runtime']}"
        elif self._external_stop():
            self.reason = "stopped on request"
        return self.reason is not None

    def progress(self, counts: dict[str, int]) -> None:
        """A batch committed these rows per table: counted in, and written to the record now and then."""
        for table, count in counts.items():
            self.record.add_rows(table, count)
        self.save_now_and_then()

    def save_now_and_then(self) -> None:
        if time.monotonic() - self._saved >= PROGRESS_EVERY:
            self.save()

    def save(self) -> None:
        save_progress(self.db.engine, self.record)
        self._saved = time.monotonic()


@contextmanager
def retention_run(db, command: str, request, *, lock_wait: float = 0.0,
                  external_stop: Callable[[], bool] | None = None, claim=None) -> Iterator[Run]:
    """Validate once, claim (not for a dry run, or ``claim`` already held), record, yield the Run;
    on the way out the record says stopped (with why) or what the block set."""
    from tdbctl.ops.claims import claimed

    request.validate()
    with ExitStack() as stack:
        if not request.dry_run and claim is None:
            claim = stack.enter_context(claimed(db, command, lock_wait))
        if not request.dry_run:
            mark_killed(db.engine, command)
        with recorded_run(db.engine, command, request.options(), dry_run=request.dry_run) as record:
            run = Run(db, record, claim, request, external_stop)
            yield run
            if run.reason and record.status == "succeeded":
                record.status = "stopped"
                record.message = record.message or f"{run.reason}; the next run continues where this one stopped"
