"""Progress of synthetic generation on stderr: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Receives what the generator does; the default shows nothing."""

    def start(self, domain: str, sessions: int) -> None:
        pass

    def advance(self, domain: str, sessions_done: int, rows: int) -> None:
        pass

    def finish(self, domain: str, rows: int, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass


class PlainProgress(Progress):
    """One line per domain start and end, and at most one every few seconds in between (cron logs)."""

    def __init__(self, stream=None, every_seconds: float = 5.0):
        self.stream = stream or sys.stderr
        self.every = every_seconds
        self.last = 0.0
        self.totals: dict[str, int] = {}

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, domain: str, sessions: int) -> None:
        self.totals[domain] = sessions
        self.last = time.monotonic()
        self._line(f"synthetic {domain}: generating {sessions:,} sessions")

    def advance(self, domain: str, sessions_done: int, rows: int) -> None:
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self._line(f"synthetic {domain}: {sessions_done:,}/{self.totals[domain]:,} sessions, {rows:,} rows")

    def finish(self, domain: str, rows: int, seconds: float) -> None:
        rate = rows / seconds if seconds > 0 else 0
        self._line(f"synthetic {domain}: {rows:,} rows in {seconds:.1f}s ({rate:,.0f} rows/s)")


class RichProgress(Progress):
    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rows]}"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=False,
        )
        self.tasks: dict[str, int] = {}

    def start(self, domain: str, sessions: int) -> None:
        # Started with the first domain, not before: the bar refreshes on a thread of its own, and
        # the generating processes are forked while the run has only one (see producer.py).
        if not self.tasks:
            self.bar.start()
        self.tasks[domain] = self.bar.add_task(f"synthetic {domain}", total=sessions, rows="0 rows")

    def advance(self, domain: str, sessions_done: int, rows: int) -> None:
        self.bar.update(self.tasks[domain], completed=sessions_done, rows=f"{rows:,} rows")

    def finish(self, domain: str, rows: int, seconds: float) -> None:
        rate = rows / seconds if seconds > 0 else 0
        self.bar.update(self.tasks[domain], rows=f"{rows:,} rows, {rate:,.0f}/s")

    def close(self) -> None:
        self.bar.stop()
