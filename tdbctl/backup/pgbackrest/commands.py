"""`tdbctl backup setup|--type|list|verify|drill` and `tdbctl restore --time` with pgBackRest.

Each function takes resolved Settings and plain arguments and returns a plain result for the CLI.
After `setup`, the pgBackRest configuration tdbctl wrote is the one source of where the cluster
and repository are: restore works with the server stopped.
"""

from __future__ import annotations

import configparser
import os
import re
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from tdbctl.backup.pgbackrest import server
from tdbctl.backup.pgbackrest.instance import Instance, find_pg_ctl, free_port, major_of
from tdbctl.backup.pgbackrest.options import Options, options_of
from tdbctl.backup.pgbackrest.program import (
    PgBackRestFailed,
    Program,
    check_supports,
    find,
    owner_of,
    run_as_prefix,
    version,
)
from tdbctl.config import Settings
from tdbctl.errors import CheckFailed, NotSetUp, PrerequisiteError, UsageError

Log = Callable[[str], None]
BACKUP_TYPES = ("full", "diff", "incr")


def _quiet(_: str) -> None:
    pass


@dataclass
class Context:
    settings: Settings
    options: Options
    stanza: str
    config: Path

    @property
    def database(self) -> str:
        return _url_part(self.settings, "database") or "postgres"

    @property
    def user(self) -> str:
        return _url_part(self.settings, "username") or pwd.getpwuid(os.geteuid()).pw_name

    def configured(self) -> dict[str, str]:
        """The stanza's settings from the configuration `setup` wrote."""
        if not self.config.exists():
            raise NotSetUp(f"pgBackRest is not set up for this database (no {self.config}): "
                           "run `tdbctl backup setup` first")
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(self.config)
        return {**dict(parser["global"]), **dict(parser[self.stanza])} if parser.has_section(self.stanza) else {}

    def program(self, owner: str | None = None) -> Program:
        owner = owner or self.options.os_user or owner_of(self.configured()["pg1-path"])
        return Program(find(self.options.bin), owner, self.config, self.stanza, self.settings.password)


def _url_part(settings: Settings, part: str) -> str | None:
    """The URL's database or user name without SQLAlchemy's URL (its import is a fifth of a second
    that `tdbctl backup` would add to pgBackRest's own time)."""
    from urllib.parse import unquote, urlsplit

    parsed = urlsplit(settings.text)
    value = parsed.path.lstrip("/") if part == "database" else parsed.username
    return unquote(value) if value else None


def context(settings: Settings) -> Context:
    if settings.dialect != "postgresql":
        raise UsageError("the pgbackrest backup engine is for PostgreSQL; SQLite keeps its online backup "
                         "(set [backup] engine = \"pg_dump\" or leave it out)")
    options = options_of(settings)
    database = _url_part(settings, "database") or "postgres"
    stanza = options.stanza or "".join(c if c.isalnum() or c in "-_" else "_" for c in database)
    config = Path(options.config) if options.config else Path(options.repo) / f"tdbctl-{stanza}.conf"
    return Context(settings, options, stanza, config)


def _connect(ctx: Context):
    from tdbctl.engine import create_engine

    return create_engine((ctx.settings.direct or ctx.settings).url, create=False)


# -- setup ---------------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    status: str
    """ok (already so), changed (made so now), todo (to be done by someone), failed"""
    detail: str = ""


@dataclass
class SetupReport:
    stanza: str
    config: Path
    repo: str
    steps: list[Step] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    restart: bool = False

    @property
    def complete(self) -> bool:
        return all(s.status in ("ok", "changed") for s in self.steps)

    @property
    def changed(self) -> bool:
        return any(s.status == "changed" for s in self.steps)


