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
OptionalBackupArgument = Annotated[
    Optional[str], typer.Argument(metavar="[BACKUP]", show_default=False,
                                  help="A dump: its directory, its name in the backup directory, or 'latest'. "
                                       "Leave out with the pgbackrest engine.")
]
EngineOption = Annotated[
    Optional[str],
    typer.Option("--engine", metavar="pg_dump|pgbackrest", show_default=False,
                 help="Backup engine [default: tdbctl.toml [backup] engine, else pg_dump]."),
]


def _engine(config, override):
    from tdbctl.backup.pgbackrest.options import engine_of

    return engine_of(config, override)


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
    type_: Annotated[
        Optional[str],
        typer.Option("--type", metavar="full|diff|incr", show_default=False,
                     help="pgbackrest engine: the backup type [default: incr; full when there is none yet]."),
    ] = None,
    engine: EngineOption = None,
    json: JsonOption = False,
) -> None:
    """Back the database up: a verified dump, or with the pgbackrest engine a pgBackRest backup.

    pg_dump engine (the default). PostgreSQL: pg_dump (custom format; directory format with
    --jobs). SQLite: the online backup API over the main file and every domain file, consistent
    while the database is in use. Pruning (--keep, --keep-days) runs only after a successful
    backup and never removes the newest.

    pgbackrest engine ([backup] engine = "pgbackrest" in tdbctl.toml, after `backup setup`): a
    full, differential or incremental pgBackRest backup; with the WAL it archives continuously,
    `restore --time` reaches any moment since the oldest backup.

    Example:

        \b
        tdbctl backup --to /var/backups/tdbctl --keep 7
        tdbctl backup --jobs 4 --keep-days 14   # parallel pg_dump
        tdbctl backup --type full    # with [backup] engine = "pgbackrest"
    """
    if ctx.invoked_subcommand:
        return
    from tdbctl.backup import commands
    from tdbctl.ops.humanize import size as human_size

    out = Output(json)
    config = settings()
    if _engine(config, engine) == "pgbackrest":
        if any(v is not None for v in (to, keep, keep_days, jobs, pg_bin)):
            from tdbctl.errors import UsageError

            raise UsageError("--to, --keep, --keep-days, --jobs and --pg-bin are for pg_dump backups; pgBackRest's "
                             "repository and retention are [backup.pgbackrest] repo, retention_full, retention_diff")
        from tdbctl.backup.pgbackrest import commands as pitr

        taken = pitr.backup(config, type=type_ or "incr", log=out.log)
        if out.json:
            out.data({"engine": "pgbackrest", "backup": taken})
            return
        out.line(taken["label"])
        out.log(f"{taken['type']} backup {taken['label']}: {human_size(taken['bytes'])} of data, "
                f"{human_size(taken['repo_bytes'])} written to the repository in {taken['seconds']:.1f}s "
                f"(WAL {taken['wal_start']} to {taken['wal_stop']})")
        return
    if type_ is not None:
        from tdbctl.errors import UsageError

        raise UsageError("--type is for the pgbackrest engine ([backup] engine = \"pgbackrest\", or --engine pgbackrest)")
    result = commands.create(config, to=to, jobs=jobs, pg_bin=pg_bin, keep=keep, keep_days=keep_days, log=out.log)
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
    engine: EngineOption = None,
    json: JsonOption = False,
) -> None:
    """List the dumps in the backup directory, newest first, with size, revision and age; with the
    pgbackrest engine, pgBackRest's backups beside them and the window a restore can reach.

    Example:

        \b
        tdbctl backup list --from /var/backups/tdbctl
    """
    from tdbctl.backup import commands
    from tdbctl.backup.store import age
    from tdbctl.ops.humanize import size as human_size

    out = Output(json)
    config = settings()
    path, entries = commands.list_backups(config, directory)
    repo = None
    if _engine(config, engine) == "pgbackrest":
        from tdbctl.backup.pgbackrest import commands as pitr

        repo = pitr.repository(config)
    if out.json:
        document = {"directory": str(path), "backups": [_entry_document(e) for e in entries]}
        if repo is not None:
            oldest, newest = repo.window
            document["pgbackrest"] = {"stanza": repo.stanza, "repo": repo.repo, "status": repo.status,
                                      "backups": repo.backups, "wal_min": repo.wal_min, "wal_max": repo.wal_max,
                                      "last_archived_at": repo.last_archived_at,
                                      "recoverable": {"from": oldest, "to": newest}}
        out.data(document)
        return
    if repo is not None:
        _show_repository(out, repo)
        if not entries:
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


