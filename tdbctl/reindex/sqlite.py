"""SQLite: REINDEX each index, then ANALYZE its table; each in a short transaction of its own.

No concurrent variant, no leftovers, no bloat estimate (free pages belong to the file: VACUUM).
"""

from __future__ import annotations

import time

from tdbctl.reindex import Plan, Selection, Target
from tdbctl.reindex.selection import scope


def _q(*names: str) -> str:
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


class SqliteReindex:
    def __init__(self, engine, options, thresholds):
        self.engine = engine
        self.options = options
        self.thresholds = thresholds

    def plan(self, selection: Selection) -> Plan:
        from tdbctl.schema import ALL_SCHEMAS
        from tdbctl.stats.sqlite import SqliteCollector

        with self.engine.connect() as conn:
            indexes = SqliteCollector(conn, ALL_SCHEMAS, self.thresholds).indexes()
        the_plan = Plan("sqlite")
        in_scope, _ = scope(indexes, selection, ALL_SCHEMAS)
        if selection.bloated:
            the_plan.warnings.append("SQLite keeps no index bloat estimate: --bloated selects nothing "
                                     "(free pages belong to the file; VACUUM returns them)")
            in_scope = []
        if self.options.plain or self.options.retune_ivfflat:
            the_plan.warnings.append("SQLite has only plain REINDEX and no vector indexes: "
                                     "--plain and --retune-ivfflat change nothing here")
        the_plan.targets = [Target(i["schema"], i["table"], i["index"], i["method"], i["bytes"], True, "selected",
                                   False) for i in in_scope]
        return the_plan

    def execute(self, plan: Plan, progress) -> dict:
        result = {"dropped": [], "rebuilt": [], "analyzed": [], "notices": []}
        for number, target in enumerate(plan.targets, 1):
            progress("start", target=target, number=number, total=len(plan.targets))
            statement = f"REINDEX {_q(target.schema, target.index)}"
            started = time.monotonic()
            with self.engine.begin() as conn:
                conn.exec_driver_sql(statement)
            entry = {"schema": target.schema, "table": target.table, "index": target.index, "statement": statement,
                     "bytes_before": target.bytes, "bytes_after": None, "seconds": round(time.monotonic() - started, 3),
                     "lists": None, "error": None, "dropped_after_failure": []}
            result["rebuilt"].append(entry)
            progress("done", target=target, number=number, total=len(plan.targets), entry=entry)
        for schema, table in sorted({(t.schema, t.table) for t in plan.targets}):
            progress("analyze", table=f"{schema}.{table}")
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"ANALYZE {_q(schema, table)}")
            result["analyzed"].append(f"{schema}.{table}")
        return result