def config_text(ctx: Context, facts_data_dir: str, socket_dir: str, port: int) -> str:
    o = ctx.options
    repo = o.repo.rstrip("/")
    lines = [
        "# Written by `tdbctl backup setup` from tdbctl.toml [backup.pgbackrest]; edits here are replaced.",
        "[global]",
        f"repo1-path={repo}",
        f"repo1-retention-full={o.retention_full}",
        f"repo1-retention-diff={o.retention_diff}",
        f"compress-type={o.compress}",
        f"process-max={o.process_max}",
        "start-fast=y",
        f"log-path={repo}/log",
        f"lock-path={repo}/lock",
        "",
        f"[{ctx.stanza}]",
        f"pg1-path={facts_data_dir}",
        f"pg1-port={port}",
        f"pg1-socket-path={socket_dir}",
        f"pg1-user={ctx.user}",
        f"pg1-database={ctx.database}",
    ]
    return "\n".join(lines) + "\n"


def _owned_dir(path: Path, owner: str, mode: int) -> bool:
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(owner)
    if os.geteuid() == 0:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)
    return created


def setup(settings: Settings, *, apply: bool = False, log: Log = _quiet) -> SetupReport:
    ctx = context(settings)
    report = SetupReport(ctx.stanza, ctx.config, ctx.options.repo)
    steps = report.steps
    engine = _connect(ctx)
    try:
        with engine.connect() as conn:
            facts = server.read(conn)
        if facts.in_recovery:
            raise UsageError("this server is a standby: run `tdbctl backup setup` against the primary")
        data_dir = ctx.options.data_dir or facts.data_dir
        if not data_dir:
            raise PrerequisiteError(f"role {facts.user} cannot read data_directory (superuser or pg_read_all_settings "
                                    "can): set [backup.pgbackrest] data_dir")
        if not facts.socket_dir:
            raise PrerequisiteError("the server listens on no Unix socket, which pgBackRest connects through")
        path = find(ctx.options.bin)
        found = version(path)
        check_supports(found, facts.major)
        steps.append(Step("pgbackrest", "ok", f"pgBackRest {found[0]}.{found[1]} at {path}, "
                          f"PostgreSQL {facts.version} supported"))
        owner = ctx.options.os_user or owner_of(data_dir)
        run_as_prefix(owner)

        text = config_text(ctx, data_dir, facts.socket_dir, facts.port)
        repo = Path(ctx.options.repo)
        made = _owned_dir(repo, owner, 0o750)
        for sub in ("log", "lock"):
            _owned_dir(repo / sub, owner, 0o750)
        steps.append(Step("repository", "changed" if made else "ok", f"{repo}, owned by {owner}"))
        same = ctx.config.exists() and ctx.config.read_text() == text
        if not same:
            ctx.config.parent.mkdir(parents=True, exist_ok=True)
            partial = ctx.config.with_name(ctx.config.name + ".partial")
            partial.write_text(text)
            partial.chmod(0o600)
            entry = pwd.getpwnam(owner)
            if os.geteuid() == 0:
                os.chown(partial, entry.pw_uid, entry.pw_gid)
            os.replace(partial, ctx.config)
        steps.append(Step("configuration", "ok" if same else "changed", str(ctx.config)))
        reach = subprocess.run([*run_as_prefix(owner), "test", "-r", str(ctx.config), "-a", "-w", str(repo)],
                               capture_output=True)
        if reach.returncode != 0:
            raise PrerequisiteError(f"{owner} cannot read {ctx.config} or write {repo}: a directory above them is "
                                    f"closed to {owner} (pgBackRest and the server's archive_command run as {owner})")

        wanted = server.archive_command(path, str(ctx.config), ctx.stanza)
        pending = server.changes(facts, wanted, ctx.options.archive_timeout, ctx.options.rpo_seconds)
        report.statements = [c.statement for c in pending]
        if pending and apply:
            import sqlalchemy.exc as sa_exc

            try:
                server.apply(engine, pending)
            except sa_exc.DBAPIError as exc:
                raise PrerequisiteError(
                    f"role {facts.user} may not change server settings ({str(exc.orig).splitlines()[0]}): "
                    "have an administrator run the statements `tdbctl backup setup` prints") from None
            with engine.connect() as conn:
                after = server.read(conn)
            for change in pending:
                if change.restart or change.name in after.pending_restart:
                    report.restart = True
                    steps.append(Step(change.name, "todo", f"set to {change.wanted} with ALTER SYSTEM; takes effect "
                                                           "when PostgreSQL restarts: restart it, then run setup again"))
                else:
                    steps.append(Step(change.name, "changed", f"{change.current} -> {change.wanted} (reloaded)"))
        else:
            for change in pending:
                report.restart = report.restart or change.restart
                steps.append(Step(change.name, "todo", f"is {change.current}, needs {change.wanted}"
                                  + (" (restart)" if change.restart else " (reload)")))
            if not pending:
                steps.append(Step("archiving", "ok", "archive_mode, wal_level, archive_command and archive_timeout"))
        if not all(s.status in ("ok", "changed") for s in steps):
            return report

        program = ctx.program(owner)
        existed = _stanza_exists(program)
        program.run("stanza-create", timeout=300)
        steps.append(Step("stanza", "ok" if existed else "changed", f"{ctx.stanza} in {repo}"))
        try:
            program.run("check", timeout=max(120, ctx.options.archive_timeout * 2))
            steps.append(Step("check", "ok", "a WAL segment was switched, archived and found in the repository"))
        except PgBackRestFailed as exc:
            steps.append(Step("check", "failed", exc.message))
        return report
    finally:
        engine.dispose()


