"""`tdbctl seed`: reference data from seeds/, synthetic volumes (--synthetic), their removal."""


from pathlib import Path
from typing import Annotated, List, Optional

import typer

from tdbctl.cli.common import DryRunOption, JsonOption, Output, YesOption, confirm, settings
from tdbctl.ops.humanize import moment, plural

DomainOption = Annotated[
    Optional[List[str]],
    typer.Option("--domain", "-d", metavar="NAME", help="Only this domain (repeatable): dispatch, voice, academy, chattrain."),
]

SeedLockWaitOption = Annotated[
    float,
    typer.Option("--lock-wait", min=0, metavar="SECONDS",
                 help="Seconds to wait for another tdbctl seed on this database to finish."),
]


def seed(
    domain: DomainOption = None,
    dry_run: DryRunOption = False,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Also generate synthetic activity data (after the reference data).")
    ] = False,
    sessions: Annotated[
        int, typer.Option("--sessions", "-n", metavar="N", min=1, help="With --synthetic: sessions (calls, conversations) per domain.")
    ] = 1000,
    span: Annotated[
        str, typer.Option("--span", metavar="DURATION", help="With --synthetic: time range the data covers: 30mo, 2y, 90d.")
    ] = "30mo",
    until: Annotated[
        Optional[str],
        typer.Option("--until", metavar="DATE", help="With --synthetic: end of the span (default: now, to the minute)."),
    ] = None,
    random_seed: Annotated[
        int, typer.Option("--random-seed", metavar="N", help="With --synthetic: same seed, span and --until, same rows.")
    ] = 1,
    again: Annotated[
        bool, typer.Option("--again", help="With --synthetic: load another set even if the same arguments "
                           "loaded one already (by default that run does nothing and says so).")
    ] = False,
    remove_synthetic: Annotated[
        bool, typer.Option("--remove-synthetic", help="Delete the synthetic rows (asks first; --yes for scripts).")
    ] = False,
    seeds_dir: Annotated[
        Optional[Path],
        typer.Option("--seeds-dir", metavar="DIR", help="Read seed files from DIR instead of the ones tdbctl ships."),
    ] = None,
    yes: YesOption = False,
    lock_wait: SeedLockWaitOption = 10.0,
    json: JsonOption = False,
) -> None:
    """Load the reference data of seeds/ (idempotent upsert); --synthetic adds activity data.

    Reference rows are matched on their natural key and inserted, updated or left alone; rows
    users created are never touched or deleted. One transaction per domain. Synthetic rows are
    marked (ids and user ids starting with "synthetic", "synthetic": true in JSON metadata)
    and --remove-synthetic deletes exactly those.

    Example:

        \b
        tdbctl seed --dry-run          # what would be inserted or updated
        tdbctl seed --synthetic --sessions 5000 --span 18mo --random-seed 7
        tdbctl seed --remove-synthetic --yes
    """
    from tdbctl.errors import UsageError
    from tdbctl.seed import commands

    out = Output(json)
    if synthetic and remove_synthetic:
        raise UsageError("--synthetic and --remove-synthetic do not go together: run them one after the other")
    config = settings()
    if remove_synthetic:
        _remove(out, config, domain, dry_run, yes, lock_wait)
        return
    # Bad --sessions/--span/--until are refused before the reference rows are touched.
    plan = commands.synthetic_plan(random_seed, sessions, span, until) if synthetic else None
    report = commands.seed_reference(config, domains=domain, dry_run=dry_run, seeds_root=seeds_dir, lock_wait=lock_wait)
    if not synthetic:
        _render_reference(out, report)
        return
    if not out.json:
        _render_reference(out, report)
    result = commands.generate_synthetic(
        config, domains=domain, sessions=sessions, span=span, until=until, random_seed=random_seed,
        dry_run=dry_run, again=again, lock_wait=lock_wait, progress=_progress(out), seeds_root=seeds_dir, plan=plan,
    )
    if out.json:
        out.data({"reference": _reference_document(report), "synthetic": _synthetic_document(result)})
    else:
        _render_synthetic(out, result)


