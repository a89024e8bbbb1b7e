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


def test_counts_plurals_moments_and_durations_read_the_same_everywhere():
    from tdbctl.ops.humanize import count, moment, percent, plural, seconds

    assert [count(None), count(0), count(105644)] == ["", "0", "105,644"]
    assert [plural(1, "batch"), plural(2, "batch"), plural(15971, "row"), plural(3, "index", "indexes")] == [
        "1 batch", "2 batches", "15,971 rows", "3 indexes"]
    naive = datetime(2026, 12, 6, 19, 49, 12, 78040)  # SQLite's: UTC without a zone
    aware = datetime(2026, 12, 6, 20, 49, 12, tzinfo=timezone(timedelta(hours=1)))
    assert moment(naive) == moment(aware) == moment("2026-12-06T19:49:12+00:00") == "2026-12-06 19:49:12 UTC"
    assert [percent(None), percent(0.8512)] == ["-", "85.1%"]
    assert [seconds(None), seconds(0.023), seconds(12.44), seconds(250)] == ["", "23 ms", "12.4s", "4m 10s"]
