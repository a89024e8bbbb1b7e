"""Rows as PostgreSQL COPY text, made without psycopg, so that a generating process can do it.

The text is what psycopg's ``copy.write_row`` sends for the same values (``\\N`` for None, ``t``/``f``
for booleans, floats as ``repr``, ``\\x``-hex for bytes, ``{"a","b"}`` for a list), but a row costs
one f-string instead of a call per value. Generated values almost never hold a tab, newline, CR or
backslash: each chunk is built without escaping, then checked by counting those characters. Any
surplus means some value held one, and the chunk is built again escaping every value.
"""

from __future__ import annotations

from itertools import repeat
from typing import Callable, Sequence

NULL = "\\N"


def array_literal(items) -> str:
    """A list as a PostgreSQL array literal, every element quoted (as psycopg writes TEXT[])."""
    return "{" + ",".join(
        "NULL" if e is None else '"' + str(e).replace("\\", "\\\\").replace('"', '\\"') + '"' for e in items) + "}"


def _bytea(value: bytes) -> str:
    return "\\x" + value.hex()


def _bool(value) -> str:
    return "t" if value else "f"


_PLAIN, _BOOL, _BYTES, _ARRAY = "plain", "bool", "bytes", "array"
_CONVERT = {_BOOL: _bool, _BYTES: _bytea, _ARRAY: array_literal}


def kind_of(column_type) -> str:
    import sqlalchemy as sa

    if isinstance(column_type, sa.Boolean):
        return _BOOL
    if isinstance(column_type, sa.LargeBinary):
        return _BYTES
    if isinstance(column_type, sa.ARRAY):
        return _ARRAY
    return _PLAIN


class CopyText:
    """Turns a list of row tuples (values in column order) into COPY text bytes. Picklable."""

    def __init__(self, kinds: Sequence[str], nullable: Sequence[bool]):
        self.kinds, self.nullable = tuple(kinds), tuple(nullable)
        self._line = _line_function(self.kinds, self.nullable)
        self._bytes_columns = [i for i, k in enumerate(self.kinds) if k == _BYTES]

    @classmethod
    def for_table(cls, table, columns: Sequence[str], dialect) -> "CopyText":
        """``dialect``: a SQLAlchemy dialect, to see through a column type's per-dialect variants."""
        return cls([kind_of(table.c[c].type.dialect_impl(dialect)) for c in columns],
                   [table.c[c].nullable for c in columns])

    def __reduce__(self):
        return CopyText, (self.kinds, self.nullable)

    def __call__(self, rows: Sequence[tuple]) -> bytes:
        text = "".join(map(self._line, rows))
        # Unescaped, each row has exactly len(kinds) - 1 tabs and one newline, each None one
        # backslash, each bytes value two; a value with its own tab, newline or backslash adds more.
        backslashes = sum(map(tuple.count, rows, repeat(None)))
        for i in self._bytes_columns:
            backslashes += 2 * sum(1 for row in rows if row[i] is not None)
        if (text.count("\t") != len(rows) * (len(self.kinds) - 1) or text.count("\n") != len(rows)
                or text.count("\\") != backslashes or "\r" in text):
            text = "".join(self._escaped(row) for row in rows)
        return text.encode()

    def _escaped(self, row: tuple) -> str:
        fields = []
        for kind, value in zip(self.kinds, row):
            if value is None:
                fields.append(NULL)
                continue
            text = _CONVERT[kind](value) if kind in _CONVERT else str(value)
            fields.append(text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))
        return "\t".join(fields) + "\n"


def _line_function(kinds: Sequence[str], nullable: Sequence[bool]) -> Callable[[tuple], str]:
    """One f-string per row, compiled for the table's column kinds (no escaping).

    A NOT NULL column is written without the None test: a None there would come out as the text
    ``None``, but the chunk's backslash count (one per None) then sends it down the escaping path,
    where it becomes ``\\N`` and the server refuses it as it would have anyway."""
    names = [f"v{i}" for i in range(len(kinds))]
    parts = []
    for value, kind, maybe_null in zip(names, kinds, nullable):
        if kind == _BOOL:
            shown = f"(T if {value} else F)"
        elif kind == _BYTES:
            shown = f"X + {value}.hex()"
        elif kind == _ARRAY:
            shown = f"A({value})"
        else:
            shown = value
        parts.append(f"{{N if {value} is None else {shown}}}" if maybe_null or kind != _PLAIN else f"{{{shown}}}")
    unpack = ", ".join(names) + ("," if len(names) == 1 else "")
    source = f"def line(r):\n    {unpack} = r\n    return f'" + "\\t".join(parts) + "\\n'\n"
    # X is bytea's \\x prefix with its backslash already escaped for COPY.
    scope = {"N": NULL, "T": "t", "F": "f", "X": "\\\\x", "A": array_literal}
    exec(source, scope)  # noqa: S102
    return scope["line"]