def _show_repository(out: Output, repo) -> None:
    from tdbctl.backup.store import age
    from tdbctl.ops.humanize import size as human_size

    rows = [(b["label"], b["type"], age(b["stopped_at"]), b["stopped_at"], human_size(b["bytes"]),
             human_size(b["repo_bytes"]), b["prior"] or "", "ERROR" if b["error"] else "ok")
            for b in reversed(repo.backups)]
    out.table(f"pgBackRest backups of stanza {repo.stanza} in {repo.repo}",
              ["backup", "type", "age", "ended", "size", "in repository", "based on", "status"], rows)
    oldest, newest = repo.window
    if oldest is None:
        out.log(f"no pgBackRest backups yet ({repo.status}): `tdbctl backup --type full` takes the first")
    else:
        from tdbctl.ops.humanize import moment

        out.log(f"recoverable: any moment from {moment(oldest)} to {moment(newest)} "
                f"(WAL {repo.wal_min} to {repo.wal_max})")


def _entry_document(entry) -> dict:
    m = entry.manifest
    if m is None:
        return {"name": entry.name, "path": str(entry.path), "good": False, "problem": entry.problem}
    return {"name": entry.name, "path": str(entry.path), "good": True, "created_at": m.created_at,
            "bytes": m.total_bytes, "revision": m.revision, "dialect": m.dialect, "database": m.database}


@app.command("verify")
def verify(
    backup: OptionalBackupArgument = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also restore into a scratch database and compare row counts.")
    ] = False,
    directory: FromOption = None,
    jobs: JobsOption = None,
    pg_bin: PgBinOption = None,
    engine: EngineOption = None,
    scratch_url: Annotated[Optional[str], typer.Option(
        "--scratch-url", metavar="URL", show_default=False,
        help="With --deep: restore into this existing empty database instead of creating one "
             "(no CREATEDB needed); left empty again. Also TDB_SCRATCH_URL (keeps a password out of ps).")] = None,
    json: JsonOption = False,
) -> None:
    """Check a backup's files against its checksums (exit 3 if any differs); --deep restores it too.

    A dump: every file against its manifest. --deep restores into a temporary SQLite file, or a
    temporary PostgreSQL database created on the configured server and dropped afterwards (or the
    empty --scratch-url database), and compares every table's row count. With the pgbackrest
    engine and no BACKUP: `pgbackrest verify`, every backup's files and every archived WAL segment.

    Example:

        \b
        tdbctl backup verify latest --deep
        tdbctl backup verify                  # [backup] engine = "pgbackrest"
    """
    from tdbctl.backup import commands
    from tdbctl.errors import ExitCode, UsageError

    out = Output(json)
    config = settings()
    if backup is None:
        if _engine(config, engine) != "pgbackrest":
            raise UsageError("give the BACKUP to verify (a directory, its name, or 'latest')")
        _verify_repository(out, config)
        return
    path = commands.locate(backup, config, directory)
    import os

    from tdbctl.config import resolve

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


