"""`tdbctl stats`: the page an on-call engineer opens when paged.

``collect(settings)`` returns one JSON-ready report (its layout is versioned by SCHEMA_VERSION and
documented in README): health, activity, replication, tables and indexes per domain, top
queries, SQLite files, the platform's own figures, and the findings against the thresholds.

PostgreSQL answers from the catalog and the statistics views only (no COUNT(*) of a user table,
no superuser needed); SQLite from PRAGMAs, dbstat and exact counts. Each dialect's figures come
from its collector (postgresql.py, sqlite.py), which share one interface; a section that cannot be
read becomes a note, never a failed page.
"""

from __future__ import annotations

import time
from datetime import timedelta

from tdbctl.stats.findings import evaluate, status
from tdbctl.stats.thresholds import from_settings

SCHEMA_VERSION = 1
DEFAULT_SINCE = "7d"


def collect(settings, *, since: timedelta = timedelta(days=7), since_text: str = DEFAULT_SINCE,
            platform: bool = True, top: int = 10, integrity_check: bool = False,
            thresholds: dict | None = None) -> dict:

    from tdbctl.ops.durations import utcnow
    from tdbctl.runtime import open_database
    from tdbctl.schema import ALL_SCHEMAS

    thresholds = thresholds if thresholds is not None else from_settings(settings)
    started = time.monotonic()
    now = utcnow()
    with open_database(settings) as db:
        cls = db.dialect.implementation("stats")
        conn = cls.connect(db.engine)
        try:
            collector = cls(conn, ALL_SCHEMAS, thresholds)
            report = {"schema_version": SCHEMA_VERSION, "generated_at": now, "elapsed_seconds": None,
                      "database": settings.masked_url, "dialect": settings.dialect, "status": None}
            for section, read in (
                ("health", collector.health), ("activity", collector.activity),
                ("replication", collector.replication), ("tables", collector.tables),
                ("indexes", collector.indexes), ("top_queries", lambda: collector.top_queries(top)),
                ("files", collector.files), ("unindexed_foreign_keys", collector.unindexed_foreign_keys),
                ("partitions", lambda: _partitions(db, conn, now)),
                ("backups", lambda: _backups(settings, collector, conn, now)),
                ("cluster", collector.cluster),
            ):
                report[section] = _read(section, read, collector.notes, settings, conn)
            report["integrity"] = (_read("integrity", collector.integrity, collector.notes, settings, conn)
                                   if integrity_check else None)
            report["platform"] = None
            if platform:
                from tdbctl.stats import platform as figures

                report["platform"] = {"since": since_text, "start": now - since, "figures": _read(
                    "platform", lambda: figures.gather(conn, since, now), collector.notes, settings, conn)}
            if report["activity"].get("hidden_sessions"):
                collector.notes.append(
                    f"{report['activity']['hidden_sessions']} sessions of other roles are only partly visible "
                    "to this role (state and query hidden): GRANT pg_read_all_stats TO it to see them")
        finally:
            conn.close()
    report["notes"] = collector.notes
    retention = _deleted_by_retention()
    for fk in report["unindexed_foreign_keys"]:
        fk["parent_retention"] = fk["parent"] in retention
    report["findings"] = evaluate(report, thresholds)
    report["status"] = status(report["findings"])
    report["elapsed_seconds"] = round(time.monotonic() - started, 3)
    return report


_EMPTY = {
    "health": dict.fromkeys((
        "server_version", "uptime_seconds", "database_bytes", "connections_used", "max_connections",
        "cache_hit_ratio", "cache_blocks", "xid_age", "xid_age_database", "stats_reset")),
    "activity": {"visible": None, "hidden_sessions": None, "long_running": [],
                               "idle_in_transaction": [], "blocking": []},
    "replication": {"role": None, "replay_lag_seconds": None, "replicas": []},
    "tables": [], "indexes": [], "files": [], "unindexed_foreign_keys": [], "partitions": [], "integrity": None,
    "backups": {"archiving": None, "rpo_seconds": None, "pgbackrest": None},
    "platform": None,
    "cluster": None,
    "top_queries": {"available": False, "hint": None, "queries": []},
}


def _partitions(db, conn, now) -> list[dict]:
    """Each partitioned table: partitions ahead of the current one, whether the current one
    exists, rows in its DEFAULT partition, a conversion still moving rows."""
    from tdbctl.partitions import ranges, state
    from tdbctl.partitions.catalog import quoted, with_time_zone
    from tdbctl.schema import metadata, partitioning_of

    if not db.dialect.partitioned:
        return []
    out = []
    for declaration in partitioning_of(metadata).values():
        table = state(conn, metadata, declaration, now)
        if not table.partitioned:
            continue
        current = ranges.floor(now, declaration.interval)
        default = next((p for p in table.partitions if p.default), None)
        if default is None:
            default_rows = 0
        elif default.locked:  # counting would wait for whoever holds it
            default_rows = default.rows or 0
        else:
            # Rows already past retention wait there for cleanup or archive: not for `partitions create`.
            recent = ""
            if table.cutoff is not None:
                zone = with_time_zone(conn, declaration.schema, declaration.name, declaration.column)
                recent = f" WHERE {quoted(declaration.column)} >= {ranges.bound_literal(table.cutoff, zone)}"
            default_rows = conn.exec_driver_sql(
                f"SELECT count(*) FROM (SELECT 1 FROM {default.qualified}{recent} LIMIT 1000000) d").scalar()
        out.append({"table": declaration.table, "partitions": sum(1 for p in table.partitions if not p.default),
                    "ahead": table.ahead, "premake": declaration.premake,
                    "current": any(p.lower == current for p in table.partitions if not p.default),
                    "default_rows": default_rows, "conversion": table.conversion})
    return out


def _backups(settings, collector, conn, now) -> dict:
    """WAL archiving against the RPO; with the pgbackrest engine, the repository and the last drill."""
    from tdbctl.backup.pgbackrest.options import engine_of, options_of

    options = options_of(settings)
    archiving = collector.archiving()
    if archiving is not None and archiving["last_archived_time"] is not None:
        archiving["last_archived_age_seconds"] = round((now - archiving["last_archived_time"]).total_seconds(), 1)
    section = {"archiving": archiving, "rpo_seconds": options.rpo_seconds, "pgbackrest": None}
    if settings.dialect == "postgresql" and engine_of(settings) == "pgbackrest":
        from tdbctl.backup.pgbackrest.health import repository_health

        section["pgbackrest"] = repository_health(settings, options, conn, now, collector.notes)
    return section


def _deleted_by_retention() -> set[str]:
    """Tables whose rows tdbctl's retention policies delete, with what ON DELETE CASCADE takes."""
    from tdbctl.ops.cascade import deleted_with
    from tdbctl.schema import metadata, policies_of

    return deleted_with(metadata, [policy.table for policy in policies_of(metadata)])


def _read(section: str, read, notes: list[str], settings, conn):
    """One section, a transaction of its own; if the database refuses it (a privilege, a timeout),
    a note and the empty form."""
    import sqlalchemy.exc as sa_exc

    from tdbctl.runtime import driver_message

    try:
        return read()
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        notes.append(f"{section}: not read: {driver_message(exc.orig, settings)}")
    finally:
        conn.rollback()
    empty = _EMPTY[section]
    return {k: (list(v) if isinstance(v, list) else v) for k, v in empty.items()} if isinstance(
        empty, dict) else (list(empty) if isinstance(empty, list) else empty)
