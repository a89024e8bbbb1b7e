"""`tdbctl stats`: health, activity, tables, indexes, top queries and platform figures, with findings."""


import sys
from collections import Counter
from enum import Enum
from typing import Annotated

import typer

from tdbctl.cli.common import JsonOption, Output, settings
from tdbctl.ops.humanize import moment, percent, plural, size as _size, span


class Format(str, Enum):
    text = "text"
    json = "json"
    prometheus = "prometheus"


def register(root: typer.Typer) -> None:
    root.command("stats")(stats)


def stats(
    since: Annotated[str, typer.Option("--since", metavar="AGE", help="Window of the platform figures: 7d, 24h, 4w.")] = "7d",
    check: Annotated[bool, typer.Option("--check", help="Print only the findings; exit 3 on a warning or critical one.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Every section: each table, the indexes worth a look, top "
                                       "queries, platform tables, info findings.")] = False,
    output_format: Annotated[Format, typer.Option("--format", metavar="FORMAT", help="text (tables on a terminal), "
                                                  "json, or prometheus.")] = Format.text,
    watch: Annotated[float, typer.Option("--watch", metavar="SECONDS", min=0, help="Redraw every SECONDS, in place, "
                                         "as much of the page as the terminal holds (terminal only).")] = 0,
    top: Annotated[int, typer.Option("--top", metavar="N", min=1, help="How many pg_stat_statements queries to show.")] = 10,
    integrity: Annotated[bool, typer.Option("--integrity-check", help="SQLite: also run PRAGMA integrity_check (reads every page).")] = False,
    no_platform: Annotated[bool, typer.Option("--no-platform", help="Skip the platform figures (they read the domain tables).")] = False,
    no_pager: Annotated[bool, typer.Option("--no-pager", help="Print straight to the terminal, never through a pager.")] = False,
    thresholds: Annotated[bool, typer.Option("--thresholds", help="List the thresholds findings are judged "
                                             "against, their tdbctl.toml keys and values in force, and exit.")] = False,
    json: JsonOption = False,
) -> None:
    """Show what is wrong first, then the database's health, activity, tables and platform figures.

    The first screen answers "is something wrong, and what": the status, the findings (critical and
    warning; info ones counted), blocked sessions with their root blockers, long queries and idle
    transactions, then a short summary of the rest; --full shows every section. A page taller than
    the terminal goes through a pager (PAGER, else less -FRX), never under cron or a pipe.

    PostgreSQL figures come from the catalog and the statistics views (no COUNT(*) of a big table);
    an ordinary application role can run it. The thresholds and their tdbctl.toml keys
    ([stats.thresholds]) are listed by `tdbctl stats --thresholds`. Exit 3 with --check when a
    finding is a warning or critical.

    Example:

        \b
        tdbctl stats                     # the on-call page
        tdbctl stats --full              # every table, index and query
        tdbctl stats --check || page-me  # a monitoring probe
        tdbctl stats --format prometheus > /var/lib/node/tdbctl.prom
    """
    from tdbctl.errors import ExitCode, UsageError
    from tdbctl.ops.durations import parse_duration
    from tdbctl.stats import collect

    fmt = Format.json if json else output_format
    out = Output(fmt is Format.json)
    if thresholds:
        _thresholds(out)
        return
    window = parse_duration(since, option="--since")
    if watch and (fmt is not Format.text or check):
        raise UsageError("--watch redraws the terminal view; it does not combine with --check, --json or --format")
    if watch and not out.terminal:
        raise UsageError("--watch needs a terminal; for a log, run tdbctl stats from cron")
    if check and fmt is Format.prometheus:
        raise UsageError("--check prints findings; --format prometheus already carries them (tdbctl_finding)")
    config = settings()

    def gather() -> dict:
        return collect(config, since=window, since_text=since, platform=not (check or no_platform), top=top,
                       integrity_check=integrity)

    if watch:
        _watch(gather, watch, full)
        return
    report = gather()
    if check:
        _check(out, report)
        if report["status"] != "ok":
            raise typer.Exit(ExitCode.CHECK_FAILED)
        return
    if fmt is Format.json:
        out.data(report)
    elif fmt is Format.prometheus:
        from tdbctl.stats.prometheus import render

        out.line(render(report).rstrip("\n"))
    else:
        with out.paged(enabled=not no_pager):
            _render(out, report, full)