def _verify_repository(out: Output, config) -> None:
    from tdbctl.backup.pgbackrest import commands as pitr
    from tdbctl.errors import ExitCode

    report = pitr.verify(config, log=out.log)
    if out.json:
        out.data({"engine": "pgbackrest", "ok": report.ok, "status": report.status, "archives": report.archives,
                  "backups": report.backups, "seconds": report.seconds})
    else:
        rows = [(a["archive_id"], "WAL", a["checked"], a["valid"], _problems(a)) for a in report.archives]
        rows += [(b["label"], b["status"], b["checked"], b["valid"], _problems(b)) for b in report.backups]
        out.table("pgbackrest verify", ["what", "status", "files", "valid", "problems"], rows)
        out.log(f"the repository verifies: every backup file and WAL segment matches its checksum "
                f"({report.seconds:.1f}s)" if report.ok else "the repository FAILED verification")
    if not report.ok:
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _problems(entry: dict) -> str:
    return ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in entry["problems"].items()) or "none"


def restore(
    backup: OptionalBackupArgument = None,
    target: Annotated[
        Optional[str],
        typer.Option("--target", metavar="URL", show_default=False, envvar="TDB_RESTORE_TARGET",
                     help="Restore into this database instead of the configured one. A password here shows "
                          "in the process list: put the URL in TDB_RESTORE_TARGET, or use PGPASSWORD/~/.pgpass."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a target that already holds tdbctl tables; pgbackrest: "
                                           "restore over the stopped cluster's own data directory.")
    ] = False,
    directory: FromOption = None,
    jobs: JobsOption = None,
    pg_bin: PgBinOption = None,
    time_: Annotated[Optional[str], typer.Option(
        "--time", metavar="MOMENT", show_default=False,
        help="pgbackrest: recover to this moment, with its time zone ('2026-12-01 16:59:00+00').")] = None,
    lsn: Annotated[Optional[str], typer.Option(
        "--lsn", metavar="LSN", show_default=False, help="pgbackrest: recover to this WAL position (0/5000028).")] = None,
    latest: Annotated[bool, typer.Option(
        "--latest", help="pgbackrest: recover to the end of the archived WAL.")] = False,
    label: Annotated[Optional[str], typer.Option(
        "--set", metavar="LABEL", show_default=False,
        help="pgbackrest: restore from this backup (`backup list`); alone, to the end of that backup.")] = None,
    into: Annotated[Optional[str], typer.Option(
        "--to", metavar="DIR", show_default=False,
        help="pgbackrest: the new data directory [default: beside the live one, tdbctl-restore-STANZA-TIME].")] = None,
    port: Annotated[Optional[int], typer.Option(
        "--port", min=1, max=65535, metavar="PORT", show_default=False, help="pgbackrest: start the copy on this port [default: a free one].")] = None,
    no_start: Annotated[bool, typer.Option(
        "--no-start", help="pgbackrest: restore the files only; do not start the copy.")] = False,
    engine: EngineOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
) -> None:
    """Restore a backup: a dump into the database (or --target URL); with the pgbackrest engine,
    the cluster as it was at a moment, into a new data directory started on a free port.

    A dump: checked against its checksums first; refuses a target holding tdbctl tables unless
    --force; asks first on a terminal (--yes for scripts). PostgreSQL restores in one transaction
    (not with --jobs); SQLite swaps files in. A backup from an older revision leaves the database
    there: `tdbctl migrate` brings it to head.

    pgbackrest (--time, --lsn, --latest or --set): restores into a new directory, starts the copy
    on a free port (localhost; its roles and passwords as they were), waits until recovery
    reaches the target, and says the moment actually reached and how to connect. The live cluster
    is never touched, unless it is stopped, --to names its data directory, and --force is given.

    Example:

        \b
        tdbctl restore latest --target postgresql://ops@db2/app_restored --yes
        tdbctl restore backups/app-20250101T030000Z --force --dry-run
        tdbctl restore --time "2026-12-01 16:59:00+00"
    """
    from tdbctl.backup import commands
    from tdbctl.config import resolve

    out = Output(json)
    config = settings()
    if time_ or lsn or latest or label or (backup is None and _engine(config, engine) == "pgbackrest"):
        _restore_to_moment(out, config, backup, time_=time_, lsn=lsn, latest=latest, label=label, into=into,
                           port=port, start=not no_start, force=force, yes=yes, dry_run=dry_run)
        return
    if backup is None:
        from tdbctl.errors import UsageError

        raise UsageError("give the BACKUP to restore (a directory, its name, or 'latest'), or a moment with --time")
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


