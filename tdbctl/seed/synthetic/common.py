"""What every domain's generator shares: the plan, time arithmetic in milliseconds, ids, values.

Rows are tuples of the values tdbctl/dialects/bulkrows.py describes, which each dialect converts:
timestamps as integer milliseconds (the arithmetic below works in them), UUIDs as 16 bytes, JSON
as text. Nothing is formatted here that PostgreSQL would only have to parse back.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

SYNTHETIC_JSON = '{"synthetic": true}'

# Ages that cleanup, archive and stats measure against; the oldest sessions are placed just past
# them when the span reaches that far, so every rule has rows to act on even at small --sessions.
ANCHOR_AGES = (2 * 365 * DAY, 365 * DAY, 90 * DAY, 30 * DAY, 7 * DAY)


@dataclass
class Plan:
    random_seed: int
    sessions: int
    start: datetime
    end: datetime

    # Cached: generation reads them for every session and child row.
    @cached_property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @cached_property
    def end_ms(self) -> int:
        return to_ms(self.end)


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def dumps(value) -> str:
    return json.dumps(value, separators=(", ", ": "))


@dataclass
class DomainContext:
    """The state one domain's generator works with."""

    plan: Plan
    domain: str
    salt: int
    """Synthetic sessions already in this domain: a second run on the same database differs."""
    rng: random.Random = field(init=False)

    def __post_init__(self):
        # A str seed is hashed with SHA-512 by random.Random: stable across processes and runs.
        self.rng = random.Random(f"tdbctl-synthetic:{self.plan.random_seed}:{self.domain}:{self.salt}")
        self.random = self.rng.random
        self._bits = self.rng.getrandbits

    # random.randint and random.choice cost three times random() itself; generation calls them
    # millions of times.
    def ri(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    def pick(self, items):
        return items[int(self.random() * len(items))]

    def uni(self, low: float, high: float, digits: int = 3) -> float:
        return round(low + (high - low) * self.random(), digits)

    def uuid(self) -> bytes:
        return self._bits(128).to_bytes(16, "big")

    def session_window(self, index: int, duration_ms: int, *, recent: bool = False) -> int:
        """Start time of session ``index``: anchors first, then skewed towards the recent end."""
        start, end = self.plan.start_ms, self.plan.end_ms - duration_ms - MINUTE
        if end <= start:
            return start
        if recent:
            return max(start, end - self.ri(MINUTE, 45 * MINUTE))
        if index < len(ANCHOR_AGES):
            anchored = self.plan.end_ms - ANCHOR_AGES[index] - self.ri(HOUR, 3 * DAY)
            if start <= anchored <= end:
                return anchored
        # Platforms grow: u ** 0.75 puts more sessions in the recent part of the span.
        return start + int((end - start) * (self.random() ** 0.75))

    def pick_weighted(self, choices: tuple, cumulative: tuple) -> str:
        return self.rng.choices(choices, cum_weights=cumulative)[0]

    def clamp(self, ms: int) -> int:
        return min(ms, self.plan.end_ms)


def cumulative(weights: dict) -> tuple[tuple, tuple]:
    total, out = 0.0, []
    for weight in weights.values():
        total += weight
        out.append(total)
    return tuple(weights), tuple(out)


def vector_pool(rng: random.Random, size: int = 24, dimensions: int = 1536) -> list[str]:
    """A few embedding texts to draw from: 1536 random floats per row would dominate the run."""
    return ["[" + ",".join(f"{rng.uniform(-0.08, 0.08):.5f}" for _ in range(dimensions)) + "]" for _ in range(size)]