def _stanza_exists(program: Program) -> bool:
    try:
        info = program.json("info")
    except PgBackRestFailed:
        return False
    return bool(info) and info[0].get("status", {}).get("code") != 1  # 1: missing stanza path


# -- backup --------------------------------------------------------------------------------------


def backup(settings: Settings, *, type: str = "incr", log: Log = _quiet) -> dict:
    if type not in BACKUP_TYPES:
        raise UsageError(f"--type {type}: choose one of {', '.join(BACKUP_TYPES)}")
    from tdbctl.backup.cluster import refuse_on_cluster

    refuse_on_cluster(settings)
    ctx = context(settings)
    program = ctx.program()
    clock = time.monotonic()
    log(f"pgbackrest {type} backup of stanza {ctx.stanza} into {ctx.options.repo}")
    program.run("backup", f"--type={type}")
    latest = repository(settings).backups[-1]
    return latest | {"seconds": round(time.monotonic() - clock, 3)}


# -- list ----------------------------------------------------------------------------------------


@dataclass
class Repository:
    stanza: str
    repo: str
    status: str
    backups: list[dict]
    wal_min: str | None
    wal_max: str | None
    last_archived_at: datetime | None

    @property
    def window(self) -> tuple[datetime | None, datetime | None]:
        """The oldest moment a restore can reach (the oldest backup's end), to the newest (the last WAL archived)."""
        if not self.backups:
            return None, None
        newest = max(filter(None, (self.last_archived_at, self.backups[-1]["stopped_at"])))
        return self.backups[0]["stopped_at"], newest

    def newest_full(self) -> dict | None:
        fulls = [b for b in self.backups if b["type"] == "full"]
        return fulls[-1] if fulls else None


def _moment(epoch) -> datetime | None:
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch else None


def repository(settings: Settings, ctx: Context | None = None) -> Repository:
    ctx = ctx or context(settings)
    info = ctx.program().json("info")
    stanza = info[0] if info else {}
    backups = []
    for b in stanza.get("backup", []):
        backups.append({
            "label": b["label"], "type": b["type"], "prior": b.get("prior"),
            "started_at": _moment(b["timestamp"]["start"]), "stopped_at": _moment(b["timestamp"]["stop"]),
            "bytes": b["info"]["size"], "repo_bytes": b["info"]["repository"].get("delta"),
            "wal_start": b["archive"]["start"], "wal_stop": b["archive"]["stop"],
            "lsn_start": (b.get("lsn") or {}).get("start"), "lsn_stop": (b.get("lsn") or {}).get("stop"),
            "error": b.get("error", False),
        })
    archives = stanza.get("archive") or [{}]
    wal_max = archives[-1].get("max")
    return Repository(ctx.stanza, ctx.options.repo, stanza.get("status", {}).get("message", "unknown"), backups,
                      archives[0].get("min"), wal_max, _archived_at(ctx, archives[-1].get("id"), wal_max))


