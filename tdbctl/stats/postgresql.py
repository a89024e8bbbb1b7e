"""PostgreSQL figures from the catalog and the statistics views: never a scan of a user table.

Everything here works for an ordinary application role. Where PostgreSQL shows another role's
sessions only in part (pg_stat_activity hides their state and query without pg_read_all_stats),
the report says how many it could not see instead of failing.
"""

from __future__ import annotations

import re

from tdbctl.stats.pg_bloat import index_bloat

LEFTOVER = re.compile(r"_cc(new|old)\d*$")
STATEMENT_TIMEOUT_MS = 15_000
LOCK_TIMEOUT_MS = 2_000

# Relations someone holds (or queues for) an ACCESS EXCLUSIVE lock on: pg_table_size() and
# friends would wait behind it, so their sizes come from pg_class.relpages instead.
_LOCKED = """
locked AS (
    SELECT DISTINCT l.relation FROM pg_locks l
     WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)"""

TABLES_SQL = f"""
WITH {_LOCKED}, rel AS (
    SELECT c.*, n.nspname,
           %(catalog_only)s OR c.oid IN (SELECT relation FROM locked)
           OR c.reltoastrelid IN (SELECT relation FROM locked)
           OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                         AND i.indexrelid IN (SELECT relation FROM locked)) AS is_locked
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname = ANY(%(schemas)s)
)
SELECT r.nspname, r.relname, r.reltuples::bigint, s.n_live_tup, s.n_dead_tup,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze, s.seq_scan, s.idx_scan,
       io.heap_blks_hit, io.heap_blks_read, r.is_locked,
       CASE WHEN r.is_locked THEN NULL ELSE pg_table_size(r.oid) END,
       CASE WHEN r.is_locked THEN NULL ELSE pg_indexes_size(r.oid) END,
       CASE WHEN r.reltoastrelid = 0 THEN 0
            WHEN r.is_locked THEN NULL ELSE pg_total_relation_size(r.reltoastrelid) END,
       r.relpages::bigint * current_setting('block_size')::bigint,
       (SELECT coalesce(sum(ic.relpages), 0)::bigint * current_setting('block_size')::bigint
          FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = r.oid),
       (SELECT coalesce(sum(tc.relpages), 0)::bigint * current_setting('block_size')::bigint
          FROM pg_class tc WHERE tc.oid = r.reltoastrelid),
       (SELECT pn.nspname || '.' || pc.relname FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
          JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE r.relispartition AND i.inhrelid = r.oid)
  FROM rel r
  LEFT JOIN pg_stat_user_tables s ON s.relid = r.oid
  LEFT JOIN pg_statio_user_tables io ON io.relid = r.oid
 ORDER BY r.nspname, r.relname
"""

INDEXES_SQL = f"""
WITH {_LOCKED}
SELECT n.nspname, t.relname, ic.relname, am.amname, i.indisunique, i.indisprimary, i.indisvalid,
       s.idx_scan,
       CASE WHEN %(catalog_only)s OR ic.oid IN (SELECT relation FROM locked)
                 OR t.oid IN (SELECT relation FROM locked)
            THEN ic.relpages::bigint * current_setting('block_size')::bigint
            ELSE pg_relation_size(ic.oid) END,
       -- pg_get_indexdef waits for a lock on the table: none while someone holds it exclusively.
       CASE WHEN ic.oid IN (SELECT relation FROM locked) OR t.oid IN (SELECT relation FROM locked)
            THEN NULL ELSE pg_get_indexdef(i.indexrelid) END,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid),
       concat_ws('|', i.indrelid, i.indkey::text, i.indclass::text, i.indcollation::text,
                 coalesce(pg_get_expr(i.indexprs, i.indrelid), ''),
                 coalesce(pg_get_expr(i.indpred, i.indrelid), '')),
       i.indexrelid::bigint
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_am am ON am.oid = ic.relam
  LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
 WHERE n.nspname = ANY(%(schemas)s)
 ORDER BY n.nspname, t.relname, ic.relname
"""

