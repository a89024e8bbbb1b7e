"""The rows a dialect's ``bulk_insert`` takes (what the synthetic generators make), and their text.

Values are kept in the form cheapest to make and closest to what PostgreSQL stores, and each
dialect converts them: PostgreSQL packs them into binary COPY (copybinary.py), SQLite turns the
few that need it into SQLAlchemy's stored text (sqlite.py). By column type:

- timestamp, timestamptz: integer milliseconds since 1970-01-01 UTC
- date: integer milliseconds, the UTC day they fall in; time: milliseconds since midnight
- uuid: 16 bytes; bytea: bytes; boolean: any truth value; integers: int
- double precision, real: float or int; numeric: int or float (its ``repr`` is the number)
- text, varchar, enum, json, jsonb: str; text[]: a list of str (or None)
- inet: its text (``10.0.0.1``); vector: pgvector's text (``[0.1,0.2]``)
- None anywhere is NULL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HOURS: dict[int, str] = {}
_MINUTES_SECONDS = [f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
_FRACTIONS = [f".{ms:03d}000" for ms in range(1000)]


def timestamp_text(ms: int) -> str:
    """Milliseconds since the epoch -> UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's SQLite form).
    The date-and-hour part is cached (the rows of a session share it), the rest put together from
    precomputed pieces: this runs for every timestamp a SQLite load writes."""
    hour, rest = divmod(ms, HOUR_MS)
    prefix = _HOURS.get(hour)
    if prefix is None:
        prefix = _HOURS[hour] = (_EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%d %H:")
    seconds, millis = divmod(rest, 1000)
    return prefix + _MINUTES_SECONDS[seconds] + _FRACTIONS[millis]


def date_text(ms: int) -> str:
    return timestamp_text(ms)[:10]


def time_text(ms: int) -> str:
    """Milliseconds since midnight -> ``HH:MM:SS.ffffff``."""
    hours, rest = divmod(ms, HOUR_MS)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:" + _MINUTES_SECONDS[seconds] + _FRACTIONS[millis]
