"""Where the SQLite default keeps each domain: one attached database file per schema."""

from __future__ import annotations

from pathlib import Path

MEMORY = ":memory:"


def domain_file(main_file: str | None, schema: str) -> str:
    """tdbctl.db -> tdbctl.dispatch.db, beside the main file; in-memory stays in memory."""
    if not main_file or main_file == MEMORY:
        return MEMORY
    main = Path(main_file)
    return str(main.with_name(f"{main.stem}.{schema}{main.suffix}"))


def all_files(main_file: str, schemas) -> list[str]:
    return [main_file, *(domain_file(main_file, s) for s in schemas)]
