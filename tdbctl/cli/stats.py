"""`tdbctl stats`: health, activity, tables, indexes, top queries and platform figures, with findings."""


from enum import Enum
from typing import Annotated

import typer

from tdbctl.cli.common import JsonOption, Output, settings
from tdbctl.ops.humanize import size as _size, span


class Format(str, Enum):
    text = "text"
    json = "json"
    prometheus = "prometheus"


def register(root: typer.Typer) -> None:
    root.command("stats")(stats)


def stats(
    since: Annotated[str, typer.Option("--since", metavar="AGE", help="Window of the platform figures: 7d, 24h, 4w.")] = "7d",
    check: Annotated[bool, typer.Option("--check", help="Print only the findings; exit 3 on a warning or critical one.")] = False,
    output_format: Annotated[Format, typer.Option("--format", help="text (tables on a terminal), json, or prometheus.")] = Format.text,
    watch: Annotated[float, typer.Option("--watch", metavar="N", min=0, help="Refresh every N seconds (terminal only).")] = 0,
    top: Annotated[int, typer.Option("--top", min=1, help="How many pg_stat_statements queries to show.")] = 10,
    integrity: Annotated[bool, typer.Option("--integrity-check", help="SQLite: also run PRAGMA integrity_check (reads every page).")] = False,
    no_platform: Annotated[bool, typer.Option("--no-platform", help="Skip the platform figures (they read the domain tables).")] = False,
    json: JsonOption = False,
) -> None:
    """Show the database's health, activity, tables, indexes and the platform's figures, with findings.

    PostgreSQL figures come from the catalog and the statistics views (no COUNT(*) of a big table), and
    an ordinary application role can run it. Thresholds: README, overridable in tdbctl.toml
    [stats.thresholds]. Exit 3 with --check when a finding is a warning or critical.

    Example:

        \b
        tdbctl stats                                  # the on-call page
        tdbctl stats --check || page-someone          # a monitoring probe
        tdbctl stats --format prometheus > /var/lib/node_exporter/tdbctl.prom
    """
    from tdbctl.errors import ExitCode, UsageError
    from tdbctl.ops.durations import parse_duration
    from tdbctl.stats import collect

    fmt = Format.json if json else output_format
    out = Output(fmt is Format.json)
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
        _watch(out, gather, watch)
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
        _render(out, report)


def _watch(out: Output, gather, seconds: float) -> None:
    import time

    from rich.console import Console

    console = Console()
    try:
        while True:
            report = gather()
            console.clear()
            _render(out, report)
            console.print(f"[dim]every {seconds:g}s; Ctrl-C to stop[/dim]")
            time.sleep(seconds)
    except KeyboardInterrupt:
        return


def _check(out: Output, report: dict) -> None:
    if out.json:
        out.data({"status": report["status"], "findings": report["findings"], "notes": report["notes"]})
        return
    for f in report["findings"]:
        out.line(f"{f['severity']}\t{f['check']}\t{f['subject']}\t{f['message']}")
    for note in report["notes"]:
        out.log(f"note: {note}")
    out.log(f"status: {report['status']} ({len(report['findings'])} findings)")


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def _secs(x) -> str:
    return "" if x is None else f"{x:.0f}s"


def _when(*stamps) -> str:
    present = [s for s in stamps if s is not None]
    return max(present).strftime("%Y-%m-%d %H:%M") if present else "never"


