"""`tdbctl cleanup`: apply the retention policies declared beside the tables, in short batches."""


import sys
from typing import Annotated, Optional

import typer

from tdbctl.cli.common import (
    BeforeOption, DryRunOption, JsonOption, MaxRuntimeOption, OlderThanOption, Output, PolicyOption, TableOption, settings,
)
from tdbctl.ops.humanize import plural

# Status words of the plain (cron) lines.
_PLAIN_STATUS = {
    "done": "deleted",
    "would_delete": "would delete",
    "nothing": "nothing to delete",
    "stopped": "stopped",
    "failed": "failed",
    "archive": "archive policy: left for tdbctl archive",
}


def cleanup(
    policy: PolicyOption = None,
    table: TableOption = None,
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option("--batch-size", metavar="N", help="Rows per batch, each its own short transaction (1-10000; "
                     "default 2000, or 10000 where PostgreSQL deletes by ranges of pages)."),
    ] = None,
    max_runtime: MaxRuntimeOption = None,
    vacuum: Annotated[
        Optional[bool],
        typer.Option("--vacuum/--no-vacuum", show_default=False,
                     help="VACUUM (ANALYZE) the tables it deleted from, so that dead rows do not wait for "
                     "autovacuum (SQLite: vacuum their files). Default: yes where a direct connection allows "
                     "it (else a note); --vacuum makes that a requirement, --no-vacuum leaves them to autovacuum."),
    ] = None,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", metavar="SECONDS", help="How long a batch may wait for a lock before it pauses and retries.")
    ] = 1.0,
    statement_timeout: Annotated[
        float, typer.Option("--statement-timeout", metavar="SECONDS", help="Longest a batch statement may run (PostgreSQL); past it the batch is retried, halved.")
    ] = 10.0,
    list_policies: Annotated[bool, typer.Option("--list", help="Show the declared retention policies and exit.")] = False,
    history: Annotated[bool, typer.Option("--history", help="Show the recent cleanup runs and exit.")] = False,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, help="With --history: how many runs.")] = 20,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
) -> None:
    """Delete what the retention policies say has expired, in small batches, safe on a live database.

    Archive policies are listed but never deleted here (use `tdbctl archive`). One cleanup runs
    at a time per database; a second one exits 5 at once. Exit 0 when the run did its job, also
    when --max-runtime stopped it (the next run continues); 1 when a policy failed.

    Example:

        \b
        tdbctl cleanup                   # each policy at its declared age
        tdbctl cleanup --older-than 90d  # one age for every policy
        tdbctl cleanup --dry-run         # what each would delete
        tdbctl cleanup --policy chattrain.activity_logs --max-runtime 30m
    """
    out = Output(json)
    if list_policies:
        _show_policies(out)
        return
    from tdbctl.cleanup import CleanupRequest
    from tdbctl.runtime import HEAD, TOOL, open_database

    request = None
    if not history:
        request = CleanupRequest.from_options(
            policies=policy or (), tables=table or (), older_than=older_than, before=before,
            batch_size=batch_size, max_runtime=max_runtime, dry_run=dry_run, vacuum=vacuum,
            lock_timeout=lock_timeout, statement_timeout=statement_timeout,
        )
    with open_database(settings(), TOOL if history else HEAD) as db:
        if history:
            _show_history(out, db, limit)
            return
        report = _run(out, db, request)
    _summary(out, report)
    if report.failures:
        out.log(f"tdbctl: error: {report.message}")
        raise typer.Exit(1)


def _run(out, db, request):
    from tdbctl.cleanup import cleanup as run_cleanup

    observer = _RichObserver() if out.terminal and not out.json and sys.stderr.isatty() else _PlainObserver(out)
    with observer:
        return run_cleanup(db, request, observer=observer)


class _PlainObserver:
    """Cron: one tab-separated line per policy as it finishes, no colour, no spinner."""

    wants_totals = False

    def __init__(self, out):
        self.out = out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def ages_overridden(self, overrides):
        _say_overrides(self.out.log, overrides)

    def policy_started(self, outcome, total):
        pass

    def rows_moved(self, outcome, count):
        pass

    def policy_finished(self, outcome):
        if not self.out.json and not self.out.terminal:
            self.out.line(plain_line(outcome))


