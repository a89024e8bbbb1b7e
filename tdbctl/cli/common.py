"""What every command shares: global state, options declared once, and output rendering.

Data goes to stdout; logs, progress and errors to stderr. On a terminal, rich tables; elsewhere
(cron, pipes) plain tab-separated lines without colour; ``--json`` for scripts.
"""


import json as jsonlib
import sys
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
MaxRuntimeOption = Annotated[
    Optional[str],
    typer.Option("--max-runtime", metavar="DURATION", show_default=False,
                 help="Start no new batch after this long (30m, 2h); the next run carries on."),
]
LockWaitOption = Annotated[
    Optional[float],
    typer.Option("--lock-wait", min=0, show_default=False,
                 help="Seconds to wait for another tdbctl run on this database to finish [default: 60]."),
]
LockTimeoutOption = Annotated[
    Optional[float],
    typer.Option("--lock-timeout", min=0.001, show_default=False,
                 help="Seconds a statement may wait for a table lock (PostgreSQL) [default: 10]."),
]


def settings():
    """The resolved configuration for this invocation (URL precedence: see tdbctl.config)."""
    from tdbctl.config import resolve

    return resolve(STATE.database_url)


def _default(value: Any):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


class Output:
    def __init__(self, json: bool = False):
        self.json = json
        STATE.json = json
        self.terminal = sys.stdout.isatty()

    def data(self, document: Any) -> None:
        sys.stdout.write(jsonlib.dumps(document, indent=2, default=_default) + "\n")

    def line(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    def log(self, text: str) -> None:
        sys.stderr.write(text + "\n")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.terminal:
            from rich.console import Console
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*("" if v is None else str(v) for v in row))
            Console().print(table)
        else:
            self.line(f"# {title}")
            self.line("\t".join(columns))
            for row in rows:
                self.line("\t".join("" if v is None else str(v) for v in row))

    def fields(self, title: str, pairs: Sequence[tuple[str, Any]]) -> None:
        if self.terminal:
            from rich.console import Console
            from rich.table import Table

            table = Table(title=title, title_justify="left", show_header=False, box=None)
            table.add_column(style="bold")
            table.add_column()
            for key, value in pairs:
                table.add_row(key, "" if value is None else str(value))
            Console().print(table)
        else:
            width = max(len(k) for k, _ in pairs)
            for key, value in pairs:
                self.line(f"{key.ljust(width)}  {'' if value is None else value}")


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, only --yes goes ahead."""
    from tdbctl.errors import NotConfirmed

    if yes:
        return
    if not sys.stdin.isatty():
        raise NotConfirmed("not confirmed: no terminal to ask on; pass --yes to go ahead")
    if not typer.confirm(question, default=False, err=True):
        raise NotConfirmed("not confirmed: nothing was changed")
