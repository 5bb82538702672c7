"""Delivery retries kept in the ledger and sent by the reconciler, with a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fulfillment.payload import webhook_message_id
from fulfillment.states import OrderState
from sandbox.shop import RunningShop
from tasks.delivering import deliver_keys
from tasks.reconciling import reconcile
from tasks.runtime import Runtime
from tests.conftest import FakeClock, order_in
from tests.support import shop_deliveries

Published = list[tuple[str, list[Any]]]
DAY_S = 24 * 3600.0


@pytest.fixture
def shop_down(shop: RunningShop) -> Iterator[None]:
    """Make the demo shop return 503 until the test brings it back."""
    requests.post(f"{shop.url}/_shop/fail", json={"count": 100_000, "status": 503}, timeout=5)
    yield
    shop_back(shop)


def shop_back(shop: RunningShop) -> None:
    """Stop the injected failures, keeping what the shop recorded."""
    requests.post(f"{shop.url}/_shop/fail", json={"count": 0}, timeout=5)


def run_published(published: Published) -> None:
    """Run the deliveries this process sent, as a worker would, and forget them."""
    sent = list(published)
    published.clear()
    for name, arguments in sent:
        assert name == "tasks.deliver_keys"
        deliver_keys(*arguments)


def test_shop_down_for_a_day_receives_once(
    runtime_with_clock: Runtime,
    clock: FakeClock,
    shop: RunningShop,
    shop_down: None,
    published: Published,
) -> None:
    order_in(runtime_with_clock, "D-day", OrderState.FULFILLED, outcome=OrderState.FULFILLED)
    deliver_keys("D-day")
    went_down = clock.now

    for _ in range(1000):
        record = runtime_with_clock.ledger.get("D-day")
        assert record is not None
        if record.state is not OrderState.DELIVERING:
            break
        if clock.now - went_down > DAY_S:
            shop_back(shop)
        clock.advance(runtime_with_clock.settings.delivery_retry_backoff_max_s)
        reconcile()
        run_published(published)

    record = runtime_with_clock.ledger.get("D-day")
    assert record is not None
    assert record.state is OrderState.DELIVERED
    assert record.delivery_attempts > 20
    deliveries = shop_deliveries(shop, "D-day")
    assert len(deliveries) == 1
    assert deliveries[0]["webhook_id"] == webhook_message_id("D-day")


def test_failed_delivery_is_not_a_countdown(
    runtime_with_clock: Runtime, clock: FakeClock, shop_down: None, published: Published
) -> None:
    order_in(runtime_with_clock, "D-due", OrderState.FULFILLED, outcome=OrderState.FULFILLED)

    result = deliver_keys("D-due")

    record = runtime_with_clock.ledger.get("D-due")
    assert record is not None
    assert result["state"] == "DELIVERING"
    assert published == []
    assert runtime_with_clock.ledger.due(now=clock.now) == []
    assert runtime_with_clock.ledger.due(now=clock.now + 60) == ["D-due"]


def test_retries_stop_after_retry_period(
    runtime_with_clock: Runtime, clock: FakeClock, shop_down: None, published: Published
) -> None:
    order_in(runtime_with_clock, "D-late", OrderState.FULFILLED, outcome=OrderState.FULFILLED)
    deliver_keys("D-late")

    clock.advance(runtime_with_clock.settings.delivery_retry_max_s + 1)
    reconcile()
    run_published(published)

    record = runtime_with_clock.ledger.get("D-late")
    assert record is not None
    assert record.state is OrderState.NEEDS_ATTENTION
    assert record.message is not None
    assert "HTTP 503" in record.message


def test_rejecting_shop_flags_at_once(
    runtime_with_clock: Runtime, shop: RunningShop, published: Published
) -> None:
    requests.post(f"{shop.url}/_shop/fail", json={"count": 1, "status": 410}, timeout=5)
    order_in(runtime_with_clock, "D-gone", OrderState.FULFILLED, outcome=OrderState.FULFILLED)

    deliver_keys("D-gone")

    record = runtime_with_clock.ledger.get("D-gone")
    assert record is not None
    assert record.state is OrderState.NEEDS_ATTENTION
    assert record.message is not None
    assert "HTTP 410" in record.message
    assert published == []