def _watch(gather, seconds: float, full: bool) -> None:
    """top's way: the alternate screen, redrawn from its top-left corner each time, as many lines
    of the page as fit; the status and the findings come first, so they stay in view."""
    import shutil
    import time

    write = sys.stdout.write
    write("\x1b[?1049h\x1b[?25l")  # the alternate screen, no cursor: the shell's screen comes back after
    try:
        while True:
            report = gather()
            columns, lines = shutil.get_terminal_size()
            page = Output.rendered(lambda out: _render(out, report, full), columns).splitlines()
            room = lines - 1
            shown = page[:room] if len(page) <= room else page[:room - 1] + [
                f"... {len(page) - room + 1} more lines: tdbctl stats{' --full' if full else ''}"]
            footer = f"every {seconds:g}s; Ctrl-C to stop"
            write("\x1b[H" + "".join(f"{line}\x1b[K\n" for line in shown) + f"\x1b[2m{footer}\x1b[0m\x1b[K\x1b[J")
            sys.stdout.flush()
            time.sleep(seconds)
    except KeyboardInterrupt:
        return
    finally:
        write("\x1b[?25h\x1b[?1049l")
        sys.stdout.flush()


def _thresholds(out: Output) -> None:
    from tdbctl.stats.thresholds import THRESHOLDS, from_settings

    in_force = from_settings(settings())
    rows = [{"key": t.key, "default": t.default, "value": in_force[t.key], "meaning": t.meaning} for t in THRESHOLDS]
    if out.json:
        out.data(rows)
        return
    out.table("Thresholds ([stats.thresholds] in tdbctl.toml overrides a default)",
              ["key", "default", "in force", "a finding when"],
              [(r["key"], r["default"], r["value"], r["meaning"]) for r in rows])


def _check(out: Output, report: dict) -> None:
    if out.json:
        out.data({"status": report["status"], "findings": report["findings"], "notes": report["notes"]})
        return
    for f in report["findings"]:
        out.line(f"{f['severity']}\t{f['check']}\t{f['subject']}\t{f['message']}")
    for note in report["notes"]:
        out.log(f"note: {note}")
    out.log(f"status: {report['status']} ({plural(len(report['findings']), 'finding')})")


def _secs(x) -> str:
    return "" if x is None else f"{x:,.0f}s"


def _when(*stamps) -> str:
    present = [s for s in stamps if s is not None]
    return moment(max(present))[:-7] if present else "never"  # to the minute: "2026-12-06 19:49"


