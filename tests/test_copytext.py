"""COPY text made without psycopg (tdbctl/ddl/copytext.py): a real PostgreSQL reads
back exactly the values it was given, the awkward ones included, as psycopg's write_row would."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tdbctl.engine import create_engine
from tdbctl.ddl.copytext import CopyText

COLUMNS = ("id", "label", "flag", "blob", "tags", "score", "note")


def _table() -> sa.Table:
    return sa.Table(
        "copytext_probe", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.Text, nullable=False),
        sa.Column("flag", sa.Boolean), sa.Column("blob", sa.LargeBinary), sa.Column("tags", sa.ARRAY(sa.Text)),
        sa.Column("score", sa.Float), sa.Column("note", sa.Text),
    )


PLAIN_ROWS = [
    (1, "plain", True, b"\x00synthetic", ["a", "b c"], 0.1, None),
    (2, "ünïcödé ━", False, None, [], 12.5, "x"),
    (3, "no nulls", None, b"", None, None, ""),
]
AWKWARD_ROWS = [
    (4, "tab\there", True, None, None, 1.0, "line\nbreak"),
    (5, "back\\slash \\N", None, b"\\\t\n", ['quote "q"', "back\\slash", "comma,brace}"], -2.25, "cr\r"),
]


@pytest.mark.parametrize("rows", [PLAIN_ROWS, AWKWARD_ROWS, PLAIN_ROWS + AWKWARD_ROWS],
                         ids=["plain", "awkward", "mixed"])
def test_copy_text_reads_back_as_the_values_given(pg_url, rows):
    table = _table()
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            table.create(conn)
            encode = CopyText.for_table(table, COLUMNS, conn.dialect)
            data = encode(rows)
            with conn.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY copytext_probe ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    copy.write(data)
            back = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
    finally:
        engine.dispose()
    assert back == [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def test_a_none_in_a_not_null_column_is_written_as_null_not_as_text():
    """"label" is NOT NULL, so its value is written without the None test; the chunk's count of
    backslashes then sends it down the escaping path: the server gets \\N (and refuses it), not "None"."""
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    encode = CopyText.for_table(_table(), COLUMNS, PGDialect_psycopg())
    assert encode([(9, None, None, None, None, None, None)]) == b"9\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"
    assert encode([(9, "x", None, None, None, None, None)]) == b"9\tx\t\\N\t\\N\t\\N\t\\N\t\\N\n"