def _reference_document(report) -> dict:
    return {
        "dry_run": report.dry_run,
        "domains": report.domains,
        "files": report.files,
        "tables": report.counts(),
        "changes": [
            {"table": c.table, "entry": c.entry, "action": c.action, "columns": c.columns, "owner": c.owner}
            for c in report.changes
            if c.action != "unchanged"
        ],
    }


def _render_reference(out: Output, report) -> None:
    if out.json:
        out.data(_reference_document(report))
        return
    counts = report.counts()
    if counts:
        title = "Reference data" + (" (dry run: nothing written)" if report.dry_run else "")
        out.table(title, ["table", "insert", "update", "unchanged", "kept"],
                  [(t, c["insert"], c["update"], c["unchanged"], c["kept"]) for t, c in counts.items()])
    verb = "would " if report.dry_run else ""
    for change in report.changes:
        if change.action == "update":
            out.log(f"{verb}update {change.entry} ({', '.join(change.columns)})")
        elif change.action == "insert" and report.dry_run:
            out.log(f"would insert {change.entry}")
        elif change.action == "kept":
            out.log(f"kept {change.entry}: changed by {change.owner}, not the seed")
    total = len(report.changes)
    if not report.changed:
        out.log(f"nothing to do: the {plural(total, 'seed row')} already match the seed files")
    else:
        inserted = sum(c["insert"] for c in counts.values())
        updated = sum(c["update"] for c in counts.values())
        out.log(f"{'would insert' if report.dry_run else 'inserted'} {inserted:,}, "
                f"{'update' if report.dry_run else 'updated'} {updated:,}, left {total - inserted - updated:,} alone")


def _progress(out: Output):
    import sys

    from tdbctl.seed.progress import PlainProgress, RichProgress

    if out.json:
        return None
    return RichProgress() if sys.stderr.isatty() else PlainProgress()


def _synthetic_document(result) -> dict:
    return {
        "dry_run": result.dry_run, "random_seed": result.random_seed, "sessions": result.sessions,
        "span_start": result.start, "span_end": result.end, "rows": result.rows,
        "seconds": round(result.seconds, 3), "rows_per_second": round(result.rows_per_second),
        "loaded_by_run": result.loaded_by["id"] if result.loaded_by else None,
    }


def _render_synthetic(out: Output, result) -> None:
    if result.loaded_by:
        earlier = result.loaded_by
        out.log(f"nothing to do: run {earlier['id']} loaded these synthetic rows with the same arguments "
                f"({earlier['rows']:,} rows, {moment(earlier['finished_at'])}); --again adds another set, "
                "a different --random-seed a different one")
        return
    title = "Synthetic rows" + (" (dry run: generated, nothing written)" if result.dry_run else "")
    out.table(title, ["table", "rows"], list(result.rows.items()))
    out.log(f"{'generated' if result.dry_run else 'inserted'} {result.total:,} synthetic rows in "
            f"{result.seconds:.1f}s ({result.rows_per_second:,.0f} rows/s), "
            f"{result.start:%Y-%m-%d} to {result.end:%Y-%m-%d %H:%M}")


def _remove(out: Output, config, domain, dry_run: bool, yes: bool, lock_wait: float) -> None:
    from tdbctl.seed import commands

    plan = commands.count_synthetic(config, domains=domain)
    total = sum(plan.values())
    if out.json and dry_run:
        out.data({"dry_run": True, "rows": plan})
        return
    if not out.json:
        out.table("Synthetic rows" + (" (dry run)" if dry_run else ""), ["table", "rows"], list(plan.items()))
    if dry_run:
        out.log(f"would delete {total:,} synthetic rows")
        return
    if not total:
        out.data({"dry_run": False, "rows": {}}) if out.json else out.log("no synthetic rows: nothing to delete")
        return
    confirm(f"Delete {total:,} synthetic rows?", yes)
    removed = commands.remove_synthetic(config, domains=domain, lock_wait=lock_wait)
    if out.json:
        out.data({"dry_run": False, "rows": removed})
    else:
        out.log(f"deleted {sum(removed.values()):,} synthetic rows")


def register(root: typer.Typer) -> None:
    root.command("seed")(seed)
