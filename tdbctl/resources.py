"""Find the migrations and seed files: beside the package in a checkout, inside it in a wheel."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _locate(top_level: str, packaged: str) -> Path:
    for candidate in (PACKAGE_DIR / packaged, PACKAGE_DIR.parent / top_level):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tdbctl is installed without its {top_level}/ directory")


def migrations_dir() -> Path:
    """TDB_MIGRATIONS_DIR points at another copy (for developing and testing migrations)."""
    override = os.environ.get("TDB_MIGRATIONS_DIR")
    return Path(override) if override else _locate("migrations", "_migrations")


def seeds_dir() -> Path:
    return _locate("seeds", "_seeds")
