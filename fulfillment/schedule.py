"""Poll and backoff schedules as pure functions of the time passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class PollSchedule:
    """When to poll an order: a first poll soon after placing, then a fixed interval."""

    first_delay_s: float
    interval_s: float
    deadline_s: float

    def first_poll_delay(self) -> float:
        return self.first_delay_s

    def next_poll_delay(self, *, placed_at: float, now: float) -> float | None:
        """Return seconds until the next poll, or None when the deadline has passed.

        The last poll is moved forward to the deadline itself, so that an order finishing
        just before the deadline is still seen.
        """
        deadline = placed_at + self.deadline_s
        if now >= deadline:
            return None
        return min(self.interval_s, deadline - now)

    def is_overdue(self, *, placed_at: float, now: float) -> bool:
        return now >= placed_at + self.deadline_s


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    rand: random.Random | None = None,
) -> float:
    """Return a jittered, capped exponential delay for retry number `attempt` (from 1).

    Full jitter spreads the retries of many workers that failed at the same moment, so
    that they do not hit a recovering supplier together.
    """
    if attempt < 1:
        raise ValueError(f"attempt={attempt} is invalid: retries are counted from 1")
    ceiling = min(max_s, base_s * 2 ** (attempt - 1))
    generator = rand if rand is not None else random
    return generator.uniform(ceiling / 2, ceiling)
