"""Check a value from a seed file against its column's type, and compare it with a stored value.

YAML guesses types (``version: 1.0`` is a number, ``on`` is true, ``2025-01-01`` a date), so a
value of the wrong type is refused with a hint rather than cast: the row would not be what the
person who wrote the file meant.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import date, datetime, timezone

import sqlalchemy as sa


class ValueProblem(ValueError):
    pass


def _describe(value) -> str:
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return f"a timestamp ({value.isoformat()})"
    if isinstance(value, date):
        return f"a date ({value.isoformat()})"
    return {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)


def _wrong(expected: str, value, hint: str = "") -> ValueProblem:
    return ValueProblem(f"expected {expected}, got {_describe(value)}{hint}")


def _quote_hint(value) -> str:
    return "; put it in quotes to make it text" if isinstance(value, (bool, int, float, date)) else ""


def _is_text_array(column_type) -> bool:
    variant = getattr(column_type, "_variant_mapping", {}).get("postgresql")
    return isinstance(variant, sa.ARRAY)


def check_value(column: sa.Column, value):
    """The value to write for ``column``, or ValueProblem saying what is wrong with it."""
    kind = column.type
    if value is None:
        if not column.nullable:
            raise ValueProblem("may not be empty (the column is NOT NULL)")
        return None
    if isinstance(kind, sa.Enum):
        if not isinstance(value, str) or value not in kind.enums:
            raise ValueProblem(f"expected one of {', '.join(kind.enums)}, got {value!r}")
        return value
    if isinstance(kind, sa.Boolean):
        if not isinstance(value, bool):
            raise _wrong("true or false", value)
        return value
    if isinstance(kind, sa.Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong("a whole number", value)
        return value
    if isinstance(kind, (sa.Float, sa.Numeric)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _wrong("a number", value)
        return float(value) if isinstance(kind, sa.Float) else value
    if isinstance(kind, sa.String):
        if not isinstance(value, str):
            raise _wrong("text", value, _quote_hint(value))
        if kind.length is not None and len(value) > kind.length:
            raise ValueProblem(f"longer than {kind.length} characters ({len(value)})")
        return value
    if isinstance(kind, sa.JSON):
        if _is_text_array(kind):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _wrong("a list of text", value)
            return value
        check_json(value)
        return value
    if isinstance(kind, sa.DateTime):
        return _timestamp(value, kind.timezone)
    if isinstance(kind, sa.Date):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise _wrong("a date (YYYY-MM-DD)", value)
        return value
    if isinstance(kind, sa.Uuid):
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise _wrong("a UUID", value) from None
    return value


def _timestamp(value, aware: bool):
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _wrong("a timestamp (YYYY-MM-DD HH:MM:SS)", value) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise _wrong("a timestamp (YYYY-MM-DD HH:MM:SS)", value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value if aware else value.replace(tzinfo=None)


def check_json(value, path: str = "") -> None:
    """Only what JSON can hold: YAML dates, sets or non-text keys would not survive the trip."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueProblem(f"{path or 'value'}: {value} is not a JSON number")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueProblem(f"{path or 'value'}: key {key!r} is not text; put it in quotes")
            check_json(item, f"{path}.{key}" if path else key)
        return
    raise ValueProblem(f"{path or 'value'}: {_describe(value)} is not JSON{_quote_hint(value)}")


def canonical(column: sa.Column, value):
    """A form in which a stored value and a file's value compare equal exactly when they are."""
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, sa.JSON):
        # sort_keys and no int/float/bool folding: 1, 1.0 and true are different JSON values.
        return json.dumps(value, sort_keys=True)
    if isinstance(kind, sa.DateTime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    if isinstance(kind, (sa.Float, sa.Numeric)) and not isinstance(kind, sa.Integer):
        return float(value)
    if isinstance(kind, sa.Uuid):
        return uuid.UUID(str(value))
    return value
