"""Backups of a Citus cluster: refused, with what a consistent one takes.

A pg_dump through the coordinator reads each shard in a transaction of its own on its worker:
no one moment across the nodes, yet it looks complete. A pgBackRest backup of the coordinator
holds none of the workers' rows. A consistent cluster backup is a backup of every node with its
WAL archived, and one restore point taken on all of them at one moment, to which every node is
restored: tdbctl does not orchestrate that yet, and says so rather than take a backup that only
looks whole.
"""

from __future__ import annotations

from tdbctl.config import Settings
from tdbctl.errors import UsageError


def refuse_on_cluster(settings: Settings) -> None:
    if settings.dialect != "postgresql":
        return
    from tdbctl.runtime import open_database

    with open_database(settings) as db:
        if not db.dialect.clustered:
            return
        with db.connect() as conn:
            workers = conn.exec_driver_sql("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0").scalar()
            conn.rollback()
    raise UsageError(
        f"this database is a Citus coordinator with {workers} worker(s): a dump through it reads each shard at "
        "its own moment, and a backup of the coordinator holds none of the workers' rows. A consistent cluster "
        "backup is a pgBackRest backup of every node with WAL archiving, and one restore point taken on all of "
        "them at one moment (SELECT citus_create_restore_point('name'); citus_cluster_changes_block() holds "
        "writes meanwhile), every node then restored to it; tdbctl does not take that yet; nothing was written")