def _restore_to_moment(out: Output, config, backup, *, time_, lsn, latest, label, into, port, start, force, yes,
                       dry_run) -> None:
    from tdbctl.backup.pgbackrest import commands as pitr
    from tdbctl.errors import UsageError

    if backup is not None:
        raise UsageError(f"BACKUP {backup!r} names a dump; a pgBackRest backup is chosen with --set LABEL")
    target = pitr.target_of(time_text=time_, lsn=lsn, latest=latest, label=label)
    if dry_run:
        ctx = pitr.context(config)
        repo = pitr.repository(config, ctx)
        chosen = pitr._chosen_backup(repo, target)
        document = {"dry_run": True, "target": target.describe(), "backup": chosen["label"] if chosen else None,
                    "into": into or "a new directory beside the live data directory",
                    "recoverable": {"from": repo.window[0], "to": repo.window[1]}}
        if out.json:
            out.data(document)
        else:
            from tdbctl.ops.humanize import moment

            out.fields("Would restore", [("target", document["target"]), ("from backup", document["backup"] or "none"),
                                         ("into", document["into"]),
                                         ("recoverable", f"{moment(repo.window[0])} to {moment(repo.window[1])}")])
        return
    if into and force:
        confirm(f"Restore over {into} (the stopped cluster's data directory) to {target.describe()}?", yes)
    result = pitr.restore(config, target, to=into, port=port, force=force, start=start, log=out.log)
    document = {"engine": "pgbackrest", "target": target.describe(), "backup": result.backup,
                "data_dir": str(result.data_dir), "in_place": result.in_place, "started": result.started,
                "port": result.port, "url": result.url, "reached_at": result.reached_at,
                "stopped_before": result.stopped_before, "reached_lsn": result.reached_lsn, "seconds": result.seconds}
    if out.json:
        out.data(document)
        return
    if result.in_place:
        out.log(f"restored {result.backup} over {result.data_dir} in {result.seconds:.1f}s: start PostgreSQL, "
                f"and it recovers to {target.describe()}")
        return
    out.line(result.url or str(result.data_dir))
    if not result.started:
        out.log(f"restored {result.backup} into {result.data_dir} in {result.seconds:.1f}s, not started")
        return
    precise = lambda value: value.isoformat(sep=" ")  # noqa: E731 (a moment to the microsecond, as recovery targets are)
    reached = (f"the last transaction replayed committed at {precise(result.reached_at)}" if result.reached_at
               else "no transaction committed between the backup and the target")
    left = (f"; the first left out committed at {precise(result.stopped_before)}" if result.stopped_before
            else "; every archived transaction is in" if target.kind == "latest" else "")
    out.log(f"recovered to {target.describe()} in {result.seconds:.1f}s: {reached}{left} (WAL replayed to "
            f"{result.reached_lsn or 'unknown'})")
    out.log(f"the copy runs from {result.data_dir} on port {result.port} (localhost): "
            f"psql '{result.url}'; stop it with: {pitr.stop_command(result)}")