# A foreign key is indexed when some valid index's leading columns are exactly its columns (in
# any order): deleting or re-keying a parent row then finds the children without a scan.
UNINDEXED_FOREIGN_KEYS_SQL = """
SELECT n.nspname, c.relname, k.conname,
       (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum),
       pn.nspname || '.' || p.relname, k.confdeltype, s.n_tup_del
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_class p ON p.oid = k.confrelid
  JOIN pg_namespace pn ON pn.oid = p.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = k.confrelid
 WHERE k.contype = 'f' AND n.nspname = ANY(%(schemas)s)
   AND NOT EXISTS (
       SELECT 1 FROM pg_index i
        WHERE i.indrelid = k.conrelid AND i.indisvalid AND i.indpred IS NULL
          AND (((i.indkey::int2[])[0:cardinality(k.conkey) - 1] @> k.conkey
                AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] <@ k.conkey)
               -- A tenant link (key, tenant), docs/schema.md: found by its key, the tenant filters.
               OR (i.indkey::int2[])[0] = k.conkey[1]))
 ORDER BY 1, 2, 3
"""
ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

# backend_type is hidden too for another role's session (without pg_read_all_stats): a hidden
# row attached to a database is counted as a client.
CLIENT = "(backend_type = 'client backend' OR (backend_type IS NULL AND datname IS NOT NULL))"

HEALTH_SQL = f"""
SELECT current_setting('server_version'),
       extract(epoch FROM now() - pg_postmaster_start_time())::float8,
       pg_database_size(current_database()),
       (SELECT count(*) FROM pg_stat_activity WHERE {CLIENT}),
       current_setting('max_connections')::int,
       d.blks_hit, d.blks_read, d.stats_reset,
       x.datname, x.age
  FROM pg_stat_database d,
       LATERAL (SELECT datname, age(datfrozenxid) AS age FROM pg_database ORDER BY 2 DESC LIMIT 1) x
 WHERE d.datname = current_database()
"""

ACTIVITY_SQL = """
SELECT pid, usename, application_name, state, wait_event_type, wait_event,
       extract(epoch FROM now() - query_start)::float8,
       extract(epoch FROM now() - xact_start)::float8,
       extract(epoch FROM now() - state_change)::float8,
       left(query, 500),
       pg_blocking_pids(pid),
       {wait_start}
  FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid() AND {client}
"""
# pg_locks.waitstart (PostgreSQL 14+) says when the lock wait began; before it, state_change
# is the nearest figure (the statement's start, since a waiting session stays 'active').
_WAIT_START_14 = """(SELECT extract(epoch FROM now() - min(l.waitstart))::float8
                    FROM pg_locks l WHERE l.pid = pg_stat_activity.pid AND NOT l.granted)"""
_WAIT_START_OLD = "extract(epoch FROM now() - state_change)::float8"

WAITING_LOCK_SQL = """
SELECT l.pid, l.locktype, l.mode, CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END
  FROM pg_locks l WHERE NOT l.granted AND l.pid = ANY(%(pids)s)
"""


def _sum_partitions(tables: list[dict]) -> None:
    """A partitioned table holds nothing itself: its figures are its partitions' (which stay in
    the list, marked partition_of, for what is judged per partition: dead tuples, vacuum)."""
    parents = {f"{t['schema']}.{t['table']}": t for t in tables}
    for t in tables:
        parent = parents.get(t["partition_of"]) if t["partition_of"] else None
        if parent is None:
            continue
        if not parent.get("partitions"):
            parent.update(rows=0, table_bytes=0, index_bytes=0, toast_bytes=0, dead_tuples=0, partitions=0,
                          rows_source="sum of its partitions")
        parent["partitions"] += 1
        for key in ("rows", "table_bytes", "index_bytes", "toast_bytes", "dead_tuples"):
            parent[key] += t[key] or 0
    for parent in parents.values():
        if parent.get("partitions"):
            live_dead = parent["rows"] + parent["dead_tuples"]
            parent["dead_tuple_ratio"] = round(parent["dead_tuples"] / live_dead, 4) if live_dead else 0.0


