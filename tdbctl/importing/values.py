"""A source value as the managed column takes it, and one canonical form of both for checksums.

The source's values arrive as its driver gives them: SQLite hands over text for JSON, arrays,
UUIDs and timestamps; PostgreSQL typed values, and text where the seed used VARCHAR for what
tdbctl keeps as an ENUM. Each managed column gets one converter; a value it cannot take is an
Unmapped, never silently changed.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import sqlalchemy as sa


class Unmapped(ValueError):
    def __init__(self, column: str, value, why: str):
        super().__init__(f"column {column}: {value!r} {why}")
        self.column, self.value, self.why = column, value, why


def converter(target: sa.Column, dialect, values: dict | None = None):
    """value -> the value to write into ``target`` (raising Unmapped); None when values go in as
    they come (text, numbers)."""
    kind = target.type.dialect_impl(dialect)
    name = target.name
    if isinstance(target.type, sa.Enum):
        enum = set(target.type.enums)
        listed = ", ".join(target.type.enums)

        def member(value):
            if value is None:
                return None
            value = values.get(value, value) if values else value
            if value not in enum:
                raise Unmapped(name, value, f"is none of {listed}, and no import value maps it")
            return value

        return member
    if isinstance(kind, sa.JSON) or type(kind).__name__ in ("JSONB", "JSON"):
        return lambda value: _json(name, value)
    if isinstance(kind, sa.ARRAY):
        return lambda value: _json(name, value) if isinstance(value, str) else (None if value is None else list(value))
    if isinstance(kind, sa.Uuid):
        def identifier(value):
            try:
                return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))
            except ValueError:
                raise Unmapped(name, value, "is not a UUID") from None
        return identifier
    if isinstance(kind, sa.DateTime):
        zone = getattr(target.type, "timezone", False)
        return lambda value: None if value is None else _moment(name, value, zone)
    if isinstance(kind, sa.Boolean):
        def truth(value):
            if value is None or isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise Unmapped(name, value, "is not a boolean")
        return truth
    if isinstance(kind, sa.Integer):
        def whole(value):
            if not isinstance(value, str):
                return value
            try:
                return int(value)
            except ValueError:
                raise Unmapped(name, value, "is not an integer") from None
        return whole
    if values:
        return lambda value: values.get(value, value) if isinstance(value, str) else value
    return None


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


_HEX32 = re.compile(r"[0-9a-f]{32}")


def canonical(value):
    """One text for equal values whatever side they were read from."""
    kind = type(value)
    if value is None or kind is int or kind is bool:
        return value
    if kind is str:  # SQLite's Uuid storage (32 hex digits) is PostgreSQL's UUID
        return str(uuid.UUID(value)) if len(value) == 32 and _HEX32.fullmatch(value) else value
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
    return str(value)


class RowsDigest:
    """A checksum of a set of rows, whatever order they are read in: the sum of each row's sha256
    over its canonical values (a sum, not XOR, so that two equal rows do not cancel out)."""

    def __init__(self):
        self._sum = 0
        self.rows = 0

    def add(self, canonical_values: list) -> None:
        """One row, its values already canonical()."""
        row = repr(canonical_values).encode()
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(row).digest(), "big")) % (1 << 256)
        self.rows += 1

    def merge(self, rows: int, total: int) -> None:
        """Rows summed elsewhere (a server's sum of its rows' hashes)."""
        self._sum = (self._sum + int(total)) % (1 << 256)
        self.rows += rows

    def hexdigest(self) -> str:
        return f"{self._sum:064x}"