@app.command("setup")
def setup(
    apply: Annotated[bool, typer.Option(
        "--apply", help="Also change the server settings archiving needs (ALTER SYSTEM and a reload; "
                        "a restart is said, never done).")] = False,
    json: JsonOption = False,
) -> None:
    """Prepare pgBackRest for this database: check the server, write pgBackRest's configuration,
    create the stanza, check that WAL reaches the repository. Running it again changes nothing.

    Without --apply, prints the ALTER SYSTEM statements archiving needs (archive_mode, wal_level,
    archive_command, archive_timeout) and exits 3 until they are in force. Needs the pgbackrest
    engine ([backup] engine = "pgbackrest") and runs on the database server, as root or the data
    directory's owner.

    Example:

        \b
        tdbctl backup setup --apply
    """
    from tdbctl.backup.pgbackrest import commands as pitr
    from tdbctl.errors import ExitCode

    out = Output(json)
    config = settings()
    report = pitr.setup(config, apply=apply, log=out.log)
    if out.json:
        out.data({"stanza": report.stanza, "config": str(report.config), "repo": report.repo,
                  "complete": report.complete, "changed": report.changed, "restart_needed": report.restart,
                  "steps": [vars(step) for step in report.steps], "statements": report.statements})
    else:
        out.table(f"pgBackRest setup of stanza {report.stanza}", ["step", "status", "detail"],
                  [(s.name, s.status, s.detail) for s in report.steps])
        todo = [s for s in report.steps if s.status == "todo"]
        if todo and not apply and report.statements:
            out.log("to apply (as a superuser, or with --apply):")
            for statement in report.statements:
                out.log(f"  {statement}")
            out.log("  SELECT pg_reload_conf();")
        if report.restart:
            out.log("archive_mode and wal_level take effect only when PostgreSQL restarts: restart it "
                    "(systemctl restart postgresql, or pg_ctl restart), then run `tdbctl backup setup` again")
        if report.complete:
            out.log("pgBackRest is ready: " + ("set up now" if report.changed else "nothing to change")
                    + "; take the first backup with `tdbctl backup --type full`")
        elif not todo:
            out.log("setup FAILED: " + next(s.detail for s in report.steps if s.status == "failed"))
    if not report.complete:
        raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command("drill")
def drill(
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", metavar="SECONDS", min=1, show_default=False,
        help="Give up on recovery after this long [default: the RTO, [backup.pgbackrest] rto_minutes].")] = None,
    json: JsonOption = False,
) -> None:
    """The disaster recovery test: restore the latest backup and WAL into a scratch directory, start
    it, compare it with the primary, remove it; exit 3 if it fails.

    The copy is recovered to the WAL position of a snapshot taken on the primary as the drill
    starts; tdbctl's revision, every managed table's row count in that snapshot, and `migrate
    check` must match. The recovery time and the archive's lag are printed beside the RTO and RPO
    and recorded in tdbctl.runs, where `tdbctl stats` reads the last drill's age.

    Example:

        \b
        tdbctl backup drill --json
    """
    from tdbctl.backup.pgbackrest import commands as pitr
    from tdbctl.errors import ExitCode
    from tdbctl.ops.humanize import seconds as human_seconds

    out = Output(json)
    result = pitr.drill(settings(), timeout=timeout, log=out.log)
    if out.json:
        out.data(vars(result))
    else:
        failed = [t for t in result.tables if not t["ok"]]
        if failed:
            out.table("Row counts that differ", ["table", "primary", "restored"],
                      [(t["table"], t["primary"], t["restored"]) for t in failed])
        out.fields("Recovery drill", [
            ("result", "passed" if result.ok else "FAILED"),
            ("backup", result.backup or "none"),
            ("recovered to", result.target_lsn),
            ("recovery time", f"{human_seconds(result.recovery_seconds)} (RTO {human_seconds(result.rto_seconds)})"),
            ("archive lag", f"{human_seconds(result.archive_lag_seconds)} (RPO {human_seconds(result.rpo_seconds)})"
             if result.archive_lag_seconds is not None else f"nothing archived yet (RPO {human_seconds(result.rpo_seconds)})"),
            ("tables compared", f"{len(result.tables)}, {len(failed)} differ"),
            ("recorded", "in tdbctl.runs" if result.recorded else "no (no tdbctl tables on the primary)"),
        ])
        for problem in result.problems:
            out.log(f"problem: {problem}")
    if not result.ok:
        raise typer.Exit(ExitCode.CHECK_FAILED)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="backup")
    root.command("restore")(restore)