def _archived_at(ctx: Context, archive_id: str | None, wal: str | None) -> datetime | None:
    """When the newest WAL segment reached the repository (its file's time there)."""
    if not archive_id or not wal:
        return None
    folder = Path(ctx.options.repo) / "archive" / ctx.stanza / archive_id / wal[:16]
    try:
        files = [p for p in folder.iterdir() if p.name.startswith(wal)]
    except OSError:
        return None
    return _moment(max(p.stat().st_mtime for p in files)) if files else None


# -- verify --------------------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool
    status: str
    archives: list[dict]
    backups: list[dict]
    seconds: float


_COUNTS = re.compile(r"(missing|checksum invalid|size invalid|other): (\d+)")


def verify(settings: Settings, *, log: Log = _quiet) -> Verification:
    """`pgbackrest verify`: every backup's files and every archived WAL segment against their checksums."""
    ctx = context(settings)
    clock = time.monotonic()
    text = ctx.program().run("verify", "--output=text", "--verbose", timeout=None)
    status, archives, backups, current = "unknown", [], [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("status:"):
            status = line.split(":", 1)[1].strip()
        elif match := re.match(r"archiveId: (\S+), total WAL checked: (\d+), total valid WAL: (\d+)", line):
            current = {"archive_id": match[1], "checked": int(match[2]), "valid": int(match[3]), "problems": {}}
            archives.append(current)
        elif match := re.match(r"backup: (\S+), status: ([^,]+)(?:, total files checked: (\d+), "
                               r"total valid files: (\d+))?", line):
            current = {"label": match[1], "status": match[2].strip(), "checked": int(match[3] or 0),
                       "valid": int(match[4] or 0), "problems": {}}
            backups.append(current)
        elif current is not None:
            current["problems"].update({k.replace(" ", "_"): int(n) for k, n in _COUNTS.findall(line) if int(n)})
    ok = status == "ok" and all(b["status"] == "valid" and not b["problems"] for b in backups) \
        and all(not a["problems"] for a in archives)
    return Verification(ok, status, archives, backups, round(time.monotonic() - clock, 3))


# -- restore to a moment ---------------------------------------------------------------------------


@dataclass
class Target:
    """What recovery stops at: a moment, an LSN, the end of the archived WAL, or a backup's own end."""

    kind: str
    value: str | None = None
    label: str | None = None

    def arguments(self) -> list[str]:
        args = [f"--set={self.label}"] if self.label else []
        if self.kind == "latest":
            return args + ["--type=default"]
        if self.kind == "immediate":
            return args + ["--type=immediate", "--target-action=promote"]
        return args + [f"--type={self.kind}", f"--target={self.value}", "--target-action=promote"]

    def describe(self) -> str:
        return {"time": f"time {self.value}", "lsn": f"LSN {self.value}", "latest": "the last archived WAL",
                "immediate": f"the end of backup {self.label}"}[self.kind]


_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


def target_of(*, time_text: str | None = None, lsn: str | None = None, latest: bool = False,
              label: str | None = None) -> Target:
    given = [name for name, value in (("--time", time_text), ("--lsn", lsn), ("--latest", latest)) if value]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)}: give one recovery target")
    if time_text:
        moment = _parse_moment(time_text)
        return Target("time", moment.isoformat(sep=" "), label)
    if lsn:
        if not _LSN.match(lsn):
            raise UsageError(f"--lsn {lsn!r}: an LSN is written like 0/5000028")
        return Target("lsn", lsn.upper(), label)
    if latest:
        return Target("latest", None, label)
    if label:
        return Target("immediate", None, label)
    raise UsageError("give a recovery target: --time, --lsn, --latest, or --set LABEL")


def _parse_moment(text: str) -> datetime:
    normal = text.strip().replace("T", " ")
    if re.search(r"[+-]\d\d$", normal):
        normal += ":00"
    normal = re.sub(r"(?i)\s*(Z|UTC)$", "+00:00", normal)
    try:
        moment = datetime.fromisoformat(normal)
    except ValueError:
        raise UsageError(f"--time {text!r}: write it as 2026-12-01 16:59:00+00") from None
    if moment.tzinfo is None:
        raise UsageError(f"--time {text!r} has no time zone: add one (+00 for UTC), so the moment is unambiguous")
    return moment


