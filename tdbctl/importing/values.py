"""A source value as the managed column takes it, and one canonical form of both for checksums.

The source's values arrive as its driver gives them: SQLite hands over text for JSON, arrays,
UUIDs and timestamps; PostgreSQL typed values, and text where the seed used VARCHAR for what
tdbctl keeps as an ENUM. Each managed column gets one converter; a value it cannot take is an
Unmapped, never silently changed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import sqlalchemy as sa


class Unmapped(ValueError):
    def __init__(self, column: str, value, why: str):
        super().__init__(f"column {column}: {value!r} {why}")
        self.column, self.value, self.why = column, value, why


def converter(target: sa.Column, dialect, values: dict | None = None):
    """value -> the value to write into ``target`` (raising Unmapped)."""
    kind = target.type.dialect_impl(dialect)
    name = target.name
    enum = list(target.type.enums) if isinstance(target.type, sa.Enum) else None

    def convert(value):
        if value is None:
            return None
        if values and isinstance(value, str) and value in values:
            value = values[value]
        if enum is not None:
            if value not in enum:
                raise Unmapped(name, value, f"is none of {', '.join(enum)}, and no import value maps it")
            return value
        if isinstance(kind, sa.JSON) or type(kind).__name__ in ("JSONB", "JSON"):
            return _json(name, value)
        if isinstance(kind, sa.ARRAY):
            return _json(name, value) if isinstance(value, str) else list(value)
        if isinstance(kind, sa.Uuid):
            try:
                return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
            except ValueError:
                raise Unmapped(name, value, "is not a UUID") from None
        if isinstance(kind, sa.DateTime):
            return _moment(name, value, getattr(target.type, "timezone", False))
        if isinstance(kind, sa.Boolean):
            if isinstance(value, (int, bool)) and value in (0, 1):
                return bool(value)
            raise Unmapped(name, value, "is not a boolean")
        if isinstance(kind, sa.Integer) and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise Unmapped(name, value, "is not an integer") from None
        return value

    return convert


def _json(name: str, value):
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise Unmapped(name, value[:40], "is not JSON") from None
    return value


def _moment(name: str, value, with_zone: bool):
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Unmapped(name, value, "is not a timestamp") from None
    if isinstance(value, datetime) and value.tzinfo is None and with_zone:
        return value.replace(tzinfo=timezone.utc)  # the seeds' TIMESTAMP DEFAULT CURRENT_TIMESTAMP is UTC
    if isinstance(value, datetime) and value.tzinfo is not None and not with_zone:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def canonical(value):
    """One text for equal values whatever side they were read from."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return str(uuid.UUID(value))  # SQLite's Uuid storage, as PostgreSQL's
    return str(value) if not isinstance(value, (int, str, bool)) else value


class RowsDigest:
    """A checksum of a set of rows, whatever order they are read in: the sum of each row's sha256
    over its canonical values (a sum, not XOR, so that two equal rows do not cancel out)."""

    def __init__(self):
        self._sum = 0
        self.rows = 0

    def add(self, values) -> None:
        row = json.dumps([canonical(v) for v in values], default=str).encode()
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(row).digest(), "big")) % (1 << 256)
        self.rows += 1

    def hexdigest(self) -> str:
        return f"{self._sum:064x}"
