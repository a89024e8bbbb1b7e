"""`tdbctl backup` (the default: take one), `backup list`, `backup verify`, and `tdbctl restore`."""


from typing import Annotated, Optional

import typer

from tdbctl.cli.common import DryRunOption, JsonOption, Output, YesOption, confirm, settings
from tdbctl.ops.humanize import plural

app = typer.Typer(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PgBinOption = Annotated[
    Optional[str],
    typer.Option("--pg-bin", metavar="DIR", show_default=False,
                 help="Directory of pg_dump/pg_restore/psql (else TDB_PG_BIN, else searched: PATH, "
                      "/usr/lib/postgresql/*/bin, ...; the first at least the server's version)."),
]
JobsOption = Annotated[
    Optional[int],
    typer.Option("--jobs", "-j", min=1, metavar="N", show_default=False,
                 help="PostgreSQL: N parallel connections (directory-format dump; restore is then not one transaction)."),
]
FromOption = Annotated[
    Optional[str],
    typer.Option("--from", metavar="DIR", show_default=False,
                 help="Where to look up a BACKUP given by name or as 'latest' (default: as for backup --to)."),
]
BackupArgument = Annotated[
    str, typer.Argument(metavar="BACKUP", help="A backup directory, its name in the backup directory, or 'latest'.")
]


@app.callback()
def backup(
    ctx: typer.Context,
    to: Annotated[
        Optional[str],
        typer.Option("--to", metavar="DIR", show_default=False,
                     help="Directory to write the backup into (default: tdbctl.toml [backup] dir, else ./backups)."),
    ] = None,
    keep: Annotated[
        Optional[int],
        typer.Option("--keep", min=1, metavar="N", show_default=False,
                     help="After a successful backup, keep only the N newest of this database's backups."),
    ] = None,
    keep_days: Annotated[
        Optional[float],
        typer.Option("--keep-days", min=0, metavar="DAYS", show_default=False,
                     help="After a successful backup, delete this database's backups older than DAYS days "
                          "(with --keep, a backup that either option keeps survives)."),
    ] = None,
    jobs: JobsOption = None,
    pg_bin: PgBinOption = None,
    json: JsonOption = False,
) -> None:
    """Back the database up into a new timestamped directory with a checksummed manifest.

    PostgreSQL: pg_dump (custom format; directory format with --jobs). SQLite: the online backup
    API over the main file and every domain file, consistent while the database is in use.
    Pruning (--keep, --keep-days) runs only after a successful backup and never removes the newest.

    Example:

        \b
        tdbctl backup --to /var/backups/tdbctl --keep 7
        tdbctl backup --jobs 4 --keep-days 14   # parallel pg_dump
    """
    if ctx.invoked_subcommand:
        return
    from tdbctl.backup import commands
    from tdbctl.ops.humanize import size as human_size

    out = Output(json)
    result = commands.create(settings(), to=to, jobs=jobs, pg_bin=pg_bin, keep=keep, keep_days=keep_days, log=out.log)
    manifest = result.manifest
    if out.json:
        out.data({"path": str(result.path), "manifest": manifest.document(), "pruned": result.pruned})
        return
    out.line(str(result.path))
    estimated = sum(1 for t in manifest.tables.values() if t.estimated)
    out.log(f"backed up {plural(len(manifest.tables), 'table')} ({plural(sum(t.rows for t in manifest.tables.values()), 'row')}"
            f"{f', {estimated:,} estimated' if estimated else ''}) at revision {manifest.revision or 'none'}: "
            f"{human_size(manifest.total_bytes)} in {manifest.duration_seconds:.1f}s")
    for name in result.pruned:
        out.log(f"pruned {name}")


@app.command("list")
def list_(
    directory: Annotated[
        Optional[str], typer.Option("--from", metavar="DIR", show_default=False, help="Backup directory to list.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """List the backups in the backup directory, newest first, with size, revision and age.

    Example:

        \b
        tdbctl backup list --from /var/backups/tdbctl
    """
    from tdbctl.backup import commands
    from tdbctl.backup.store import age
    from tdbctl.ops.humanize import size as human_size

    out = Output(json)
    path, entries = commands.list_backups(settings(), directory)
    if out.json:
        out.data({"directory": str(path), "backups": [_entry_document(e) for e in entries]})
        return
    if not entries:
        where = "" if path.is_dir() else " (no such directory)"
        out.log(f"no backups in {path}{where}: the backup directory is --from DIR, else [backup] dir in "
                "tdbctl.toml, else ./backups")
        return
    rows = []
    for e in entries:
        m = e.manifest
        if m is None:
            rows.append((e.name, "", "", "", "", "DAMAGED: " + (e.problem or "")))
        else:
            rows.append((e.name, age(m.created), human_size(m.total_bytes), m.revision or "none", m.database, "ok"))
    out.table(f"Backups in {path}", ["backup", "age", "size", "revision", "database", "status"], rows)


def _entry_document(entry) -> dict:
    m = entry.manifest
    if m is None:
        return {"name": entry.name, "path": str(entry.path), "good": False, "problem": entry.problem}
    return {"name": entry.name, "path": str(entry.path), "good": True, "created_at": m.created_at,
            "bytes": m.total_bytes, "revision": m.revision, "dialect": m.dialect, "database": m.database}


@app.command("verify")
def verify(
    backup: BackupArgument,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also restore into a scratch database and compare row counts.")
    ] = False,
    directory: FromOption = None,
    jobs: JobsOption = None,
    pg_bin: PgBinOption = None,
    scratch_url: Annotated[Optional[str], typer.Option(
        "--scratch-url", metavar="URL", show_default=False,
        help="With --deep: restore into this existing empty database instead of creating one "
             "(no CREATEDB needed); left empty again. Also TDB_SCRATCH_URL (keeps a password out of ps).")] = None,
    json: JsonOption = False,
) -> None:
    """Check a backup's files against its manifest (exit 3 if any differs); --deep restores it too.

    --deep restores into a temporary SQLite file, or a temporary PostgreSQL database created on
    the configured server and dropped afterwards (or the empty --scratch-url database), and
    compares every table's row count.

    Example:

        \b
        tdbctl backup verify latest --deep
    """
    from tdbctl.backup import commands
    from tdbctl.errors import ExitCode

    out = Output(json)
    config = settings()
    path = commands.locate(backup, config, directory)
    import os

    from tdbctl.config import resolve
    from tdbctl.errors import UsageError

    scratch = scratch_url or os.environ.get("TDB_SCRATCH_URL")
    scratch_settings = resolve(scratch) if scratch else None
    if scratch_settings is not None and not deep:
        raise UsageError("--scratch-url goes with --deep")
    report = commands.verify(path, deep=deep, settings=config, jobs=jobs, pg_bin=pg_bin, log=out.log,
                             scratch=scratch_settings)
    if out.json:
        out.data({"path": str(path), "ok": report.ok, "deep": report.deep, "problems": report.problems,
                  "seconds": report.seconds,
                  "tables": [vars(t) | {"ok": t.ok} for t in report.tables]})
    else:
        for problem in report.problems:
            out.line(f"problem\t{problem}")
        if report.tables:
            out.table("Row counts: manifest vs restored", ["table", "manifest", "restored", "ok"],
                      [(t.table, f"~{t.expected}" if t.estimated else t.expected,
                        "missing" if t.restored is None else t.restored, "ok" if t.ok else "DIFFERS")
                       for t in report.tables])
        what = "files and restored row counts match" if report.deep else "every file matches its checksum"
        out.log(f"{path.name}: {what} ({report.seconds:.1f}s)" if report.ok else f"{path.name}: FAILED verification")
    if not report.ok:
        raise typer.Exit(ExitCode.CHECK_FAILED)


def restore(
    backup: BackupArgument,
    target: Annotated[
        Optional[str],
        typer.Option("--target", metavar="URL", show_default=False, envvar="TDB_RESTORE_TARGET",
                     help="Restore into this database instead of the configured one. A password here shows "
                          "in the process list: put the URL in TDB_RESTORE_TARGET, or use PGPASSWORD/~/.pgpass."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a target that already holds tdbctl tables.")
    ] = False,
    directory: FromOption = None,
    jobs: JobsOption = None,
    pg_bin: PgBinOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
) -> None:
    """Restore a backup into the database (or --target URL), after checking its checksums.

    Refuses a target holding tdbctl tables unless --force; asks first on a terminal (--yes for
    scripts). PostgreSQL restores in one transaction (not with --jobs); SQLite swaps files in.
    A backup from an older revision leaves the database there: `tdbctl migrate` brings it to head.

    Example:

        \b
        tdbctl restore latest --target postgresql://ops@db2/app_restored --yes
        tdbctl restore backups/app-20250101T030000Z --force --dry-run
    """
    from tdbctl.backup import commands
    from tdbctl.config import resolve

    out = Output(json)
    config = settings()
    destination = resolve(target) if target else config
    path = commands.locate(backup, config, directory)
    plan = commands.plan_restore(path, destination)
    m = plan.manifest
    summary = {"backup": str(path), "target": destination.masked_url, "revision": m.revision,
               "created_at": m.created_at, "replaces": plan.existing}
    if dry_run:
        out.data(summary | {"dry_run": True}) if out.json else out.fields("Would restore", [
            ("backup", path), ("taken", m.created_at), ("revision", m.revision or "none"),
            ("into", destination.masked_url),
            ("replacing", f"{len(plan.existing)} tables, {sum(plan.existing.values())} rows" if plan.existing
             else "nothing (no tdbctl tables there)")])
        return
    plan.refuse_without_force(force)
    what = (f"replace {len(plan.existing)} tables ({sum(plan.existing.values())} rows) in {destination.masked_url}"
            if plan.replaces else f"restore into {destination.masked_url}")
    confirm(f"Restore {path.name} (revision {m.revision or 'none'}, taken {m.created_at}) and {what}?", yes)
    result = commands.restore(plan, force=force, jobs=jobs, pg_bin=pg_bin, log=out.log)
    if out.json:
        out.data(summary | {"head": result.head, "behind_head": result.behind_head, "seconds": result.seconds})
        return
    out.log(f"restored {path.name} into {destination.masked_url} in {result.seconds:.1f}s "
            f"at revision {result.revision or 'none'}")
    if result.behind_head and result.revision is not None:
        out.log(f"the database is at revision {result.revision}, as the backup was; "
                f"`tdbctl migrate` brings it to head ({result.head})")
    elif result.revision is None:
        # Not a database tdbctl manages (no tdbctl tables in the backup): migrate would add its
        # empty schemas beside the restored ones, not take them over.
        out.log("the backup holds no tdbctl tables: the restored database is as it was, not one tdbctl manages")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="backup")
    root.command("restore")(restore)
