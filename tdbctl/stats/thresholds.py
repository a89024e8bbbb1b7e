"""The limits a finding is judged against: defaults here, overridable in tdbctl.toml.

    [stats.thresholds]
    long_query_warning_s = 30
    dead_tuple_ratio_critical = 0.5

README's "Stats thresholds" table documents every key; a key not listed here is refused, so a
typo cannot silently leave a default in force.
"""

from __future__ import annotations

from dataclasses import dataclass

from tdbctl.errors import ConfigError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Threshold:
    key: str
    default: float
    meaning: str


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("long_query_warning_s", 60, "an active query running longer than this (seconds)"),
    Threshold("long_query_critical_s", 600, "... critical"),
    Threshold("idle_in_transaction_warning_s", 60, "a session idle inside an open transaction this long (seconds)"),
    Threshold("idle_in_transaction_critical_s", 600, "... critical"),
    Threshold("lock_wait_warning_s", 10, "a session waiting this long on a lock another session holds (seconds)"),
    Threshold("lock_wait_critical_s", 120, "... critical"),
    Threshold("connections_warning", 0.80, "connections in use, as a fraction of max_connections"),
    Threshold("connections_critical", 0.95, "... critical"),
    Threshold("cache_hit_warning", 0.95, "buffer cache hit ratio below this"),
    Threshold("cache_hit_critical", 0.90, "... critical"),
    Threshold("cache_hit_min_blocks", 100_000, "judge the hit ratio only after this many block reads + hits"),
    # check_postgres's txn_wraparound defaults; autovacuum should have frozen long before.
    Threshold("xid_age_warning", 1_300_000_000, "age(datfrozenxid) of the oldest database (transactions)"),
    Threshold("xid_age_critical", 1_400_000_000, "... critical (the server stops at about 2.1 billion)"),
    Threshold("replication_lag_warning_s", 30, "a replica's replay lag (seconds)"),
    Threshold("replication_lag_critical_s", 300, "... critical"),
    Threshold("dead_tuple_ratio_warning", 0.20, "dead / (live + dead) tuples of a table"),
    Threshold("dead_tuple_ratio_critical", 0.50, "... critical"),
    Threshold("dead_tuples_min", 1000, "tables with fewer dead tuples are never flagged"),
    Threshold("index_bloat_warning", 0.50, "estimated bloat of a btree index, as a fraction of its size; "
              "also what `reindex --bloated` rebuilds"),
    Threshold("index_bloat_critical", 0.80, "... critical"),
    Threshold("index_bloat_min_bytes", 10 * MIB, "smaller indexes are never flagged as bloated"),
    Threshold("unused_index_min_bytes", 1 * MIB, "smaller never-scanned indexes are not reported (info)"),
    Threshold("node_skew_warning", 1.5, "Citus: the heaviest worker's distributed rows, as a multiple of the "
              "workers' mean"),
    Threshold("node_skew_critical", 3.0, "... critical"),
    Threshold("node_skew_min_rows", 100_000, "Citus: clusters with fewer distributed rows are never flagged"),
    Threshold("freelist_ratio_warning", 0.25, "SQLite: free pages / pages of a domain file"),
    Threshold("freelist_min_pages", 1000, "SQLite: files with fewer free pages are never flagged"),
)

DEFAULTS = {t.key: t.default for t in THRESHOLDS}


def load(overrides: dict | None = None) -> dict[str, float]:
    """Defaults, with tdbctl.toml's [stats.thresholds] on top (checked: known keys, numbers)."""
    values = dict(DEFAULTS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULTS:
            raise ConfigError(
                f"tdbctl.toml [stats.thresholds]: unknown key {key!r}; known: {', '.join(sorted(DEFAULTS))}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"tdbctl.toml [stats.thresholds]: {key} must be a non-negative number, not {value!r}")
        values[key] = value
    return values


def from_settings(settings) -> dict[str, float]:
    section = settings.section("stats").get("thresholds", {})
    if not isinstance(section, dict):
        raise ConfigError("tdbctl.toml: [stats.thresholds] must be a table")
    return load(section)
