"""What the server's archiving settings are, and what pgBackRest needs them to be."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from tdbctl.errors import PrerequisiteError

RESTART = ("archive_mode", "wal_level")


@dataclass
class Facts:
    major: int
    version: str
    database: str
    user: str
    superuser: bool
    in_recovery: bool
    data_dir: str | None
    socket_dir: str | None
    port: int
    settings: dict[str, str]
    pending_restart: set[str]


@dataclass
class Change:
    name: str
    current: str
    wanted: str
    restart: bool

    @property
    def statement(self) -> str:
        return f"ALTER SYSTEM SET {self.name} = {_literal(self.wanted)};"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read(conn) -> Facts:
    one = lambda sql: conn.exec_driver_sql(sql).scalar()  # noqa: E731
    names = ("archive_mode", "archive_command", "wal_level", "archive_timeout", "archive_library")
    rows = conn.exec_driver_sql(
        "SELECT name, setting, pending_restart FROM pg_settings WHERE name IN "
        f"({', '.join(_literal(n) for n in (*names, 'data_directory', 'unix_socket_directories', 'port'))})").all()
    values = {name: setting for name, setting, _ in rows}
    return Facts(
        major=int(one("SHOW server_version_num")) // 10000,
        version=one("SHOW server_version").split()[0],
        database=one("SELECT current_database()"),
        user=one("SELECT current_user"),
        superuser=bool(one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")),
        in_recovery=bool(one("SELECT pg_is_in_recovery()")),
        # Without superuser or pg_read_all_settings these read as unknown: [backup.pgbackrest] data_dir then.
        data_dir=values.get("data_directory"),
        socket_dir=(values.get("unix_socket_directories") or "").split(",")[0].strip() or None,
        port=int(values.get("port") or one("SHOW port")),
        settings={n: values.get(n, "") for n in names},
        pending_restart={name for name, _, pending in rows if pending},
    )


def archive_command(program: str, config: str, stanza: str) -> str:
    return f"{shlex.quote(program)} --config={shlex.quote(config)} --stanza={stanza} archive-push %p"


def changes(facts: Facts, wanted_command: str, archive_timeout: int, rpo_seconds: float) -> list[Change]:
    """The settings to change, in the order to apply them."""
    s = facts.settings
    out = []
    if s["archive_mode"] not in ("on", "always"):
        out.append(Change("archive_mode", s["archive_mode"], "on", True))
    if s["wal_level"] not in ("replica", "logical"):
        out.append(Change("wal_level", s["wal_level"], "replica", True))
    if s.get("archive_library"):
        raise PrerequisiteError(f"archive_library = {s['archive_library']!r} is set: PostgreSQL then ignores "
                                "archive_command; reset it before pgBackRest can archive")
    if s["archive_command"] != wanted_command:
        out.append(Change("archive_command", s["archive_command"] or "(empty)", wanted_command, False))
    timeout = int(s["archive_timeout"] or 0)
    if timeout == 0 or timeout > rpo_seconds:
        out.append(Change("archive_timeout", f"{timeout}s", f"{archive_timeout}s", False))
    return out


def apply(engine, pending: list[Change]) -> None:
    """ALTER SYSTEM each change (not allowed inside a transaction), then reload the configuration."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for change in pending:
            conn.exec_driver_sql(change.statement.replace("%", "%%"))  # the driver formats even without parameters
        conn.exec_driver_sql("SELECT pg_reload_conf()")


def archiver(conn) -> dict:
    """WAL archiving as pg_stat_archiver sees it, and how much written WAL is not archived yet:
    what `stats` judges against the RPO and the drill measures."""
    mode = conn.exec_driver_sql("SHOW archive_mode").scalar()
    state = {"archive_mode": mode, "archived_count": None, "failed_count": None, "last_archived_wal": None,
             "last_archived_time": None, "last_failed_wal": None, "last_failed_time": None,
             "unarchived_bytes": None, "failing": False}
    if mode == "off" or conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar():
        return state
    row = conn.exec_driver_sql(
        "SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, "
        "last_failed_time, pg_current_wal_lsn()::text, "
        "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') FROM pg_stat_archiver").one()
    archived, last_wal, last_time, failed, failed_wal, failed_time, lsn, segment = row
    unarchived = None
    if last_wal and len(last_wal) == 24:
        high, low = lsn.split("/")
        # Everything after the end of the last archived segment is not in the archive yet.
        archived_end = (int(last_wal[8:16], 16) << 32) + (int(last_wal[16:24], 16) + 1) * segment
        unarchived = max(0, (int(high, 16) << 32) + int(low, 16) - archived_end)
    state.update(archived_count=archived, failed_count=failed, last_archived_wal=last_wal,
                 last_archived_time=last_time, last_failed_wal=failed_wal, last_failed_time=failed_time,
                 unarchived_bytes=unarchived, failing=bool(failed_time and (last_time is None or failed_time > last_time)))
    return state


def archive_lag_seconds(state: dict) -> float | None:
    """What losing the server now would cost: 0 when every written WAL byte is archived, else the
    age of the last archived segment (None: archiving off, or nothing archived yet)."""
    if state["last_archived_time"] is None:
        return None
    if not state["unarchived_bytes"]:
        return 0.0
    from datetime import datetime, timezone

    return round((datetime.now(timezone.utc) - state["last_archived_time"]).total_seconds(), 1)
