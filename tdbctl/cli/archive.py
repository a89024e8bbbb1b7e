"""`tdbctl archive` (run the archive policies), `archive list`, `verify`, `restore`, `discard`."""


from typing import Annotated, Optional

import typer

from tdbctl.cli.common import (
    BeforeOption, DryRunOption, JsonOption, MaxRuntimeOption, OlderThanOption, Output, PolicyOption, TableOption, settings,
)
from tdbctl.ops.humanize import plural, size as _size

app = typer.Typer(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

LockWaitOption = Annotated[
    float,
    typer.Option("--lock-wait", min=0, metavar="SECONDS",
                 help="Wait this long for another archive run on this database to end (then exit 5)."),
]
LockTimeoutOption = Annotated[
    float,
    typer.Option("--lock-timeout", min=0.001, metavar="SECONDS",
                 help="How long a batch may wait for a row another transaction holds (PostgreSQL)."),
]
BatchArgument = Annotated[int, typer.Argument(metavar="BATCH", help="Batch id, as `tdbctl archive list` shows it.")]


@app.callback()
def archive(
    ctx: typer.Context,
    to: Annotated[
        Optional[str],
        typer.Option("--to", metavar="DIR", show_default=False,
                     help="Directory for the batch files (default: tdbctl.toml [archive] dir). Needed by every "
                          "policy but in-place ones; voice.conversations' children go there too."),
    ] = None,
    policy: PolicyOption = None,
    table: TableOption = None,
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option("--batch-size", min=1, metavar="N", show_default=False,
                     help="Root rows per batch (one transaction each); default 10000 on PostgreSQL, 5000 on SQLite."),
    ] = None,
    max_runtime: MaxRuntimeOption = None,
    level: Annotated[int, typer.Option("--level", metavar="1-9", min=1, max=9, help="gzip compression level: 1 fastest (about 12% larger files than 6), 9 smallest.")] = 1,
    dry_run: DryRunOption = False,
    lock_wait: LockWaitOption = 0.0,
    lock_timeout: LockTimeoutOption = 10.0,
    json: JsonOption = False,
) -> None:
    """Move rows past their archive policy's age out of the live tables into verified archives.

    Each batch writes its rows, with every row ON DELETE CASCADE would take along, into gzip'd
    JSON Lines files (0600) with a manifest, fsyncs and reads them back, and only then deletes
    the rows, in the transaction that marks the batch archived in tdbctl.archive_batches.
    voice.conversations also moves its conversations into voice.conversations_archive;
    chattrain.completed_sessions archives in place (status 'archived', nothing deleted).
    A batch a killed run left unfinished is discarded by the next run: its rows never left.
    One archive, cleanup or seed at a time changes the data (exit 5 for the next).

    Example:

        \b
        tdbctl archive --dry-run                    # what would go, and where
        tdbctl archive --to /srv/archive --max-runtime 30m
    """
    if ctx.invoked_subcommand:
        return
    from tdbctl.archive import commands

    out = Output(json)
    options = commands.ArchiveRequest(
        to=to, policies=tuple(policy or ()), tables=tuple(table or ()), batch_size=batch_size, dry_run=dry_run,
        lock_wait=lock_wait, lock_timeout=lock_timeout, level=level,
        **commands.ArchiveRequest.parsed(older_than, before, max_runtime))
    from tdbctl.retention.run import Lines

    report = commands.run(settings(), options, Lines(out.log))
    if out.json:
        out.data({"run_id": report.run_id, "status": report.status, "dry_run": report.dry_run,
                  "recovered": report.recovered, "policies": report.policies})
        return
    if report.dry_run:
        rows = []
        for plan in report.policies:
            for name, count in plan["rows"].items():
                rows.append((plan["policy"], name, count, plan["destination"]))
            if plan["blocked"]:
                rows.append((plan["policy"], f"(held back: {_held_by(plan)})", plan["blocked"], ""))
        out.table("Would archive (dry run)", ["policy", "table", "rows", "destination"], rows)
        whole = [(plan["policy"], p["name"], p["from"], p["to"], p["rows_estimate"])
                 for plan in report.policies for p in plan.get("partitions", [])]
        if whole:
            out.table("Partitions it would archive whole, a batch each", ["policy", "partition", "from", "to",
                                                                          "rows (estimate)"], whole)
        return
    rows = []
    for result in report.policies:
        root = result["rows"].get(result["table"], 0)
        children = sum(n for t, n in result["rows"].items() if t != result["table"])
        note = "stopped: --max-runtime" if result["stopped"] else (
            f"{result['blocked']} held back: {_held_by(result)}" if result["blocked"] else "")
        rows.append((result["policy"], result["mode"], len(result["batches"]), root, children,
                     _size(result["bytes"]), result["destination"], note))
    out.table("Archived", ["policy", "mode", "batches", "rows", "child rows", "size", "destination", "note"], rows)
    out.log(f"run {report.run_id}: {report.status}")