class _RichObserver:
    """A terminal: a progress bar per policy on stderr."""

    wants_totals = True

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), transient=False,
        )
        self.tasks = {}
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def ages_overridden(self, overrides):
        _say_overrides(self.progress.console.print, overrides)

    def policy_started(self, outcome, total):
        self.tasks[outcome.policy] = self.progress.add_task(outcome.policy, total=total)

    def rows_moved(self, outcome, count):
        self.progress.advance(self.tasks[outcome.policy], count)

    def policy_finished(self, outcome):
        task = self.tasks.get(outcome.policy)
        if task is not None:
            done = outcome.deleted
            self.progress.update(task, completed=done, total=max(done, self.progress.tasks[task].total or 0),
                                 description=f"{outcome.policy} [{_PLAIN_STATUS.get(outcome.status, outcome.status)}]")


def _say_overrides(say, overrides) -> None:
    """The cron line's --older-than replaces every policy's own age: said before anything goes."""
    for o in overrides:
        say(f"{o['policy']}: age {o['used']} instead of its declared {o['declared']}")
    say("(a plain `tdbctl cleanup` keeps each policy's declared age)")


def _counts(counts: dict) -> str:
    return " ".join(f"{table}={n}" for table, n in counts.items())


def plain_line(outcome) -> str:
    status = _PLAIN_STATUS.get(outcome.status, outcome.status)
    if outcome.status == "failed":
        status = f"failed: {outcome.message}"
    fields = [outcome.policy, status, str(outcome.deleted)]
    details = []
    if outcome.rows:
        details.append(_counts(outcome.rows))
    if outcome.cleared:
        details.append(f"set null: {_counts(outcome.cleared)}")
    if outcome.kept_referenced:
        details.append(f"kept (referenced by {', '.join(outcome.blocked_by)}): {outcome.kept_referenced}")
    if outcome.action == "delete":
        details.append(f"age {outcome.age}" if outcome.cutoff else outcome.age)
    if outcome.batches:
        details.append(f"{plural(outcome.batches, 'batch')}, {outcome.seconds:.1f}s, longest {outcome.longest_batch * 1000:.0f} ms")
    return "\t".join([*fields, "; ".join(details)])


def _summary(out, report) -> None:
    if report.not_vacuumed:
        out.log(f"note: not vacuumed: {report.not_vacuumed}; autovacuum will reach them (or --no-vacuum to "
                "say so and silence this)")
    if out.json:
        out.data(report.to_json())
        return
    deleted = sum(report.rows.values())
    if out.terminal:
        title = "Dry run: nothing was changed" if report.dry_run else f"Cleanup run {report.run_id}: {report.status}"
        rows = []
        for o in report.outcomes:
            cascaded = {t: n for t, n in o.rows.items() if t != o.table}
            rows.append((o.policy, o.table, _PLAIN_STATUS.get(o.status, o.status), o.age,
                         o.deleted, _counts(cascaded), _counts(o.cleared), o.kept_referenced or ""))
        out.table(title, ["policy", "table", "status", "age", "rows" if report.dry_run else "deleted",
                          "with cascade", "set null", "kept (referenced)"], rows)
    verb = "would delete" if report.dry_run else "deleted"
    out.log(f"cleanup{' (dry run)' if report.dry_run else f' run {report.run_id} {report.status}'}: "
            f"{verb} {plural(deleted, 'row')} in {plural(len(report.rows), 'table')} in {report.seconds:.1f}s"
            + (f"; {report.message}" if report.message and not report.failures else ""))
    for statement in report.vacuumed:
        out.log(f"ran {statement}")


def _show_policies(out) -> None:
    from tdbctl.cleanup import describe_policies

    policies = describe_policies()
    if out.json:
        out.data(policies)
        return
    out.table("Retention policies (archive ones are left to tdbctl archive)",
              ["policy", "table", "action", "age column", "default age", "condition", "description"],
              [(p["policy"], p["table"], p["action"], p["age_column"] or "", p["default_age"] or "",
                p["condition"] or "", p["description"]) for p in policies])


def _show_history(out, db, limit: int) -> None:
    from tdbctl.cleanup import history

    runs = history(db, limit)
    if out.json:
        out.data(runs)
        return
    rows = []
    for run in runs:
        options = run.get("options") or {}
        chosen = options.get("policies") or options.get("tables") or ["all"]
        age = options.get("older_than") or (f"before {options['before']}" if options.get("before") else "policy ages")
        rows.append((str(run["id"]), run["started_at"], run["finished_at"] or "", run["status"],
                     sum((run.get("rows") or {}).values()), f"{','.join(chosen)} {age}", run["user_host"] or "",
                     run["message"] or ""))
    out.table("Recent cleanup runs", ["id", "started", "finished", "status", "rows", "options", "by", "message"], rows)


def register(root: typer.Typer) -> None:
    root.command("cleanup")(cleanup)
