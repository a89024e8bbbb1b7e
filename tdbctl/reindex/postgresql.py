"""PostgreSQL: REINDEX INDEX CONCURRENTLY, one index at a time, on an autocommit connection.

REINDEX CONCURRENTLY cannot run inside a transaction block. It builds ``<index>_ccnew`` beside the
old index, swaps them and drops the old one as ``<index>_ccold``; interrupted (a cancel, a lock
timeout, a killed server process), it leaves one of them behind, invalid. Those leftovers are what
this module looks for first and drops: a ``_ccnew`` is an unfinished copy, a ``_ccold`` an original
whose replacement is already in place.
"""

from __future__ import annotations

import math
import time

from tdbctl.reindex import Leftover, Plan, Selection, Target
from tdbctl.reindex.selection import scope

EXTRAS_SQL = """
SELECT n.nspname, ic.relname,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype = 'x'),
       coalesce(substring(array_to_string(ic.reloptions, ' ') FROM 'lists=([0-9]+)')::int, 100)
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
 WHERE n.nspname = ANY(%(schemas)s)
"""


def ivfflat_lists(rows: int) -> int:
    """pgvector's advice: rows / 1000 up to a million rows, sqrt(rows) beyond."""
    return max(1, rows // 1000) if rows <= 1_000_000 else int(math.sqrt(rows))


def _q(*names: str) -> str:
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


class PostgresReindex:
    def __init__(self, engine, options, thresholds):
        import sqlalchemy as sa

        self.options = options
        self.thresholds = thresholds
        # REINDEX CONCURRENTLY runs outside a transaction, so SET LOCAL cannot bound it: its
        # session settings travel in the connection's startup packet (libpq options) instead of
        # a SET, and end with the connection; nothing is left on a server connection.
        mem = options.maintenance_work_mem.replace("'", "").replace(" ", "")
        self.engine = sa.create_engine(engine.url, poolclass=sa.pool.NullPool, connect_args={
            "prepare_threshold": None, "application_name": "tdbctl reindex",
            "options": f"-c maintenance_work_mem={mem} -c lock_timeout=0"})

    def _connect(self):
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _in_transaction(self, conn, statement: str) -> None:
        """``statement`` in a transaction of its own that gives up after --lock-timeout (SET LOCAL)."""
        conn.exec_driver_sql("BEGIN")
        try:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(self.options.lock_timeout * 1000)}ms'")
            conn.exec_driver_sql(statement)
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")

    def plan(self, selection: Selection) -> Plan:
        from tdbctl.schema import ALL_SCHEMAS
        from tdbctl.stats.postgresql import PostgresCollector

        with self._connect() as conn:
            collector = PostgresCollector(conn, ALL_SCHEMAS, self.thresholds)
            indexes = collector.indexes()
            extras = {(s, i): (excl, lists) for s, i, excl, lists in
                      conn.exec_driver_sql(EXTRAS_SQL, {"schemas": collector.schemas}).all()}
            the_plan = Plan("postgresql")
            # Every schema of the database, tdbctl's first: an application's own indexes bloat too.
            in_scope, leftovers = scope(indexes, selection, collector.schemas)
            concurrent_ok = collector.version_num >= 120000
            if not concurrent_ok:
                the_plan.warnings.append("this server predates PostgreSQL 12: REINDEX CONCURRENTLY is not there, "
                                         "so plain REINDEX locks each table against writes while it runs")
            elif self.options.plain:
                the_plan.warnings.append("plain REINDEX: writes to each table (and reads that would use the index) "
                                         "wait until its index is rebuilt")
            t = self.thresholds
            for ix in in_scope:
                reason = "invalid" if not ix["valid"] else "selected"
                if selection.bloated:
                    ratio = ix["bloat_ratio"]
                    if ratio is None or ratio < t["index_bloat_warning"] or ix["bytes"] < t["index_bloat_min_bytes"]:
                        continue
                    reason = f"bloat {ratio:.0%}"
                exclusion, lists = extras.get((ix["schema"], ix["index"]), (False, None))
                concurrently = concurrent_ok and not self.options.plain and not exclusion
                if exclusion and concurrent_ok and not self.options.plain:
                    the_plan.warnings.append(f"{ix['schema']}.{ix['index']} backs an exclusion constraint, which "
                                             "PostgreSQL cannot rebuild concurrently: plain REINDEX, table locked")
                target = Target(ix["schema"], ix["table"], ix["index"], ix["method"], ix["bytes"], ix["valid"],
                                reason, concurrently)
                if ix["method"] == "ivfflat" and self.options.retune_ivfflat:
                    rows = conn.exec_driver_sql(f"SELECT count(*) FROM {_q(ix['schema'], ix['table'])}").scalar()
                    target.lists = (lists, ivfflat_lists(rows))
                the_plan.targets.append(target)
            the_plan.leftovers = [Leftover(x["schema"], x["table"], x["index"], x["bytes"]) for x in leftovers]
            return the_plan

    def execute(self, plan: Plan, progress) -> dict:
        result = {"dropped": [], "rebuilt": [], "analyzed": [], "notices": []}
        with self._connect() as conn:
            raw = conn.connection.dbapi_connection

            def on_notice(diag):
                text = diag.message_primary or ""
                result["notices"].append(text)
                progress("notice", message=text)

            raw.add_notice_handler(on_notice)
            for leftover in plan.leftovers:
                progress("drop", leftover=leftover)
                conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {_q(leftover.schema, leftover.index)}")
                result["dropped"].append(leftover.name)
            for number, target in enumerate(plan.targets, 1):
                progress("start", target=target, number=number, total=len(plan.targets))
                entry = self._rebuild(conn, target)
                result["rebuilt"].append(entry)
                for name in entry["dropped_after_failure"]:
                    result["dropped"].append(name)
                progress("done", target=target, number=number, total=len(plan.targets), entry=entry)
            for table in sorted({(e["schema"], e["table"]) for e in result["rebuilt"] if e["error"] is None}):
                progress("analyze", table=".".join(table))
                conn.exec_driver_sql(f"ANALYZE {_q(*table)}")
                result["analyzed"].append(".".join(table))
        return result

    def _rebuild(self, conn, target: Target) -> dict:
        import sqlalchemy.exc as sa_exc

        from tdbctl.config import mask_secrets

        name = _q(target.schema, target.index)
        statement = f"REINDEX INDEX {'CONCURRENTLY ' if target.concurrently else ''}{name}"
        entry = {"schema": target.schema, "table": target.table, "index": target.index, "statement": statement,
                 "bytes_before": target.bytes, "bytes_after": None, "seconds": None, "lists": target.lists,
                 "error": None, "dropped_after_failure": []}
        started = time.monotonic()
        try:
            if target.lists:
                self._in_transaction(conn, f"ALTER INDEX {name} SET (lists = {int(target.lists[1])})")
            # A concurrent rebuild blocks nobody while it waits, so it may wait (lock_timeout 0 in
            # the connection's options); a plain one holds the table's writers behind it, so it
            # gives up after --lock-timeout instead.
            if target.concurrently:
                conn.exec_driver_sql(statement)
            else:
                self._in_transaction(conn, statement)
        except sa_exc.DBAPIError as exc:
            entry["error"] = mask_secrets(" ".join(str(exc.orig).split()))
            if target.concurrently:
                entry["dropped_after_failure"] = self._drop_own_leftovers(conn, target)
        entry["seconds"] = round(time.monotonic() - started, 3)
        entry["bytes_after"] = conn.exec_driver_sql(
            "SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %(s)s AND c.relname = %(i)s", {"s": target.schema, "i": target.index}).scalar()
        return entry

    def _drop_own_leftovers(self, conn, target: Target) -> list[str]:
        """The failed rebuild's own _ccnew (or _ccold): ours, so it goes at once."""
        from tdbctl.stats.postgresql import LEFTOVER

        names = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %(s)s AND NOT i.indisvalid AND left(c.relname, %(n)s) = %(p)s",
            {"s": target.schema, "p": target.index + "_cc", "n": len(target.index) + 3}).scalars().all()
        dropped = []
        for leftover in names:
            if LEFTOVER.search(leftover):
                conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {_q(target.schema, leftover)}")
                dropped.append(f"{target.schema}.{leftover}")
        return dropped


class CitusReindex(PostgresReindex):
    """On a Citus coordinator, REINDEX of a distributed table's index goes to each of its shards;
    Citus refuses it on a distributed partitioned table's index, whose partitions' indexes (each
    a distributed table's) are rebuilt one by one instead."""

    def plan(self, selection: Selection) -> Plan:
        the_plan = super().plan(selection)
        with self._connect() as conn:
            parents = {tuple(row) for row in conn.exec_driver_sql(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'I'").all()}
        the_plan.targets = [t for t in the_plan.targets if (t.schema, t.index) not in parents]
        the_plan.warnings.append("Citus cluster: each index is rebuilt on every shard of its table, in turn; "
                                 "the sizes shown are the coordinator's")
        return the_plan
