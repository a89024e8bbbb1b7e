"""Binary COPY made without psycopg (tdbctl/dialects/copybinary.py): a real PostgreSQL stores exactly
what psycopg's own text COPY of the same values stores, for every column kind the synthetic
generators write and for the awkward values (escapes, NULLs, signs, scales, IPv6, empty arrays)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

from tdbctl.dialects.bulkrows import date_text, time_text, timestamp_text
from tdbctl.dialects.copybinary import CopyBinary
from tdbctl.engine import create_engine

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
COLUMNS = ("id", "small", "big", "ratio", "single", "flag", "at", "at_naive", "day", "clock", "key", "blob", "label",
           "code", "doc", "docb", "amount", "exact", "address", "tags", "names", "embedding")


def _table(name: str) -> sa.Table:
    return sa.Table(
        name, sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True), sa.Column("small", sa.SmallInteger),
        sa.Column("big", sa.BigInteger), sa.Column("ratio", sa.Float), sa.Column("single", sa.REAL),
        sa.Column("flag", sa.Boolean), sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at_naive", sa.DateTime), sa.Column("day", sa.Date), sa.Column("clock", sa.Time),
        sa.Column("key", sa.Uuid), sa.Column("blob", sa.LargeBinary), sa.Column("label", sa.Text, nullable=False),
        sa.Column("code", sa.String(12)), sa.Column("doc", sa.JSON), sa.Column("docb", postgresql.JSONB),
        sa.Column("amount", sa.Numeric(12, 2)), sa.Column("exact", sa.Numeric), sa.Column("address", postgresql.INET),
        sa.Column("tags", postgresql.ARRAY(sa.Text)), sa.Column("names", postgresql.ARRAY(sa.String(20))),
        sa.Column("embedding", Vector(3)),
    )


def _row(n, *, small=None, big=None, ratio=None, single=None, flag=None, at=0, at_naive=None, day=None, clock=None,
         key=None, blob=None, label="", code=None, doc=None, docb=None, amount=None, exact=None, address=None,
         tags=None, names=None, embedding=None):
    return (n, small, big, ratio, single, flag, at, at_naive, day, clock, key, blob, label, code, doc, docb, amount,
            exact, address, tags, names, embedding)


ROWS = [
    _row(1, small=-7, big=2**62, ratio=0.1, single=0.55, flag=True, at=1_751_371_200_123, at_naive=86_400_000,
         day=1_751_371_200_123, clock=(9 * 60 + 30) * 60_000 + 1, key=bytes(range(16)), blob=b"\x00synthetic",
         label="plain", code="SYN-1A2B", doc='{"a": [1, 2]}', docb='{"synthetic": true, "n": 1.5}', amount=1234.56,
         exact=0.87, address="10.0.12.254", tags=["a", "b c"], names=["x"], embedding="[0.1,-0.25,3]"),
    _row(2, small=0, big=0, ratio=-2.25, single=-1e-05, flag=False, at=-1, at_naive=946_684_800_000, day=0, clock=0,
         key=uuid.uuid4().bytes, blob=b"", label="ünïcödé ━", code="", doc="[]", docb="{}", amount=0, exact=-0.0,
         address="::1", tags=[], names=[], embedding="[0,0,0]"),
    _row(3, amount=12, exact=123456789.125, address="192.168.0.0/16", tags=[None, "q"], label="nulls elsewhere"),
    _row(4, label="tab\there \\N back\\slash", code="line\nbreak", doc='{"k": "v\\tw"}', docb='{"cr": "\\r"}',
         amount=-3.255, exact=1e-05, address="2001:db8::1/64", tags=['quote "q"', "back\\slash", "comma,brace}"],
         big=-2**63, small=2**15 - 1, ratio=1e300, single=3.5, at=253_402_300_799_999),
    _row(5, amount=99999.999, exact=10000, label="carries over"),
]


def _as_python(row: tuple) -> tuple:
    """The same values as psycopg's text COPY takes them (what an application would hold)."""
    def moment(ms):
        return None if ms is None else EPOCH + timedelta(milliseconds=ms)

    (n, small, big, ratio, single, flag, at, at_naive, day, clock, key, blob, label, code, doc, docb, amount, exact,
     address, tags, names, embedding) = row
    return (n, small, big, ratio, single, flag, moment(at), None if at_naive is None else moment(at_naive).replace(tzinfo=None),
            None if day is None else moment(day).date(),
            None if clock is None else (datetime.min + timedelta(milliseconds=clock)).time(),
            None if key is None else uuid.UUID(bytes=key), blob, label, code, doc, docb,
            None if amount is None else Decimal(repr(amount) if isinstance(amount, float) else amount),
            None if exact is None else Decimal(repr(exact) if isinstance(exact, float) else exact),
            address, tags, names, embedding)


