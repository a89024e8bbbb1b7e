"""What `tdbctl stats` reports of the pgBackRest repository: the newest full backup, the last drill."""

from __future__ import annotations

from datetime import datetime


def repository_health(settings, options, conn, now: datetime, notes: list[str]) -> dict:
    from tdbctl.backup.pgbackrest import commands
    from tdbctl.errors import TdbError

    health = {"full_every_seconds": options.full_every_days * 86400,
              "drill_every_seconds": options.drill_every_days * 86400,
              "backups": None, "newest_full_at": None, "newest_full_age_seconds": None,
              "newest_backup_at": None, "last_drill": None}
    try:
        repo = commands.repository(settings)
    except TdbError as exc:  # not on the database server, or not set up: said, not a failed page
        notes.append(f"pgbackrest: not read: {exc.message}")
    else:
        health["backups"] = len(repo.backups)
        full = repo.newest_full()
        if full:
            health["newest_full_at"] = full["stopped_at"]
            health["newest_full_age_seconds"] = round((now - full["stopped_at"]).total_seconds(), 1)
        if repo.backups:
            health["newest_backup_at"] = repo.backups[-1]["stopped_at"]
    health["last_drill"] = last_drill(conn, now)
    return health


def last_drill(conn, now: datetime) -> dict | None:
    import sqlalchemy as sa

    from tdbctl.schema.bookkeeping import runs

    if not sa.inspect(conn).has_table("runs", schema="tdbctl"):
        return None
    row = conn.execute(sa.select(runs.c.status, runs.c.finished_at, runs.c.options, runs.c.message)
                       .where(runs.c.command == "backup drill", runs.c.status.in_(("succeeded", "failed")))
                       .order_by(runs.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    measured = (row.options or {}).get("measured", {})
    return {"status": row.status, "finished_at": row.finished_at,
            "age_seconds": round((now - row.finished_at).total_seconds(), 1) if row.finished_at else None,
            "recovery_seconds": measured.get("recovery_seconds"),
            "archive_lag_seconds": measured.get("archive_lag_seconds"), "message": row.message}
