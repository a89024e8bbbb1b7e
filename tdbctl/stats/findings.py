"""Judge a report against the thresholds: each figure past one becomes a finding with a severity.

Severities: ``critical`` and ``warning`` make `tdbctl stats --check` exit 3; ``info`` findings
(an unused or duplicate index) are listed but never fail a probe.
"""

from __future__ import annotations

from tdbctl.ops.humanize import size

SEVERITIES = ("info", "warning", "critical")


def _finding(severity, check, subject, value, threshold, message) -> dict:
    return {"severity": severity, "check": check, "subject": subject, "value": value,
            "threshold": threshold, "message": message}


def _level(value, warning, critical, *, below: bool = False):
    """(severity, threshold crossed) or None; ``below`` for figures where lower is worse."""
    if value is None:
        return None
    if below:
        if value < critical:
            return "critical", critical
        if value < warning:
            return "warning", warning
        return None
    if value >= critical:
        return "critical", critical
    if value >= warning:
        return "warning", warning
    return None


def evaluate(report: dict, t: dict) -> list[dict]:
    found: list[dict] = []

    def judge(check, subject, value, warning_key, critical_key, message, *, below=False):
        level = _level(value, t[warning_key], t[critical_key], below=below)
        if level:
            found.append(_finding(level[0], check, subject, value, level[1], message))

    h = report["health"]
    if h.get("max_connections"):
        ratio = round(h["connections_used"] / h["max_connections"], 4)
        judge("connections", "server", ratio, "connections_warning", "connections_critical",
              f"{h['connections_used']} of max_connections {h['max_connections']} in use")
    if h.get("cache_hit_ratio") is not None and (h.get("cache_blocks") or 0) >= t["cache_hit_min_blocks"]:
        judge("cache_hit_ratio", "database", h["cache_hit_ratio"], "cache_hit_warning", "cache_hit_critical",
              f"buffer cache hit ratio {h['cache_hit_ratio']:.2%}", below=True)
    if h.get("xid_age") is not None:
        judge("xid_wraparound", h["xid_age_database"], h["xid_age"], "xid_age_warning", "xid_age_critical",
              f"transaction ID age {h['xid_age']:,} in {h['xid_age_database']}: VACUUM (FREEZE) it")

    _backups(report.get("backups") or {}, found)
    _cluster(report.get("cluster"), t, found, judge)

    for note in report.get("notes", []):
        section, refused, reason = note.partition(": not read: ")
        if refused:  # a section the database refused: what it would have shown is unknown, not fine
            found.append(_finding("warning", "not_inspected", section, None, None,
                                  f"{section} could not be read ({reason}): the page cannot vouch for it"))
    a = report["activity"]
    if a.get("hidden_sessions"):
        # A probe that cannot see a session cannot vouch for it: not "ok".
        found.append(_finding("warning", "limited_view", "this role", a["hidden_sessions"], 0,
                              f"{a['hidden_sessions']} sessions of other roles are hidden from this role (their "
                              "state, query and times): a long query or an idle transaction among them cannot be "
                              "judged; GRANT pg_read_all_stats (or pg_monitor) TO this role"))
    for s in a["long_running"]:
        judge("long_running_query", f"pid {s['pid']}", s["seconds"], "long_query_warning_s", "long_query_critical_s",
              f"query of {s['user']} running {s['seconds']:.0f}s: {_short(s['query'])}")
    for s in a["idle_in_transaction"]:
        judge("idle_in_transaction", f"pid {s['pid']}", s["seconds"], "idle_in_transaction_warning_s",
              "idle_in_transaction_critical_s",
              f"{s['user']} idle in an open transaction for {s['seconds']:.0f}s (holds locks and the xmin horizon)")
    for w in a["blocking"]:
        judge("blocked_by_lock", f"pid {w['pid']}", w["waiting_seconds"], "lock_wait_warning_s",
              "lock_wait_critical_s",
              f"waiting {w['waiting_seconds']:.0f}s for {w['lock']['mode']} on {w['lock']['relation'] or w['lock']['type']}"
              f", blocked by pid {', '.join(map(str, w['blocked_by']))} (root: {', '.join(map(str, w['root_blockers']))})")

    r = report["replication"]
    if r["replay_lag_seconds"] is not None:
        judge("replication_lag", "this replica", r["replay_lag_seconds"], "replication_lag_warning_s",
              "replication_lag_critical_s", f"replaying {r['replay_lag_seconds']:.0f}s behind the primary")
    for replica in r["replicas"]:
        judge("replication_lag", replica["name"] or replica["client"], replica["replay_lag_seconds"],
              "replication_lag_warning_s", "replication_lag_critical_s",
              f"replica {replica['name'] or replica['client']} replays {replica['replay_lag_seconds']}s behind")

    for tb in report["tables"]:
        # A partitioned table's figures are its partitions' sums: each partition is judged itself.
        if tb["dead_tuples"] and tb["dead_tuples"] >= t["dead_tuples_min"] and not tb.get("partitions"):
            judge("dead_tuples", f"{tb['schema']}.{tb['table']}", tb["dead_tuple_ratio"], "dead_tuple_ratio_warning",
                  "dead_tuple_ratio_critical",
                  f"{tb['dead_tuples']:,} dead tuples ({tb['dead_tuple_ratio']:.0%}): VACUUM it, or check autovacuum")

    rows = {(tb["schema"], tb["table"]): tb["rows"] for tb in report["tables"]}
    for ix in report["indexes"]:
        name = f"{ix['schema']}.{ix['index']}"
        if not ix["valid"]:
            how = (f"a leftover of an interrupted REINDEX CONCURRENTLY: tdbctl reindex --table "
                   f"{ix['schema']}.{ix['table']} drops it" if ix["leftover"]
                   else f"a failed CREATE INDEX CONCURRENTLY? tdbctl reindex --index {name} rebuilds it")
            found.append(_finding("warning", "invalid_index", name, None, None,
                                  f"invalid index: queries ignore it, writes still maintain it; {how}"))
            continue
        if ix["bloat_ratio"] is not None and (ix["bytes"] or 0) >= t["index_bloat_min_bytes"]:
            judge("index_bloat", name, ix["bloat_ratio"], "index_bloat_warning", "index_bloat_critical",
                  f"about {ix['bloat_ratio']:.0%} of {size(ix['bytes'])} is bloat: tdbctl reindex --index {name}")
        # An index on an empty table has had nothing to find: "never scanned" says nothing yet.
        if ix["unused"] and (ix["bytes"] or 0) >= t["unused_index_min_bytes"] and rows.get(
                (ix["schema"], ix["table"]), 1) > 0:
            found.append(_finding("info", "unused_index", name, ix["scans"], 0,
                                  f"never scanned since the statistics were reset ({size(ix['bytes'])})"))
        if ix["duplicate_of"]:
            found.append(_finding("info", "duplicate_index", name, None, None,
                                  f"same key as {ix['schema']}.{ix['duplicate_of']}"))

    for fk in report["unindexed_foreign_keys"]:
        deletes = fk["parent_deletes"] or 0
        if fk["parent_retention"] or deletes > 0:
            why = (f"{deletes:,} rows deleted from {fk['parent']} since the statistics were reset" if deletes
                   else f"tdbctl's retention deletes rows of {fk['parent']}")
            columns = ", ".join(fk["columns"])
            found.append(_finding("info", "unindexed_foreign_key", f"{fk['schema']}.{fk['table']}({columns})", deletes,
                                  None, f"no index leads with the foreign key to {fk['parent']} ({why}): each "
                                  f"deleted parent row scans the whole table; CREATE INDEX ON "
                                  f"{fk['schema']}.{fk['table']} ({columns})"))

    for p in report.get("partitions") or []:
        if not p["current"] or p["ahead"] < 1:
            found.append(_finding(
                "critical" if not p["current"] else "warning", "partitions_ahead", p["table"], p["ahead"], 1,
                ("no partition for the current interval: new rows land in the DEFAULT partition"
                 if not p["current"] else "no partition made ahead for the next interval")
                + "; tdbctl partitions create (run it from cron)"))
        if p["default_rows"]:
            found.append(_finding("warning", "default_partition_rows", p["table"], p["default_rows"], 0,
                                  f"{p['default_rows']:,} rows in the DEFAULT partition (outside every range): "
                                  "tdbctl partitions create moves them into partitions of their own"))
        if p["conversion"]:
            c = p["conversion"]
            found.append(_finding("warning", "partition_conversion", p["table"], c["rows_moved"], c["rows_total"],
                                  f"conversion to a partitioned table {c['status']}: {c['rows_moved']:,} old rows "
                                  "moved so far; tdbctl migrate finishes it"))

    for f in report["files"]:
        if f["page_count"] and f["freelist_count"] >= t["freelist_min_pages"]:
            ratio = round(f["freelist_count"] / f["page_count"], 4)
            if ratio >= t["freelist_ratio_warning"]:
                found.append(_finding("warning", "freelist", f["schema"], ratio, t["freelist_ratio_warning"],
                                      f"{f['freelist_count']:,} of {f['page_count']:,} pages free: VACUUM would "
                                      "return them to the file system"))
    for result in report["integrity"] or []:
        if not result["ok"]:
            found.append(_finding("critical", "integrity", result["schema"], None, None,
                                  "integrity_check: " + "; ".join(result["messages"][:3])))
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(found, key=lambda f: (order[f["severity"]], f["check"], f["subject"]))


