"""The migrations' head read from the revision files' own assignments, without importing Alembic.

Backup and restore record the head while pg_dump or pg_restore runs; on a small machine the
Alembic and SQLAlchemy imports a ScriptDirectory needs (about half a CPU-second) would slow the
dump they run beside. The files declare ``revision = "..."`` and ``down_revision = ...`` as
literals (Alembic's template), which is all a head needs. ``tdbctl migrate`` keeps Alembic's own
graph; a test holds the two to the same answer.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tdbctl.errors import DatabaseError


def revisions(versions: Path) -> dict[str, tuple[str, ...]]:
    """Each revision and the revisions it follows."""
    found: dict[str, tuple[str, ...]] = {}
    for path in sorted(versions.glob("*.py")):
        assigned = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value is not None:
                assigned[target.id] = ast.literal_eval(node.value)
        if "revision" in assigned:
            down = assigned.get("down_revision")
            found[assigned["revision"]] = tuple(down) if isinstance(down, (tuple, list)) else ((down,) if down else ())
    return found


def single_head(versions: Path) -> str:
    graph = revisions(versions)
    followed = {parent for parents in graph.values() for parent in parents}
    heads = sorted(set(graph) - followed)
    if len(heads) != 1:
        raise DatabaseError(
            f"the migrations have {len(heads)} heads ({', '.join(heads)}): "
            "merge them into one (alembic merge) before migrating"
        )
    return heads[0]
