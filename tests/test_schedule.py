"""Poll schedule and backoff as pure functions of the time passed in."""

from __future__ import annotations

import random

import pytest

from fulfillment.schedule import PollSchedule, backoff_delay

SCHEDULE = PollSchedule(first_delay_s=5.0, interval_s=30.0, deadline_s=2700.0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (1000.0, 30.0),  # right after placing
        (1000.0 + 2600.0, 30.0),  # well before the deadline
        (1000.0 + 2690.0, 10.0),  # the last poll moves forward to the deadline
        (1000.0 + 2700.0, None),  # at the deadline
        (1000.0 + 9999.0, None),  # long past it
    ],
)
def test_next_poll_delay(now: float, expected: float | None) -> None:
    assert SCHEDULE.next_poll_delay(placed_at=1000.0, now=now) == expected


def test_first_poll_delay() -> None:
    assert SCHEDULE.first_poll_delay() == 5.0


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 1.0, 2.0), (2, 2.0, 4.0), (3, 4.0, 8.0), (6, 30.0, 60.0), (50, 30.0, 60.0)],
)
def test_backoff_is_capped_and_jittered(attempt: int, low: float, high: float) -> None:
    rand = random.Random(attempt)

    delays = [backoff_delay(attempt, base_s=2.0, max_s=60.0, rand=rand) for _ in range(200)]

    assert min(delays) >= low
    assert max(delays) <= high
    assert len(set(delays)) > 1


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt=0"):
        backoff_delay(0, base_s=1.0, max_s=10.0)
