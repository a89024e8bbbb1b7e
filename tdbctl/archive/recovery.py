"""Batches an earlier run left unfinished: finish what it committed, discard what it did not.

Recovery runs under the archive's claim, so the run that left a batch is over: dead, or it lost
its claim, and then any batch it had in flight committed or rolled back before this run could
take the claim (tdbctl/ops/claims.py). Even so nothing is taken on trust:

- each state change is a compare-and-set on the batch's catalog state;
- before a batch's files are removed, the live tables are asked for its rows: when any root row
  the files hold has left the live table, the delete committed, and the batch is kept and
  completed as 'archived' from its manifest, never removed;
- files that cannot be removed leave the batch 'leftover' (its rows are live, its files still on
  disk): every later run tries again, reports it and goes on; `tdbctl archive discard N` clears it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from tdbctl.archive import catalog
from tdbctl.archive.files import MANIFEST, ArchiveDamaged, read_manifest, remove_batch_dir
from tdbctl.errors import TdbError, UsageError

Log = Callable[[str], None]
CHUNK = 1000


def recover(conn, claim, metadata, log: Log) -> list[dict]:
    recovered = []
    for batch in catalog.unfinished(conn, leftover=True):
        conn.rollback()
        if batch.status != "leftover":
            done = _complete_if_committed(conn, claim, metadata, batch)
            if done is not None:
                log(f"batch {batch.id} ({batch.policy}): {done['rows']} of its rows had left the live tables, so "
                    "its delete committed: kept and completed as archived")
                recovered.append({"batch": batch.id, "policy": batch.policy, "was": batch.status, "now": "archived"})
                continue
            if not _move(conn, claim, batch.id, batch.status, "leftover",
                         "unfinished: its run ended before the delete committed, so its rows are still live"):
                continue
        reason = _remove(batch.directory)
        if reason is None:
            _move(conn, claim, batch.id, "leftover", "discarded", None)
            log(f"batch {batch.id} ({batch.policy}) was unfinished: discarded, its rows are still live")
            recovered.append({"batch": batch.id, "policy": batch.policy, "was": batch.status, "now": "discarded"})
        else:
            log(f"batch {batch.id} ({batch.policy}): its rows are still live, but its files cannot be removed "
                f"({reason}); skipped: remove {batch.directory} by hand or fix its permissions, then run "
                f"`tdbctl archive discard {batch.id}`")
            recovered.append({"batch": batch.id, "policy": batch.policy, "was": batch.status, "now": "leftover",
                              "problem": reason})
    conn.rollback()
    return recovered


def discard(conn, claim, batch_id: int) -> catalog.Batch:
    """`tdbctl archive discard N`: remove a leftover batch's files and mark it discarded."""
    batch = catalog.get(conn, batch_id)
    conn.rollback()
    if batch.status != "leftover":
        raise UsageError(f"batch {batch.id} is {batch.status}: only a leftover batch (its rows live, its files "
                         "still on disk) can be discarded")
    reason = _remove(batch.directory)
    if reason is not None:
        raise TdbError(f"batch {batch.id}: cannot remove {batch.directory}: {reason}; nothing changed")
    _move(conn, claim, batch.id, "leftover", "discarded", None)
    return catalog.get(conn, batch_id)


def _move(conn, claim, batch_id: int, was: str, now: str, note: str | None) -> bool:
    with conn.begin():
        claim.check(conn)
        return catalog.move(conn, batch_id, was, now, note=note)


def _remove(directory: Path | None) -> str | None:
    """Why the batch's files could not be removed; None when they are gone."""
    if directory is None:
        return None
    try:
        remove_batch_dir(directory)
    except OSError as exc:
        return f"{exc.strerror or exc}: {exc.filename or directory}"
    return None if not directory.exists() else f"{directory} still holds files tdbctl did not write"


def _complete_if_committed(conn, claim, metadata, batch: catalog.Batch) -> dict | None:
    """Complete the batch when its root rows left the live table; None when they are all there
    (or it never got as far as a manifest, which is written before its delete)."""
    from tdbctl.archive.restore import _root_keys, _typed

    directory = batch.directory
    if directory is None or not (directory / MANIFEST).exists():
        return None
    try:
        manifest, manifest_sha = read_manifest(directory)
        keys = _root_keys(directory, manifest)
    except (ArchiveDamaged, OSError, StopIteration, KeyError):
        return None  # never completed: a manifest is whole before the delete runs
    table = metadata.tables[manifest["source_table"]]
    key = table.c[manifest["key"]["column"]]
    typed = _typed(key, keys)
    live = sum(conn.execute(sa.select(sa.func.count()).select_from(table).where(key.in_(typed[i:i + CHUNK])))
               .scalar() for i in range(0, len(typed), CHUNK))
    conn.rollback()
    if live == len(keys):
        return None
    rows = manifest["rows"]
    size = sum(f.get("bytes", 0) for f in manifest["files"]) + (directory / MANIFEST).stat().st_size
    with conn.begin():
        claim.check(conn)
        if not catalog.move(conn, batch.id, batch.status, "archived"):
            return None
        note = f"completed by recovery: {len(keys) - live} of its {len(keys)} rows had left {table.fullname}"
        catalog.mark_archived(
            conn, batch.id, row_count=rows[manifest["source_table"]],
            child_rows={t: n for t, n in rows.items() if t != manifest["source_table"]},
            key_min=manifest["key"]["min"], key_max=manifest["key"]["max"],
            time_min=_parsed(manifest["time"]["min"]), time_max=_parsed(manifest["time"]["max"]),
            sha256=manifest_sha, size=size, manifest={**manifest, "note": note})
    return {"rows": len(keys) - live}


def _parsed(value: str | None):
    from datetime import datetime

    return datetime.fromisoformat(value) if value else None
