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
