"""`tdbctl import`: copy a platform database built from the seeds into tdbctl's managed schemas.

The source is only read (a read-only transaction on PostgreSQL, a read-only open on SQLite).
Tables go parents first, each in batches in its key order; each batch is one transaction on
the target that writes the rows (a row already there is left as it is) and the table's progress
in tdbctl.imports, so a killed import continues after its last batch and never writes a row
twice. Each table ends with a verification: every source row read again, converted, and
compared with the row the target holds under its key, with a checksum of each side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tdbctl.config import Settings
from tdbctl.errors import CheckFailed, UsageError
from tdbctl.importing.layout import TableMap

COMMAND = "import"
ON_UNMAPPED = ("stop", "skip", "null")
DEFAULT_BATCH = 2000

ROW_TEXT_SETTINGS = ("SET LOCAL TimeZone = 'UTC'", "SET LOCAL DateStyle = 'ISO, YMD'",
                     "SET LOCAL IntervalStyle = 'postgres'", "SET LOCAL extra_float_digits = 1",
                     "SET LOCAL bytea_output = 'hex'")
"""A row's text is the same on two PostgreSQL servers under these (for this transaction only)."""


def _settle(conn) -> None:
    for statement in ROW_TEXT_SETTINGS:
        conn.exec_driver_sql(statement)


@dataclass
class ImportRequest:
    source: str
    dry_run: bool = False
    on_unmapped: str = "stop"
    batch_size: int = DEFAULT_BATCH
    lock_wait: float = 0.0

    def validate(self) -> None:
        if self.on_unmapped not in ON_UNMAPPED:
            raise UsageError(f"--on-unmapped {self.on_unmapped!r}: one of {', '.join(ON_UNMAPPED)}")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be at least 1")


@dataclass
class TableResult:
    source: str
    target: str
    rows_read: int = 0
    rows_written: int = 0
    rows_skipped: int = 0
    skipped: dict = field(default_factory=dict)
    """reason -> {"rows": n, "first_key": [...]}."""
    status: str = "copying"
    source_checksum: str | None = None
    target_checksum: str | None = None
    verified_rows: int = 0
    first_mismatch: list | None = None
    written_now: int = 0
    """Of rows_written (every run's), those this run wrote."""

    def document(self) -> dict:
        return dict(vars(self))


@dataclass
class ImportReport:
    source: str
    dry_run: bool
    tables: list[TableMap]
    results: list[TableResult] = field(default_factory=list)
    run_id: int | None = None

    @property
    def mismatched(self) -> list[TableResult]:
        return [r for r in self.results if r.status != "verified"]

    def document(self) -> dict:
        return {"source": self.source, "dry_run": self.dry_run, "run_id": self.run_id,
                "tables": [t.document() for t in self.tables], "results": [r.document() for r in self.results]}


class ImportStopped(CheckFailed):
    """A value the managed table cannot take, with --on-unmapped stop: the table stops there."""


def source_engine(request: ImportRequest):
    """The source, opened to read only; and its identity (the URL without its password)."""
    from pathlib import Path

    import sqlalchemy as sa

    from tdbctl.config import parse_url, supported

    url = parse_url(supported(request.source, "SOURCE"), "SOURCE")
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not path.is_file():
            raise UsageError(f"SOURCE: no SQLite file at {path}")
        engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=sa.pool.NullPool)
        return engine, f"sqlite:///{path}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool).execution_options(postgresql_readonly=True)
    return engine, _identity(url)


def _identity(url) -> str:
    """A database named by its URL without the password: how tdbctl.imports knows a source again."""
    return url._replace(password=None).render_as_string(hide_password=False).replace("+psycopg", "")


def run_import(settings: Settings, request: ImportRequest, progress: Callable[[TableResult], None] | None = None,
               ) -> ImportReport:
    from tdbctl.importing.layout import plan
    from tdbctl.ops.claims import claimed
    from tdbctl.ops.runs import mark_killed, recorded_run
    from tdbctl.runtime import HEAD, open_database, translate_errors
    from tdbctl.schema import metadata

    request.validate()
    source, identity = source_engine(request)
    try:
        with open_database(settings, HEAD) as db:
            target = _identity(db.settings.url)
            with translate_errors(type(settings)(request.source, "SOURCE")):
                maps = plan(source, metadata, db.domains, db.engine.dialect, same_database=identity == target)
                _count(source, maps)
            report = ImportReport(identity, request.dry_run, maps)
            if request.dry_run:
                return report
            with claimed(db, COMMAND, request.lock_wait) as claim:
                mark_killed(db.engine, COMMAND)
                options = {"source": identity, "on_unmapped": request.on_unmapped, "batch_size": request.batch_size}
                with recorded_run(db.engine, COMMAND, options) as run:
                    report.run_id = run.id
                    for table_map in [m for m in maps if m.copies]:
                        result = _copy(db, claim, source, identity, table_map, request, progress)
                        report.results.append(result)
                        run.add_rows(table_map.target, result.written_now)
                    _maintain_partitions(db, claim)
                    if report.mismatched:
                        run.status, run.message = "failed", _mismatch_line(report.mismatched[0])
            return report
    finally:
        source.dispose()


