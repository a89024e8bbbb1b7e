"""Check batches against their manifests and the catalog; put a batch's rows back.

Restore is one transaction: parents before children, each row inserted unless its key is already
live (so a second restore, or one after a crash, adds nothing twice), SET NULL links set back
where they are still NULL, archive-table rows moved back, the batch marked 'restored'. It refuses
a batch whose files do not verify, and stops (changing nothing) if a row cannot go back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from tdbctl.archive import catalog
from tdbctl.archive.codec import parse_line
from tdbctl.archive.files import MANIFEST, ArchiveDamaged, check_file, chunks, read_manifest
from tdbctl.archive.inplace import count_marked, restore_in_place
from tdbctl.config import Settings
from tdbctl.errors import TdbError, UsageError

CHUNK = 1000


@dataclass
class VerifyResult:
    batch: int
    policy: str
    status: str
    destination: str
    files: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def document(self) -> dict:
        return {**vars(self), "ok": self.ok}


@dataclass
class RestoreReport:
    batch: int
    policy: str
    status: str
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)
    """Rows per table in the batch."""
    inserted: dict[str, int] = field(default_factory=dict)
    """Rows this restore put back (the others were live already)."""
    relinked: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None
    note: str | None = None

    def document(self) -> dict:
        return dict(vars(self))


def _metadata():
    from tdbctl.schema import metadata

    return metadata


def _root_keys(directory: Path, manifest: dict) -> list[str]:
    root = manifest["source_table"]
    entry = next(f for f in manifest["files"] if f["table"] == root and f["role"] == "rows")
    key = manifest["key"]["column"]
    buffered = b"".join(chunks(directory / entry["name"]))
    return [parse_line(line)[key] for line in buffered.splitlines() if line]


def check_batch(conn, batch: catalog.Batch, metadata, *, tables: bool = True) -> VerifyResult:
    """Files against manifest and catalog; with ``tables``, the archive table holds the batch too."""
    result = VerifyResult(batch.id, batch.policy, batch.status, batch.destination)
    if batch.in_place:
        marked = count_marked(conn, batch, metadata)
        result.rows = marked
        if batch.status == "archived" and marked != batch.row_count:
            result.problems.append(f"{marked} rows of {batch.source_table} carry this batch's mark and status, "
                                   f"the catalog says {batch.row_count}")
        return result
    directory = batch.directory
    try:
        manifest, manifest_sha = read_manifest(directory)
    except ArchiveDamaged as exc:
        result.problems.append(exc.message)
        return result
    if manifest_sha != batch.sha256:
        result.problems.append(f"{directory}/manifest.json: sha256 {manifest_sha} differs from the catalog's {batch.sha256}")
    if manifest.get("batch") != batch.id:
        result.problems.append(f"{directory}: the manifest is batch {manifest.get('batch')}, not {batch.id}")
    for entry in manifest["files"]:
        result.files += 1
        try:
            check_file(directory, entry)
        except ArchiveDamaged as exc:
            result.problems.append(exc.message)
    listed = {entry["name"] for entry in manifest["files"]} | {MANIFEST}
    for path in sorted(directory.iterdir()):
        if path.name not in listed:
            result.problems.append(f"{path}: not in the manifest (a file the batch did not write)")
    rows = manifest.get("rows", {})
    result.rows = sum(rows.values())
    if rows.get(batch.source_table) != batch.row_count:
        result.problems.append(f"the manifest has {rows.get(batch.source_table)} rows of {batch.source_table}, "
                               f"the catalog {batch.row_count}")
    children = {t: n for t, n in rows.items() if t != batch.source_table}
    if children != (batch.child_rows or {}):
        result.problems.append("the manifest's child row counts differ from the catalog's")
    if tables and manifest.get("archive_table") and batch.status == "archived" and result.ok:
        archive = metadata.tables[manifest["archive_table"]]
        key = archive.c[manifest["key"]["column"]]
        keys = _typed(key, _root_keys(directory, manifest))
        present = sum(conn.execute(sa.select(sa.func.count()).select_from(archive).where(
            key.in_(keys[i:i + CHUNK]))).scalar() for i in range(0, len(keys), CHUNK))
        if present != len(keys):
            result.problems.append(f"{archive.fullname} holds {present} of the batch's {len(keys)} rows")
    conn.rollback()
    return result


def _typed(column: sa.Column, values: list) -> list:
    from tdbctl.archive.codec import DECODERS, kind_of

    decode = DECODERS[kind_of(column, "sqlite")]
    return [decode(v) for v in values]


def verify(settings: Settings, batch_id: int | None = None) -> list[VerifyResult]:
    """Every archived batch (or one, whatever its status) checked against manifest and catalog."""
    from tdbctl.runtime import TOOL, open_database

    metadata = _metadata()
    with open_database(settings, TOOL) as db, db.engine.connect() as conn:
        if batch_id is not None:
            batches = [catalog.get(conn, batch_id)]
            if batches[0].status in catalog.UNFINISHED + ("discarded",):
                raise UsageError(f"batch {batch_id} is {batches[0].status}: it has no archive to verify")
        else:
            batches = list(reversed(catalog.listing(conn, status="archived")))
        return [check_batch(conn, batch, metadata) for batch in batches]


def restore(settings: Settings, batch_id: int, *, dry_run: bool = False, lock_wait: float = 0.0,
            lock_timeout: float = 10.0) -> RestoreReport:
    from tdbctl.archive.commands import RESTORE_COMMAND
    from tdbctl.archive.rowio import rowio_for
    from tdbctl.ops.claims import claimed
    from tdbctl.ops.runs import mark_killed, recorded_run
    from tdbctl.runtime import HEAD, open_database

    metadata = _metadata()
    with open_database(settings, HEAD) as db:
        with claimed(db, RESTORE_COMMAND, lock_wait) as claim, db.engine.connect() as conn:
            batch = catalog.get(conn, batch_id)
            conn.rollback()
            report = RestoreReport(batch.id, batch.policy, batch.status, dry_run)
            if batch.status == "restored":
                report.note = "already restored: nothing to do"
                return report
            if batch.status != "archived":
                raise UsageError(f"batch {batch.id} is {batch.status}: only an archived batch can be restored")
            manifest = None
            if not batch.in_place:
                # Roots missing from the archive table come back from the files: only they must be sound.
                checked = check_batch(conn, batch, metadata, tables=False)
                if not checked.ok:
                    raise ArchiveDamaged(f"batch {batch.id} does not verify, nothing restored: {checked.problems[0]}")
                manifest, _ = read_manifest(batch.directory)
                report.rows = dict(manifest["rows"])
            else:
                report.rows = {batch.source_table: batch.row_count or 0}
            if dry_run:
                return report
            mark_killed(db.engine, RESTORE_COMMAND)
            with recorded_run(db.engine, RESTORE_COMMAND, {"batch": batch.id}) as record:
                io = rowio_for(db.dialect)
                io.prepare(conn)
                conn.commit()
                with conn.begin():
                    db.dialect.set_lock_timeout(conn.exec_driver_sql, lock_timeout)
                    claim.check(conn)
                    if not catalog.move(conn, batch.id, "archived", "restored"):
                        raise UsageError(f"batch {batch.id} changed while it was being restored; run again")
                    if batch.in_place:
                        report.inserted = restore_in_place(conn, db.dialect, batch, metadata)
                    else:
                        _restore_files(conn, db.dialect, io, batch, manifest, metadata, report)
                for table, count in report.inserted.items():
                    record.add_rows(table, count)
                report.run_id = record.id
                report.status = "restored"
    return report


def _restore_files(conn, dialect, io, batch, manifest, metadata, report: RestoreReport) -> None:
    directory = batch.directory
    order = {t.fullname: i for i, t in enumerate(metadata.sorted_tables)}
    entries = manifest["files"]
    for entry in entries:
        table = metadata.tables.get(entry["table"])
        if table is None:
            raise TdbError(f"{entry['table']} no longer exists: restore with schema revision {manifest['schema_revision']}")
        gone = {c["name"] for c in entry["columns"]} - set(table.c.keys())
        if gone:
            raise TdbError(f"{entry['table']} no longer has column(s) {', '.join(sorted(gone))}: restore with "
                           f"schema revision {manifest['schema_revision']}")
    rows = sorted((e for e in entries if e["role"] == "rows"), key=lambda e: order[e["table"]])
    links = [e for e in entries if e["role"] == "links"]
    archive = metadata.tables[manifest["archive_table"]] if manifest.get("archive_table") else None
    touched = [metadata.tables[e["table"]] for e in entries] + ([archive] if archive is not None else [])
    dialect.reserve_for_write(conn, [*touched, catalog.batches])
    root = metadata.tables[manifest["source_table"]]
    for entry in rows:
        table = metadata.tables[entry["table"]]
        io.load_lines(conn, table, chunks(directory / entry["name"]))
        inserted = 0
        if table is root and archive is not None:
            inserted += _from_archive_table(conn, io, root, archive, io.staged_keys(conn, root))
        inserted += io.insert_staged(conn, table)
        missing = io.missing_staged(conn, table)
        if missing:
            raise TdbError(f"{table.fullname}: {missing} of the batch's rows could not be put back (another row "
                           "holds one of their unique values, or a parent row is gone); nothing was restored")
        report.inserted[table.fullname] = inserted
    for entry in links:
        table = metadata.tables[entry["table"]]
        refers = entry["restores"]
        link = _link(metadata, table, refers)
        io.load_lines(conn, table, chunks(directory / entry["name"]))
        report.relinked[table.fullname] = io.relink_staged(conn, link)


def _from_archive_table(conn, io, root: sa.Table, archive: sa.Table, keys: list) -> int:
    """Roots come back from the archive table where they still are (edits there win), then go from it."""
    key = root.primary_key.columns.values()[0]
    names = [c.name for c in root.columns]
    inserted = 0
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        source = sa.select(*(archive.c[n] for n in names)).where(archive.c[key.name].in_(chunk))
        live = sa.select(sa.func.count()).select_from(root).where(key.in_(chunk))
        present = conn.execute(live).scalar()
        conn.execute(io.insert_ignoring(root).from_select(names, source))
        inserted += conn.execute(live).scalar() - present  # INSERT ... SELECT has no rowcount on psycopg
        conn.execute(sa.delete(archive).where(archive.c[key.name].in_(chunk)))
    return inserted


def _link(metadata, table: sa.Table, refers: dict):
    from tdbctl.ops.cascade import links_of

    for link in links_of(metadata):
        if link.child is table and [c.name for c in link.columns] == refers["columns"] \
                and link.parent.fullname == refers["table"]:
            return link
    raise TdbError(f"{table.fullname}: the foreign key {json.dumps(refers)} no longer exists")