def _render(out: Output, r: dict, full: bool) -> None:
    _status(out, r)
    findings = r["findings"] if full else [f for f in r["findings"] if f["severity"] != "info"]
    if findings:
        out.table("Findings", ["severity", "check", "subject", "message"],
                  [(f["severity"], f["check"], f["subject"], f["message"]) for f in findings])
    info = Counter(f["check"] for f in r["findings"] if f["severity"] == "info")
    if info and not full:
        out.line(f"info: {', '.join(f'{check} {n:,}' for check, n in info.most_common())} (--full lists them)")
    a = r["activity"]
    if a["blocking"]:
        out.table("Blocked sessions", ["pid", "waiting", "lock", "blocked by", "root blockers", "query"],
                  [(str(w["pid"]), _secs(w["waiting_seconds"]), f"{w['lock']['mode']} {w['lock']['relation'] or ''}",
                    ", ".join(map(str, w["blocked_by"])), ", ".join(map(str, w["root_blockers"])),
                    _one_line(w["query"])) for w in a["blocking"]])
    if a["long_running"] or a["idle_in_transaction"]:
        out.table("Long-running queries and idle transactions", ["pid", "user", "state", "for", "query"],
                  [(str(s["pid"]), s["user"], s["state"], _secs(s["seconds"]), _one_line(s["query"]))
                   for s in a["long_running"] + a["idle_in_transaction"]])
    _render_cluster(out, r.get("cluster"), full)
    if not full:
        _summary(out, r)
        return
    if r["replication"]["replicas"]:
        out.table("Replicas", ["name", "client", "state", "replay lag"],
                  [(x["name"], x["client"], x["state"], _secs(x["replay_lag_seconds"]))
                   for x in r["replication"]["replicas"]])
    _render_tables(out, r)
    flagged = {f["subject"] for f in r["findings"]
               if f["check"] in ("invalid_index", "index_bloat", "unused_index", "duplicate_index")}
    notable = [i for i in r["indexes"] if f"{i['schema']}.{i['index']}" in flagged]
    if notable:
        out.table("Indexes worth a look (all of them: --json)",
                  ["index", "table", "size", "scans", "valid", "duplicate of", "bloat"],
                  [(f"{i['schema']}.{i['index']}", i["table"], _size(i["bytes"]), i["scans"],
                    "yes" if i["valid"] else "NO", i["duplicate_of"] or "", percent(i["bloat_ratio"]))
                   for i in notable])
    if r["files"]:
        out.table("Files", ["schema", "path", "size", "pages", "free pages"],
                  [(f["schema"], f["path"], _size(f["bytes"]), f["page_count"], f["freelist_count"])
                   for f in r["files"]])
    for result in r["integrity"] or []:
        out.line(f"integrity_check {result['schema']}: {'ok' if result['ok'] else '; '.join(result['messages'])}")
    q = r["top_queries"]
    if q["available"]:
        out.table("Top queries (pg_stat_statements, by total time)", ["calls", "total", "mean", "rows", "query"],
                  [(x["calls"], f"{x['total_ms']:,.0f} ms", f"{x['mean_ms']:,.2f} ms", x["rows"], _one_line(x["query"]))
                   for x in q["queries"]])
    elif q["hint"]:
        out.line(q["hint"])
    _render_platform(out, r["platform"])
    for note in r["notes"]:
        out.log(f"note: {note}")


def _status(out: Output, r: dict) -> None:
    """Three lines that say whether something is wrong, where, and on what."""
    h = r["health"]
    counts = Counter(f["severity"] for f in r["findings"])
    judged = ", ".join(f"{counts[s]:,} {s}" for s in ("critical", "warning", "info") if counts[s]) or "no findings"
    server = f"{'PostgreSQL' if r['dialect'] == 'postgresql' else 'SQLite'} {h['server_version']}"
    pairs = [("status", f"{r['status'].upper()}: {judged}"), ("database", r["database"])]
    figures = [server]
    if h["uptime_seconds"] is not None:
        replication = r["replication"]
        figures += [f"up {span(h['uptime_seconds'])}", _size(h["database_bytes"]),
                    f"{h['connections_used']:,} of {h['max_connections']:,} connections",
                    f"cache hit {percent(h['cache_hit_ratio'])}", f"xid age {h['xid_age']:,}",
                    replication["role"] + (f", {plural(len(replication['replicas']), 'replica')}"
                                           if replication["replicas"] else "")
                    + (f", replay lag {_secs(replication['replay_lag_seconds'])}"
                       if replication["replay_lag_seconds"] is not None else "")]
    else:
        figures.append(_size(h["database_bytes"]))
    figures.append(f"read in {r['elapsed_seconds']:.2f}s")
    pairs.append(("server", ", ".join(figures)))
    backups = _backup_line(r.get("backups") or {})
    if backups:
        pairs.append(("backups", backups))
    c = r.get("cluster")
    if c:
        workers = [n for n in c["nodes"] if n["holds_shards"]]
        down = [n["node"] for n in c["nodes"] if not (n["active"] and n["reachable"])]
        skew = c["skew"]["ratio"]
        pairs.append(("cluster", ", ".join([
            f"Citus, {plural(len(workers), 'worker')}", f"DOWN: {', '.join(down)}" if down else "all nodes reachable",
            f"{sum(n['shards'] for n in c['nodes']):,} shards",
            f"skew {skew:.2f}x" if skew is not None else "no distributed rows",
            "rebalancing" if c["rebalance"]["running"] else "rebalancer idle"])))
    out.fields("", pairs)


