"""`tdbctl migrate`: upgrade (the default), down, history, current, check, validate, repair."""


import logging
import sys
from typing import Annotated, Optional

import typer

from tdbctl.cli.common import (
    DryRunOption,
    JsonOption,
    LockTimeoutOption,
    LockWaitOption,
    Output,
    YesOption,
    confirm,
    settings,
)
from tdbctl.ops.humanize import moment, plural, seconds

app = typer.Typer(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DEFAULT_LOCK_WAIT = 60.0
DEFAULT_LOCK_TIMEOUT = 10.0


def _waits(config, lock_wait: float | None, lock_timeout: float | None) -> dict:
    """Command line first, then tdbctl.toml's [migrate] lock_wait / lock_timeout, then defaults."""
    section = config.section("migrate")
    return {
        "lock_wait": lock_wait if lock_wait is not None else float(section.get("lock_wait", DEFAULT_LOCK_WAIT)),
        "lock_timeout": lock_timeout if lock_timeout is not None
        else float(section.get("lock_timeout", DEFAULT_LOCK_TIMEOUT)),
    }


def _log_progress() -> None:
    """Alembic's 'Running upgrade ...' lines go to stderr as progress."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    # Only the steps and what a step warns of; "Context impl ..." and "Will assume ..." are
    # Alembic's internals.
    handler.addFilter(lambda record: record.levelno >= logging.WARNING or record.getMessage().startswith("Running "))
    logger = logging.getLogger("alembic.runtime.migration")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _steps(result) -> list[dict]:
    return [{"revision": s.revision, "description": s.description, "script": s.script} for s in result.steps]


@app.callback()
def upgrade(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", metavar="REV", help="Upgrade to this revision instead of head.")] = "head",
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL for a DBA instead of running it.")] = False,
    start: Annotated[
        Optional[str], typer.Option("--from", metavar="REV", help="With --sql: the revision the database is at.")
    ] = None,
    domains: Annotated[
        Optional[str], typer.Option("--domains", metavar="D1,D2",
                                    help="The domains to install (dispatch, voice, academy, chattrain); default: "
                                         "[database] domains in tdbctl.toml, else all four on a new database and "
                                         "those it has on an existing one. A domain named here that the database "
                                         "lacks is added.")
    ] = None,
    beside_existing: Annotated[
        bool, typer.Option("--beside-existing",
                           help="Migrate a new database even though another schema (public) holds tables "
                                "named as tdbctl's.")
    ] = False,
    lock_wait: LockWaitOption = None,
    lock_timeout: LockTimeoutOption = None,
    json: JsonOption = False,
) -> None:
    """Upgrade the database to head (or --to REV); with a subcommand, do that instead.

    Example:

        \b
        tdbctl migrate                     # to head, as a deploy runs it
        tdbctl migrate --domains dispatch  # only the dispatch trainer
        tdbctl migrate --sql > up.sql      # the SQL, for a DBA to review
    """
    if ctx.invoked_subcommand:
        return
    from tdbctl.migrate import commands

    out = Output(json)
    config = settings()
    if sql:
        sys.stdout.write(commands.upgrade_sql(config, to, start, lock_timeout=_waits(config, None, lock_timeout)["lock_timeout"]))
        return
    _log_progress()
    result = commands.upgrade(config, to, on_progress=_moving(out), domains=domains, beside_existing=beside_existing,
                              **_waits(config, lock_wait, lock_timeout))
    maintained = result.partitions
    if result.unrequested:
        out.log(f"note: the database also has {', '.join(result.unrequested)}, which the configuration does not "
                "name: migrated with the rest (tdbctl never removes a domain)")
    if out.json:
        out.data({"before": result.before, "after": result.after, "applied": _steps(result),
                  "domains": list(result.domains), "added": result.added, "distributed": result.distributed,
                  "partitions": maintained.to_json() if maintained is not None else None})
        return
    for domain in result.added:
        out.log(f"installed domain {domain} (at {result.before})")
    if result.steps:
        out.log(f"migrated {result.before or 'empty database'} -> {result.after} ({plural(len(result.steps), 'migration')} applied)"
                + (f"; domains: {', '.join(result.domains)}" if result.before is None else ""))
    elif not result.added and not result.distributed:
        out.log(f"already at {result.after}: nothing to do")
    for placed in result.distributed:
        out.log(f"cluster: {placed}")
    if maintained is not None:
        for conversion in maintained.conversions:
            out.log(f"{conversion['table']}: partitioned, {conversion['rows_moved']:,} old rows moved and verified")
        if maintained.created:
            out.log(f"partitions: created {plural(len(maintained.created), 'partition')} ahead")


def _moving(out: Output):
    """A line on stderr every few seconds while a conversion moves old rows into partitions."""
    import time

    last = [0.0]

    def progress(conversion) -> None:
        if time.monotonic() - last[0] >= 5.0:
            last[0] = time.monotonic()
            total = f" of {conversion.rows_total:,}" if conversion.rows_total is not None else ""
            out.log(f"{conversion.table}: {conversion.rows_moved:,}{total} old rows moved into partitions")

    return progress


@app.command("down")
def down(
    revision: Annotated[str, typer.Argument(metavar="REV", help="Revision to go back to (base: before the first).")],
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    lock_wait: LockWaitOption = None,
    lock_timeout: LockTimeoutOption = None,
    json: JsonOption = False,
) -> None:
    """Revert migrations down to REV. Drops what they created, data included: asks first.

    Example:

        \b
        tdbctl migrate down 0004 --dry-run
    """
    from tdbctl.migrate import commands

    out = Output(json)
    config = settings()
    plan = commands.plan_downgrade(config, revision)
    rows_lost = sum(plan.dropped_tables.values())
    if dry_run or not out.json:
        if out.json:
            out.data({"dry_run": True, "current": plan.current, "target": plan.target,
                      "revert": [s.revision for s in plan.steps], "dropped_tables": plan.dropped_tables})
            return
        out.table(f"Would revert {plan.current} -> {plan.target}", ["revision", "description"],
                  [(s.revision, s.description) for s in plan.steps])
        out.table("Tables that would be dropped", ["table", "rows"], sorted(plan.dropped_tables.items()))
        if dry_run:
            return
    confirm(f"Revert {plural(len(plan.steps), 'migration')} and drop {plural(len(plan.dropped_tables), 'table')} "
            f"holding {plural(rows_lost, 'row')}?", yes)
    _log_progress()
    result = commands.downgrade(config, plan.target, **_waits(config, lock_wait, lock_timeout))
    if out.json:
        out.data({"before": result.before, "after": result.after, "reverted": _steps(result)})
    else:
        out.log(f"reverted {result.before} -> {result.after or 'base'} ({plural(len(result.steps), 'migration')} reverted)")


@app.command("current")
def current(json: JsonOption = False) -> None:
    """Show the revision the database is at, the head, and what is pending.

    Example:

        \b
        tdbctl migrate current
    """
    from tdbctl.migrate import commands

    out = Output(json)
    state = commands.state(settings())
    pending = [p.revision for p in state.pending]
    if out.json:
        out.data({"current": state.current, "head": state.head, "pending": pending})
    else:
        out.line(f"{state.current or 'base'} (head {state.head}; pending: {', '.join(pending) or 'none'})")


@app.command("history")
def history(json: JsonOption = False) -> None:
    """List every migration, oldest first: when each was applied, by whom, and how long it took.

    Example:

        \b
        tdbctl migrate history
    """
    from tdbctl.migrate import commands

    out = Output(json)
    revisions = commands.history(settings())
    if out.json:
        out.data([vars(r) for r in revisions])
        return
    out.table("Migrations", ["revision", "applied", "how", "by", "took", "description"],
              [(r.revision, moment(r.applied_at) if r.applied_at else "pending", r.how or "", r.applied_by or "",
                seconds(r.execution_ms / 1000) if r.execution_ms is not None else "", r.description)
               for r in revisions])


@app.command("check")
def check(json: JsonOption = False) -> None:
    """Compare the database with the metadata; exit 3 on drift or pending migrations.

    Example:

        \b
        tdbctl migrate check || echo "schema drift"
    """
    from tdbctl.errors import ExitCode
    from tdbctl.migrate.drift import check as check_drift

    out = Output(json)
    report = check_drift(settings())
    if out.json:
        out.data(report.document())
    else:
        show_drift(out, report)
    if not report.clean:
        raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command("baseline")
def baseline(
    revision: Annotated[str, typer.Argument(metavar="[REV]", show_default=False,
                                            help="The revision the schema is at (head, the default).")] = "head",
    force: Annotated[bool, typer.Option("--force", help="Record it over blocking differences (said loudly, and "
                                        "kept in the run history).")] = False,
    lock_wait: LockWaitOption = None,
    json: JsonOption = False,
) -> None:
    """Take over a database whose schema was built otherwise (the seeds' SQL, by hand).

    Compares the schema with the metadata at REV; if they agree on what matters (tables, columns,
    types, nullability, keys, constraints, indexes, views, functions, triggers), records REV and
    every revision before it in the ledger as baselined, after which every command works.
    Otherwise it lists the blocking differences and records nothing (exit 3). Cosmetic ones
    (comments, index names) are listed and do not block.

    Example:

        \b
        tdbctl migrate baseline            # at head
        tdbctl migrate check               # then: no drift
    """
    from tdbctl.errors import ExitCode
    from tdbctl.migrate import commands

    out = Output(json)
    config = settings()
    result = commands.baseline(config, revision, force=force, lock_wait=_waits(config, lock_wait, None)["lock_wait"])
    if out.json:
        out.data({"revision": result.revision, "baselined": not result.refused, "forced": result.forced,
                  "recorded": result.recorded, "created": result.created,
                  "differences": [d.document() for d in result.differences]})
    else:
        _differences(out, result.differences)
    blocking = len(result.blocking)
    if result.refused:
        out.log(f"tdbctl: error: not baselined: {plural(blocking, 'blocking difference')} from the schema at "
                f"{result.revision} (listed above); nothing was recorded; fix them, or --force to record anyway")
        raise typer.Exit(ExitCode.CHECK_FAILED)
    if result.forced and blocking:
        out.log(f"WARNING: baselined at {result.revision} over {plural(blocking, 'blocking difference')} "
                "(--force): commands may fail on them; the run history records it")
    created = f"; created {', '.join(result.created)}" if result.created else ""
    out.log(f"baselined at {result.revision}: {plural(len(result.recorded), 'revision')} recorded as baselined"
            f"{created}; {plural(len(result.differences) - blocking, 'cosmetic difference')} left")


def _differences(out: Output, differences) -> None:
    """One table for check and baseline: already sorted blocking first, then by table."""
    if differences:
        out.table("Differences from the metadata (blocking first, by table)", ["severity", "table", "difference"],
                  [(d.severity, d.table, d.what) for d in differences])


def show_drift(out: Output, report) -> None:
    """Pending migrations, then the differences grouped by table, blocking first, in plain words."""
    for revision in report.pending:
        out.line(f"pending migration {revision}")
    _differences(out, report.differences)
    blocking = len(report.blocking)
    out.log("no drift: database matches the metadata at head" if report.clean
            else f"drift: {plural(len(report.pending), 'pending migration')}, {blocking:,} blocking and "
                 f"{len(report.differences) - blocking:,} cosmetic "
                 f"difference{'s' if len(report.differences) - blocking != 1 else ''} in "
                 f"{plural(len(report.by_table()), 'table')}")


@app.command("validate")
def validate(json: JsonOption = False) -> None:
    """Check applied migrations' scripts against the ledger's checksums; exit 4 if one was edited.

    Example:

        \b
        tdbctl migrate validate
    """
    from tdbctl.errors import ExitCode
    from tdbctl.migrate import commands

    out = Output(json)
    problems = commands.validate(settings())
    if out.json:
        out.data({"valid": not problems, "problems": [p.describe() for p in problems]})
    else:
        for problem in problems:
            out.line(problem.describe())
        out.log("all applied migrations match their recorded checksums" if not problems
                else f"{plural(len(problems), 'problem')}; `tdbctl migrate repair` re-records deliberate edits")
    if problems:
        raise typer.Exit(ExitCode.VALIDATION_FAILED)


@app.command("repair")
def repair(yes: YesOption = False, json: JsonOption = False) -> None:
    """Re-record the checksums of applied migrations after a deliberate edit.

    Example:

        \b
        tdbctl migrate repair --yes
    """
    from tdbctl.migrate import commands

    out = Output(json)
    config = settings()
    problems = commands.validate(config)
    if not problems:
        out.data({"repaired": []}) if out.json else out.log("nothing to repair")
        return
    for problem in problems:
        out.log(problem.describe())
    confirm(f"Re-record {plural(len(problems), 'checksum')}?", yes)
    repaired = [p for p in commands.repair(config) if p.actual is not None]
    if out.json:
        out.data({"repaired": [p.revision for p in repaired],
                  "recorded": [{"revision": p.revision, "script": p.script, "was": p.recorded, "now": p.actual}
                               for p in repaired]})
        return
    for p in repaired:
        out.log(f"recorded {p.revision} ({p.script}): "
                + (f"checksum {p.recorded} -> {p.actual}" if p.recorded else "applied, added to the ledger"))
    out.log(f"re-recorded {plural(len(repaired), 'checksum')}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="migrate")
