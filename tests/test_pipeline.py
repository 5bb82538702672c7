"""End to end: orders through a real worker, Redis, the simulator and the demo shop."""

from __future__ import annotations

import base64
import secrets
import threading
from typing import Any

import pytest
import redis

from fulfillment.payload import webhook_message_id
from fulfillment.states import OrderState
from sandbox import catalogue
from sandbox.http import RunningServer
from sandbox.processes import CeleryProcess
from tasks.api import submit_order
from tasks.runtime import runtime
from tests.support import (
    callable_deliveries,
    shop_deliveries,
    simulator_order_count,
    wait_for,
    wait_for_state,
)

pytestmark = pytest.mark.e2e

DONE = {OrderState.DELIVERED, OrderState.NEEDS_ATTENTION, OrderState.UNKNOWN_OUTCOME}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def new_reference() -> str:
    return f"T-{secrets.token_hex(6)}"


def deliver(
    items: list[tuple[str, int]], worker: CeleryProcess, shop: RunningServer
) -> tuple[str, dict[str, Any]]:
    """Submit an order, wait until it is delivered, and return the shop's payload."""
    reference_id = new_reference()
    submit_order(reference_id, [{"id": product, "quantity": qty} for product, qty in items])
    record = wait_for_state(reference_id, DONE)
    assert record.state is OrderState.DELIVERED, record
    deliveries = wait_for(lambda: shop_deliveries(shop, reference_id), message="webhook")
    assert len(deliveries) == 1
    payload: dict[str, Any] = deliveries[0]["payload"]
    return reference_id, payload


def keys_of(payload: dict[str, Any]) -> list[dict[str, str]]:
    return [key for product in payload["products"] for key in product["keys"]]


def test_text_key_delivered(
    worker: CeleryProcess, shop: RunningServer, simulator: RunningServer
) -> None:
    reference_id, payload = deliver([(catalogue.TEST_TXT_ID, 1)], worker, shop)

    assert payload["outcome"] == "FULFILLED"
    assert payload["erysta_status"] == "COMPLETED"
    assert payload["complete"] is True
    assert payload["undelivered"] == []
    keys = keys_of(payload)
    assert len(keys) == 1
    assert keys[0]["type"] == "text"
    assert keys[0]["value"]
    assert simulator_order_count(simulator, reference_id) == 1


def test_image_key_is_decodable_png(worker: CeleryProcess, shop: RunningServer) -> None:
    _, payload = deliver([(catalogue.TEST_IMG_ID, 1)], worker, shop)

    keys = keys_of(payload)
    assert len(keys) == 1
    assert keys[0]["type"] == "image"
    header, _, data = keys[0]["value"].partition(",")
    assert header == "data:image/png;base64"
    assert base64.b64decode(data, validate=True).startswith(PNG_SIGNATURE)


def test_several_polls_before_completion(worker: CeleryProcess, shop: RunningServer) -> None:
    reference_id, payload = deliver([(catalogue.SLOW_ID, 1)], worker, shop)

    assert payload["outcome"] == "FULFILLED"
    polls = [
        e for e in runtime().ledger.timeline(reference_id) if e["event"] in {"polled", "finished"}
    ]
    assert len(polls) >= 3
    assert polls[0]["erysta_status"] in {"PENDING", "PROCESSING"}
    assert polls[-1]["erysta_status"] == "COMPLETED"


def test_partial_order_lists_undelivered(worker: CeleryProcess, shop: RunningServer) -> None:
    _, payload = deliver([(catalogue.PARTIAL_ID, 2)], worker, shop)

    assert payload["outcome"] == "PARTIALLY_FULFILLED"
    assert payload["complete"] is False
    assert len(keys_of(payload)) == 1
    assert payload["undelivered"] == [{"product_id": catalogue.PARTIAL_ID, "quantity": 1}]


