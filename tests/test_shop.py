"""Specification of the demo shop that receives signed webhooks."""

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import requests
import standardwebhooks

from fulfillment.signing import generate_secret, signature_headers
from sandbox.shop import RunningShop, start_shop

TIMEOUT_S = 10
TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def shop_secret() -> str:
    return generate_secret()


@pytest.fixture
def demo_shop(shop_secret: str) -> Iterator[RunningShop]:
    """A shop private to one test."""
    running = start_shop(shop_secret)
    yield running
    running.stop()


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def post_webhook(
    shop: RunningShop,
    secret: str,
    payload: Any,
    msg_id: str = "msg_1",
    timestamp: int | None = None,
) -> requests.Response:
    body = payload if isinstance(payload, bytes) else encode(payload)
    signed_at = int(time.time()) if timestamp is None else timestamp
    headers = signature_headers(secret, msg_id, signed_at, body)
    return post_raw(shop, body, headers)


def post_raw(shop: RunningShop, body: bytes, headers: dict[str, str]) -> requests.Response:
    headers = {"Content-Type": "application/json", **headers}
    return requests.post(shop.webhook_url, data=body, headers=headers, timeout=TIMEOUT_S)


def deliveries(shop: RunningShop) -> dict[str, Any]:
    summary: dict[str, Any] = requests.get(f"{shop.url}/deliveries", timeout=TIMEOUT_S).json()
    return summary


def test_webhook_url(demo_shop: RunningShop) -> None:
    assert demo_shop.webhook_url == demo_shop.url + "/webhooks/erysta"


def test_signed_webhook_recorded(demo_shop: RunningShop, shop_secret: str) -> None:
    payload = {"reference_id": "SHOP-1", "status": "COMPLETED"}

    response = post_webhook(demo_shop, shop_secret, payload, msg_id="msg_a")
    summary = deliveries(demo_shop)

    assert response.status_code == 204
    assert response.content == b""
    [delivery] = summary["deliveries"]
    assert delivery["webhook_id"] == "msg_a"
    assert delivery["payload"] == payload
    assert TIMESTAMP_PATTERN.fullmatch(delivery["received_at"])
    assert summary["duplicates"] == {}
    assert summary["rejected"] == 0


def test_standardwebhooks_signature_accepted(demo_shop: RunningShop, shop_secret: str) -> None:
    body = encode({"reference_id": "SHOP-1"})
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_svix",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(shop_secret).sign("msg_svix", now, body),
    }

    response = post_raw(demo_shop, body, headers)

    assert response.status_code == 204


def test_wrong_secret_rejected(demo_shop: RunningShop) -> None:
    response = post_webhook(demo_shop, generate_secret(), {"reference_id": "SHOP-1"})
    summary = deliveries(demo_shop)

    assert response.status_code == 401
    assert "no v1 signature matches" in response.json()["error"]
    assert summary["deliveries"] == []
    assert summary["rejected"] == 1


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_rejected(demo_shop: RunningShop, shop_secret: str, missing: str) -> None:
    body = encode({"reference_id": "SHOP-1"})
    headers = signature_headers(shop_secret, "msg_1", int(time.time()), body)
    del headers[missing]

    response = post_raw(demo_shop, body, headers)

    assert response.status_code == 401
    assert f"missing {missing} header" in response.json()["error"]


def test_tampered_body_rejected(demo_shop: RunningShop, shop_secret: str) -> None:
    body = encode({"reference_id": "SHOP-1"})
    headers = signature_headers(shop_secret, "msg_1", int(time.time()), body)

    response = post_raw(demo_shop, encode({"reference_id": "SHOP-2"}), headers)

    assert response.status_code == 401


@pytest.mark.parametrize(
    "offset_s", [pytest.param(-600, id="stale"), pytest.param(600, id="future")]
)
def test_timestamp_outside_tolerance_rejected(
    demo_shop: RunningShop, shop_secret: str, offset_s: int
) -> None:
    signed_at = int(time.time()) + offset_s

    response = post_webhook(demo_shop, shop_secret, {"reference_id": "R"}, timestamp=signed_at)

    assert response.status_code == 401
    assert "outside the tolerance" in response.json()["error"]


def test_custom_tolerance(shop_secret: str) -> None:
    running = start_shop(shop_secret, tolerance_s=10)
    try:
        signed_at = int(time.time()) - 60

        response = post_webhook(running, shop_secret, {"reference_id": "R"}, timestamp=signed_at)

        assert response.status_code == 401
    finally:
        running.stop()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'["reference_id"]', id="array"),
        pytest.param(b"", id="empty"),
    ],
)
def test_invalid_body_rejected(demo_shop: RunningShop, shop_secret: str, body: bytes) -> None:
    response = post_webhook(demo_shop, shop_secret, body)
    summary = deliveries(demo_shop)

    assert response.status_code == 400
    assert summary["deliveries"] == []
    assert summary["rejected"] == 1


def test_duplicate_webhook_counted_once(demo_shop: RunningShop, shop_secret: str) -> None:
    payload = {"reference_id": "SHOP-1"}

    statuses = [
        post_webhook(demo_shop, shop_secret, payload, msg_id="msg_dup").status_code
        for _ in range(3)
    ]
    summary = deliveries(demo_shop)

    assert statuses == [204, 204, 204]
    assert len(summary["deliveries"]) == 1
    assert summary["duplicates"] == {"msg_dup": 2}


