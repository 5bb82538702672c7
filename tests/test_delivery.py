"""Payload building and the webhook sink against the demo shop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from fulfillment.payload import build_payload, format_money, webhook_message_id
from fulfillment.records import LineItem, OrderRecord
from fulfillment.signing import generate_secret
from fulfillment.sinks import CallableSink, DeliveryError, WebhookSink
from fulfillment.states import OrderState
from fulfillment.vault import StoredKey, StoredProduct
from sandbox.shop import RunningShop, start_shop

TXT = "69ae19b4397b2e44c02853f5"
IMG = "69ae19b4397b2e44c02853f6"


def record(outcome: OrderState, *items: LineItem) -> OrderRecord:
    return OrderRecord(
        reference_id="R-1",
        state=OrderState.DELIVERING,
        items=items,
        created_at=1.0,
        updated_at=1.0,
        outcome=outcome,
    )


def product(product_id: str, quantity: int, keys: int) -> StoredProduct:
    return StoredProduct(
        product_id=product_id,
        title="Product",
        quantity=quantity,
        keys=tuple(StoredKey(type="text", value=f"KEY-{n}") for n in range(keys)),
    )


def test_fulfilled_payload_is_complete() -> None:
    payload = build_payload(
        record(OrderState.FULFILLED, LineItem(TXT, 2)), [product(TXT, 2, 2)], now=0.0
    )

    assert payload["type"] == "order.fulfilled"
    assert payload["outcome"] == "FULFILLED"
    assert payload["complete"] is True
    assert payload["undelivered"] == []
    assert payload["products"][0]["quantity_delivered"] == 2
    assert [key["value"] for key in payload["products"][0]["keys"]] == ["KEY-0", "KEY-1"]


def test_partial_payload_lists_missing_units() -> None:
    payload = build_payload(
        record(OrderState.PARTIALLY_FULFILLED, LineItem(TXT, 3), LineItem(IMG, 1)),
        [product(TXT, 3, 1), product(IMG, 1, 0)],
        now=0.0,
    )

    assert payload["complete"] is False
    assert payload["undelivered"] == [
        {"product_id": TXT, "quantity": 2},
        {"product_id": IMG, "quantity": 1},
    ]


def test_rejected_payload_lists_every_item() -> None:
    payload = build_payload(record(OrderState.REJECTED, LineItem(TXT, 1)), [], now=0.0)

    assert payload["type"] == "order.rejected"
    assert payload["products"] == []
    assert payload["undelivered"] == [{"product_id": TXT, "quantity": 1}]


def test_message_id_stable_per_order() -> None:
    assert webhook_message_id("R-1") == webhook_message_id("R-1")
    assert webhook_message_id("R-1") != webhook_message_id("R-2")


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0", "0.00"), ("25", "25.00"), ("990.4", "990.40"), ("0.005", "0.005")],
)
def test_format_money(amount: str, text: str) -> None:
    assert format_money(Decimal(amount)) == text


@pytest.fixture
def shop_with_secret() -> Iterator[tuple[RunningShop, str]]:
    secret = generate_secret()
    shop = start_shop(secret)
    yield shop, secret
    shop.stop()


def sink(shop: RunningShop, secret: str) -> WebhookSink:
    return WebhookSink(
        shop.webhook_url, secret, timeout_s=5, session=requests.Session(), clock=time.time
    )


def test_webhook_signature_accepted(shop_with_secret: tuple[RunningShop, str]) -> None:
    shop, secret = shop_with_secret
    payload = {"reference_id": "R-hook", "outcome": "FULFILLED"}

    sink(shop, secret).deliver(payload, message_id="msg_1")

    received = requests.get(f"{shop.url}/deliveries", timeout=5).json()
    assert [entry["payload"] for entry in received["deliveries"]] == [payload]
    assert received["rejected"] == 0


def test_webhook_wrong_secret_not_retryable(shop_with_secret: tuple[RunningShop, str]) -> None:
    shop, _ = shop_with_secret

    with pytest.raises(DeliveryError) as raised:
        sink(shop, generate_secret()).deliver({"reference_id": "R-x"}, message_id="msg_2")

    assert raised.value.http_status == 401
    assert raised.value.retryable is False


@pytest.mark.parametrize(
    ("status", "retryable"), [(503, True), (429, True), (408, True), (410, False)]
)
def test_webhook_failure_classified(
    status: int, retryable: bool, shop_with_secret: tuple[RunningShop, str]
) -> None:
    shop, secret = shop_with_secret
    requests.post(f"{shop.url}/_shop/fail", json={"count": 1, "status": status}, timeout=5)

    with pytest.raises(DeliveryError) as raised:
        sink(shop, secret).deliver({"reference_id": "R-x"}, message_id="msg_3")

    assert raised.value.http_status == status
    assert raised.value.retryable is retryable


def test_webhook_unreachable_is_retryable() -> None:
    closed = WebhookSink(
        "http://127.0.0.1:9/hook",
        generate_secret(),
        timeout_s=1,
        session=requests.Session(),
        clock=time.time,
    )

    with pytest.raises(DeliveryError) as raised:
        closed.deliver({"reference_id": "R-x"}, message_id="msg_4")

    assert raised.value.retryable is True


def test_webhook_repr_hides_secret() -> None:
    secret = generate_secret()
    webhook = WebhookSink(
        "http://127.0.0.1:9/h", secret, timeout_s=1, session=requests.Session(), clock=time.time
    )

    assert secret not in repr(webhook)


def failing_callable(payload: dict[str, object]) -> None:
    raise RuntimeError(f"shop broke on {payload['reference_id']} SECRET")


def test_callable_error_hides_its_message() -> None:
    with pytest.raises(DeliveryError) as raised:
        CallableSink("tests.test_delivery:failing_callable").deliver(
            {"reference_id": "R-1"}, message_id="m"
        )

    assert "RuntimeError" in str(raised.value)
    assert "SECRET" not in str(raised.value)
    assert raised.value.retryable is True


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("absent_module_xyz:deliver", "cannot be imported"),
        ("tests.test_delivery:absent", "has no absent"),
        ("tests.test_delivery:TXT", "not callable"),
    ],
)
def test_callable_path_validated(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        CallableSink(path)