def _backups(b: dict, found: list[dict]) -> None:
    """Archiving and the repository, judged against the limits the section carries (RPO, schedules)."""
    from tdbctl.ops.humanize import moment, span

    a = b.get("archiving")
    rpo = b.get("rpo_seconds")
    if a and a["archive_mode"] != "off":
        if a["failing"]:
            since = f"since {moment(a['last_archived_time'])}" if a["last_archived_time"] else "ever"
            found.append(_finding("critical", "archiving_failing", "archive_command", a["failed_count"], None,
                                  f"WAL archiving fails ({a['last_failed_wal']} at {moment(a['last_failed_time'])}): "
                                  f"nothing written {since} can be recovered, and WAL piles up in pg_wal; "
                                  "the server log says why"))
        elif a["unarchived_bytes"] and (a.get("last_archived_age_seconds") or 0) > rpo:
            found.append(_finding("critical", "archive_lag", "archive_command", a["last_archived_age_seconds"], rpo,
                                  f"{size(a['unarchived_bytes'])} of WAL not archived, the last archived "
                                  f"{span(a['last_archived_age_seconds'])} ago: past the RPO of {span(rpo)}"))
    p = b.get("pgbackrest")
    if not p:
        return
    if p["backups"] == 0:
        found.append(_finding("critical", "backup_age", "pgbackrest", None, p["full_every_seconds"],
                              "no pgBackRest backup in the repository: `tdbctl backup --type full`"))
    elif p["newest_full_age_seconds"] is not None and p["newest_full_age_seconds"] > p["full_every_seconds"]:
        found.append(_finding("warning", "backup_age", "pgbackrest", p["newest_full_age_seconds"],
                              p["full_every_seconds"], f"the newest full backup is {span(p['newest_full_age_seconds'])} "
                              f"old, past its schedule of {span(p['full_every_seconds'])}"))
    drill = p["last_drill"]
    if drill is None:
        found.append(_finding("warning", "drill_age", "pgbackrest", None, p["drill_every_seconds"],
                              "no recovery drill on record: `tdbctl backup drill`"))
    elif drill["status"] == "failed":
        found.append(_finding("critical", "drill_failed", "pgbackrest", drill["age_seconds"], None,
                              f"the last recovery drill failed: {drill['message']}"))
    elif drill["age_seconds"] is not None and drill["age_seconds"] > p["drill_every_seconds"]:
        found.append(_finding("warning", "drill_age", "pgbackrest", drill["age_seconds"], p["drill_every_seconds"],
                              f"the last recovery drill was {span(drill['age_seconds'])} ago, past its schedule of "
                              f"{span(p['drill_every_seconds'])}"))


