"""The shared rate limit: a token bucket in Redis, with a fake clock."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import redis

from erysta import RedisTokenBucket
from fulfillment.states import OrderState
from sandbox import catalogue
from sandbox.simulator import RunningSimulator
from tasks.api import submit_order
from tasks.placing import place_order
from tasks.polling import poll_order
from tasks.runtime import Runtime
from tests.conftest import FakeClock
from tests.support import arm_fault


def bucket(client: redis.Redis, clock: FakeClock, key: str = "") -> RedisTokenBucket:
    return RedisTokenBucket(
        client,
        key or f"limit-{secrets.token_hex(4)}",
        calls_per_minute=60,
        burst=3,
        clock=clock,
    )


def test_burst_then_wait(redis_client: redis.Redis, clock: FakeClock) -> None:
    limiter = bucket(redis_client, clock)

    waits = [limiter.acquire() for _ in range(4)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(1.0)


def test_refills_at_the_rate(redis_client: redis.Redis, clock: FakeClock) -> None:
    limiter = bucket(redis_client, clock)
    for _ in range(3):
        limiter.acquire()

    clock.advance(2.0)

    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_shared_between_processes(redis_client: redis.Redis, clock: FakeClock) -> None:
    key = f"limit-{secrets.token_hex(4)}"
    first, second = bucket(redis_client, clock, key), bucket(redis_client, clock, key)

    first.acquire()
    first.acquire()
    second.acquire()

    assert second.acquire() > 0
    assert first.acquire() > 0


def test_pause_holds_every_caller(redis_client: redis.Redis, clock: FakeClock) -> None:
    key = f"limit-{secrets.token_hex(4)}"
    first, second = bucket(redis_client, clock, key), bucket(redis_client, clock, key)

    first.pause(30.0)

    assert second.acquire() == pytest.approx(30.0)
    clock.advance(31.0)
    assert second.acquire() == 0.0


def test_shorter_pause_keeps_longer(redis_client: redis.Redis, clock: FakeClock) -> None:
    limiter = bucket(redis_client, clock)

    limiter.pause(30.0)
    limiter.pause(5.0)

    assert limiter.acquire() == pytest.approx(30.0)


def test_invalid_limit_rejected(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="calls_per_minute=0"):
        RedisTokenBucket(redis_client, "x", calls_per_minute=0, burst=1)


def pause_calls(rt: Runtime, seconds: float) -> None:
    limiter = rt.client.limiter
    assert limiter is not None
    limiter.pause(seconds)


def test_throttled_place_waits_without_sending(
    runtime_with_clock: Runtime,
    simulator: RunningSimulator,
    published: list[tuple[str, list[Any]]],
) -> None:
    submit_order("L-place", [{"id": catalogue.TEST_TXT_ID, "quantity": 1}])
    published.clear()
    pause_calls(runtime_with_clock, 5.0)

    result = place_order("L-place")

    record = runtime_with_clock.ledger.get("L-place")
    assert result["state"] == "RECEIVED"
    assert record is not None
    assert record.state is OrderState.RECEIVED
    assert runtime_with_clock.ledger.timeline("L-place")[-1]["event"] == "throttled"
    assert published == [("tasks.place_order", ["L-place"])]


def test_throttled_poll_is_not_an_error(runtime_with_clock: Runtime, clock: FakeClock) -> None:
    submit_order("L-poll", [{"id": catalogue.SLOW_ID, "quantity": 1}])
    place_order("L-poll")
    pause_calls(runtime_with_clock, 5.0)

    result = poll_order("L-poll", 1)

    record = runtime_with_clock.ledger.get("L-poll")
    assert result["state"] == "POLLING"
    assert record is not None
    assert record.error_count == 0
    assert record.next_action_at == pytest.approx(clock.now + 5.0)


def test_erysta_429_pauses_every_worker(
    runtime_with_clock: Runtime, simulator: RunningSimulator, clock: FakeClock
) -> None:
    submit_order("L-429", [{"id": catalogue.SLOW_ID, "quantity": 1}])
    place_order("L-429")
    arm_fault(simulator, "keys", "rate_limited", retry_after_s=7)

    poll_order("L-429", 1)

    limiter = runtime_with_clock.client.limiter
    assert limiter is not None
    assert limiter.acquire() == pytest.approx(7.0)


def test_long_pause_capped_countdown(runtime_with_clock: Runtime, clock: FakeClock) -> None:
    submit_order("L-long", [{"id": catalogue.SLOW_ID, "quantity": 1}])
    place_order("L-long")
    pause_calls(runtime_with_clock, 7200.0)

    poll_order("L-long", 1)

    record = runtime_with_clock.ledger.get("L-long")
    cap_s = runtime_with_clock.settings.poll_error_backoff_max_s
    assert record is not None
    assert record.next_action_at == pytest.approx(clock.now + cap_s)
