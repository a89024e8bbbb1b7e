"""What every command shares: global state, options declared once, and output rendering.

Data goes to stdout; logs, progress and errors to stderr. On a terminal, rich tables; elsewhere
(cron, pipes) plain tab-separated lines without colour; ``--json`` for scripts.
"""


import json as jsonlib
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, List, Optional, Sequence

import typer


@dataclass
class GlobalState:
    database_url: str | None = None
    debug: bool = False
    json: bool = False


STATE = GlobalState()

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout for scripts.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
# The selection shared by the retention commands (cleanup, archive): one declaration, one wording.
PolicyOption = Annotated[
    Optional[List[str]],
    typer.Option("--policy", metavar="NAME", show_default=False, help="Only this policy (repeatable)."),
]
TableOption = Annotated[
    Optional[List[str]],
    typer.Option("--table", metavar="SCHEMA.TABLE", show_default=False,
                 help="Only the policies of this table (repeatable)."),
]
OlderThanOption = Annotated[
    Optional[str],
    typer.Option("--older-than", metavar="AGE", show_default=False,
                 help="Take rows older than AGE (90d, 12h, 2w, 6mo, 1y) instead of each policy's own age."),
]
BeforeOption = Annotated[
    Optional[str],
    typer.Option("--before", metavar="DATE", show_default=False,
                 help="Take rows older than this date (2025-01-01) instead of each policy's own age."),
]
MaxRuntimeOption = Annotated[
    Optional[str],
    typer.Option("--max-runtime", metavar="DURATION", show_default=False,
                 help="Start no new batch after this long (30m, 2h); the next run carries on."),
]
LockWaitOption = Annotated[
    Optional[float],
    typer.Option("--lock-wait", metavar="SECONDS", min=0, show_default=False,
                 help="Seconds to wait for another tdbctl run on this database to finish [default: 60]."),
]
WaitForRunOption = Annotated[
    float,
    typer.Option("--lock-wait", min=0, metavar="SECONDS",
                 help="Wait this long for another tdbctl run on this database to end (then exit 5)."),
]
"""--lock-wait for a command that by default does not wait (the default shown is the command's)."""
LockTimeoutOption = Annotated[
    Optional[float],
    typer.Option("--lock-timeout", metavar="SECONDS", min=0.001, show_default=False,
                 help="Seconds a statement may wait for a table lock (PostgreSQL) [default: 10]."),
]


def settings():
    """The resolved configuration for this invocation (URL precedence: see tdbctl.config)."""
    from tdbctl.config import resolve

    return resolve(STATE.database_url)


def _default(value: Any):
    """JSON for what json does not know. A moment is ISO 8601 in UTC with its offset on both
    dialects (SQLite hands back naive UTC datetimes, PostgreSQL aware ones)."""
    if isinstance(value, datetime):
        from tdbctl.ops.humanize import as_utc

        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_NUMERIC = re.compile(r"-?[\d,]+(\.\d+)?( ?(B|KiB|MiB|GiB|TiB|%|s|ms))?|-")


def _cell(value: Any, terminal: bool) -> str:
    """One way to write a value in every command's tables: counts with thousands separators on a
    terminal (raw in plain lines, for awk), moments in UTC, nothing for None."""
    from tdbctl.ops.humanize import moment

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if terminal else str(value)
    if isinstance(value, float):
        return f"{value:,.2f}" if terminal else f"{value:g}"
    if isinstance(value, datetime):
        return moment(value)
    return str(value)


def _room(columns: int, width: int) -> int:
    """What a SIMPLE_HEAD table without edges leaves for text: each column has a space of padding
    on either side, and one space stands between columns."""
    return width - 2 * columns - (columns - 1)