def _backup_line(b: dict) -> str:
    """Archiving and the repository in one line: what an on-call engineer needs to trust a restore."""
    parts = []
    a = b.get("archiving")
    if a and a["archive_mode"] != "off":
        if a["failing"]:
            parts.append(f"WAL archiving FAILING ({a['failed_count']:,} failures)")
        elif a.get("last_archived_age_seconds") is not None:
            parts.append(f"WAL archived {span(a['last_archived_age_seconds'])} ago (RPO {span(b['rpo_seconds'])})")
        else:
            parts.append("WAL archiving on, nothing archived yet")
    p = b.get("pgbackrest")
    if p:
        if p["newest_full_age_seconds"] is not None:
            parts.append(f"newest full backup {span(p['newest_full_age_seconds'])} old")
        elif p["backups"] == 0:
            parts.append("no pgBackRest backup")
        drill = p["last_drill"]
        parts.append("no drill on record" if drill is None else
                     f"last drill {span(drill['age_seconds'])} ago {'passed' if drill['status'] == 'succeeded' else 'FAILED'}"
                     + (f" (recovered in {_secs(drill['recovery_seconds'])})" if drill.get("recovery_seconds") else ""))
    return ", ".join(parts)


def _summary(out: Output, r: dict) -> None:
    """The rest in a few lines: tables per schema, the largest, the platform's figures."""
    by_schema: dict[str, list] = {}
    for t in _whole_tables(r):
        by_schema.setdefault(t["schema"], []).append(t)
    total = lambda t: (t["table_bytes"] or 0) + (t["index_bytes"] or 0) + (t["toast_bytes"] or 0)  # noqa: E731
    pairs = [(schema, f"{plural(len(tables), 'table')}, {sum(t['rows'] for t in tables):,} rows, "
                      f"{_size(sum(total(t) for t in tables))}") for schema, tables in by_schema.items()]
    largest = sorted(_whole_tables(r), key=total, reverse=True)[:3]
    for i, t in enumerate(t for t in largest if total(t)):  # a line each: a size never splits
        pairs.append(("largest" if i == 0 else "", f"{t['schema']}.{t['table']} {_size(total(t))}"))
    platform = r["platform"]
    if platform and platform["figures"]:
        pairs += [(name, text) for name, text in _platform_pairs(platform["figures"])]
    out.fields(f"Tables{' and the platform, last ' + platform['since'] if platform and platform['figures'] else ''}",
               pairs)
    if r["notes"]:
        out.line(f"{plural(len(r['notes']), 'note')} and every table, index and query: tdbctl stats --full")
    else:
        out.line("every table, index and query: tdbctl stats --full")


def _whole_tables(r: dict) -> list[dict]:
    """Tables, a partitioned one once with its partitions' sums (`tdbctl partitions` lists them)."""
    return [t for t in r["tables"] if not t.get("partition_of")]


def _render_cluster(out: Output, c: dict | None, full: bool) -> None:
    if not c:
        return
    out.table("Cluster nodes", ["node", "role", "state", "shards", "rows", "size", "distributed rows", "sessions"],
              [(n["node"], n["role"], "up" if n["active"] and n["reachable"] else
                ("inactive" if not n["active"] else "UNREACHABLE"), f"{n['shards']:,}", f"{n['rows']:,}",
                _size(n["bytes"]), f"{n['distributed_rows']:,}", f"{n['sessions']:,}") for n in c["nodes"]])
    if c["lock_waits"]:
        out.table("Cluster lock waits", ["waiting", "on node", "blocked by", "on node", "query"],
                  [(str(w["waiting_gpid"]), str(w["waiting_node_id"]), str(w["blocking_gpid"]),
                    str(w["blocking_node_id"]), _one_line(w["waiting_query"])) for w in c["lock_waits"]])
    if c["activity"]:
        out.table("Long-running queries on the cluster", ["global pid", "node", "user", "for", "query"],
                  [(str(s["global_pid"]), str(s["node_id"]), s["user"], _secs(s["seconds"]), _one_line(s["query"]))
                   for s in c["activity"]])
    if full:
        out.table("Citus tables", ["table", "type", "distributed by", "colocation", "shards", "size"],
                  [(t["table"], t["type"], t["distribution_column"] or "", str(t["colocation_id"]), f"{t['shards']:,}",
                    _size(t["bytes"])) for t in c["tables"]])
    if c["rebalance"]["moves"]:
        out.table("Rebalancer moves", ["table", "shard", "from", "to", "progress"],
                  [(m["table"], str(m["shard"]), m["from"], m["to"], str(m["progress"])) for m in c["rebalance"]["moves"]])