def status(findings: list[dict]) -> str:
    severities = {f["severity"] for f in findings}
    return "critical" if "critical" in severities else "warning" if "warning" in severities else "ok"


def _cluster(c: dict | None, t: dict, found: list, judge) -> None:
    if not c:
        return
    for n in c["nodes"]:
        if not n["active"] or not n["reachable"]:
            found.append(_finding("critical", "node_down", n["node"], 0, None,
                                  f"Citus {n['role']} {n['node']} is " + ("inactive" if not n["active"] else
                                  "unreachable from another node") + ": queries touching its shards fail"))
    s = c["skew"]
    if s["ratio"] is not None and s["rows"] >= t["node_skew_min_rows"]:
        judge("node_skew", s["heaviest"], s["ratio"], "node_skew_warning", "node_skew_critical",
              f"worker {s['heaviest']} holds {s['ratio']:.2f}x the workers' mean of distributed rows: a tenant "
              "that dominates (citus_stat_tenants names it)? isolate_tenant_to_new_shard, then citus_rebalance_start")
    for w in c["lock_waits"]:
        found.append(_finding("warning", "cluster_lock_wait", f"gpid {w['waiting_gpid']}", None, None,
                              f"on node {w['waiting_node_id']}, waiting for gpid {w['blocking_gpid']} on node "
                              f"{w['blocking_node_id']}: {_short(w['waiting_query'] or '')}"))
    if c["rebalance"]["running"]:
        found.append(_finding("info", "rebalance_running", "cluster", len(c["rebalance"]["moves"]), None,
                              f"the shard rebalancer is moving {len(c['rebalance']['moves'])} shards"))


def _short(query: str | None, width: int = 80) -> str:
    text = " ".join((query or "(not visible to this role)").split())
    return text if len(text) <= width else text[: width - 1] + "…"