class PostgresCollector:
    dialect = "postgresql"

    def __init__(self, conn, schemas, thresholds):
        self.conn = conn
        # tdbctl's domains first, then every other schema of the database (an application's
        # public tables, pgbench's): the page covers the whole database, as PgHero's does.
        others = [row[0] for row in conn.exec_driver_sql(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND nspname NOT LIKE 'pg\\_toast%%' AND nspname NOT LIKE 'pg\\_temp\\_%%' ORDER BY nspname").all()]
        self.schemas = list(schemas) + [s for s in others if s not in schemas]
        self.thresholds = thresholds
        self.version_num = int(conn.exec_driver_sql("SHOW server_version_num").scalar())
        self.catalog_only = False
        self.notes: list[str] = []

    @staticmethod
    def connect(engine):
        """Bounded waits, so a page opened during an incident never hangs behind the incident's
        locks: set at the start of every transaction (SET LOCAL), so that nothing of ours stays
        on a server connection a pooler hands to the application next. Each section is a
        transaction of its own (stats._read ends it): one failed query spoils no other section."""
        from sqlalchemy import event

        conn = engine.connect()

        @event.listens_for(conn, "begin")
        def _bounded(connection):
            connection.exec_driver_sql(
                "SELECT set_config('statement_timeout', %(statement)s, true), "
                "set_config('lock_timeout', %(lock)s, true), set_config('application_name', 'tdbctl stats', true)",
                {"statement": f"{STATEMENT_TIMEOUT_MS}ms", "lock": f"{LOCK_TIMEOUT_MS}ms"})

        return conn

    def _sized(self, read):
        """Sizes from the files; if one is locked after all (a race), from the catalog."""
        try:
            return read()
        except Exception as exc:
            if "lock timeout" not in str(exc) and "statement timeout" not in str(exc):
                raise
            self.conn.rollback()
            self.catalog_only = True
            self.notes.append("sizes are pg_class estimates: a relation was locked while reading its files")
            return read()

    def _all(self, sql: str, params: dict | None = None):
        return self.conn.exec_driver_sql(sql, params or {}).all()

    def health(self) -> dict:
        (version, uptime, db_bytes, used, max_conn, hits, reads, reset, xid_db, xid_age) = self._all(HEALTH_SQL)[0]
        blocks = (hits or 0) + (reads or 0)
        return {
            "server_version": version,
            "uptime_seconds": round(uptime, 1),
            "database_bytes": int(db_bytes),
            "connections_used": int(used),
            "max_connections": int(max_conn),
            "cache_hit_ratio": round(hits / blocks, 4) if blocks else None,
            "cache_blocks": int(blocks),
            "xid_age": int(xid_age),
            "xid_age_database": xid_db,
            "stats_reset": reset,
        }

    def activity(self) -> dict:
        wait_start = _WAIT_START_14 if self.version_num >= 140000 else _WAIT_START_OLD
        rows = self._all(ACTIVITY_SQL.format(wait_start=wait_start, client=CLIENT))
        sessions = {}
        hidden = 0
        for (pid, user, app, state, wtype, wevent, q_s, x_s, st_s, query, blockers, wait_s) in rows:
            if state is None:  # another role's session, without pg_read_all_stats
                hidden += 1
            sessions[pid] = {
                "pid": pid, "user": user, "application": app or None, "state": state,
                "query_seconds": _round(q_s), "transaction_seconds": _round(x_s), "state_seconds": _round(st_s),
                "wait_event": f"{wtype}:{wevent}" if wtype else None,
                "query": None if state is None else query,
                "_blockers": list(blockers or []), "_wait": _round(wait_s),
            }
        t = self.thresholds
        long_running = [
            _session(s, s["query_seconds"]) for s in sessions.values()
            if s["state"] == "active" and (s["query_seconds"] or 0) >= t["long_query_warning_s"]
        ]
        idle = [
            _session(s, s["state_seconds"]) for s in sessions.values()
            if (s["state"] or "").startswith("idle in transaction")
            and (s["state_seconds"] or 0) >= t["idle_in_transaction_warning_s"]
        ]
        return {
            "visible": "partial" if hidden else "all",
            "hidden_sessions": hidden,
            "long_running": sorted(long_running, key=lambda s: -s["seconds"]),
            "idle_in_transaction": sorted(idle, key=lambda s: -s["seconds"]),
            "blocking": self._lock_waits(sessions),
        }

    def _lock_waits(self, sessions: dict) -> list[dict]:
        waiting = {pid: s for pid, s in sessions.items() if s["_blockers"]}
        if not waiting:
            return []
        locks = {pid: (kind, mode, rel) for pid, kind, mode, rel in
                 self._all(WAITING_LOCK_SQL, {"pids": list(waiting)})}
        waits = []
        for pid, s in sorted(waiting.items()):
            kind, mode, relation = locks.get(pid, (None, None, None))
            waits.append({
                "pid": pid, "user": s["user"], "query": s["query"], "waiting_seconds": s["_wait"],
                "lock": {"type": kind, "mode": mode, "relation": relation},
                "blocked_by": s["_blockers"],
                "root_blockers": _roots(pid, sessions),
                "blockers": [_blocker(sessions.get(b), b) for b in s["_blockers"]],
            })
        return waits

    def replication(self) -> dict:
        in_recovery = bool(self.conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar())
        lag = None
        if in_recovery:
            lag = self.conn.exec_driver_sql(
                "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8").scalar()
        replicas = [
            {"name": name, "client": client, "state": state, "write_lag_seconds": _round(w),
             "flush_lag_seconds": _round(f), "replay_lag_seconds": _round(r)}
            for name, client, state, w, f, r in self._all(
                "SELECT application_name, host(client_addr), state, extract(epoch FROM write_lag)::float8, "
                "extract(epoch FROM flush_lag)::float8, extract(epoch FROM replay_lag)::float8 "
                "FROM pg_stat_replication ORDER BY application_name")
        ]
        return {"role": "replica" if in_recovery else "primary", "replay_lag_seconds": _round(lag),
                "replicas": replicas}

    def cluster(self) -> dict | None:
        """A Citus cluster's nodes, shards and skew (tdbctl/stats/citus.py); None on one server."""
        return None

    def archiving(self) -> dict | None:
        from tdbctl.backup.pgbackrest.server import archiver

        return archiver(self.conn)

    def tables(self) -> list[dict]:
        tables = []
        read = lambda: self._all(TABLES_SQL, {"schemas": self.schemas, "catalog_only": self.catalog_only})  # noqa
        for row in self._sized(read):
            (schema, name, reltuples, live, dead, vac, autovac, an, autoan, seq, idx, hit, read, locked,
             t_bytes, i_bytes, toast, t_pages, i_pages, toast_pages, partition_of) = row
            live, dead = live or 0, dead or 0
            # n_live_tup follows every write; reltuples only the last VACUUM/ANALYZE. After a stats
            # reset both counters read 0, and reltuples is the better figure.
            if live or dead or reltuples <= 0:
                rows, source = live, "pg_stat_user_tables.n_live_tup"
            else:
                rows, source = int(reltuples), "pg_class.reltuples"
            toast_bytes = toast if toast is not None else toast_pages
            tables.append({
                "schema": schema, "table": name, "rows": int(rows), "rows_source": source,
                "table_bytes": (t_bytes - toast_bytes) if t_bytes is not None else t_pages,
                "index_bytes": i_bytes if i_bytes is not None else i_pages,
                "toast_bytes": toast_bytes,
                "sizes_from": "catalog (relation locked)" if locked else "files",
                "dead_tuples": dead,
                "dead_tuple_ratio": round(dead / (live + dead), 4) if live + dead else 0.0,
                "last_vacuum": vac, "last_autovacuum": autovac, "last_analyze": an, "last_autoanalyze": autoan,
                "seq_scans": seq, "index_scans": idx,
                "cache_hit_ratio": round(hit / (hit + read), 4) if hit is not None and hit + read else None,
                "partition_of": partition_of, "partitions": None,
            })
        _sum_partitions(tables)
        return sorted(tables, key=lambda t: self.schemas.index(t["schema"]))  # stable: names stay sorted

    def indexes(self) -> list[dict]:
        rows = self._sized(
            lambda: self._all(INDEXES_SQL, {"schemas": self.schemas, "catalog_only": self.catalog_only}))
        bloat = index_bloat(self.conn, self.schemas)
        first_with_key: dict[str, str] = {}
        # Keep the one a constraint needs (primary, then unique), else the oldest; the others are
        # its duplicates.
        ranked = sorted(rows, key=lambda r: (not r[5], not r[4], r[12]))
        duplicate_of = {}
        for r in ranked:
            if not r[6]:
                continue
            key = r[11]
            if key in first_with_key:
                duplicate_of[(r[0], r[2])] = first_with_key[key]
            else:
                first_with_key[key] = r[2]
        indexes = []
        for schema, table, name, method, unique, primary, valid, scans, size, definition, constraint, _k, _o in rows:
            bloat_bytes, bloat_ratio = bloat.get((schema, name), (None, None))
            indexes.append({
                "schema": schema, "table": table, "index": name, "method": method, "bytes": int(size),
                "scans": scans, "unique": unique, "primary": primary, "valid": valid,
                "leftover": (not valid) and bool(LEFTOVER.search(name)),
                "unused": valid and scans == 0 and not (unique or primary or constraint),
                "duplicate_of": duplicate_of.get((schema, name)),
                "bloat_bytes": bloat_bytes,
                "bloat_ratio": round(bloat_ratio, 4) if bloat_ratio is not None else None,
                "definition": definition,
            })
        return sorted(indexes, key=lambda i: self.schemas.index(i["schema"]))

    def unindexed_foreign_keys(self) -> list[dict]:
        return [{"schema": schema, "table": table, "constraint": name, "columns": list(columns),
                 "parent": parent, "on_delete": ON_DELETE.get(action, action), "parent_deletes": deletes}
                for schema, table, name, columns, parent, action, deletes in self._all(
                    UNINDEXED_FOREIGN_KEYS_SQL, {"schemas": self.schemas})]

    def top_queries(self, limit: int) -> dict:
        # shared_preload_libraries is readable by superusers and pg_read_all_settings only: for
        # another role pg_settings has no row for it, and the hint names both steps.
        preload = self.conn.exec_driver_sql(
            "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'").scalar()
        preloaded = None if preload is None else "pg_stat_statements" in preload
        created = self.conn.exec_driver_sql(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").first() is not None
        if created and preloaded is not False:
            try:
                return {"available": True, "hint": None, "queries": self._statements(limit)}
            except Exception as exc:
                if "shared_preload_libraries" not in str(exc):
                    raise
                preloaded = False
        steps = []
        if not preloaded:
            steps.append(("" if preloaded is False else "if it is not there yet, ")
                         + "add pg_stat_statements to shared_preload_libraries in postgresql.conf and restart the server")
        if not created:
            steps.append("run CREATE EXTENSION pg_stat_statements; in this database")
        return {"available": False, "hint": "top queries need pg_stat_statements: " + ", then ".join(steps),
                "queries": []}

    def _statements(self, limit: int) -> list[dict]:
        total, mean = ("total_exec_time", "mean_exec_time") if self.version_num >= 130000 else ("total_time",
                                                                                             "mean_time")
        rows = self._all(
            f"SELECT queryid, calls, {total}, {mean}, rows, left(query, 500) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            f"ORDER BY {total} DESC LIMIT %(limit)s", {"limit": limit})
        return [{"queryid": str(qid) if qid is not None else None, "calls": calls, "total_ms": round(t, 3),
                 "mean_ms": round(m, 3), "rows": n, "query": q} for qid, calls, t, m, n, q in rows]

    def files(self) -> list[dict]:
        return []

    def integrity(self):
        return None


def _round(value, digits: int = 1):
    return None if value is None else round(float(value), digits)


def _session(s: dict, seconds) -> dict:
    return {"pid": s["pid"], "user": s["user"], "application": s["application"], "state": s["state"],
            "seconds": seconds, "wait_event": s["wait_event"], "query": s["query"]}


def _blocker(s: dict | None, pid: int) -> dict:
    if s is None:  # in another database, or a background process
        return {"pid": pid, "user": None, "state": None, "transaction_seconds": None, "query": None}
    return {"pid": pid, "user": s["user"], "state": s["state"],
            "transaction_seconds": s["transaction_seconds"], "query": s["query"]}


def _roots(pid: int, sessions: dict) -> list[int]:
    """The sessions at the head of the chain: blocking others while waiting on nobody."""
    roots, seen, stack = set(), {pid}, list(sessions[pid]["_blockers"])
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        upstream = sessions.get(current, {}).get("_blockers") or []
        if upstream:
            stack.extend(upstream)
        else:
            roots.add(current)
    return sorted(roots)