def test_distinct_ids_recorded_separately(demo_shop: RunningShop, shop_secret: str) -> None:
    post_webhook(demo_shop, shop_secret, {"reference_id": "SHOP-1"}, msg_id="msg_1")
    post_webhook(demo_shop, shop_secret, {"reference_id": "SHOP-1"}, msg_id="msg_2")

    summary = deliveries(demo_shop)

    assert [d["webhook_id"] for d in summary["deliveries"]] == ["msg_1", "msg_2"]
    assert summary["duplicates"] == {}


def test_deliveries_by_reference(demo_shop: RunningShop, shop_secret: str) -> None:
    post_webhook(demo_shop, shop_secret, {"reference_id": "SHOP/1 a"}, msg_id="msg_1")
    post_webhook(demo_shop, shop_secret, {"reference_id": "SHOP-2"}, msg_id="msg_2")
    post_webhook(demo_shop, shop_secret, {"reference_id": "SHOP/1 a"}, msg_id="msg_3")

    response = requests.get(
        f"{demo_shop.url}/deliveries/{quote('SHOP/1 a', safe='')}", timeout=TIMEOUT_S
    )

    assert response.status_code == 200
    assert response.json()["reference_id"] == "SHOP/1 a"
    assert [d["webhook_id"] for d in response.json()["deliveries"]] == ["msg_1", "msg_3"]


def test_deliveries_unknown_reference_not_found(demo_shop: RunningShop) -> None:
    response = requests.get(f"{demo_shop.url}/deliveries/NOPE", timeout=TIMEOUT_S)

    assert response.status_code == 404


def test_payload_without_reference_recorded(demo_shop: RunningShop, shop_secret: str) -> None:
    response = post_webhook(demo_shop, shop_secret, {"event": "ping"})

    assert response.status_code == 204
    assert len(deliveries(demo_shop)["deliveries"]) == 1


def test_injected_failures_then_success(demo_shop: RunningShop, shop_secret: str) -> None:
    armed = requests.post(
        f"{demo_shop.url}/_shop/fail", json={"count": 2, "status": 503}, timeout=TIMEOUT_S
    )
    payload = {"reference_id": "SHOP-1"}

    statuses = [
        post_webhook(demo_shop, shop_secret, payload, msg_id="msg_1").status_code for _ in range(3)
    ]
    summary = deliveries(demo_shop)

    assert armed.status_code == 200
    assert statuses == [503, 503, 204]
    assert len(summary["deliveries"]) == 1
    assert summary["duplicates"] == {}


def test_injected_failure_default_status(demo_shop: RunningShop, shop_secret: str) -> None:
    requests.post(f"{demo_shop.url}/_shop/fail", json={"count": 1}, timeout=TIMEOUT_S)

    response = post_webhook(demo_shop, shop_secret, {"reference_id": "SHOP-1"})

    assert response.status_code == 503


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"count": -1}, id="negative-count"),
        pytest.param({"count": "2"}, id="count-string"),
        pytest.param({"count": 1, "status": 200}, id="success-status"),
        pytest.param({"count": 1, "status": 700}, id="unknown-status"),
    ],
)
def test_injected_failure_invalid(demo_shop: RunningShop, body: dict[str, Any]) -> None:
    response = requests.post(f"{demo_shop.url}/_shop/fail", json=body, timeout=TIMEOUT_S)

    assert response.status_code == 400


def test_reset_forgets_everything(demo_shop: RunningShop, shop_secret: str) -> None:
    post_webhook(demo_shop, shop_secret, {"reference_id": "SHOP-1"}, msg_id="msg_1")
    post_webhook(demo_shop, shop_secret, {"reference_id": "SHOP-1"}, msg_id="msg_1")
    post_webhook(demo_shop, generate_secret(), {"reference_id": "SHOP-1"})
    requests.post(f"{demo_shop.url}/_shop/fail", json={"count": 5}, timeout=TIMEOUT_S)

    response = requests.post(f"{demo_shop.url}/_shop/reset", timeout=TIMEOUT_S)

    assert response.status_code == 200
    assert deliveries(demo_shop) == {"deliveries": [], "duplicates": {}, "rejected": 0}
    assert post_webhook(demo_shop, shop_secret, {"reference_id": "R"}).status_code == 204


def test_unknown_path_not_found(demo_shop: RunningShop) -> None:
    response = requests.get(f"{demo_shop.url}/webhooks/erysta", timeout=TIMEOUT_S)

    assert response.status_code == 404


def test_malformed_secret_rejected_at_start() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        start_shop("not-a-secret")


def test_rejection_log_hides_secret_and_payload(
    demo_shop: RunningShop, shop_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    with requests.Session() as session:
        body = encode({"reference_id": "SHOP-1", "keys": ["CANARY-SECRET-VALUE"]})
        headers = signature_headers(generate_secret(), "msg_1", int(time.time()), body)
        session.post(demo_shop.webhook_url, data=body, headers=headers, timeout=TIMEOUT_S)
        # The same connection serves the next request only after logging this one.
        session.get(f"{demo_shop.url}/deliveries", timeout=TIMEOUT_S)

    assert "POST /webhooks/erysta 401" in caplog.text
    assert shop_secret.removeprefix("whsec_") not in caplog.text
    assert "CANARY-SECRET-VALUE" not in caplog.text
