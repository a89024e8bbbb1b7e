"""The ``[backup.pgbackrest]`` settings of tdbctl.toml, checked once, with their defaults.

Every key is optional but ``repo`` where pgBackRest's own default (/var/lib/pgbackrest) is not
wanted; a key not listed here is refused, so a typo never leaves a default silently in force.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from tdbctl.errors import ConfigError

ENGINES = ("pg_dump", "pgbackrest")
COMPRESSION = ("gz", "lz4", "zst", "bz2", "none")


@dataclass(frozen=True)
class Options:
    repo: str = "/var/lib/pgbackrest"
    stanza: str | None = None
    """Default: the database's name."""
    config: str | None = None
    """Where tdbctl writes pgBackRest's configuration; default: ``<repo>/tdbctl-<stanza>.conf``."""
    data_dir: str | None = None
    """The cluster's data directory; default: the server's data_directory setting."""
    os_user: str | None = None
    """The system user pgBackRest runs as; default: the data directory's owner."""
    bin: str | None = None
    """The pgbackrest program; default: found on PATH."""
    pg_bin: str | None = None
    """Directory of the server's pg_ctl, to start a restored copy; default: searched by major version."""
    retention_full: int = 2
    retention_diff: int = 7
    compress: str = "lz4"
    process_max: int = 2
    archive_timeout: int = 60
    """Seconds: a quiet server still archives its WAL this often (archive_timeout), well inside the RPO."""
    rpo_minutes: float = 15
    rto_minutes: float = 120
    full_every_days: float = 7
    drill_every_days: float = 31

    @property
    def rpo_seconds(self) -> float:
        return self.rpo_minutes * 60


def engine_of(settings, override: str | None = None) -> str:
    engine = override or settings.section("backup").get("engine") or "pg_dump"
    if engine not in ENGINES:
        raise ConfigError(f"backup engine {engine!r}: choose one of {', '.join(ENGINES)}")
    return engine


def options_of(settings) -> Options:
    raw = settings.section("backup").get("pgbackrest", {})
    if not isinstance(raw, dict):
        raise ConfigError("tdbctl.toml: [backup.pgbackrest] must be a table")
    known = {f.name: f for f in fields(Options)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"tdbctl.toml [backup.pgbackrest]: unknown key {key!r}; known: {', '.join(known)}")
        default = known[key].default
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < (1 if key.startswith(
                    ("retention", "process")) else 0):
                raise ConfigError(f"tdbctl.toml [backup.pgbackrest]: {key} must be a positive number, not {value!r}")
            if isinstance(default, int) and not isinstance(value, int):
                raise ConfigError(f"tdbctl.toml [backup.pgbackrest]: {key} must be a whole number, not {value!r}")
        elif not isinstance(value, str) or not value.strip():
            raise ConfigError(f"tdbctl.toml [backup.pgbackrest]: {key} must be a non-empty string")
        values[key] = value
    options = Options(**values)
    if options.compress not in COMPRESSION:
        raise ConfigError(f"tdbctl.toml [backup.pgbackrest]: compress = {options.compress!r}; "
                          f"choose one of {', '.join(COMPRESSION)}")
    if not Path(options.repo).is_absolute():
        raise ConfigError(f"tdbctl.toml [backup.pgbackrest]: repo = {options.repo!r} must be an absolute path "
                          "(the server's archive_command runs it from the data directory)")
    if options.stanza is not None and not all(c.isalnum() or c in "-_" for c in options.stanza):
        raise ConfigError(f"tdbctl.toml [backup.pgbackrest]: stanza = {options.stanza!r}: "
                          "letters, digits, '-' and '_' only")
    return options
