"""Sizes and spans of time: one way of writing them for every command's output."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tdbctl.backup.store import age
from tdbctl.ops.humanize import size, span


def test_sizes_use_binary_units_with_one_decimal():
    assert [size(n) for n in (None, 0, 1023, 1024, 1536, 10 * 1024 ** 2, 3 * 1024 ** 5)] == [
        "", "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "10.0 MiB", "3072.0 TiB"]


def test_spans_give_the_two_largest_units():
    assert [span(s) for s in (-5, 0, 59.9, 61, 3600 + 120, 86400 * 3 + 3600 * 4 + 59)] == [
        "0s", "0s", "59s", "1m 1s", "1h 2m", "3d 4h"]
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert age(now - timedelta(hours=26, minutes=5), now) == "1d 2h"