@pytest.mark.parametrize(
    ("product_id", "outcome"),
    [
        (catalogue.FAILING_ID, "FAILED"),
        (catalogue.REFUNDED_ID, "REFUNDED"),
    ],
)
def test_unfulfilled_order_lists_everything_undelivered(
    product_id: str, outcome: str, worker: CeleryProcess, shop: RunningServer
) -> None:
    _, payload = deliver([(product_id, 1)], worker, shop)

    assert payload["outcome"] == outcome
    assert keys_of(payload) == []
    assert payload["undelivered"] == [{"product_id": product_id, "quantity": 1}]


@pytest.mark.parametrize(
    "product_id",
    [catalogue.OUT_OF_STOCK_ID, catalogue.EXPENSIVE_ID],
    ids=["out-of-stock", "insufficient-funds"],
)
def test_rejected_order_reaches_shop(
    product_id: str, worker: CeleryProcess, shop: RunningServer, simulator: RunningServer
) -> None:
    reference_id, payload = deliver([(product_id, 1)], worker, shop)

    assert payload["outcome"] == "REJECTED"
    assert payload["erysta_order_id"] is None
    assert payload["message"]
    assert payload["undelivered"] == [{"product_id": product_id, "quantity": 1}]
    assert simulator_order_count(simulator, reference_id) == 0


def test_priced_order_records_debit(worker: CeleryProcess, shop: RunningServer) -> None:
    _, payload = deliver([(catalogue.PRICED_ID, 2)], worker, shop)

    assert payload["outcome"] == "FULFILLED"
    assert payload["total_debit"] == str(catalogue.CATALOGUE[catalogue.PRICED_ID].price * 2)


def test_callable_sink_receives_same_payload(
    worker: CeleryProcess, shop: RunningServer, redis_client: redis.Redis
) -> None:
    reference_id, payload = deliver([(catalogue.TEST_TXT_ID, 1)], worker, shop)

    received = callable_deliveries(redis_client, reference_id)
    assert len(received) == 1
    assert keys_of(received[0]) == keys_of(payload)


def test_webhook_carries_stable_message_id(worker: CeleryProcess, shop: RunningServer) -> None:
    reference_id = new_reference()
    submit_order(reference_id, [{"id": catalogue.TEST_TXT_ID, "quantity": 1}])

    wait_for_state(reference_id, DONE)
    deliveries = wait_for(lambda: shop_deliveries(shop, reference_id), message="webhook")
    assert deliveries[0]["webhook_id"] == webhook_message_id(reference_id)


def test_duplicate_submit_buys_once(
    worker: CeleryProcess, shop: RunningServer, simulator: RunningServer
) -> None:
    reference_id = new_reference()
    items = [{"id": catalogue.TEST_TXT_ID, "quantity": 1}]

    first = submit_order(reference_id, items)
    second = submit_order(reference_id, items)
    wait_for_state(reference_id, DONE)
    third = submit_order(reference_id, items)

    assert first.created is True
    assert second.created is False
    assert third.state == "DELIVERED"
    assert simulator_order_count(simulator, reference_id) == 1
    assert len(wait_for(lambda: shop_deliveries(shop, reference_id))) == 1


def test_concurrent_submits_buy_once(
    worker: CeleryProcess, shop: RunningServer, simulator: RunningServer
) -> None:
    reference_id = new_reference()
    items = [{"id": catalogue.TEST_TXT_ID, "quantity": 1}]
    created: list[bool] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        created.append(submit_order(reference_id, items).created)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for_state(reference_id, DONE)

    assert created.count(True) == 1
    assert simulator_order_count(simulator, reference_id) == 1


def test_timeline_records_supplier_calls(worker: CeleryProcess, shop: RunningServer) -> None:
    reference_id, _ = deliver([(catalogue.TEST_TXT_ID, 1)], worker, shop)

    events = runtime().ledger.timeline(reference_id)
    names = [event["event"] for event in events]
    assert names[0] == "received"
    assert "placed" in names
    assert names[-1] == "delivered"
    placed = next(event for event in events if event["event"] == "placed")
    assert placed["trace_id"]
    assert placed["http_status"] == 200
