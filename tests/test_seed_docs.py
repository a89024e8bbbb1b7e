"""The tests' copies of the seed documents (tests/seed_docs) are the seeds as they stand."""

from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent / "seed_docs"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "seed-docs"


def recorded() -> dict[str, str]:
    lines = (HERE / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def test_the_copies_are_what_was_recorded():
    sums = recorded()
    assert sorted(sums) == sorted(p.name for p in HERE.glob("*.txt")) and len(sums) == 5
    for name, digest in sums.items():
        assert hashlib.sha256((HERE / name).read_bytes()).hexdigest() == digest, name


def test_the_copies_match_the_shared_seeds_where_they_are_beside_the_checkout():
    originals = sorted(SHARED.glob("*.txt")) if SHARED.is_dir() else []
    for original in originals:  # none in a plain clone: then the recorded sums above are the check
        assert (HERE / original.name).read_bytes() == original.read_bytes(), (
            f"{original.name} changed in shared/seed-docs: copy it to tests/seed_docs and update SHA256SUMS")
    assert not originals or sorted(p.name for p in originals) == sorted(recorded())
