"""Parse the ages and windows users type: 90d, 12h, 2w, 6mo, 1y, 30m; and absolute dates."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from tdbctl.errors import UsageError

_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "mo": timedelta(days=30),
    "y": timedelta(days=365),
}
_PATTERN = re.compile(r"^\s*([0-9]+)\s*(s|min|mo|m|h|d|w|y)\s*$", re.I | re.ASCII)
LONGEST = timedelta(days=365 * 1000)
"""Longer ages and windows are typing errors: a cutoff that far back would fall before year 1."""
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2999, 12, 31, tzinfo=timezone.utc)


def parse_duration(text: str, *, option: str = "duration", allow_zero: bool = False) -> timedelta:
    """'90d' -> 90 days. Months are 30 days and years 365: retention windows, not calendars."""
    match = _PATTERN.match(text or "")
    if not match:
        raise UsageError(f"{option}: {text!r} is not a duration; use a number and a unit: 90d, 12h, 2w, 6mo, 1y, 30m")
    count, unit = int(match[1]), _UNITS[match[2].lower()]
    if count > LONGEST / unit:
        raise UsageError(f"{option}: {text!r} is longer than 1000 years; give a realistic duration")
    value = count * unit
    if not value and not allow_zero:
        raise UsageError(f"{option}: {text!r} is zero; give a positive duration")
    return value


def parse_date(text: str, *, option: str = "date") -> datetime:
    """'2025-01-01' or an ISO timestamp -> an aware UTC datetime."""
    try:
        if not text.isascii():
            raise ValueError(text)
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a date; use YYYY-MM-DD or an ISO 8601 timestamp") from None
    if isinstance(parsed, date) and not isinstance(parsed, datetime):  # pragma: no cover - fromisoformat gives datetime
        parsed = datetime(parsed.year, parsed.month, parsed.day)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if not EARLIEST <= parsed <= LATEST:
        raise UsageError(f"{option}: {text!r} is outside {EARLIEST.year}-{LATEST.year}")
    return parsed


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
