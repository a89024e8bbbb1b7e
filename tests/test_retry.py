"""tdbctl.ops.retry: what cleanup, archive, partition maintenance and the conversion retry with."""

from __future__ import annotations

import pytest

from functools import partial

from tdbctl.ops.retry import Stopped
from tdbctl.ops.retry import with_retries as retried

with_retries = partial(retried, first_pause=0.001)


class Busy(Exception):
    pass


def flaky(failures: int, error=Busy):
    calls = []

    def once():
        calls.append(1)
        if len(calls) <= failures:
            raise error("busy")
        return len(calls)

    return once, calls


def transient(exc):
    return "lock_timeout" if isinstance(exc, Busy) else None


def test_a_transient_failure_is_retried_until_it_passes():
    once, calls = flaky(3)
    seen = []
    assert with_retries(once, transient=transient, on_retry=lambda kind, n: seen.append((kind, n))) == 4
    assert seen == [("lock_timeout", 1), ("lock_timeout", 2), ("lock_timeout", 3)]


def test_any_other_failure_is_raised_at_once():
    once, calls = flaky(1, ValueError)
    with pytest.raises(ValueError):
        with_retries(once, transient=transient)
    assert len(calls) == 1


def test_the_last_attempt_gives_up_with_the_error_asked_for():
    once, calls = flaky(10)
    with pytest.raises(RuntimeError, match="gave up after 3 attempts") as raised:
        with_retries(once, transient=transient, attempts=3,
                     give_up=lambda kind, n, exc: RuntimeError(f"gave up after {n} attempts ({kind})"))
    assert len(calls) == 3 and isinstance(raised.value.__cause__, Busy)
    once, calls = flaky(10)
    with pytest.raises(Busy):
        with_retries(once, transient=transient, attempts=2)
    assert len(calls) == 2


def test_a_stop_asked_for_while_pausing_ends_the_retries():
    once, calls = flaky(10)
    with pytest.raises(Stopped):
        with_retries(once, transient=transient, should_stop=lambda: True)
    assert len(calls) == 1