def _mismatch_line(result: TableResult) -> str:
    return (f"{result.source} -> {result.target}: {result.verified_rows:,} rows compared, the row with key "
            f"{result.first_mismatch} differs in the target")


def _count(source, maps: list[TableMap]) -> None:
    import sqlalchemy as sa

    with source.connect() as conn:
        for table_map in maps:
            schema, name = table_map.source.split(".", 1)
            table = sa.table(name, schema=schema)
            table_map.rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def _maintain_partitions(db, claim) -> None:
    """Rows older or newer than the partitions there are landed in DEFAULT: given their own."""
    if not db.dialect.partitioned:
        return
    from tdbctl.ops.durations import utcnow
    from tdbctl.partitions import maintain
    from tdbctl.schema import metadata

    maintain(db, metadata, utcnow(), claim=claim)


def _key_value(column, value):
    """A key read back from tdbctl.imports (JSON) as the source column's Python type."""
    import uuid
    from datetime import datetime

    import sqlalchemy as sa

    if value is None:
        return None
    if isinstance(column.type, sa.Uuid) and isinstance(value, str):
        return uuid.UUID(value) if getattr(column.type, "as_uuid", True) else value
    if isinstance(column.type, sa.DateTime) and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _json_key(values) -> list:
    from tdbctl.importing.values import canonical

    return [canonical(v) if not isinstance(v, (int, str)) else v for v in values]


def _progress_row(conn, identity: str, table_map: TableMap):
    from tdbctl.schema.bookkeeping import imports

    import sqlalchemy as sa

    return conn.execute(sa.select(imports).where(imports.c.source == identity,
                                                 imports.c.source_table == table_map.source)).mappings().first()


def _copy(db, claim, source, identity: str, table_map: TableMap, request: ImportRequest, progress) -> TableResult:
    import sqlalchemy as sa

    from tdbctl.importing.values import converter
    from tdbctl.schema import metadata
    from tdbctl.schema.bookkeeping import imports

    target = metadata.tables[table_map.target]
    schema, name = table_map.source.split(".", 1)
    source_table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=source)
    key = [source_table.c[k] for k in table_map.key]
    convert = {c.source: (c.target, converter(target.c[c.target], db.engine.dialect, c.values))
               for c in table_map.columns}
    wanted = [source_table.c[c.source] for c in table_map.columns]
    wanted += [k for k in key if k.name not in convert]
    result = TableResult(table_map.source, table_map.target)
    with db.connect() as conn:
        found = _progress_row(conn, identity, table_map)
        if found is None:
            conn.execute(imports.insert().values(source=identity, source_table=table_map.source,
                                                 target_table=table_map.target, status="copying", skipped={}))
            conn.commit()
            found = _progress_row(conn, identity, table_map)
        conn.rollback()
    result.rows_read, result.rows_written, result.rows_skipped = (
        found["rows_read"], found["rows_written"], found["rows_skipped"])
    result.skipped = dict(found["skipped"] or {})
    last = [_key_value(k, v) for k, v in zip(key, found["last_key"])] if found["last_key"] else None
    # A table copied before is read on from its last key too: rows the source gained are copied.
    raw = _same_text(source, db, table_map, key)
    names = [c.source for c in table_map.columns]
    pages = (_raw_pages(source, key, names, request.batch_size, last) if raw
             else _pages(source, wanted, key, request.batch_size, last, result.rows_read))
    for rows, last in pages:
        batch = None if raw else [c for c in (_converted(row, convert, target, request, table_map, result)
                                              for row in rows) if c is not None]
        with db.engine.begin() as conn, db.dialect.user_triggers_off(conn, [target]):
            claim.check(conn)
            if raw:
                written = _insert_raw(db, conn, source, target, names, rows, wanted, key, convert, table_map,
                                      request, result)
            else:
                written = _insert_rows(db, conn, target, batch, table_map, request, result)
            result.rows_read += len(rows)
            result.rows_written += written
            result.written_now += written
            _record(conn, identity, table_map, last_key=_json_key(last) if last else None,
                    rows_read=result.rows_read, rows_written=result.rows_written,
                    rows_skipped=result.rows_skipped, skipped=result.skipped)
        if progress:
            progress(result)
    with db.engine.begin() as conn:
        db.dialect.sync_sequences(conn, target)
        _record(conn, identity, table_map, status="copied")
    _verify(db, source, key, wanted, convert, target, table_map, request, result)
    with db.engine.begin() as conn:
        _record(conn, identity, table_map, status=result.status)
    return result