@dataclass
class Restored:
    target: Target
    data_dir: Path
    backup: str | None
    started: bool
    port: int | None = None
    socket_dir: Path | None = None
    reached_at: datetime | None = None
    """The commit time of the last transaction replayed (None: none after the backup)."""
    stopped_before: datetime | None = None
    """The commit time of the first transaction the target left out (None: WAL ended first)."""
    reached_lsn: str | None = None
    seconds: float = 0.0
    in_place: bool = False
    user: str = ""
    database: str = ""
    owner: str = ""

    @property
    def url(self) -> str | None:
        return f"postgresql://{self.user}@localhost:{self.port}/{self.database}" if self.port else None


def _chosen_backup(repo: Repository, target: Target) -> dict | None:
    """The backup pgBackRest restores from: the newest that ended before a time target."""
    if target.label:
        return next((b for b in repo.backups if b["label"] == target.label), None)
    candidates = repo.backups
    if target.kind == "time":
        moment = datetime.fromisoformat(target.value)
        candidates = [b for b in repo.backups if b["stopped_at"] <= moment] or repo.backups[:1]
    return candidates[-1] if candidates else None


def _live(directory: Path) -> bool:
    pid = directory / "postmaster.pid"
    if not pid.exists():
        return False
    try:
        os.kill(int(pid.read_text().split()[0]), 0)
    except (ProcessLookupError, ValueError, IndexError):
        return False
    except PermissionError:
        return True
    return True


def restore(settings: Settings, target: Target, *, to: str | None = None, port: int | None = None,
            force: bool = False, start: bool = True, timeout: float | None = None, log: Log = _quiet,
            ctx: Context | None = None) -> Restored:
    """Restore into a new data directory and start it on a free port (or, with ``force``, over the
    stopped cluster's own data directory, left for its service to start)."""
    ctx = ctx or context(settings)
    conf = ctx.configured()
    live = Path(conf["pg1-path"])
    owner = ctx.options.os_user or owner_of(str(live))
    program = ctx.program(owner)
    repo = repository(settings, ctx)
    if not repo.backups:
        raise NotSetUp(f"the repository {ctx.options.repo} holds no backup of stanza {ctx.stanza}: "
                       "run `tdbctl backup` first")
    chosen = _chosen_backup(repo, target)
    if target.label and chosen is None:
        raise UsageError(f"--set {target.label}: no such backup in the repository (`tdbctl backup list`)")
    destination = Path(to).absolute() if to else live.parent / f"tdbctl-restore-{ctx.stanza}-{_stamp()}"
    in_place = destination.resolve() == live.resolve()
    result = Restored(target, destination, chosen["label"] if chosen else None, False, in_place=in_place,
                      user=ctx.user, database=ctx.database, owner=owner)
    clock = time.monotonic()
    if in_place:
        if not force:
            raise UsageError(f"{destination} is the live cluster's data directory: restore elsewhere, or stop "
                             "PostgreSQL and pass --force to restore over it")
        if _live(destination):
            raise UsageError(f"PostgreSQL is running on {destination}: stop it first (nothing was changed)")
        log(f"restoring {result.backup} over {destination} (delta) to {target.describe()}")
        program.run("restore", "--delta", "--force", *target.arguments(), timeout=None)
        result.seconds = round(time.monotonic() - clock, 3)
        return result
    if destination.exists() and any(destination.iterdir()):
        raise UsageError(f"{destination} exists and is not empty: give a new directory with --to")
    needed = chosen["bytes"] if chosen else 0
    free = shutil.disk_usage(destination.parent if destination.parent.exists() else "/").free
    if needed > free:
        from tdbctl.ops.humanize import size

        raise UsageError(f"{destination.parent} has {size(free)} free; backup {result.backup} restores to "
                         f"{size(needed)}: choose another --to")
    created = not destination.exists()
    _owned_dir(destination, owner, 0o700)
    instance = None
    try:
        log(f"restoring {result.backup or 'a backup'} into {destination} to {target.describe()}")
        program.run("restore", f"--pg1-path={destination}", "--archive-mode=off", *target.arguments(), timeout=None)
        if start:
            instance = Instance(destination, owner, find_pg_ctl(major_of(destination), ctx.options.pg_bin),
                                port=port or free_port())
            log(f"starting it on port {instance.port}; recovery replays the WAL up to the target")
            instance.start()
            instance.wait_promoted(ctx.user, ctx.database, timeout or ctx.options.rto_minutes * 60,
                                   on_wait=lambda: log("still recovering ..."))
            result.started, result.port, result.socket_dir = True, instance.port, instance.socket_dir
            result.reached_at, result.stopped_before, result.reached_lsn = instance.reached(ctx.user, ctx.database)
    except BaseException as exc:
        last_restored = None
        if instance is not None:
            restored = re.findall(r'restored log file "([0-9A-F]{24})"', _read(instance.log_file))
            last_restored = restored[-1] if restored else None
        # The directory is tdbctl's own, just made: a failed restore leaves nothing that passes for a copy.
        if instance is not None:
            instance.remove()
        elif created:
            shutil.rmtree(destination, ignore_errors=True)
        if isinstance(exc, CheckFailed) and "before configured recovery target" in exc.message:
            if last_restored and repo.wal_max and last_restored < repo.wal_max:
                raise CheckFailed(
                    f"recovery stopped after WAL segment {last_restored}, short of {target.describe()}, though the "
                    f"repository's archive reaches {repo.wal_max}: a segment on the way is missing or damaged "
                    "(`tdbctl backup verify` names it); nothing was restored") from None
            newest = repo.window[1]
            raise CheckFailed(
                f"the archived WAL ends before {target.describe()}: nothing was restored. The newest moment the "
                f"repository reaches is {newest.isoformat(sep=' ') if newest else 'unknown'}; WAL still on the "
                f"server reaches it within archive_timeout ({ctx.options.archive_timeout}s)") from None
        raise
    result.seconds = round(time.monotonic() - clock, 3)
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def stop_command(result: Restored) -> str:
    prefix = f"runuser -u {result.owner} -- " if result.owner and os.geteuid() == 0 else ""
    return f"{prefix}{find_pg_ctl(major_of(result.data_dir), None)} -D {result.data_dir} stop"


