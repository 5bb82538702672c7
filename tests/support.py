"""Helpers for tests, including the delivery callable the worker under test calls."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection
from typing import Any

import redis
import requests

from fulfillment.records import OrderRecord
from fulfillment.states import OrderState
from sandbox.http import RunningServer
from tasks.runtime import runtime

CALLABLE_KEY = "test:callable-deliveries"


def record_delivery(payload: dict[str, Any]) -> None:
    """The shop callable configured in the worker: append the payload to a Redis list."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        client.rpush(CALLABLE_KEY, json.dumps(payload))
    finally:
        client.close()


def callable_deliveries(client: redis.Redis, reference_id: str) -> list[dict[str, Any]]:
    entries = [json.loads(raw) for raw in client.lrange(CALLABLE_KEY, 0, -1)]
    return [entry for entry in entries if entry["reference_id"] == reference_id]


def wait_for(
    condition: Callable[[], Any], *, timeout_s: float = 30.0, message: str = "condition"
) -> Any:
    """Return the first truthy value of `condition()`, or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {message}")


def wait_for_state(
    reference_id: str, states: Collection[OrderState], *, timeout_s: float = 30.0
) -> OrderRecord:
    def reached() -> OrderRecord | None:
        record = runtime().ledger.get(reference_id)
        return record if record is not None and record.state in states else None

    result: OrderRecord = wait_for(
        reached, timeout_s=timeout_s, message=f"order {reference_id} to reach {sorted(states)}"
    )
    return result


def shop_deliveries(shop: RunningServer, reference_id: str) -> list[dict[str, Any]]:
    response = requests.get(f"{shop.url}/deliveries/{reference_id}", timeout=5)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    deliveries: list[dict[str, Any]] = response.json()["deliveries"]
    return deliveries


def simulator_order_count(simulator: RunningServer, reference_id: str) -> int:
    response = requests.get(
        f"{simulator.url}/_sandbox/orders", params={"reference_id": reference_id}, timeout=5
    )
    response.raise_for_status()
    return int(response.json()["count"])


def arm_fault(
    simulator: RunningServer, endpoint: str, fault: str, count: int = 1, **extra: Any
) -> None:
    response = requests.post(
        f"{simulator.url}/_sandbox/faults",
        json={"endpoint": endpoint, "fault": fault, "count": count, **extra},
        timeout=5,
    )
    response.raise_for_status()