class RawPage:
    """A page of source rows in COPY's text format: ``len()`` rows after the key ``after``."""

    def __init__(self, data: bytes, count: int, after):
        self.data, self.count, self.after = data, count, after

    def __len__(self) -> int:
        return self.count


def _raw_pages(source, key, names: list[str], size: int, last=None):
    """The source rows as its own COPY ... TO STDOUT writes them, a page of keys at a time (in
    a transaction under ROW_TEXT_SETTINGS, so the text means the same to the target)."""
    import sqlalchemy as sa

    quoted = ", ".join(f'"{n}"' for n in names)
    while True:
        with source.connect() as conn:
            _settle(conn)
            query = sa.select(*key).order_by(*key).limit(size)
            if last is not None:
                query = query.where(_after(key, last))
            keys = conn.execute(query).all()
            if not keys:
                conn.rollback()
                return
            upto = list(keys[-1])
            page = sa.select(sa.literal_column(quoted)).select_from(key[0].table).where(
                sa.not_(_after(key, upto))).order_by(*key)
            if last is not None:
                page = page.where(_after(key, last))
            sql = str(page.compile(source, compile_kwargs={"literal_binds": True}))
            chunks = []
            with conn.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
                    chunks.extend(bytes(chunk) for chunk in copy)
            conn.rollback()
        yield RawPage(b"".join(chunks), len(keys), last), upto
        last = upto


def _after(key, values):
    import sqlalchemy as sa

    return (sa.tuple_(*key) > sa.tuple_(*[sa.literal(v, k.type) for k, v in zip(key, values)])
            if len(key) > 1 else key[0] > sa.literal(values[0], key[0].type))


def _insert_raw(db, conn, source, target, names, page: RawPage, wanted, key, convert, table_map, request,
                result) -> int:
    """A raw page into the target; a page it refuses (a CHECK, a foreign key) read again as rows,
    to find the row and do with it what --on-unmapped says."""
    import sqlalchemy.exc as sa_exc

    try:
        with conn.begin_nested():
            return db.dialect.insert_new_copied(conn, target, names, page.data, page.count)
    except (sa_exc.IntegrityError, sa_exc.DataError):
        pass
    rows, _last = next(_pages(source, wanted, key, page.count, page.after))
    batch = [c for c in (_converted(row, convert, target, request, table_map, result) for row in rows)
             if c is not None]
    return _insert_rows(db, conn, target, batch, table_map, request, result)


def _pages(source, wanted, key, size: int, last=None, offset: int = 0, setup=None):
    """The source rows in batches, in key order after ``last``; a table without a key in the
    order of all its columns after ``offset`` rows. Yields (rows, the last key read).
    ``setup(conn)`` runs first in each page's transaction."""
    import sqlalchemy as sa

    order = key or wanted
    while True:
        query = sa.select(*wanted).order_by(*order).limit(size)
        if not key:
            query = query.offset(offset)
        elif last is not None:
            query = query.where(_after(key, last))
        with source.connect() as conn:
            if setup is not None:
                setup(conn)
            rows = conn.execute(query).mappings().all()
            conn.rollback()
        if not rows:
            return
        offset += len(rows)
        last = [rows[-1][k.name] for k in key]
        yield rows, last


def _record(conn, identity: str, table_map: TableMap, **values) -> None:
    import sqlalchemy as sa

    from tdbctl.schema.bookkeeping import imports

    conn.execute(sa.update(imports).where(imports.c.source == identity, imports.c.source_table == table_map.source)
                 .values(updated_at=sa.func.now(), **values))


