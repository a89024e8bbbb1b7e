"""`tdbctl reindex`: rebuild indexes without taking the tables away from the application.

``plan(settings, selection)`` says what would be rebuilt and which leftovers of an interrupted
REINDEX CONCURRENTLY would be dropped (that is all `--dry-run` does); ``run(...)`` does it under
the tdbctl lock, recorded in the run history: leftovers dropped first, then each index rebuilt
(REINDEX CONCURRENTLY on PostgreSQL 12+, plain REINDEX on request), then ANALYZE of the tables.
What differs per dialect lives in postgresql.py and sqlite.py, behind one interface.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from tdbctl.errors import UsageError

DEFAULT_MAINTENANCE_WORK_MEM = "512MB"
DEFAULT_LOCK_TIMEOUT = 10.0


@dataclass
class Selection:
    tables: tuple[str, ...] = ()
    indexes: tuple[str, ...] = ()
    schemas: tuple[str, ...] = ()
    bloated: bool = False
    everything: bool = False

    def validate(self) -> None:
        if not (self.tables or self.indexes or self.schemas or self.bloated or self.everything):
            raise UsageError("say what to rebuild: --table, --index, --schema, --bloated or --all")
        if self.everything and (self.tables or self.indexes or self.schemas):
            raise UsageError("--all rebuilds every index; it does not combine with --table, --index or --schema")

    @property
    def scoped(self) -> bool:
        return bool(self.tables or self.indexes or self.schemas)


@dataclass
class Target:
    schema: str
    table: str
    index: str
    method: str
    bytes: int | None
    valid: bool
    reason: str
    concurrently: bool
    lists: tuple[int, int] | None = None
    """ivfflat only, with --retune-ivfflat: (lists now, lists after)."""

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.index}"


@dataclass
class Leftover:
    schema: str
    table: str
    index: str
    bytes: int | None

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.index}"


@dataclass
class Plan:
    dialect: str
    targets: list[Target] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[str]:
        return sorted({f"{t.schema}.{t.table}" for t in self.targets})

    def as_dict(self) -> dict:
        return {"dialect": self.dialect, "targets": [asdict(t) for t in self.targets],
                "leftovers": [asdict(x) for x in self.leftovers], "tables_to_analyze": self.tables,
                "warnings": self.warnings}


@dataclass
class Options:
    plain: bool = False
    retune_ivfflat: bool = False
    maintenance_work_mem: str = DEFAULT_MAINTENANCE_WORK_MEM
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    lock_wait: float = 0.0


def options_from_settings(settings, **given) -> Options:
    """tdbctl.toml [reindex] maintenance_work_mem / lock_timeout, under what the command line says."""
    section = settings.section("reindex")
    values = {k: section[k] for k in ("maintenance_work_mem", "lock_timeout") if k in section}
    values.update({k: v for k, v in given.items() if v is not None})
    return Options(**values)


WORK = "tdbctl reindex (REINDEX CONCURRENTLY, outside a transaction, with session settings)"


def plan(settings, selection: Selection, options: Options | None = None) -> Plan:
    from tdbctl.runtime import open_direct
    from tdbctl.stats.thresholds import from_settings

    selection.validate()
    options = options or Options()
    with open_direct(settings, WORK) as direct:
        executor = direct.dialect.implementation("reindex")(direct.engine, options, from_settings(settings))
        return executor.plan(selection)


def run(settings, selection: Selection, options: Options | None = None,
        progress: Callable[..., None] | None = None) -> dict:
    """Plan again under the lock (what --dry-run showed may have changed), then do it."""
    from tdbctl.ops.claims import claimed
    from tdbctl.ops.runs import mark_killed, recorded_run
    from tdbctl.runtime import HEAD, open_database, open_direct
    from tdbctl.stats.thresholds import from_settings

    selection.validate()
    options = options or Options()
    progress = progress or (lambda *a, **k: None)
    # The claim and the run record through the configured URL (a pooler is fine there); the
    # rebuilds, outside any transaction and with session settings, on a direct connection.
    with open_database(settings, HEAD) as db, open_direct(settings, WORK) as direct:
        with claimed(db, "reindex", options.lock_wait):
            mark_killed(db.engine, "reindex")
            executor = direct.dialect.implementation("reindex")(direct.engine, options, from_settings(settings))
            the_plan = executor.plan(selection)
            for warning in the_plan.warnings:
                progress("warning", message=warning)
            recorded_options = {**asdict(selection), **asdict(options)}
            with recorded_run(db.engine, "reindex", recorded_options) as record:
                result = executor.execute(the_plan, progress)
                for entry in result["rebuilt"]:
                    if entry["error"] is None:
                        record.add_rows(f"{entry['schema']}.{entry['table']}", 1)
                failed = [e for e in result["rebuilt"] if e["error"]]
                record.message = (f"rebuilt {len(result['rebuilt']) - len(failed)} indexes, "
                                  f"dropped {len(result['dropped'])} leftovers, {len(failed)} failed")
                if failed:
                    record.status = "failed"
                result["run_id"] = record.id
    result["plan"] = the_plan.as_dict()
    return result