def _widths(columns: Sequence[str], cells: list[list[str]], words: list[int], width: int) -> list[int]:
    """Each column's width, decided here rather than by rich (which narrows a column below its
    longest word, then crops what still does not fit): at least the longest word, and the room
    left over shared in proportion to what each column would need to hold its cells unwrapped."""
    natural = [max([len(column)] + [len(row[i]) for row in cells]) for i, column in enumerate(columns)]
    room = _room(len(columns), width)
    if sum(natural) <= room:
        return natural
    wants = [n - w for n, w in zip(natural, words)]
    return [w + (room - sum(words)) * want // (sum(wants) or 1) for w, want in zip(words, wants)]


class Output:
    def __init__(self, json: bool = False):
        self.json = json
        STATE.json = json
        self.terminal = sys.stdout.isatty()
        self._file = None
        """Where stdout's text goes instead, while a page is gathered for the pager or --watch."""
        self._width: int | None = None

    @classmethod
    def rendered(cls, draw, columns: int) -> str:
        """What ``draw(out)`` prints on a terminal ``columns`` wide, as text with its escapes."""
        import io

        out = cls()
        out.terminal, out._file, out._width = True, io.StringIO(), columns
        draw(out)
        return out._file.getvalue()

    @contextmanager
    def paged(self, enabled: bool = True):
        """git's way: on a terminal, what is taller than the terminal goes through $PAGER (else
        ``less`` with LESS=FRX: quit if it fits, keep colours, leave the text on screen); under cron
        or a pipe, straight out."""
        import shutil

        if not (enabled and self.terminal and not self.json and self._file is None):
            yield
            return
        import io

        columns, lines = shutil.get_terminal_size()
        self._file, self._width = io.StringIO(), columns
        try:
            yield
        finally:
            text, self._file, self._width = self._file.getvalue(), None, None
        if text.count("\n") < lines - 1 or not _page(text):
            sys.stdout.write(text)

    def console(self):
        from rich.console import Console

        if self._file is not None:
            return Console(file=self._file, force_terminal=True, width=self._width)
        return Console()

    def data(self, document: Any) -> None:
        (self._file or sys.stdout).write(jsonlib.dumps(document, indent=2, default=_default) + "\n")

    def line(self, text: str = "") -> None:
        (self._file or sys.stdout).write(text + "\n")

    def log(self, text: str) -> None:
        sys.stderr.write(text + "\n")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Rows under a title. On a terminal: numbers right-aligned, and no identifier ever cut
        short: a column is at least as wide as its longest word (text wraps at spaces); where the
        terminal is too narrow for that, each row is printed as a block of ``column  value`` lines
        instead (as psql's expanded display). Elsewhere: tab-separated lines under ``# title``."""
        cells = [[_cell(v, self.terminal) for v in row] for row in rows]
        if not self.terminal:
            self.line(f"# {title}")
            self.line("\t".join(columns))
            for row in cells:
                self.line("\t".join(row))
            return
        from rich import box
        from rich.table import Table

        console = self.console()
        # A column empty in every row says nothing on a screen: left out there (kept in plain lines).
        shown = [i for i, _ in enumerate(columns) if i == 0 or any(row[i] for row in cells)] if cells else \
            list(range(len(columns)))
        columns = [columns[i] for i in shown]
        cells = [[row[i] for i in shown] for row in cells]
        words = [max([len(w) for w in column.split()] + [len(w) for row in cells for w in row[i].split()])
                 for i, column in enumerate(columns)]
        if sum(words) > _room(len(words), console.width):
            self._records(console, title, columns, cells)
            return
        table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False)
        for i, (column, width) in enumerate(zip(columns, _widths(columns, cells, words, console.width))):
            numeric = bool(cells) and all(_NUMERIC.fullmatch(row[i]) for row in cells if row[i])
            table.add_column(column, justify="right" if numeric else "left", width=width, overflow="fold")
        for row in cells:
            table.add_row(*row)
        console.print(table)

    def _records(self, console, title: str, columns: Sequence[str], cells: list[list[str]]) -> None:
        from rich.table import Table

        console.print(title, style="bold")
        label = max(len(c) for c in columns[1:]) + 2 if len(columns) > 1 else 0
        for row in cells:
            console.print(row[0], style="bold", overflow="fold")
            block = Table.grid(padding=(0, 2))
            block.add_column(no_wrap=True, min_width=label)
            block.add_column(overflow="fold")
            for column, value in zip(columns[1:], row[1:]):
                if value:
                    block.add_row(f"  {column}", value)
            if block.row_count:
                console.print(block)

    def fields(self, title: str, pairs: Sequence[tuple[str, Any]]) -> None:
        if self.terminal:
            from rich.table import Table

            table = Table(title=title or None, title_justify="left", title_style="bold", show_header=False, box=None)
            table.add_column(style="bold", no_wrap=True)
            table.add_column(overflow="fold")
            for key, value in pairs:
                table.add_row(key, _cell(value, True))
            self.console().print(table)
        else:
            width = max(len(k) for k, _ in pairs)
            for key, value in pairs:
                self.line(f"{key.ljust(width)}  {_cell(value, False)}")


def _page(text: str) -> bool:
    """Show ``text`` through the pager; False if there is none to run (then the caller prints)."""
    import os
    import shlex
    import shutil
    import signal
    import subprocess

    command = os.environ.get("PAGER")
    if command is None:
        command = "less" if shutil.which("less") else ""
    if command.strip() in ("", "cat"):
        return False
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    try:
        pager = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        return False
    # The pager owns the terminal now: Ctrl-C is its to handle (less ignores it), not ours.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            pager.stdin.write(text.encode(sys.stdout.encoding or "utf-8", errors="replace"))
            pager.stdin.close()
        except BrokenPipeError:  # quit before reading everything
            pass
        pager.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    if pager.returncode == 127:  # the shell found no such command: the page was not shown
        sys.stderr.write(f"tdbctl: PAGER {shlex.quote(command)} not found; printing instead\n")
        return False
    return True


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, only --yes goes ahead."""
    from tdbctl.errors import NotConfirmed

    if yes:
        return
    if not sys.stdin.isatty():
        raise NotConfirmed("not confirmed: no terminal to ask on; pass --yes to go ahead")
    if not typer.confirm(question, default=False, err=True):
        raise NotConfirmed("not confirmed: nothing was changed")