def _render_tables(out: Output, r: dict) -> None:
    by_schema: dict[str, list] = {}
    for t in _whole_tables(r):
        by_schema.setdefault(t["schema"], []).append(t)
    # SQLite has no TOAST, dead tuples, vacuum times or scan counters: no empty columns for them.
    counters = any(t["dead_tuples"] is not None for t in r["tables"])
    columns = ["table", "rows", "size", "indexes"]
    if counters:
        columns += ["toast", "dead", "vacuumed", "analyzed", "seq/idx scans"]
    for schema, tables in by_schema.items():
        rows = []
        for t in tables:
            row = [t["table"] + (f" ({plural(t['partitions'], 'partition')})" if t.get("partitions") else ""), t["rows"], _size(t["table_bytes"]), _size(t["index_bytes"])]
            if counters:
                row += [_size(t["toast_bytes"]), percent(t["dead_tuple_ratio"]), _when(t["last_vacuum"], t["last_autovacuum"]),
                        _when(t["last_analyze"], t["last_autoanalyze"]),
                        f"{t['seq_scans']:,}/{t['index_scans'] or 0:,}" if t["seq_scans"] is not None else ""]
            rows.append(tuple(row))
        out.table(f"Tables in {schema}", columns, rows)


def _platform_pairs(f: dict) -> list[tuple[str, str]]:
    pairs = []
    if f["conversations"]:
        c = f["conversations"]
        pairs.append(("voice conversations", f"{c['completed']:,} of {c['total']:,} completed ({percent(c['success_rate'])})"))
    if f["training_sessions"]:
        t = f["training_sessions"]
        pairs.append(("training sessions", f"{t['completed']:,} of {t['total']:,} completed "
                      f"({percent(t['completion_rate'])}), average score {t['avg_score'] if t['avg_score'] is not None else '-'}"))
    if f["errors_by_type"]:
        pairs.append(("voice errors", f"{f['errors_by_type']['total']:,}"))
    return pairs


def _render_platform(out: Output, platform: dict | None) -> None:
    if not platform or not platform["figures"]:
        return
    f = platform["figures"]
    window = platform["since"]
    pairs = _platform_pairs(f)
    if pairs:
        out.fields(f"Platform, last {window}", pairs)
    if f["errors_by_type"] and f["errors_by_type"]["types"]:
        out.table(f"Errors by type, last {window}", ["type", "errors", "critical", "per 100 conversations"],
                  [(t["error_type"], t["errors"], t["critical"], t["per_100_conversations"])
                   for t in f["errors_by_type"]["types"]])
    if f["slot_extraction"] and f["slot_extraction"]["slots"]:
        out.table(f"Slot extraction, last {window}", ["slot", "extractions", "validated", "avg confidence"],
                  [(s["slot_name"], s["extractions"], percent(s["validated_ratio"]), s["avg_confidence"])
                   for s in f["slot_extraction"]["slots"]])
    if f["training_sessions"] and f["training_sessions"]["scenarios"]:
        out.table(f"Scenarios, last {window}", ["scenario", "title", "sessions", "completed", "avg score"],
                  [(s["scenario_id"], s["title"], s["sessions"], percent(s["completion_rate"]), s["avg_score"])
                   for s in f["training_sessions"]["scenarios"]])
    out.table("Where the platform figures come from", ["figure", "source"],
              [(name, figure["source"]) for name, figure in f.items() if figure])


def _one_line(text, width: int = 100) -> str:
    flat = " ".join((text or "(not visible to this role)").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