# -- drill ---------------------------------------------------------------------------------------


@dataclass
class Drill:
    ok: bool
    problems: list[str]
    target_lsn: str
    backup: str | None
    recovery_seconds: float
    archive_lag_seconds: float | None
    """When the drill began, how old the last archived segment was if WAL waited behind it (0:
    none waited): what losing the server then would have cost."""
    rto_seconds: float
    rpo_seconds: float
    revision: str | None
    tables: list[dict]
    drift: int | None
    recorded: bool = False


def _snapshot(conn) -> tuple[str | None, dict[str, int], str, float | None]:
    """tdbctl's revision and every managed table's exact row count in one snapshot, then the WAL
    position after it (every commit the snapshot sees is before it) and the archive's lag."""
    from tdbctl.schema import ALL_SCHEMAS

    conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    tables = [f"{s}.{t}" for s, t in conn.exec_driver_sql(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%(s)s) ORDER BY 1, 2",
        {"s": list(ALL_SCHEMAS)}).all()]
    revision = None
    if "tdbctl.alembic_version" in tables:
        revision = conn.exec_driver_sql("SELECT version_num FROM tdbctl.alembic_version").scalar()
    counts = {t: conn.exec_driver_sql(f'SELECT count(*) FROM "{t.split(".")[0]}"."{t.split(".", 1)[1]}"').scalar()
              for t in tables}
    lsn = conn.exec_driver_sql("SELECT pg_current_wal_lsn()::text").scalar()
    return revision, counts, lsn, server.archive_lag_seconds(server.archiver(conn))