def _stored(conn, name: str) -> list[str]:
    return conn.exec_driver_sql(f"SELECT t::text FROM {name} t ORDER BY id").scalars().all()


# Every pattern of None over the nullable fixed-width columns (256), twice: ascending, then descending.
OPTIONAL_FIXED = dict(small=-3, big=2**40, ratio=2.5, single=0.25, flag=False, at_naive=0, day=86_400_000, clock=1)
MASKS = [*range(2 ** len(OPTIONAL_FIXED)), *reversed(range(2 ** len(OPTIONAL_FIXED)))]
PATTERNS = [_row(100 + n, label=f"pattern {mask}", at=mask,
                 **{name: None if mask >> bit & 1 else value for bit, (name, value) in enumerate(OPTIONAL_FIXED.items())})
            for n, mask in enumerate(MASKS)]


@pytest.mark.parametrize("rows", [ROWS, PATTERNS], ids=["awkward values", "null patterns"])
def test_binary_copy_stores_what_psycopgs_text_copy_stores(pg_url, rows):
    ours, theirs = _table("copybinary_ours"), _table("copybinary_theirs")
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
            ours.create(conn)
            theirs.create(conn)
            data = CopyBinary.for_table(ours, COLUMNS, conn.dialect)(rows)
            with conn.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY copybinary_ours ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(data)
                with cursor.copy(f"COPY copybinary_theirs ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(_as_python(row))
            stored, expected = _stored(conn, "copybinary_ours"), _stored(conn, "copybinary_theirs")
    finally:
        engine.dispose()
    assert len(stored) == len(rows)
    assert stored == expected


def test_a_none_in_a_not_null_column_reaches_the_server_as_null(pg_url):
    """The grouped fast path cannot pack a None; the chunk is packed again field by field, and the
    server refuses the NULL with its own message instead of a struct error here."""
    import psycopg

    table = _table("copybinary_null")
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
            table.create(conn)
        data = CopyBinary.for_table(table, COLUMNS, engine.dialect)([_row(1, at=None, label="x")])
        with engine.connect() as conn:
            with pytest.raises(psycopg.errors.NotNullViolation, match='column "at"'):
                with conn.connection.driver_connection.cursor() as cursor:
                    with cursor.copy(f"COPY copybinary_null ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.write(data)
    finally:
        engine.dispose()


def test_a_uuid_of_another_length_is_refused_here():
    encode = CopyBinary.for_table(_table("copybinary_probe"), COLUMNS, postgresql.psycopg.dialect())
    with pytest.raises(ValueError, match="a UUID is 16 bytes"):
        encode([_row(1, key=b"\x01" * 15)])


@pytest.mark.parametrize("ms", [0, 1, 999, 59_999, 3_599_999, 86_399_999, 946_684_800_000, 1_751_371_200_123,
                                253_402_300_799_999])
def test_the_text_forms_are_sqlalchemys(ms):
    moment = EPOCH + timedelta(milliseconds=ms)
    assert timestamp_text(ms) == moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert date_text(ms) == moment.date().isoformat()
    of_day = ms % 86_400_000
    assert time_text(of_day) == (datetime.min + timedelta(milliseconds=of_day)).strftime("%H:%M:%S.%f")