def _converted(row, convert, target, request, table_map, result, *, record: bool = True) -> dict | None:
    """The row as the target takes it; None when --on-unmapped skip leaves it out."""
    from tdbctl.importing.values import Unmapped

    out = {}
    for source_name, (target_name, function) in convert.items():
        try:
            out[target_name] = row[source_name] if function is None else function(row[source_name])
        except Unmapped as exc:
            key = _json_key([row[k] for k in table_map.key])
            if request.on_unmapped == "null" and target.c[target_name].nullable:
                out[target_name] = None
                if record:
                    _skip(result, f"{target_name} written as NULL: {exc.why}", key, skipped=False)
                continue
            if request.on_unmapped != "skip":
                raise ImportStopped(f"{table_map.source} -> {table_map.target}: stopped at the row with key {key}: "
                                    f"{exc}; the rows before it are copied; rerun with --on-unmapped skip"
                                    f"{' (or null)' if target.c[target_name].nullable else ''} to go on without it") from None
            if record:
                _skip(result, f"{target_name} {exc.why}", key)
            return None
    return out


def _skip(result: TableResult, reason: str, key, *, skipped: bool = True) -> None:
    """A row left out (or, ``skipped`` False, written with a NULL), counted under its reason."""
    entry = result.skipped.setdefault(reason, {"rows": 0, "first_key": key})
    entry["rows"] += 1
    if skipped:  # their keys, for the verification to leave out (few: rows the target cannot take)
        entry.setdefault("keys", []).append(key)
        result.rows_skipped += 1


def _insert_rows(db, conn, target, batch, table_map, request, result) -> int:
    """Write a batch, a row already under its key left as it is; a batch the target refuses (a
    CHECK, a foreign key) retried a row at a time to find the row, which --on-unmapped decides."""
    import sqlalchemy.exc as sa_exc

    if not batch:
        return 0
    try:
        with conn.begin_nested():
            return db.dialect.insert_new(conn, target, batch)
    except (sa_exc.IntegrityError, sa_exc.DataError):
        pass
    written = 0
    for row in batch:
        try:
            with conn.begin_nested():
                written += db.dialect.insert_new(conn, target, [row])
        except (sa_exc.IntegrityError, sa_exc.DataError) as exc:
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
            key = _json_key([row.get(k) for k in table_map.key])
            if request.on_unmapped == "skip":
                _skip(result, f"refused by the target: {reason}", key)
                continue
            raise ImportStopped(f"{table_map.source} -> {table_map.target}: the target refused the row with key "
                                f"{key}: {reason}; rerun with --on-unmapped skip to go on without it") from None
    return written


def _same_text(source, db, table_map: TableMap, key) -> bool:
    """Whether each side can hash its rows itself: PostgreSQL on both, keyed, every column of the
    same type and taken as it is (no value map), so equal rows print the same text."""
    return (source.dialect.name == db.dialect.name == "postgresql" and bool(key)
            and all(c.cast is None and not c.values for c in table_map.columns))