def _render(out: Output, r: dict) -> None:
    h = r["health"]
    pairs = [("database", r["database"]), ("status", r["status"]), ("server", f"{r['dialect']} {h['server_version']}")]
    if h["uptime_seconds"] is not None:
        pairs += [
            ("uptime", span(h["uptime_seconds"])),
            ("database size", _size(h["database_bytes"])),
            ("connections", f"{h['connections_used']} of {h['max_connections']}"),
            ("cache hit ratio", _pct(h["cache_hit_ratio"])),
            ("xid age", f"{h['xid_age']:,} ({h['xid_age_database']})"),
            ("replication", f"{r['replication']['role']}, {len(r['replication']['replicas'])} replicas"
             + (f", replay lag {_secs(r['replication']['replay_lag_seconds'])}"
                if r["replication"]["replay_lag_seconds"] is not None else "")),
        ]
    else:
        pairs.append(("database size", _size(h["database_bytes"])))
    pairs.append(("collected in", f"{r['elapsed_seconds']:.2f}s"))
    out.fields("Health", pairs)
    if r["findings"]:
        out.table("Findings", ["severity", "check", "subject", "message"],
                  [(f["severity"], f["check"], f["subject"], f["message"]) for f in r["findings"]])
    a = r["activity"]
    if a["long_running"] or a["idle_in_transaction"]:
        out.table("Long-running queries and idle transactions", ["pid", "user", "state", "for", "query"],
                  [(s["pid"], s["user"], s["state"], _secs(s["seconds"]), _one_line(s["query"]))
                   for s in a["long_running"] + a["idle_in_transaction"]])
    if a["blocking"]:
        out.table("Blocked sessions", ["pid", "waiting", "lock", "blocked by", "root blockers", "query"],
                  [(w["pid"], _secs(w["waiting_seconds"]), f"{w['lock']['mode']} {w['lock']['relation'] or ''}",
                    ",".join(map(str, w["blocked_by"])), ",".join(map(str, w["root_blockers"])),
                    _one_line(w["query"])) for w in a["blocking"]])
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
                    "yes" if i["valid"] else "NO", i["duplicate_of"] or "", _pct(i["bloat_ratio"]))
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
                  [(x["calls"], f"{x['total_ms']:.0f} ms", f"{x['mean_ms']:.2f} ms", x["rows"], _one_line(x["query"]))
                   for x in q["queries"]])
    elif q["hint"]:
        out.line(q["hint"])
    _render_platform(out, r["platform"])
    for note in r["notes"]:
        out.log(f"note: {note}")


def _render_tables(out: Output, r: dict) -> None:
    by_schema: dict[str, list] = {}
    for t in r["tables"]:
        by_schema.setdefault(t["schema"], []).append(t)
    # SQLite has no TOAST, dead tuples, vacuum times or scan counters: no empty columns for them.
    counters = any(t["dead_tuples"] is not None for t in r["tables"])
    columns = ["table", "rows", "size", "indexes"]
    if counters:
        columns += ["toast", "dead", "vacuumed", "analyzed", "seq/idx scans"]
    for schema, tables in by_schema.items():
        rows = []
        for t in tables:
            row = [t["table"], f"{t['rows']:,}", _size(t["table_bytes"]), _size(t["index_bytes"])]
            if counters:
                row += [_size(t["toast_bytes"]), _pct(t["dead_tuple_ratio"]), _when(t["last_vacuum"], t["last_autovacuum"]),
                        _when(t["last_analyze"], t["last_autoanalyze"]),
                        f"{t['seq_scans']}/{t['index_scans']}" if t["seq_scans"] is not None else ""]
            rows.append(tuple(row))
        out.table(f"Tables in {schema}", columns, rows)


def _render_platform(out: Output, platform: dict | None) -> None:
    if not platform or not platform["figures"]:
        return
    f = platform["figures"]
    window = platform["since"]
    pairs = []
    if f["conversations"]:
        c = f["conversations"]
        pairs.append(("voice conversations", f"{c['completed']:,} of {c['total']:,} completed ({_pct(c['success_rate'])})"))
    if f["training_sessions"]:
        t = f["training_sessions"]
        pairs.append(("training sessions", f"{t['completed']:,} of {t['total']:,} completed "
                      f"({_pct(t['completion_rate'])}), average score {t['avg_score'] if t['avg_score'] is not None else '-'}"))
    if f["errors_by_type"]:
        pairs.append(("voice errors", f"{f['errors_by_type']['total']:,}"))
    if pairs:
        out.fields(f"Platform, last {window}", pairs)
    if f["errors_by_type"] and f["errors_by_type"]["types"]:
        out.table(f"Errors by type, last {window}", ["type", "errors", "critical", "per 100 conversations"],
                  [(t["error_type"], t["errors"], t["critical"], t["per_100_conversations"])
                   for t in f["errors_by_type"]["types"]])
    if f["slot_extraction"] and f["slot_extraction"]["slots"]:
        out.table(f"Slot extraction, last {window}", ["slot", "extractions", "validated", "avg confidence"],
                  [(s["slot_name"], s["extractions"], _pct(s["validated_ratio"]), s["avg_confidence"])
                   for s in f["slot_extraction"]["slots"]])
    if f["training_sessions"] and f["training_sessions"]["scenarios"]:
        out.table(f"Scenarios, last {window}", ["scenario", "title", "sessions", "completed", "avg score"],
                  [(s["scenario_id"], s["title"], s["sessions"], _pct(s["completion_rate"]), s["avg_score"])
                   for s in f["training_sessions"]["scenarios"]])
    for name, figure in f.items():
        if figure:
            out.log(f"{name}: from {figure['source']}")


def _one_line(text, width: int = 100) -> str:
    flat = " ".join((text or "(not visible to this role)").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