def drill(settings: Settings, *, timeout: float | None = None, log: Log = _quiet) -> Drill:
    """The disaster recovery test: restore the latest backup plus WAL to a moment just taken into a
    scratch directory, start it, compare it with the primary at that moment, throw it away."""
    from tdbctl.config import resolve

    ctx = context(settings)
    conf = ctx.configured()
    engine = _connect(ctx)
    problems: list[str] = []
    try:
        with engine.connect() as conn, conn.begin():
            revision, counts, lsn, lag = _snapshot(conn)
        primary_drift = _blocking_drift(ctx.settings.direct or ctx.settings) if revision else None
        log(f"primary at {lsn}: {len(counts)} tables counted; waiting for its WAL to reach the repository")
        ctx.program().run("check", timeout=max(120, ctx.options.archive_timeout * 2))
        scratch = Path(conf["pg1-path"]).parent / f"tdbctl-drill-{ctx.stanza}-{_stamp()}"
        clock = time.monotonic()
        restored = None
        tables: list[dict] = []
        drift = None
        try:
            restored = restore(settings, Target("lsn", lsn), to=str(scratch), timeout=timeout, log=log, ctx=ctx)
            recovery_seconds = round(time.monotonic() - clock, 3)
            copy = resolve(f"postgresql://{ctx.user}@/{ctx.database}?host={restored.socket_dir}&port={restored.port}")
            from tdbctl.engine import create_engine

            copy_engine = create_engine(copy.url, create=False)
            try:
                with copy_engine.connect() as conn, conn.begin():
                    copy_revision, copy_counts, _, _ = _snapshot(conn)
            finally:
                copy_engine.dispose()
            if copy_revision != revision:
                problems.append(f"the copy is at revision {copy_revision or 'none'}, the primary at {revision or 'none'}")
            for table in sorted(set(counts) | set(copy_counts)):
                expected, found = counts.get(table), copy_counts.get(table)
                tables.append({"table": table, "primary": expected, "restored": found, "ok": expected == found})
                if expected != found:
                    problems.append(f"{table}: {found if found is not None else 'missing'} rows in the copy, "
                                    f"{expected if expected is not None else 'none'} on the primary")
            if revision:
                drift = _blocking_drift(copy)
                if drift != primary_drift:
                    problems.append(f"migrate check finds {len(drift)} blocking differences on the copy, "
                                    f"{len(primary_drift)} on the primary")
        except CheckFailed as exc:
            recovery_seconds = round(time.monotonic() - clock, 3)
            problems.append(exc.message)
        except PgBackRestFailed as exc:
            recovery_seconds = round(time.monotonic() - clock, 3)
            problems.append(exc.message)
        finally:
            if restored is not None:
                Instance(restored.data_dir, restored.owner, find_pg_ctl(major_of(restored.data_dir), ctx.options.pg_bin),
                         port=restored.port, socket_dir=restored.socket_dir).remove()
        result = Drill(not problems, problems, lsn, restored.backup if restored else None, recovery_seconds, lag,
                       ctx.options.rto_minutes * 60, ctx.options.rpo_seconds, revision, tables,
                       len(drift) if drift is not None else None)
        if result.recovery_seconds > result.rto_seconds:
            result.problems.append(f"recovery took {result.recovery_seconds:.0f}s, beyond the RTO of "
                                   f"{result.rto_seconds:.0f}s")
            result.ok = False
        if revision:
            result.recorded = _record(engine, ctx, result)
        return result
    finally:
        engine.dispose()


def _blocking_drift(settings: Settings) -> list[str]:
    from tdbctl.migrate.drift import check

    return sorted(f"{d.table}: {d.what}" for d in check(settings).blocking)


def _record(engine, ctx: Context, result: Drill) -> bool:
    """The drill in tdbctl.runs: what `stats` reads for the last drill's age."""
    import sqlalchemy as sa

    from tdbctl.ops.runs import recorded_run

    measured = {"recovery_seconds": result.recovery_seconds, "archive_lag_seconds": result.archive_lag_seconds,
                "rto_seconds": result.rto_seconds, "rpo_seconds": result.rpo_seconds, "target_lsn": result.target_lsn,
                "backup": result.backup}
    try:
        with recorded_run(engine, "backup drill", {"stanza": ctx.stanza, "measured": measured}) as record:
            record.rows = {t["table"]: t["restored"] or 0 for t in result.tables}
            if not result.ok:
                record.status = "failed"
            record.message = (f"recovered in {result.recovery_seconds:.1f}s (RTO {result.rto_seconds / 60:.0f} min)"
                              + (f"; {result.problems[0]}" if result.problems else ""))
    except sa.exc.DBAPIError:
        return False
    return True