def _verify_by_row_text(db, source, key, target, table_map, request, result) -> None:
    """The verification where both sides are PostgreSQL with the same types: each server hashes
    its rows' text (md5 of ROW(...)::text) and sums the hashes of a range of keys; only where
    the sums differ are keys and hashes fetched, to name the first row that differs. Rows left
    out (skipped) are compared key by key."""
    import sqlalchemy as sa

    from tdbctl.importing.values import RowsDigest

    quoted = ", ".join(f'"{c.source}"' for c in table_map.columns)
    row_md5 = f"md5(ROW({quoted})::text)"
    target_key = [target.c[k.name] for k in key]

    def in_range(columns, after, upto):
        condition = sa.not_(_after(columns, upto))
        return condition if after is None else sa.and_(_after(columns, after), condition)

    def summed(conn, columns, after, upto) -> tuple[int, int]:
        total = sa.literal_column(f"coalesce(sum(('x' || substr({row_md5}, 1, 15))::bit(60)::bigint), 0)")
        return tuple(conn.execute(sa.select(sa.func.count(), total).select_from(columns[0].table)
                                  .where(in_range(columns, after, upto))).one())

    def hashes(conn, columns, after, upto) -> dict:
        return {tuple(_json_key(r[:-1])): r[-1] for r in conn.execute(
            sa.select(*columns, sa.literal_column(row_md5)).where(in_range(columns, after, upto))).all()}

    left_out = _left_out(result)
    source_digest, target_digest = RowsDigest(), RowsDigest()
    mismatch, after, size = None, None, max(request.batch_size, 5000) * 4
    while True:
        with source.connect() as conn, db.connect() as into:
            _settle(conn)
            _settle(into)
            query = sa.select(*key).order_by(*key).offset(size - 1).limit(1)
            ending = sa.select(*key).order_by(*[k.desc() for k in key]).limit(1)
            if after is not None:
                query, ending = query.where(_after(key, after)), ending.where(_after(key, after))
            upto = conn.execute(query).first() or conn.execute(ending).first()
            if upto is None:
                break
            upto = list(upto)
            if left_out:
                ours, theirs = hashes(conn, key, after, upto), hashes(into, target_key, after, upto)
                ours = {k: h for k, h in ours.items() if k not in left_out}
                for digest in ours.values():
                    source_digest.add([digest])
                for canonical_key, digest in ours.items():
                    if canonical_key in theirs:
                        target_digest.add([theirs[canonical_key]])
                    if mismatch is None and theirs.get(canonical_key) != digest:
                        mismatch = list(canonical_key)
            else:
                (rows, ours), (held, theirs) = summed(conn, key, after, upto), summed(into, target_key, after, upto)
                source_digest.merge(rows, ours)
                target_digest.merge(held, theirs)
                if mismatch is None and (rows, ours) != (held, theirs):
                    mine, other = hashes(conn, key, after, upto), hashes(into, target_key, after, upto)
                    differing = sorted(k for k in set(mine) | set(other) if mine.get(k) != other.get(k))
                    mismatch = list(differing[0]) if differing else None
            conn.rollback()
            into.rollback()
        after = upto
    _conclude(result, source_digest, target_digest, mismatch)


def _left_out(result: TableResult) -> set[tuple]:
    """The keys of the rows the copy left out (skipped), as _json_key writes them."""
    return {tuple(k) for entry in result.skipped.values() for k in entry.get("keys", ())}


def _conclude(result, source_digest, target_digest, mismatch) -> None:
    result.verified_rows = source_digest.rows
    result.source_checksum, result.target_checksum = source_digest.hexdigest(), target_digest.hexdigest()
    result.first_mismatch = mismatch
    result.status = "verified" if mismatch is None and result.source_checksum == result.target_checksum else "mismatch"


def _verify(db, source, key, wanted, convert, target, table_map, request, result) -> None:
    """Every source row again, converted, beside the row the target holds under its key; a table
    without a key, as a whole: the same rows, counted and summed, on both sides."""
    import sqlalchemy as sa

    from tdbctl.importing.values import RowsDigest, canonical

    if _same_text(source, db, table_map, key):
        return _verify_by_row_text(db, source, key, target, table_map, request, result)

    columns = [target.c[t] for t, _f in convert.values()]
    target_key = [target.c[k.name] for k in key]
    source_digest, target_digest = RowsDigest(), RowsDigest()
    mismatch = None
    left_out = _left_out(result)
    for rows, _last in _pages(source, wanted, key, max(request.batch_size, 1000)):
        expected = {}
        for row in rows:
            converted = _converted(row, convert, target, request, table_map, result, record=False)
            if converted is None or (left_out and tuple(_json_key([row[k.name] for k in key])) in left_out):
                continue
            values = [canonical(converted[c.name]) for c in columns]
            source_digest.add(values)
            if key:
                expected[tuple(canonical(converted[k.name]) for k in target_key)] = (converted, values)
        if not key:
            continue
        keys = [tuple(c[k.name] for k in target_key) for c, _v in expected.values()]
        condition = (sa.tuple_(*target_key).in_(keys) if len(target_key) > 1
                     else target_key[0].in_([k[0] for k in keys]))
        with db.connect() as conn:
            held = {tuple(canonical(v) for v in r[:len(target_key)]): [canonical(v) for v in r[len(target_key):]]
                    for r in conn.execute(sa.select(*target_key, *columns).where(condition)).all()} if keys else {}
            conn.rollback()
        for canonical_key, (_converted_row, values) in expected.items():
            found = held.get(canonical_key)
            if found is not None:
                target_digest.add(found)
            if mismatch is None and found != values:
                mismatch = list(canonical_key)
    if not key:
        with db.connect() as conn:
            for found in conn.execute(sa.select(*columns)):
                target_digest.add([canonical(v) for v in found])
            conn.rollback()
    _conclude(result, source_digest, target_digest, mismatch)
