"""Stats of a Citus cluster, read through its coordinator.

Everything PostgresCollector reads, with two differences: a distributed or reference table's
rows and sizes are its shards' (the coordinator's own table is an empty shell), and a
``cluster`` section: the nodes and whether each reaches the others, shards, rows and bytes per
node, the skew of rows between the workers, Citus's tables, cluster-wide activity and lock
waits (citus_stat_activity, citus_lock_waits), and the rebalancer's state.
"""

from __future__ import annotations

from collections import defaultdict

from tdbctl.dialects.citus import node_name as _node, shard_figures
from tdbctl.stats.postgresql import PostgresCollector, _round

class CitusCollector(PostgresCollector):
    def __init__(self, conn, schemas, thresholds):
        super().__init__(conn, schemas, thresholds)
        self._shards: list[tuple] | None = None

    def _shard_figures(self) -> list[tuple]:
        if self._shards is None:
            self._shards = shard_figures(self.conn)
        return self._shards

    def tables(self) -> list[dict]:
        tables = super().tables()
        rows, sizes, copies = defaultdict(int), defaultdict(int), defaultdict(set)
        for table, shard, node, count, size, kind in self._shard_figures():
            if kind == "reference":  # the same rows on every node: count one copy
                if shard in copies[table]:
                    continue
                copies[table].add(shard)
            rows[table] += count
            sizes[table] += size
        for t in tables:
            name = f"{t['schema']}.{t['table']}"
            if name in rows:
                t.update(rows=rows[name], rows_source="shards: pg_stat_user_tables.n_live_tup",
                         table_bytes=sizes[name], index_bytes=None, toast_bytes=None,
                         sizes_from="shards (citus_shards: table, indexes and toast together)")
        return tables

    def cluster(self) -> dict:
        nodes = {}
        for node_id, host, port, role, active, has_shards, coordinator in self._all(
                "SELECT nodeid, nodename, nodeport, noderole, isactive, shouldhaveshards, groupid = 0 "
                "FROM pg_dist_node ORDER BY groupid = 0 DESC, nodeid"):
            nodes[_node(host, port)] = {
                "node": _node(host, port), "id": node_id, "role": "coordinator" if coordinator else "worker",
                "primary": role == "primary", "active": bool(active), "holds_shards": bool(has_shards),
                "reachable": True, "shards": 0, "rows": 0, "bytes": 0, "distributed_rows": 0,
                "distributed_bytes": 0, "sessions": 0}
        for source_host, source_port, target_host, target_port, ok in self._all(
                "SELECT from_nodename, from_nodeport, to_nodename, to_nodeport, result "
                "FROM citus_check_cluster_node_health()"):
            if not ok and _node(target_host, target_port) in nodes:
                nodes[_node(target_host, target_port)]["reachable"] = False
        for _table, _shard, node, count, size, kind in self._shard_figures():
            figures = nodes.get(node)
            if figures is None:
                continue
            figures["shards"] += 1
            figures["rows"] += count
            figures["bytes"] += size
            if kind == "distributed":
                figures["distributed_rows"] += count
                figures["distributed_bytes"] += size
        for node_id, count in self._all(
                "SELECT nodeid, count(*) FROM citus_stat_activity WHERE state IS NOT NULL AND state <> 'idle' "
                "AND global_pid <> citus_backend_gpid() GROUP BY 1"):
            for figures in nodes.values():
                if figures["id"] == node_id:
                    figures["sessions"] = count
        workers = [n for n in nodes.values() if n["holds_shards"]]
        mean = sum(n["distributed_rows"] for n in workers) / len(workers) if workers else 0
        heaviest = max(workers, key=lambda n: n["distributed_rows"], default=None)
        skew = {"ratio": round(heaviest["distributed_rows"] / mean, 3) if heaviest and mean else None,
                "heaviest": heaviest["node"] if heaviest else None,
                "rows": sum(n["distributed_rows"] for n in workers), "measure": "distributed rows per worker"}
        tables = [
            {"table": name, "type": kind, "distribution_column": None if column == "<none>" else column,
             "colocation_id": colocation, "shards": shards, "bytes": int(size)}
            for name, kind, column, colocation, shards, size in self._all(
                "SELECT table_name::text, citus_table_type, distribution_column, colocation_id, shard_count, "
                "citus_total_relation_size(table_name) FROM citus_tables ORDER BY 1")]
        return {"nodes": list(nodes.values()), "skew": skew, "tables": tables,
                "activity": self._cluster_activity(), "lock_waits": self._cluster_lock_waits(),
                "rebalance": self._rebalance()}

    def _cluster_activity(self) -> list[dict]:
        t = self.thresholds
        return [
            {"global_pid": gpid, "node_id": node, "user": user, "state": state, "seconds": _round(seconds),
             "query": query}
            for gpid, node, user, state, seconds, query in self._all(
                "SELECT global_pid, nodeid, usename, state, extract(epoch FROM now() - query_start)::float8, query "
                "FROM citus_stat_activity WHERE state = 'active' AND global_pid <> citus_backend_gpid() "
                "AND backend_type = 'client backend' AND now() - query_start >= make_interval(secs => %(s)s) "
                "ORDER BY query_start", {"s": t["long_query_warning_s"]})]

    def _cluster_lock_waits(self) -> list[dict]:
        return [
            {"waiting_gpid": waiting, "blocking_gpid": blocking, "waiting_node_id": waiting_node,
             "blocking_node_id": blocking_node, "waiting_query": waiting_query, "blocking_query": blocking_query}
            for waiting, blocking, waiting_node, blocking_node, waiting_query, blocking_query in self._all(
                "SELECT waiting_gpid, blocking_gpid, waiting_nodeid, blocking_nodeid, blocked_statement, "
                "current_statement_in_blocking_process FROM citus_lock_waits")]

    def _rebalance(self) -> dict:
        job = self.conn.exec_driver_sql(
            "SELECT job_id, state, job_type, started_at, finished_at FROM pg_dist_background_job "
            "WHERE job_type LIKE '%%rebalance%%' ORDER BY job_id DESC LIMIT 1").first()
        moves = self._all("SELECT table_name::text, shardid, sourcename || ':' || sourceport, "
                          "targetname || ':' || targetport, progress FROM get_rebalance_progress()")
        return {
            "last_job": None if job is None else {"id": job[0], "state": job[1], "type": job[2],
                                                  "started_at": job[3], "finished_at": job[4]},
            "running": bool(moves) or (job is not None and job[1] in ("scheduled", "running", "cancelling")),
            "moves": [{"table": t, "shard": s, "from": a, "to": b, "progress": p} for t, s, a, b, p in moves],
        }
