"""`tdbctl partitions` (list them) and `tdbctl partitions create` (keep future ones ready)."""


from typing import Annotated, Optional

import typer

from tdbctl.cli.common import DryRunOption, JsonOption, Output, settings
from tdbctl.ops.humanize import count, plural, size

app = typer.Typer(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="partitions")


@app.callback()
def partitions(ctx: typer.Context, json: JsonOption = False) -> None:
    """The time-partitioned tables and their partitions: range, rows, size, and state.

    States: current, future (made ahead), past, straddles cutoff (retention deletes some of its
    rows), expired (the next cleanup drops it whole), default (rows outside every range: `partitions
    create` moves them into partitions of their own). On SQLite every table is plain.

    Example:

        \b
        tdbctl partitions
        tdbctl partitions --json | jq '.[] | {table, ahead}'
    """
    if ctx.invoked_subcommand is not None:
        return
    from tdbctl.ops.durations import utcnow
    from tdbctl.partitions import inspect
    from tdbctl.runtime import HEAD, open_database
    from tdbctl.schema import metadata

    out = Output(json)
    now = utcnow()
    with open_database(settings(), HEAD) as db:
        tables = inspect(db, metadata, now)
    if out.json:
        out.data([t.to_json(now) for t in tables])
        return
    for t in tables:
        if not t.partitioned:
            out.log(f"{t.table}: a plain table (partitioned by {t.column} on PostgreSQL)")
            continue
        out.table(f"{t.table}: by {t.interval} of {t.column}", ["partition", "from", "to", "rows (estimate)", "size", "state"],
                  [(p.name, p.lower, p.upper, p.rows, size(p.bytes), p.state(now, t.cutoff)) for p in t.partitions])
        notes = [f"{plural(t.ahead, 'partition')} ahead"]
        if t.cutoff is not None:
            notes.append(f"retention cutoff {t.cutoff:%Y-%m-%d %H:%M} UTC")
        if t.conversion:
            c = t.conversion
            notes.append(f"conversion {c['status']}: {count(c['rows_moved'])} of "
                         f"{count(c['rows_total']) if c['rows_total'] is not None else '?'} old rows moved "
                         "(tdbctl migrate finishes it)")
        out.log(f"{t.table}: " + "; ".join(notes))


@app.command("create")
def create(
    premake: Annotated[Optional[int], typer.Option("--premake", min=0, metavar="N", show_default=False,
                                                   help="Partitions to keep ready after the current one (default: each table's declaration, 3).")] = None,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
) -> None:
    """Keep each partitioned table's future partitions ready, and empty its DEFAULT partition.

    Creates the current partition and the next N (never one whose whole range is already past
    retention), moves rows that landed in the DEFAULT partition into partitions made for their
    range, and finishes a conversion a killed `tdbctl migrate` left half done. Each change is a
    short transaction under lock_timeout. Run it from cron beside cleanup; `tdbctl migrate` runs
    it too.

    Example:

        \b
        tdbctl partitions create --dry-run
        15 3 * * *  tdbctl partitions create
    """
    from tdbctl.ops.claims import claimed
    from tdbctl.ops.durations import utcnow
    from tdbctl.partitions import maintain
    from tdbctl.runtime import HEAD, open_database
    from tdbctl.schema import metadata

    out = Output(json)
    with open_database(settings(), HEAD) as db:
        if dry_run:
            report = maintain(db, metadata, utcnow(), premake=premake, dry_run=True)
        else:
            with claimed(db, "partitions") as claim:
                report = maintain(db, metadata, utcnow(), premake=premake, claim=claim,
                                  on_progress=lambda c: out.log(f"{c.table}: {count(c.rows_moved)} old rows moved"))
    if out.json:
        out.data(report.to_json())
        return
    verb = "would create" if dry_run else "created"
    for name in report.created:
        out.line(f"{verb}\t{name}")
    for table, n in report.moved_from_default.items():
        out.line(f"{'would move' if dry_run else 'moved'}\t{table}\t{plural(n, 'row')} out of the DEFAULT partition")
    for table, n in report.left_in_default.items():
        out.line(f"left\t{table}\t{plural(n, 'row')} past retention in the DEFAULT partition (cleanup deletes them)")
    for c in report.conversions:
        out.line(f"converted\t{c['table']}\t{c['status']}, {count(c['rows_moved'])} old rows moved")
    if not (report.created or report.moved_from_default or report.conversions):
        out.log("nothing to do: every partitioned table has its partitions ahead and an empty DEFAULT partition")
    elif dry_run:
        out.log("dry run: nothing was changed")
