"""The tdbctl command line: a thin layer over the library.

Each command module parses options, calls one library function and renders its result; library
exceptions become one line on stderr and a documented exit code here, at the edge.
"""


import os
import sys
from typing import Annotated, Optional

# Plain click help, not Typer's rich panels: rich's markdown stack costs ~70 ms at every start,
# and --help must be instant. Data tables still use rich, on a terminal.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from tdbctl import __version__  # noqa: E402
from tdbctl.cli import archive, backup, cleanup, importing, info, migrate, partitions, reindex, seed, stats
from tdbctl.cli.common import STATE  # noqa: E402

# One module per command, each with register(app); the modules import only typer at load time.
COMMAND_MODULES = (migrate, info, seed, importing, cleanup, archive, partitions, backup, stats, reindex)

LARGEST_INTEGER = 2**31 - 1
"""What an integer option may be: every one is a count, an id or a size that a database integer holds."""
LARGEST_SECONDS = 2_147_483.0
"""What a number of seconds (or days) may be: PostgreSQL's timeouts end at 2^31 ms."""


def _strict_numbers() -> None:
    """Every number option, in one place: ASCII digits only (Python's int() also reads '٩٠'),
    finite (float() reads 'nan' and 'inf'), and within what the database takes, so that a typo is
    a usage error before anything is opened, never an overflow half-way through."""
    import math

    from typer._click import types

    convert = types._NumberParamTypeBase.convert

    def strict(self, value, param, ctx):
        if isinstance(value, str) and not value.isascii():
            self.fail(f"{value!r} is not a valid {self.name}.", param, ctx)
        number = convert(self, value, param, ctx)
        if isinstance(number, float) and not (math.isfinite(number) and abs(number) <= LARGEST_SECONDS):
            self.fail(f"{value!r} is not a number from 0 to {LARGEST_SECONDS:,.0f}.", param, ctx)
        if isinstance(number, int) and abs(number) > LARGEST_INTEGER:
            self.fail(f"{value!r} is too large (at most {LARGEST_INTEGER}).", param, ctx)
        return number

    types._NumberParamTypeBase.convert = strict


_strict_numbers()


def _plain_argument_names() -> None:
    """A required argument reads `REV` in a usage line, as in git's and every man page's, not
    Typer's `{REV}`; an optional one keeps its brackets."""
    from typer.core import TyperArgument

    make_metavar = TyperArgument.make_metavar

    def plain(self, ctx, *, usage: bool = False) -> str:
        var = make_metavar(self, ctx, usage=usage)
        return var[1:-1] if usage and self.required and var.startswith("{") and var.endswith("}") else var

    TyperArgument.make_metavar = plain


_plain_argument_names()

# The commands in the order a platform meets them, each with the line `tdbctl --help` shows.
LIFECYCLE = {
    "migrate": "Create or upgrade the schema; down, history, check, validate",
    "import": "Copy a platform database built from the seeds in, verified",
    "seed": "Load the reference data, or synthetic activity for trials",
    "info": "Where the URL points, the server, revision and tables",
    "stats": "The on-call page: what is wrong first, then the rest",
    "cleanup": "Delete what the retention policies say has expired",
    "archive": "Move old rows out into verified files, and back",
    "partitions": "Time partitions: list them, keep future ones ready",
    "backup": "A verified backup; list, verify, setup and drill (pgBackRest)",
    "restore": "Put a backup back, or the cluster as it was at a moment",
    "reindex": "Rebuild bloated or broken indexes without downtime",
}

EPILOG = """\b
Examples:
  tdbctl migrate                 create or upgrade the schema (deploy)
  tdbctl seed                    load the reference data
  tdbctl stats                   what is wrong, on one screen
  tdbctl cleanup --dry-run       what retention would delete
  tdbctl backup --keep 7         a verified backup, the last 7 kept

\b
Exit codes:
  0  done                        4  an applied migration was edited
  1  failed                      5  another tdbctl run holds a claim
  2  bad input or configuration  6  not confirmed (no --yes, no terminal)
  3  a check found something     7  database not set up: tdbctl migrate
  130 interrupted

\b
Every command takes --json (one document on stdout) and --debug (the
traceback of an error), before or after its name, as --database-url.
More: tdbctl COMMAND --help.
"""


