"""`tdbctl import SOURCE`: copy a platform database built from the seeds into the managed schemas."""


import os
from typing import Annotated, Optional

import typer

from tdbctl.cli.common import DryRunOption, JsonOption, WaitForRunOption, Output, settings
from tdbctl.ops.humanize import plural

SOURCE_ENV = "TDB_IMPORT_SOURCE"


def register(root: typer.Typer) -> None:
    root.command("import")(import_)


def import_(
    source: Annotated[
        Optional[str], typer.Argument(metavar="SOURCE_URL", show_default=False,
                                      help=f"The database to copy from (postgresql:// or a sqlite:// file); "
                                           f"default {SOURCE_ENV}. Keep its password out of the command line: "
                                           f"{SOURCE_ENV}, PGPASSWORD or ~/.pgpass.")
    ] = None,
    on_unmapped: Annotated[
        str, typer.Option("--on-unmapped", metavar="stop|skip|null",
                          help="A value the managed column cannot take: stop the import at that row (default), skip "
                               "the row, or write NULL where the column allows it. Every one is reported.")
    ] = "stop",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, metavar="N",
                                            help="Rows per batch (one transaction each).")] = 2000,
    lock_wait: WaitForRunOption = 0.0,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
) -> None:
    """Copy an existing platform database into tdbctl's managed schemas; the source is only read.

    Each source table is matched to the managed table it is (by name, in a schema of that name or
    by the columns it shares), column by column, with casts and the value lists a seed spells
    differently; --dry-run prints that mapping and the rows. Tables are copied parents first, in
    batches (a killed import continues where it stopped, never writing a row twice), and end with
    a verification against the source: rows and a checksum of the mapped columns on each side.
    Exit 3 when a table does not verify or a value stops the import.

    Example:

        \b
        export TDB_IMPORT_SOURCE=postgresql://app@old-db/platform
        tdbctl import --dry-run
        tdbctl import
        tdbctl import sqlite:///chattrain.db --on-unmapped skip
    """
    from tdbctl.errors import UsageError
    from tdbctl.importing.commands import ImportRequest, run_import

    out = Output(json)
    source = source or os.environ.get(SOURCE_ENV)
    if not source:
        raise UsageError(f"give SOURCE_URL, or set {SOURCE_ENV}")
    request = ImportRequest(source, dry_run=dry_run, on_unmapped=on_unmapped, batch_size=batch_size,
                            lock_wait=lock_wait)
    report = run_import(settings(), request, progress=None if out.json else _progress(out))
    if out.json:
        out.data(report.document())
    else:
        _render(out, report)
    if report.mismatched:
        from tdbctl.errors import CheckFailed
        from tdbctl.importing.commands import _mismatch_line

        raise CheckFailed(_mismatch_line(report.mismatched[0]))


def _progress(out: Output):
    import time

    last = [0.0]

    def show(result) -> None:
        if time.monotonic() - last[0] >= 2.0:
            last[0] = time.monotonic()
            out.log(f"{result.source} -> {result.target}: {result.rows_read:,} rows read, {result.rows_written:,} written")

    return show


def _render(out: Output, report) -> None:
    out.table(f"Mapping from {report.source}", ["source", "target", "rows", "columns", "casts", "value maps",
                                                "no home", "note"],
              [(t.source, t.target or "-", t.rows if t.rows is not None else "", len(t.columns),
                "; ".join(f"{c.source}: {c.cast}" for c in t.columns if c.cast),
                "; ".join(f"{c.source}: " + ", ".join(f"{a}->{b}" for a, b in c.values.items())
                          for c in t.columns if c.values),
                ", ".join(t.no_home), t.blocking or "") for t in report.tables])
    if report.dry_run:
        copies = [t for t in report.tables if t.copies]
        out.log(f"import (dry run): would copy {plural(len(copies), 'table')}, "
                f"{sum(t.rows or 0 for t in copies):,} rows; nothing was changed")
        return
    out.table("Copied and verified", ["source", "target", "read", "written", "skipped", "verified", "checksum",
                                      "status"],
              [(r.source, r.target, r.rows_read, r.rows_written, r.rows_skipped, r.verified_rows,
                (r.source_checksum or "")[:16], r.status) for r in report.results])
    for result in report.results:
        for reason, entry in result.skipped.items():
            out.log(f"{result.source}: {plural(entry['rows'], 'row')} {reason} (first key {entry['first_key']})")
    out.log(f"import run {report.run_id}: {plural(len(report.results), 'table')} copied, "
            f"{sum(r.written_now for r in report.results):,} rows written by this run, "
            f"{len(report.results) - len(report.mismatched)} verified")
