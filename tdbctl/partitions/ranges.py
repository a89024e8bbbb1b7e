"""Partition ranges: where an interval starts, the next one, and the partition's name."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def floor(moment: datetime, interval: str) -> datetime:
    """The start (UTC) of the interval holding ``moment``."""
    moment = moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if interval == "month":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def following(start: datetime, interval: str) -> datetime:
    if interval == "month":
        return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start + timedelta(days=1)


def name_for(table: str, start: datetime, interval: str) -> str:
    """``error_logs_p202612`` (month), ``error_logs_p20261207`` (day)."""
    return f"{table}_p{start:%Y%m}" if interval == "month" else f"{table}_p{start:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def bound_literal(moment: datetime, with_time_zone: bool) -> str:
    """A bound as SQL: UTC for timestamptz, the UTC wall time for a timestamp without one."""
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"'{text}+00'" if with_time_zone else f"'{text}'"


def starts(first: datetime, last: datetime, interval: str) -> list[datetime]:
    """Interval starts from the one holding ``first`` to the one holding ``last``, inclusive."""
    out, current, end = [], floor(first, interval), floor(last, interval)
    while current <= end:
        out.append(current)
        current = following(current, interval)
    return out
