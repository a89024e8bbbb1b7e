"""Synthetic rows for the backup tests, and checksums of every table's ordered rows.

``fill`` writes rows with Core inserts into every table of every domain present in the database
(the seed command is not used: it is written in parallel), choosing each value from the column's
type, its foreign key (a row of the parent), and its CHECK constraint (a value from an IN list,
a small number for a range). ``checksums`` reads every table back as the database has it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import re
import uuid

import sqlalchemy as sa

from tdbctl.engine import create_engine
from tdbctl.schema import ALL_SCHEMAS, metadata

ROWS = 12
# The migrations keep these: synthetic rows would only fake a ledger.
SKIP = {"tdbctl.migration_ledger", "tdbctl.alembic_version",
        "tdbctl.claims",  # the claims of runs going on: never in a backup (PostgreSQL) nor worth filling
        "tdbctl.partition_conversions",  # written by migrate itself on PostgreSQL
        "tdbctl.domains"}  # written by migrate itself
BASE_TIME = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def present_tables(conn) -> list[str]:
    inspector = sa.inspect(conn)
    schemas = set(inspector.get_schema_names())
    return sorted(f"{s}.{t}" for s in ALL_SCHEMAS if s in schemas for t in inspector.get_table_names(schema=s))


def _check_texts(table: sa.Table) -> list[str]:
    return [str(c.sqltext) for c in table.constraints if isinstance(c, sa.CheckConstraint)]


def _allowed(column: sa.Column, checks: list[str]) -> list[str] | None:
    for text in checks:
        match = re.search(rf"\b{re.escape(column.name)}\s+IN\s*\(([^)]*)\)", text)
        if match and "POSTCOMPILE" not in match[1]:
            return re.findall(r"'([^']*)'", match[1])
    return None


def _value(table: sa.Table, column: sa.Column, index: int, salt: int, parents: dict):
    checks = _check_texts(table)
    constrained = any(re.search(rf"\b{re.escape(column.name)}\b", t) for t in checks)
    for fk in column.foreign_keys:
        keys = parents.get(fk.column.table.fullname)
        if fk.column.table is table or not keys:
            return None if column.nullable else _fail(table, column)
        return keys[index % len(keys)][fk.column.name]
    kind = column.type
    variant = getattr(kind, "_variant_mapping", {}).get("postgresql")
    allowed = _allowed(column, checks)
    if allowed:
        return allowed[index % len(allowed)]
    if isinstance(kind, sa.Enum):
        return kind.enums[index % len(kind.enums)]
    if isinstance(kind, sa.Uuid):
        return uuid.UUID(int=(salt << 64) + index + 1)
    if isinstance(kind, sa.Boolean):
        return index % 2 == 0
    if isinstance(kind, sa.DateTime):
        moment = BASE_TIME + dt.timedelta(minutes=index, seconds=list(table.columns).index(column), microseconds=salt)
        return moment if kind.timezone else moment.replace(tzinfo=None)
    if isinstance(kind, sa.Date):
        return (BASE_TIME + dt.timedelta(days=index)).date()
    if isinstance(kind, sa.Time):
        return dt.time(9 + index % 8, 30)
    if isinstance(kind, sa.Integer):
        return (index % 5) + 1 if constrained else salt * 1000 + index + 1
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return decimal.Decimal("0.25") * (index % 4 + 1)
    if isinstance(kind, sa.Float):
        return 0.125 * (index % 8 + 1)
    if isinstance(kind, sa.LargeBinary):
        return bytes([index % 256, salt % 256, 0, 255]) * 4
    if isinstance(kind, sa.JSON):
        dims = getattr(variant, "dim", None)
        if dims:
            return [round(0.001 * ((index + d) % 997), 3) for d in range(dims)]
        if variant is not None and type(variant).__name__ == "ARRAY":
            return [f"tag-{index}", "shared"]
        return {"n": index, "label": f"row {index}", "nested": {"salt": salt, "ok": True}}
    if isinstance(kind, sa.String):
        if variant is not None and type(variant).__name__ == "INET":
            return f"10.0.{salt % 250}.{index + 1}"
        text = f"{column.name[:10]}-{salt}-{index}-é"
        return text[: kind.length] if kind.length else text
    raise AssertionError(f"no synthetic value for {table.fullname}.{column.name} ({kind!r})")


def _fail(table, column):
    raise AssertionError(f"{table.fullname}.{column.name}: NOT NULL foreign key without parent rows")


def fill(url, *, rows: int = ROWS, salt: int = 1) -> dict[str, int]:
    """Insert ``rows`` rows into every table present (parents first); returns rows per table."""
    engine = create_engine(url)
    inserted: dict[str, int] = {}
    parents: dict[str, list[dict]] = {}
    try:
        with engine.begin() as conn:
            present = set(present_tables(conn))
            inspector = sa.inspect(conn)
            for table in metadata.sorted_tables:
                if table.fullname not in present or table.fullname in SKIP:
                    continue
                # At an older revision a table may lack a column the metadata has since gained.
                there = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
                batch = [
                    {c.name: _value(table, c, i, salt, parents) for c in table.columns if c.name in there}
                    for i in range(rows)
                ]
                conn.execute(table.insert(), batch)
                parents[table.fullname] = batch
                inserted[table.fullname] = rows
    finally:
        engine.dispose()
    return inserted


def _canonical(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "tolist"):  # a pgvector value
        return json.dumps([round(float(v), 6) for v in value.tolist()])
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return str(value)


def checksums(url) -> dict[str, str]:
    """table -> sha256 of its rows, each rendered column by column, in sorted order. Claims are
    not data: a killed run's claim row stays until the next run takes it over (tests/test_claims.py)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            result = {}
            for name in present_tables(conn):
                if name == "tdbctl.claims":
                    continue
                schema, table = name.split(".", 1)
                rows = conn.exec_driver_sql(f'SELECT * FROM "{schema}"."{table}"').all()
                lines = sorted("\t".join(_canonical(v) for v in row) for row in rows)
                result[name] = f"{len(lines)}:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()
            return result
    finally:
        engine.dispose()


def test_fill_reaches_every_domain_and_checksums_see_one_changed_value(db_url):
    from tdbctl.migrate.commands import upgrade
    from tdbctl.config import resolve
    from conftest import url_text

    upgrade(resolve(url_text(db_url)))
    inserted = fill(db_url)
    before = checksums(db_url)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        domains_present = {t.split(".")[0] for t in present_tables(conn)}
    # Every domain the migrations created got rows in several of its tables.
    for schema in domains_present:
        filled = [t for t in inserted if t.startswith(f"{schema}.")]
        assert len(filled) >= 2, (schema, filled)
    assert all(before[t].startswith(f"{ROWS}:") for t in inserted)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE dispatch.call_transcripts SET text = 'changed' WHERE timestamp_ms = 1002"))
    engine.dispose()
    after = checksums(db_url)
    assert {t for t in before if before[t] != after[t]} == {"dispatch.call_transcripts"}
