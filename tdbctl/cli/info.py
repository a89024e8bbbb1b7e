
import typer

from tdbctl.cli.common import JsonOption, Output, settings


def info(json: JsonOption = False) -> None:
    """Show the database URL (masked) and where it came from, server, extensions and schema state.

    Example:

        \b
        tdbctl info --json
    """
    from tdbctl.errors import ConnectFailed
    from tdbctl.info import gather, whereabouts

    out = Output(json)
    try:
        report = gather(settings())
    except ConnectFailed:
        if not out.json:  # where it is pointed first: the on-call's first question (--json: the error alone)
            known = whereabouts(settings())
            out.fields("tdbctl info", [("database", known["url"]), ("from", known["url_source"]),
                                       ("dialect", known["dialect"]), ("server", "cannot connect (below)"),
                                       ("head", known["head"])])
        raise
    if out.json:
        out.data(report)
        return
    pending = report["pending"]
    out.fields(
        "tdbctl info",
        [
            ("database", report["url"]),
            ("from", report["url_source"]),
            ("dialect", report["dialect"]),
            *([("direct", f"{report['direct_url']} (from {report['direct_url_source']})")] if report["direct_url"] else []),
            *([("pooler", f"detected: {report['pooler']}" + ("" if report["direct_url"] else
                          "; reindex, cleanup --vacuum and backup need TDB_DIRECT_URL"))] if report["pooler"] else []),
            ("server", report["server_version"] or "(database not created yet: run tdbctl migrate)"),
            ("revision", (report["current"] or "none") + (" (baselined: recorded by tdbctl migrate baseline)"
                                                          if report.get("baselined") else "")),
            ("head", report["head"]),
            ("pending", ", ".join(pending) if pending else "none (up to date)"),
        ],
    )
    if report["extensions"]:
        out.table(
            "Extensions",
            ["extension", "installed", "available"],
            [(n, e["installed"] or "missing", "yes" if e["available"] else "no") for n, e in report["extensions"].items()],
        )
    out.table(
        "Domains",
        ["schema", "tables", "expected", "partitions", "installed"],
        [(s, d["tables"], d["expected"], d["partitions"] or "", "yes" if d["installed"] else "no")
         for s, d in report["domains"].items()],
    )
    cluster = report.get("cluster")
    if cluster:
        placed = cluster["placed"]
        out.table("Cluster (Citus)", ["node", "role", "state"],
                  [(n["node"], n["role"], "active" if n["active"] else "INACTIVE") for n in cluster["nodes"]])
        out.line(f"tables: {placed.get('distributed', 0)} distributed, {placed.get('reference', 0)} reference, "
                 f"{placed.get('local', 0) + placed.get('plain', 0)} on the coordinator; "
                 + (f"{len(cluster['misplaced'])} not as declared (`tdbctl migrate` places them)"
                    if cluster["misplaced"] else "as declared"))
    if report["other_schemas"]:
        out.table("Other schemas (not tdbctl's)", ["schema", "tables"], list(report["other_schemas"].items()))
    if report["not_on_this_dialect"]:
        out.table(
            f"Not created on {report['dialect']}",
            ["kind", "name", "why"],
            [(o["kind"], o["name"], o["reason"]) for o in report["not_on_this_dialect"]],
        )


def register(root: typer.Typer) -> None:
    root.command("info")(info)
