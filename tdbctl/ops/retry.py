"""One way to retry a short transaction that lost to a lock or a concurrent change.

A batch of cleanup, a partition created or dropped, a batch of a conversion's row move: each is
one transaction that either commits or rolls back whole, so running it again is safe. Only what
``transient`` names (a lock timeout, a serialization failure, a batch that changed under it) is
retried, after a pause that doubles up to a cap; anything else, or the last attempt, is raised.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")

ATTEMPTS = 10
FIRST_PAUSE = 0.25
MAX_PAUSE = 5.0


class Stopped(Exception):
    """``should_stop`` said so while pausing between attempts."""


def with_retries(
    once: Callable[[], T],
    *,
    transient: Callable[[BaseException], str | None],
    attempts: int = ATTEMPTS,
    on_retry: Callable[[str, int], None] = lambda kind, attempt: None,
    give_up: Callable[[str, int, BaseException], BaseException] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    first_pause: float = FIRST_PAUSE,
) -> T:
    """``once()``'s result. ``transient(exc)``: the kind of a retryable failure, None for any
    other; ``on_retry(kind, attempt)`` before each pause; ``give_up(kind, attempts, exc)``: the
    error to raise when the attempts run out (default: the last failure itself)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return once()
        except Exception as exc:
            kind = transient(exc)
            if kind is None:
                raise
            on_retry(kind, attempt)
            if attempt >= attempts:
                if give_up is None:
                    raise
                raise give_up(kind, attempt, exc) from exc
            deadline = time.monotonic() + min(first_pause * 2 ** (attempt - 1), MAX_PAUSE)
            while time.monotonic() < deadline:
                if should_stop():
                    raise Stopped() from exc
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

