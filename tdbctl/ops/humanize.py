"""Sizes and spans of time as a person reads them, written the same way by every command."""

from __future__ import annotations


def size(count: float | None) -> str:
    """Bytes in binary units (1 KiB = 1024 B, as pg_size_pretty and ``du -h`` count them)."""
    if count is None:
        return ""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def span(seconds: float) -> str:
    """The two largest units of a length of time: '3d 4h', '2h 5m', '4m 10s', '12s'."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def count(n: int | None) -> str:
    """A whole number with thousands separators: 105,644."""
    return "" if n is None else f"{n:,}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 batch', '2 batches', '1,234 rows'."""
    if many is None:
        many = word + ("es" if word.endswith(("s", "sh", "ch", "x")) else "s")
    return f"{n:,} {word if n == 1 else many}"


def as_utc(value):
    """An aware UTC datetime: a naive one is UTC already (SQLite's, and ChatTrain's columns without
    a zone), an aware one is converted."""
    from datetime import timezone

    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def moment(value) -> str:
    """A point in time, the same on both dialects: '2026-12-06 19:49:12 UTC'."""
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return str(value)
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def percent(ratio: float | None) -> str:
    """A ratio as a percentage, rounded once, here: 0.8512 -> '85.1%'."""
    return "-" if ratio is None else f"{ratio:.1%}"


def seconds(value: float | None) -> str:
    """A duration measured by the tool: '23 ms', '12.4s', '4m 10s'."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f}s" if value < 60 else span(value)
