"""A stats report in Prometheus's text exposition format, for node_exporter's textfile collector.

    */5 * * * * tdbctl stats --format prometheus > /var/lib/node_exporter/tdbctl.prom.$$ \
                && mv /var/lib/node_exporter/tdbctl.prom.$$ /var/lib/node_exporter/tdbctl.prom

Every family has HELP and TYPE lines; figures a dialect does not have are left out, not zero.
"""

from __future__ import annotations

from datetime import datetime


class _Families:
    def __init__(self):
        self.order: list[str] = []
        self.meta: dict[str, tuple[str, str]] = {}
        self.samples: dict[str, list[str]] = {}

    def add(self, name: str, kind: str, help_text: str, value, labels: dict | None = None) -> None:
        if value is None:
            return
        if isinstance(value, datetime):
            value = value.timestamp()
        family = f"tdbctl_{name}"
        if family not in self.meta:
            self.order.append(family)
            self.meta[family] = (kind, help_text)
            self.samples[family] = []
        sample = f"{family}_total" if kind == "counter" else family
        self.samples[family].append(f"{sample}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        lines = []
        for family in self.order:
            kind, help_text = self.meta[family]
            lines += [f"# HELP {family} {help_text}", f"# TYPE {family} {kind}", *self.samples[family]]
        return "\n".join(lines) + "\n"


def _number(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict | None) -> str:
    pairs = [f'{k}="{_escape(v)}"' for k, v in (labels or {}).items() if v is not None]
    return "{" + ",".join(pairs) + "}" if pairs else ""


def render(report: dict) -> str:
    m = _Families()
    m.add("stats_info", "gauge", "What tdbctl stats looked at (always 1).", 1,
          {"dialect": report["dialect"], "server_version": report["health"].get("server_version")})
    m.add("stats_duration_seconds", "gauge", "How long collecting the report took.", report["elapsed_seconds"])
    h = report["health"]
    m.add("uptime_seconds", "gauge", "Seconds since the server started.", h.get("uptime_seconds"))
    m.add("database_size_bytes", "gauge", "Size of the database on disk.", h.get("database_bytes"))
    m.add("connections", "gauge", "Client connections in use.", h.get("connections_used"))
    m.add("max_connections", "gauge", "The server's max_connections.", h.get("max_connections"))
    m.add("cache_hit_ratio", "gauge", "Buffer cache hits / (hits + reads) since the statistics reset.",
          h.get("cache_hit_ratio"))
    m.add("xid_age", "gauge", "age(datfrozenxid) of the oldest database, in transactions.", h.get("xid_age"),
          {"database": h.get("xid_age_database")})

    a = report["activity"]
    if a["visible"] is not None:
        m.add("long_running_queries", "gauge", "Active queries past the long-query warning threshold.",
              len(a["long_running"]))
        m.add("longest_query_seconds", "gauge", "Age of the oldest of them.",
              max((s["seconds"] for s in a["long_running"]), default=0))
        m.add("idle_in_transaction_sessions", "gauge", "Sessions idle in a transaction past the threshold.",
              len(a["idle_in_transaction"]))
        m.add("blocked_sessions", "gauge", "Sessions waiting on a lock another session holds.", len(a["blocking"]))
        m.add("hidden_sessions", "gauge", "Sessions of other roles whose state this role cannot see.",
              a["hidden_sessions"])
    r = report["replication"]
    m.add("replay_lag_seconds", "gauge", "On a replica: seconds since the last replayed transaction.",
          r["replay_lag_seconds"])
    for replica in r["replicas"]:
        m.add("replica_replay_lag_seconds", "gauge", "Replay lag of each replica.", replica["replay_lag_seconds"],
              {"replica": replica["name"], "client": replica["client"]})

    _backups(m, report.get("backups") or {})
    _cluster(m, report.get("cluster"))

    for t in report["tables"]:
        if t.get("partition_of"):  # its figures are in its table's
            continue
        labels = {"schema": t["schema"], "table": t["table"]}
        m.add("table_rows", "gauge", "Estimated live rows (exact on SQLite).", t["rows"], labels)
        for part in ("table", "index", "toast"):
            m.add("table_size_bytes", "gauge", "Bytes per table: heap, its indexes, its TOAST.",
                  t[f"{part}_bytes"], {**labels, "part": part})
        m.add("table_dead_tuples", "gauge", "Dead tuples awaiting VACUUM.", t["dead_tuples"], labels)
        m.add("table_dead_tuple_ratio", "gauge", "Dead / (live + dead) tuples.", t["dead_tuple_ratio"], labels)
        m.add("table_seq_scans", "counter", "Sequential scans since the statistics reset.", t["seq_scans"], labels)
        m.add("table_index_scans", "counter", "Index scans since the statistics reset.", t["index_scans"], labels)
        for event in ("last_vacuum", "last_autovacuum", "last_analyze", "last_autoanalyze"):
            m.add(f"table_{event}_timestamp_seconds", "gauge", f"When {event.replace('_', ' ')} ran.",
                  t[event], labels)

    for ix in report["indexes"]:
        labels = {"schema": ix["schema"], "table": ix["table"], "index": ix["index"]}
        m.add("index_size_bytes", "gauge", "Bytes per index.", ix["bytes"], labels)
        m.add("index_scans", "counter", "Scans of each index since the statistics reset.", ix["scans"], labels)
        m.add("index_valid", "gauge", "1 for a valid index, 0 for an invalid one.", ix["valid"], labels)
        m.add("index_bloat_ratio", "gauge", "Estimated bloat of a btree index, as a fraction of its size.",
              ix["bloat_ratio"], labels)

    for f in report["files"]:
        labels = {"schema": f["schema"]}
        m.add("file_size_bytes", "gauge", "SQLite: bytes of each domain file.", f["bytes"], labels)
        m.add("file_pages", "gauge", "SQLite: pages of each domain file.", f["page_count"], labels)
        m.add("file_free_pages", "gauge", "SQLite: pages on the freelist.", f["freelist_count"], labels)

    for q in report["top_queries"]["queries"]:
        m.add("query_total_milliseconds", "gauge", "pg_stat_statements: total execution time of the top queries.",
              q["total_ms"], {"queryid": q["queryid"]})

    _platform(m, report["platform"])

    counts = {s: 0 for s in ("info", "warning", "critical")}
    for f in report["findings"]:
        counts[f["severity"]] += 1
    for severity, n in counts.items():
        m.add("findings", "gauge", "Findings per severity.", n, {"severity": severity})
    for f in report["findings"]:
        m.add("finding", "gauge", "Each finding (1), by check, subject and severity.", 1,
              {"check": f["check"], "subject": f["subject"], "severity": f["severity"]})
    return m.text()


def _cluster(m: _Families, c: dict | None) -> None:
    if not c:
        return
    for n in c["nodes"]:
        labels = {"node": n["node"], "role": n["role"]}
        m.add("citus_node_up", "gauge", "Citus node active and reachable from every other node (1) or not (0).",
              n["active"] and n["reachable"], labels)
        m.add("citus_node_shards", "gauge", "Shard placements on the Citus node.", n["shards"], labels)
        m.add("citus_node_rows", "gauge", "Rows in the node's shards (statistics' live tuples).", n["rows"], labels)
        m.add("citus_node_bytes", "gauge", "Bytes of the node's shards.", n["bytes"], labels)
        m.add("citus_node_distributed_rows", "gauge", "Rows of distributed tables on the node.",
              n["distributed_rows"], labels)
        m.add("citus_node_sessions", "gauge", "Non-idle sessions on the node (citus_stat_activity).",
              n["sessions"], labels)
    m.add("citus_skew_ratio", "gauge", "Heaviest worker's distributed rows over the workers' mean.",
          c["skew"]["ratio"])
    m.add("citus_lock_waits", "gauge", "Sessions waiting on a lock anywhere in the cluster (citus_lock_waits).",
          len(c["lock_waits"]))
    m.add("citus_rebalance_running", "gauge", "Whether the shard rebalancer is moving shards.",
          c["rebalance"]["running"])


def _backups(m: _Families, b: dict) -> None:
    a = b.get("archiving")
    if a and a["archive_mode"] != "off":
        m.add("wal_archived", "counter", "WAL segments archived (pg_stat_archiver).", a["archived_count"])
        m.add("wal_archive_failed", "counter", "Failed attempts to archive a WAL segment.", a["failed_count"])
        m.add("wal_archive_failing", "gauge", "1 while the last archive attempt failed.", int(a["failing"]))
        m.add("wal_last_archived_age_seconds", "gauge", "Seconds since the last WAL segment was archived.",
              a.get("last_archived_age_seconds"))
        m.add("wal_unarchived_bytes", "gauge", "WAL written since the last archived segment.", a["unarchived_bytes"])
    p = b.get("pgbackrest")
    if p:
        m.add("backup_count", "gauge", "pgBackRest backups in the repository.", p["backups"])
        m.add("backup_full_age_seconds", "gauge", "Age of the newest full pgBackRest backup.",
              p["newest_full_age_seconds"])
        drill = p["last_drill"] or {}
        m.add("drill_age_seconds", "gauge", "Seconds since the last recovery drill ended.", drill.get("age_seconds"))
        m.add("drill_recovery_seconds", "gauge", "The last drill's measured recovery time.",
              drill.get("recovery_seconds"))
        if drill:
            m.add("drill_succeeded", "gauge", "1 if the last recovery drill passed.", int(drill["status"] == "succeeded"))


def _platform(m: _Families, platform: dict | None) -> None:
    figures = (platform or {}).get("figures")
    if not figures:
        return
    window = {"window": platform["since"]}
    c = figures.get("conversations")
    if c:
        m.add("conversations", "gauge", "Voice conversations started in the window.", c["total"], window)
        m.add("conversation_success_ratio", "gauge", "Completed / started voice conversations in the window.",
              c["success_rate"], window)
    e = figures.get("errors_by_type")
    if e:
        for t in e["types"]:
            m.add("errors", "gauge", "Voice errors in the window, by type and severity.", t["errors"],
                  {**window, "error_type": t["error_type"], "severity": "any"})
            m.add("errors", "gauge", "Voice errors in the window, by type and severity.", t["critical"],
                  {**window, "error_type": t["error_type"], "severity": "critical"})
    s = figures.get("slot_extraction")
    if s:
        for slot in s["slots"]:
            m.add("slot_validated_ratio", "gauge", "Validated / extracted slots in the window.",
                  slot["validated_ratio"], {**window, "slot": slot["slot_name"]})
            m.add("slot_avg_confidence", "gauge", "Mean extraction confidence in the window.",
                  slot["avg_confidence"], {**window, "slot": slot["slot_name"]})
    tr = figures.get("training_sessions")
    if tr:
        m.add("training_sessions", "gauge", "ChatTrain sessions started in the window.", tr["total"], window)
        m.add("training_completion_ratio", "gauge", "Completed / started ChatTrain sessions in the window.",
              tr["completion_rate"], window)
        m.add("training_avg_score", "gauge", "Mean feedback score of the window's sessions.", tr["avg_score"],
              window)
