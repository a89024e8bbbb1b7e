"""How one row becomes one line of JSON in an archive file, and back (docs/archive.md).

A line is a JSON object keyed by column name. A NULL column is left out of its line, so JSON
``null`` only ever means a JSON document holding null. Values that JSON has no type for are
strings in their PostgreSQL text form: UUIDs, ISO 8601 timestamps (with offset when the column has
a time zone), dates, times, ``\\x``-hex bytes, pgvector's ``[1,2,3]``. Numerics are JSON numbers
written with all their digits. On PostgreSQL the server writes these lines itself (COPY); this
module writes and reads them in Python for SQLite, and names each column's kind for the manifest.
SQLite's JSON and time columns travel as the text SQLite stores, so they come back unchanged.
"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any, Callable

import sqlalchemy as sa

KINDS = ("json", "uuid", "timestamptz", "timestamp", "date", "time", "bytes", "decimal", "float", "bool",
         "int", "array", "vector", "text")


def dialect_type(column: sa.Column, dialect_name: str) -> sa.types.TypeEngine:
    kind = column.type
    return getattr(kind, "_variant_mapping", {}).get(dialect_name, kind)


def kind_of(column: sa.Column, dialect_name: str) -> str:
    kind = dialect_type(column, dialect_name)
    if isinstance(kind, sa.JSON):
        return "json"
    if isinstance(kind, sa.ARRAY):
        return "array"
    if type(kind).__name__ == "VECTOR" or type(kind).__name__ == "Vector":
        return "vector"
    if isinstance(kind, sa.Uuid):
        return "uuid"
    if isinstance(kind, sa.DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.Time):
        return "time"
    if isinstance(kind, sa.LargeBinary):
        return "bytes"
    if isinstance(kind, sa.Float):
        return "float"
    if isinstance(kind, sa.Numeric):
        return "decimal"
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.Integer):
        return "int"
    return "text"


def describe_columns(table: sa.Table, dialect) -> list[dict]:
    """Name, SQL type on this dialect, kind (how the value is written), nullable, key."""
    described = []
    for column in table.columns:
        try:
            sql_type = dialect_type(column, dialect.name).compile(dialect=dialect)
        except Exception:  # a type this dialect cannot spell (never for tdbctl's tables)
            sql_type = str(column.type)
        described.append({
            "name": column.name, "type": sql_type, "kind": kind_of(column, dialect.name),
            "nullable": bool(column.nullable), "primary_key": bool(column.primary_key),
        })
    return described


# -- Python side (SQLite) -----------------------------------------------------------------------

def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _float(value: float) -> str:
    if value != value:
        return '"NaN"'
    if value in (float("inf"), float("-inf")):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    return repr(value)


def _raw_json(text: str | bytes) -> str:
    # SQLite keeps JSON as text: carry it as it is when it is one line, so it comes back unchanged.
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    parsed = json.loads(text)
    return text if "\n" not in text and "\r" not in text else _json_text(parsed)


_ZONE = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


def _raw_timestamp(with_zone: bool) -> Callable[[Any], str]:
    # SQLite holds times as text, 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC: carried as ISO 8601 with
    # the T (and +00:00 where the column has a zone), and put back character for character.
    def encode(value) -> str:
        if not isinstance(value, str):
            return json.dumps(value)
        text = value[:10] + "T" + value[11:] if len(value) > 10 and value[10] == " " else value
        if with_zone and not _ZONE.search(text):
            text += "+00:00"
        return '"' + text + '"'
    return encode


def _raw_timestamp_back(with_zone: bool) -> Callable[[Any], Any]:
    def decode(value):
        if not isinstance(value, str):
            return value
        if with_zone and value.endswith("+00:00"):
            value = value[:-6]
        return value[:10] + " " + value[11:] if len(value) > 10 and value[10] == "T" else value
    return decode


ENCODERS: dict[str, Callable[[Any], str]] = {
    "json": _raw_json,
    "uuid": lambda v: '"' + str(v) + '"',
    "timestamptz": _raw_timestamp(True),
    "timestamp": _raw_timestamp(False),
    "date": _json_text,
    "time": _json_text,
    "bytes": lambda v: '"\\\\x' + bytes(v).hex() + '"',
    "decimal": lambda v: str(v) if v.is_finite() else '"' + str(v) + '"',
    "float": _float,
    "bool": lambda v: "true" if v else "false",
    "int": str,
    "array": _json_text,
    "vector": _json_text,
    "text": _json_text,
}


def line_encoder(table: sa.Table, dialect_name: str) -> Callable[[sa.Row], bytes]:
    """A function from a row (selected with ``select_columns``) to its line, newline included."""
    parts = [(json.dumps(c.name) + ":", ENCODERS[kind_of(c, dialect_name)]) for c in table.columns]

    def encode(row) -> bytes:
        fields = [key + enc(value) for (key, enc), value in zip(parts, row) if value is not None]
        return ("{" + ",".join(fields) + "}\n").encode("utf-8")

    return encode


RAW_KINDS = ("json", "timestamptz", "timestamp", "date", "time")
"""Read and written as the text SQLite stores, so that they come back exactly as they were."""


def select_columns(columns, dialect_name: str) -> list[sa.ColumnElement]:
    """Columns as the encoder wants them: those of RAW_KINDS as their stored text."""
    return [sa.type_coerce(c, sa.Text).label(c.name) if kind_of(c, dialect_name) in RAW_KINDS else c
            for c in columns]


def _decode_bytes(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("\\x") else value)


DECODERS: dict[str, Callable[[Any], Any]] = {
    "json": lambda v: json.dumps(v),  # bound as text: the form SQLAlchemy's JSON type stores
    "uuid": uuid.UUID,
    "timestamptz": _raw_timestamp_back(True),
    "timestamp": _raw_timestamp_back(False),
    "date": lambda v: v,
    "time": lambda v: v,
    "bytes": _decode_bytes,
    "decimal": lambda v: Decimal(str(v)),
    "float": float,
    "bool": bool,
    "int": int,
    "array": lambda v: v,
    "vector": lambda v: v,
    "text": lambda v: v,
}


def parse_line(line: bytes | str) -> dict:
    """One line as JSON, numbers with a fraction kept exact (Decimal)."""
    return json.loads(line, parse_float=Decimal)


def row_decoder(table: sa.Table, dialect_name: str) -> Callable[[dict], dict]:
    """A parsed line -> bind parameters for ``insert_statement`` (NULL for absent columns)."""
    plan = []
    for column in table.columns:
        kind = kind_of(column, dialect_name)
        plan.append((column.name, kind, DECODERS[kind]))

    def decode(document: dict) -> dict:
        values = {}
        for name, kind, dec in plan:
            if name not in document:
                values[name] = None
            else:
                value = document[name]
                if kind in ("json", "array", "vector"):
                    value = _plain_numbers(value)
                values[name] = dec(value)
        return values

    return decode


def _plain_numbers(value):
    # parse_line reads every fraction as Decimal; inside JSON documents they were floats.
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    return value


def bind_values(table: sa.Table, dialect_name: str) -> dict[str, sa.BindParameter]:
    """Insert parameters ``p_<column>`` typed for the decoder's values: RAW_KINDS take text."""
    return {
        c.name: sa.bindparam(f"p_{c.name}", type_=sa.Text() if kind_of(c, dialect_name) in RAW_KINDS else c.type)
        for c in table.columns
    }