@app.command("list")
def list_(
    policy: Annotated[Optional[str], typer.Option("--policy", metavar="NAME", show_default=False,
                                                  help="Only this policy's batches.")] = None,
    status: Annotated[Optional[str], typer.Option("--status", metavar="STATUS", show_default=False,
                                                  help="Only batches in this state (archived, restored...).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, metavar="N", help="At most N batches, newest first.")] = 50,
    json: JsonOption = False,
) -> None:
    """List archive batches, newest first: rows, child rows, size, time range, where they are.

    Example:

        \b
        tdbctl archive list --policy voice.conversations
    """
    from tdbctl.archive import commands

    out = Output(json)
    batches = commands.list_batches(settings(), policy=policy, status=status, limit=limit)
    if out.json:
        out.data([b.document() for b in batches])
        return
    out.table("Archive batches", ["batch", "policy", "status", "rows", "child rows", "size", "from", "to",
                                  "created", "destination"],
              [(str(b.id), b.policy, b.status, b.row_count, b.child_total, _size(b.bytes), b.time_min,
                b.time_max, b.created_at, b.destination) for b in batches])


@app.command("verify")
def verify(
    batch: Annotated[Optional[int], typer.Argument(metavar="[BATCH]", show_default=False,
                                                   help="One batch (default: every archived batch).")] = None,
    json: JsonOption = False,
) -> None:
    """Re-check batch files against their manifest and the catalog; exit 3 if anything is wrong.

    Every file is read back: size, sha256, gzip integrity, row count. In-database and in-place
    batches are checked against their table (the rows are there, carrying the batch's mark).

    Example:

        \b
        tdbctl archive verify || echo "archive damaged"
    """
    from tdbctl.archive import restore
    from tdbctl.errors import ExitCode

    out = Output(json)
    results = restore.verify(settings(), batch)
    if out.json:
        out.data([r.document() for r in results])
    else:
        for result in results:
            for problem in result.problems:
                out.line(f"problem\tbatch {result.batch}\t{problem}")
        out.table("Verified", ["batch", "policy", "status", "files", "rows", "result"],
                  [(str(r.batch), r.policy, r.status, r.files, r.rows, "ok" if r.ok else "DAMAGED") for r in results])
        bad = sum(1 for r in results if not r.ok)
        out.log(f"{plural(len(results), 'batch')} verified" if not bad else f"{bad:,} of {plural(len(results), 'batch')} FAILED")
    if any(not r.ok for r in results):
        raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command("restore")
def restore_(
    batch: BatchArgument,
    dry_run: DryRunOption = False,
    lock_wait: LockWaitOption = 0.0,
    lock_timeout: LockTimeoutOption = 10.0,
    json: JsonOption = False,
) -> None:
    """Put a batch's rows back into the live tables, parents before children, in one transaction.

    The files are verified first. Rows whose key is already live are skipped, so restoring twice
    changes nothing; SET NULL links the archive cut are set back; in-place batches get their
    status and metadata back.

    Example:

        \b
        tdbctl archive restore 42 --dry-run
    """
    from tdbctl.archive import restore

    out = Output(json)
    report = restore.restore(settings(), batch, dry_run=dry_run, lock_wait=lock_wait, lock_timeout=lock_timeout)
    if out.json:
        out.data(report.document())
        return
    if report.note:
        out.log(f"batch {report.batch}: {report.note}")
        return
    title = f"Batch {report.batch} ({report.policy}): " + ("would restore" if dry_run else "restored")
    out.table(title, ["table", "rows in batch", "put back"],
              [(t, n, "" if dry_run else report.inserted.get(t, 0)) for t, n in report.rows.items()])
    for table, count in report.relinked.items():
        out.log(f"{table}: {plural(count, 'reference')} set back")


@app.command("discard")
def discard(
    batch: BatchArgument,
    json: JsonOption = False,
) -> None:
    """Remove the files of a leftover batch and mark it discarded.

    A batch is left 'leftover' when its run ended before its delete committed (its rows are
    still live) and its files could not be removed (permissions, a file tdbctl did not write).
    Every archive run reports it and goes on; once the cause is fixed, this clears it.

    Example:

        \b
        tdbctl archive list --status leftover
        tdbctl archive discard 42
    """
    from tdbctl.archive import commands

    out = Output(json)
    done = commands.discard(settings(), batch)
    if out.json:
        out.data(done.document())
        return
    out.log(f"batch {done.id} ({done.policy}): files removed, discarded (its rows are live)")


def _held_by(policy: dict) -> str:
    return f"referenced by {', '.join(policy['held_by'])} without ON DELETE"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="archive")
