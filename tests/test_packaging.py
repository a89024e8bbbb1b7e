"""`pip install .` must give a working tdbctl: migrations and seed files ship inside the wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_carries_migrations_and_seeds(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("tdbctl-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    scripts = sorted(p.name for p in (REPO / "migrations" / "versions").glob("*.py"))
    assert scripts and {f"tdbctl/_migrations/versions/{s}" for s in scripts} <= names
    assert "tdbctl/_migrations/env.py" in names
    seeds = [p.relative_to(REPO / "seeds").as_posix() for p in (REPO / "seeds").rglob("*") if p.is_file()]
    assert {f"tdbctl/_seeds/{s}" for s in seeds} <= names