class _Lifecycle(TyperGroup):
    def list_commands(self, ctx):
        return sorted(self.commands, key=lambda name: list(LIFECYCLE).index(name) if name in LIFECYCLE else 99)

    def format_commands(self, ctx, formatter):
        rows = [(name, LIFECYCLE.get(name) or self.commands[name].get_short_help_str(60))
                for name in self.list_commands(ctx) if not self.commands[name].hidden]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="tdbctl",
    cls=_Lifecycle,
    help="Operations tool for the database behind AI conversation-training platforms.",
    epilog=EPILOG,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"tdbctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        Optional[str],
        typer.Option(
            "--database-url",
            metavar="URL",
            help="Database URL (else TDB_DATABASE_URL, DATABASE_URL, tdbctl.toml, then ./tdbctl.db). "
            "Prefer the environment or ~/.pgpass for passwords: arguments are visible in ps.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    STATE.database_url = database_url
    STATE.debug = debug
    if ctx.invoked_subcommand is None:  # bare `tdbctl`: the help, and a clean exit
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


for module in COMMAND_MODULES:
    module.register(app)


def main() -> None:
    from tdbctl.errors import ExitCode, TdbError

    sys.argv[1:] = _global_flags_anywhere(sys.argv[1:])
    try:
        code = app(standalone_mode=False)
    except TdbError as exc:
        _fail(exc.message, exc.exit_code, type(exc).__name__, exc)
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERRUPTED, "Interrupted", None)
    except Exception as exc:
        if _is_click_error(exc):
            if type(exc).__name__ == "Abort":
                _fail("aborted", ExitCode.INTERRUPTED, "Aborted", None)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(exc.format_message() + hint, exc.exit_code, "UsageError", None)  # the last resort: still one line, never a traceback without --debug
        from tdbctl.config import mask_secrets

        message = mask_secrets(" ".join(str(exc).split())) or type(exc).__name__
        _fail(f"unexpected error: {message}", ExitCode.FAILURE, type(exc).__name__, exc)
    sys.exit(code if isinstance(code, int) else 0)


def _global_flags_anywhere(args: list[str]) -> list[str]:
    """`--debug` and `--database-url` belong to tdbctl and `--json` to each command; all are taken
    wherever they are typed (`tdbctl stats --debug`, `tdbctl --json info`), up to a `--`."""
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    debug = "--debug" in head
    head = [a for a in head if a != "--debug"]
    front = []
    for i, a in enumerate(head):  # --database-url URL / --database-url=URL, wherever it stands
        if a == "--database-url" and i + 1 < len(head):
            front, head = head[i:i + 2], head[:i] + head[i + 2:]
            break
        if a.startswith("--database-url="):
            front, head = [a], head[:i] + head[i + 1:]
            break
    head = front + head
    command = next((i for i, a in enumerate(head) if not a.startswith("-") and (i == 0 or head[i - 1] != "--database-url")),
                   None)
    if command is not None and "--json" in head[:command]:
        head = [a for i, a in enumerate(head) if not (a == "--json" and i < command)] + ["--json"]
    return (["--debug"] if debug else []) + head + tail


def _is_click_error(exc: BaseException) -> bool:
    """Click's usage errors and aborts (Typer vendors click, so match by shape, not import)."""
    return type(exc).__name__ == "Abort" or (hasattr(exc, "format_message") and hasattr(exc, "exit_code"))


def _fail(message: str, code: int, kind: str, exc: BaseException | None) -> None:
    if STATE.debug and exc is not None:
        import traceback

        traceback.print_exception(exc)
    if STATE.json:
        import json

        print(json.dumps({"error": {"type": kind, "message": message, "exit_code": int(code)}}))
    sys.stderr.write(f"tdbctl: error: {message}\n")
    sys.exit(int(code))
