"""The tests' copies of the seed documents (tests/seed_docs) are the ones recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent / "seed_docs"


def test_the_copies_are_what_was_recorded():
    lines = (HERE / "SHA256SUMS").read_text().splitlines()
    sums = {name: digest for digest, name in (line.split("  ", 1) for line in lines)}
    assert sorted(sums) == sorted(p.name for p in HERE.glob("*.txt")) and len(sums) == 5
    for name, digest in sums.items():
        assert hashlib.sha256((HERE / name).read_bytes()).hexdigest() == digest, name
