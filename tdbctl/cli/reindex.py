"""`tdbctl reindex`: rebuild indexes (concurrently on PostgreSQL 12+), drop interrupted leftovers, ANALYZE."""


from typing import Annotated, List, Optional

import typer

from tdbctl.cli.common import DryRunOption, JsonOption, WaitForRunOption, Output, settings
from tdbctl.ops.humanize import plural, seconds, size


def register(root: typer.Typer) -> None:
    root.command("reindex")(reindex)


def reindex(
    table: Annotated[Optional[List[str]], typer.Option("--table", metavar="SCHEMA.TABLE", help="Every index of this table (repeatable).")] = None,
    index: Annotated[Optional[List[str]], typer.Option("--index", metavar="SCHEMA.INDEX", help="This index (repeatable).")] = None,
    schema: Annotated[Optional[List[str]], typer.Option("--schema", metavar="SCHEMA", help="Every index in this schema (repeatable).")] = None,
    bloated: Annotated[bool, typer.Option("--bloated", help="Only indexes whose estimated bloat passes index_bloat_warning (within --table/--schema if given).")] = False,
    everything: Annotated[bool, typer.Option("--all", help="Every index in the database, tdbctl's schemas first (PostgreSQL: other schemas too).")] = False,
    plain: Annotated[bool, typer.Option("--plain", help="Plain REINDEX: faster, but the table's writers wait until it is done.")] = False,
    retune_ivfflat: Annotated[bool, typer.Option("--retune-ivfflat", help="Re-choose ivfflat lists from the row count (rows/1000, sqrt(rows) past 1M).")] = False,
    maintenance_work_mem: Annotated[Optional[str], typer.Option("--maintenance-work-mem", metavar="SIZE", help="For ivfflat/hnsw builds (default 512MB, or tdbctl.toml [reindex]).")] = None,
    lock_timeout: Annotated[Optional[float], typer.Option("--lock-timeout", metavar="SECONDS", min=0.001, help="Seconds a plain REINDEX or an ALTER INDEX may wait for its lock (default 10).")] = None,
    lock_wait: WaitForRunOption = 0.0,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
) -> None:
    """Rebuild indexes without taking the tables away: REINDEX CONCURRENTLY on PostgreSQL 12+.

    Leftovers of an interrupted concurrent rebuild (invalid *_ccnew / *_ccold indexes) are listed,
    then dropped; the tables are analyzed afterwards; the run is recorded in the run history.
    pgvector indexes get --maintenance-work-mem. On SQLite: REINDEX and ANALYZE.

    Example:

        \b
        tdbctl reindex --bloated --dry-run
        tdbctl reindex --table chattrain.documents --retune-ivfflat
    """
    from tdbctl import reindex as library
    from tdbctl.errors import TdbError

    out = Output(json)
    config = settings()
    selection = library.Selection(tuple(table or ()), tuple(index or ()), tuple(schema or ()), bloated, everything)
    options = library.options_from_settings(
        config, plain=plain or None, retune_ivfflat=retune_ivfflat or None,
        maintenance_work_mem=maintenance_work_mem, lock_timeout=lock_timeout, lock_wait=lock_wait)
    if dry_run:
        plan = library.plan(config, selection, options)
        if out.json:
            out.data({"dry_run": True, **plan.as_dict()})
            return
        _show_plan(out, plan)
        return
    progress, finish = _progress(out)
    try:
        result = library.run(config, selection, options, progress)
    finally:
        finish()
    failed = [e for e in result["rebuilt"] if e["error"]]
    if out.json:
        out.data(result)
    else:
        from tdbctl.ops.humanize import size as _size

        # The statements themselves are in --json; here what an operator compares: sizes, time.
        out.table("Rebuilt", ["index", "how", "before", "after", "took", "error"],
                  [(f"{e['schema']}.{e['index']}", "concurrently" if " CONCURRENTLY " in e["statement"] else "plain",
                    _size(e["bytes_before"]), _size(e["bytes_after"]), seconds(e['seconds']), e["error"] or "")
                   for e in result["rebuilt"]])
        out.log(f"run {result['run_id']}: rebuilt {plural(len(result['rebuilt']) - len(failed), 'index', 'indexes')}, "
                f"dropped {plural(len(result['dropped']), 'leftover')}, analyzed {plural(len(result['analyzed']), 'table')}")
    if failed:
        raise TdbError(f"{len(failed)} of {len(result['rebuilt'])} indexes were not rebuilt; first: "
                       f"{failed[0]['schema']}.{failed[0]['index']}: {failed[0]['error']}")


def _show_plan(out: Output, plan) -> None:
    for warning in plan.warnings:
        out.log(f"warning: {warning}")
    if plan.leftovers:
        out.table("Leftovers of an interrupted REINDEX CONCURRENTLY (would be dropped first)",
                  ["index", "table", "size"], [(x.name, x.table, size(x.bytes)) for x in plan.leftovers])
    out.table("Would rebuild", ["index", "table", "method", "size", "why", "how", "ivfflat lists"],
              [(t.name, t.table, t.method, size(t.bytes), t.reason, "concurrently" if t.concurrently else "plain",
                f"{t.lists[0]} -> {t.lists[1]}" if t.lists else "") for t in plan.targets])
    out.log(f"dry run: {plural(len(plan.targets), 'index', 'indexes')}, {plural(len(plan.leftovers), 'leftover')}; "
            f"then ANALYZE {plural(len(plan.tables), 'table')}; nothing was changed")


def _progress(out: Output):
    """Progress on stderr: a bar on a terminal, one line per step elsewhere."""
    import sys

    if sys.stderr.isatty() and not out.json:
        from rich.progress import Progress

        bar = Progress(transient=False)
        bar.start()
        task = {"id": None}

        def progress(event: str, **f) -> None:
            if event == "start":
                if task["id"] is None:
                    task["id"] = bar.add_task("reindex", total=f["total"])
                bar.update(task["id"], description=f"{f['target'].name}")
            elif event == "done":
                bar.advance(task["id"])
            elif event == "drop":
                bar.console.print(f"dropping leftover {f['leftover'].name} (invalid, from an interrupted run)")
            elif event == "notice":
                bar.console.print(f"server: {f['message']}")
            elif event == "warning":
                bar.console.print(f"warning: {f['message']}")
            elif event == "analyze":
                bar.console.print(f"ANALYZE {f['table']}")

        return progress, bar.stop

    def progress(event: str, **f) -> None:
        if event == "drop":
            out.log(f"dropping leftover {f['leftover'].name} (invalid, from an interrupted run)")
        elif event == "start":
            t = f["target"]
            how = "concurrently" if t.concurrently else "plain"
            out.log(f"[{f['number']}/{f['total']}] rebuilding {t.name} ({how})")
        elif event == "done":
            e = f["entry"]
            out.log(f"[{f['number']}/{f['total']}] {e['schema']}.{e['index']}: "
                    + (f"failed: {e['error']}" if e["error"] else f"done in {e['seconds']:.2f}s"))
        elif event == "notice":
            out.log(f"server: {f['message']}")
        elif event == "warning":
            out.log(f"warning: {f['message']}")
        elif event == "analyze":
            out.log(f"ANALYZE {f['table']}")

    return progress, lambda: None
