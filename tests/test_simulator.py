"""Specification of the Erysta simulator, exercised over real HTTP."""

import base64
import logging
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from sandbox import catalogue
from sandbox.faults import Endpoint, Fault, RandomFault
from sandbox.simulator import RunningSimulator, SimulatorConfig, start_simulator

API_KEY = "sandbox-key"
HEADERS = {"x-api-key": API_KEY}
TIMEOUT_S = 10
TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TEXT_KEY_PATTERN = re.compile(r"[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}")
ORDER_ID_PATTERN = re.compile(r"[A-Z0-9]{8}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def fresh_sim() -> Iterator[RunningSimulator]:
    """A simulator with the default configuration, private to one test."""
    running = start_simulator()
    yield running
    running.stop()


@pytest.fixture
def make_simulator() -> Iterator[Any]:
    """Start simulators with a custom configuration and stop them after the test."""
    started: list[RunningSimulator] = []

    def make(**settings: Any) -> RunningSimulator:
        running = start_simulator(SimulatorConfig(**settings))
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


def get_balance(sim: RunningSimulator, headers: dict[str, str] = HEADERS) -> requests.Response:
    return requests.get(f"{sim.base_url}/balance", headers=headers, timeout=TIMEOUT_S)


def place(
    sim: RunningSimulator,
    items: list[tuple[str, int]],
    reference_id: str | None = None,
    headers: dict[str, str] = HEADERS,
) -> requests.Response:
    body: dict[str, Any] = {"items": [{"id": pid, "quantity": qty} for pid, qty in items]}
    if reference_id is not None:
        body["reference_id"] = reference_id
    return requests.post(
        f"{sim.base_url}/place-order", json=body, headers=headers, timeout=TIMEOUT_S
    )


def place_ok(
    sim: RunningSimulator, items: list[tuple[str, int]], reference_id: str | None = None
) -> str:
    response = place(sim, items, reference_id)
    assert response.status_code == 200, response.text
    order_id: str = response.json()["details"]["data"]["id"]
    return order_id


def get_keys(
    sim: RunningSimulator, order_id: str, headers: dict[str, str] = HEADERS
) -> requests.Response:
    return requests.get(
        f"{sim.base_url}/orders/{order_id}/keys", headers=headers, timeout=TIMEOUT_S
    )


def poll_data(sim: RunningSimulator, order_id: str) -> dict[str, Any]:
    response = get_keys(sim, order_id)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["details"]["data"]
    return data


def poll_until_terminal(sim: RunningSimulator, order_id: str) -> dict[str, Any]:
    for _ in range(20):
        data = poll_data(sim, order_id)
        if data["status"] not in ("PENDING", "PROCESSING"):
            return data
    raise AssertionError(f"order {order_id} did not settle within 20 polls")


def balance_data(sim: RunningSimulator) -> dict[str, Any]:
    data: dict[str, Any] = get_balance(sim).json()["details"]["data"]
    return data


def admin(sim: RunningSimulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{sim.url}/_sandbox{path}", timeout=TIMEOUT_S, **kwargs)


def arm(sim: RunningSimulator, endpoint: str, fault: str, **settings: Any) -> None:
    response = admin(
        sim, "POST", "/faults", json={"endpoint": endpoint, "fault": fault, **settings}
    )
    assert response.status_code == 200, response.text


def order_count(sim: RunningSimulator, reference_id: str) -> int:
    response = admin(sim, "GET", "/orders", params={"reference_id": reference_id})
    count: int = response.json()["count"]
    return count


def all_keys(data: dict[str, Any]) -> list[dict[str, str]]:
    return [key for product in data["products"] for key in product["keys"]]


def call_endpoint(sim: RunningSimulator, endpoint: str, order_id: str) -> requests.Response:
    """Send one valid request to ``endpoint``. Only the keys endpoint uses ``order_id``."""
    if endpoint == "balance":
        return get_balance(sim)
    if endpoint == "place-order":
        return place(sim, [(catalogue.TEST_TXT_ID, 1)])
    return get_keys(sim, order_id)


# Response shapes


def test_balance_envelope_shape(fresh_sim: RunningSimulator) -> None:
    response = get_balance(fresh_sim)
    body = response.json()
    extensions = body["details"]["extensions"]

    assert response.status_code == 200
    assert body["status"] == 200
    assert body["success"] is True
    assert body["details"]["data"] == {"balance": 5000, "credit_limit": 0}
    assert extensions["cache"] == "no-store"
    assert uuid.UUID(extensions["trace_id"]).version == 4
    assert TIMESTAMP_PATTERN.fullmatch(extensions["timestamp"])


def test_trace_id_unique_per_response(fresh_sim: RunningSimulator) -> None:
    first = get_balance(fresh_sim).json()["details"]["extensions"]["trace_id"]
    second = get_balance(fresh_sim).json()["details"]["extensions"]["trace_id"]

    assert first != second


def test_place_order_returns_order_id(fresh_sim: RunningSimulator) -> None:
    response = place(fresh_sim, [(catalogue.TEST_IMG_ID, 1)], "MY-SHOP-12345")

    assert response.status_code == 200
    assert response.json()["success"] is True
    assert ORDER_ID_PATTERN.fullmatch(response.json()["details"]["data"]["id"])


def test_keys_response_matches_documented_example(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])

    data = poll_data(fresh_sim, order_id)

    assert data["id"] == order_id
    assert data["status"] == "COMPLETED"
    assert data["total_debit"] == 0
    assert data["balance"] == {"balance": 5000, "credit_limit": 0}
    [product] = data["products"]
    assert product["id"] == catalogue.TEST_TXT_ID
    assert product["title"] == "Test Product - TXT"
    assert product["quantity"] == 1
    [key] = product["keys"]
    assert key["type"] == "text"
    assert TEXT_KEY_PATTERN.fullmatch(key["value"])


def test_money_serialized_as_json_numbers(fresh_sim: RunningSimulator) -> None:
    admin(fresh_sim, "POST", "/account", json={"balance": "990.40", "credit_limit": "500"})
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])

    text = get_keys(fresh_sim, order_id).text

    assert '"total_debit":0,' in text
    assert '"balance":{"balance":990.4,"credit_limit":500}' in text


def test_order_ids_unique(fresh_sim: RunningSimulator) -> None:
    ids = {place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)]) for _ in range(20)}

    assert len(ids) == 20


# Authentication


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "missing x-api-key header", id="missing"),
        pytest.param({"x-api-key": ""}, "missing x-api-key header", id="empty"),
        pytest.param({"x-api-key": "wrong-key"}, "invalid x-api-key", id="unknown"),
    ],
)
@pytest.mark.parametrize("endpoint", ["balance", "place-order", "keys"])
def test_auth_rejected(
    fresh_sim: RunningSimulator, endpoint: str, headers: dict[str, str], message: str
) -> None:
    if endpoint == "balance":
        response = get_balance(fresh_sim, headers)
    elif endpoint == "place-order":
        response = place(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], headers=headers)
    else:
        response = get_keys(fresh_sim, "ABCD1234", headers)
    body = response.json()

    assert response.status_code == 401
    assert body["status"] == 401
    assert body["success"] is False
    assert body["error"]["message"].startswith(message)
    assert TIMESTAMP_PATTERN.fullmatch(body["error"]["timestamp"])


def test_auth_rejected_places_nothing(fresh_sim: RunningSimulator) -> None:
    place(fresh_sim, [(catalogue.PRICED_ID, 1)], "REF-AUTH", headers={"x-api-key": "wrong"})

    assert order_count(fresh_sim, "REF-AUTH") == 0
    assert balance_data(fresh_sim)["balance"] == 5000


def test_auth_error_hides_key(fresh_sim: RunningSimulator) -> None:
    response = get_balance(fresh_sim, {"x-api-key": "leaked-secret-value"})

    assert "leaked-secret-value" not in response.text


def test_keys_unknown_order_not_found(fresh_sim: RunningSimulator) -> None:
    response = get_keys(fresh_sim, "NOORDER1")

    assert response.status_code == 404
    assert response.json()["success"] is False
    assert "NOORDER1" in response.json()["error"]["message"]


def test_keys_other_api_key_not_found(make_simulator: Any) -> None:
    sim = make_simulator(api_keys=frozenset({"key-a", "key-b"}))
    response = place(sim, [(catalogue.TEST_TXT_ID, 1)], headers={"x-api-key": "key-a"})
    order_id = response.json()["details"]["data"]["id"]

    other = get_keys(sim, order_id, {"x-api-key": "key-b"})
    own = get_keys(sim, order_id, {"x-api-key": "key-a"})

    assert other.status_code == 404
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/v1/partners/products", 404, id="unknown-api-path"),
        pytest.param("POST", "/v1/partners/balance", 405, id="wrong-method"),
        pytest.param("GET", "/v1/partners/place-order", 405, id="get-place-order"),
        pytest.param("GET", "/v2/partners/balance", 404, id="other-version"),
    ],
)
def test_unknown_route_rejected(
    fresh_sim: RunningSimulator, method: str, path: str, status: int
) -> None:
    response = requests.request(method, fresh_sim.url + path, headers=HEADERS, timeout=TIMEOUT_S)

    assert response.status_code == status


# Rate limit


def test_rate_limit_headers_on_success(fresh_sim: RunningSimulator) -> None:
    before = int(time.time())

    first = get_balance(fresh_sim)
    second = get_balance(fresh_sim)

    assert first.headers["X-RateLimit"] == "100"
    assert first.headers["X-RateLimit-Remaining"] == "99"
    assert second.headers["X-RateLimit-Remaining"] == "98"
    assert int(first.headers["X-RateLimit-Reset"]) >= before + 60
    assert int(first.headers["X-RateLimit-Reset"]) <= before + 62


def test_rate_limit_headers_on_errors(fresh_sim: RunningSimulator) -> None:
    response = get_keys(fresh_sim, "NOORDER1")

    assert response.headers["X-RateLimit"] == "100"
    assert response.headers["X-RateLimit-Remaining"] == "99"
    assert "X-RateLimit-Reset" in response.headers


def test_rate_limit_exceeded_documented_body(make_simulator: Any) -> None:
    sim = make_simulator(rate_limit_per_minute=3)
    for _ in range(3):
        assert get_balance(sim).status_code == 200

    response = get_balance(sim)
    body = response.json()

    assert response.status_code == 429
    assert set(body) == {"status", "success", "error"}
    assert body["status"] == 429
    assert body["success"] is False
    assert set(body["error"]) == {"message", "timestamp"}
    assert body["error"]["message"] == "Too Many Requests"
    assert TIMESTAMP_PATTERN.fullmatch(body["error"]["timestamp"])
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit"] == "3"
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_rate_limit_shared_by_endpoints(make_simulator: Any) -> None:
    sim = make_simulator(rate_limit_per_minute=2)

    get_balance(sim)
    place_ok(sim, [(catalogue.TEST_TXT_ID, 1)])

    assert place(sim, [(catalogue.TEST_TXT_ID, 1)]).status_code == 429


def test_rate_limit_per_api_key(make_simulator: Any) -> None:
    sim = make_simulator(rate_limit_per_minute=1, api_keys=frozenset({"key-a", "key-b"}))

    get_balance(sim, {"x-api-key": "key-a"})

    assert get_balance(sim, {"x-api-key": "key-a"}).status_code == 429
    assert get_balance(sim, {"x-api-key": "key-b"}).status_code == 200


def test_rate_limited_places_nothing(make_simulator: Any) -> None:
    sim = make_simulator(rate_limit_per_minute=1)
    get_balance(sim)

    place(sim, [(catalogue.PRICED_ID, 1)], "REF-LIMITED")

    assert order_count(sim, "REF-LIMITED") == 0


def test_reset_restores_rate_limit(make_simulator: Any) -> None:
    sim = make_simulator(rate_limit_per_minute=1)
    get_balance(sim)

    admin(sim, "POST", "/reset")

    assert get_balance(sim).status_code == 200


# Request validation


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{not json", "not valid JSON", id="not-json"),
        pytest.param(b"[]", "must be a JSON object", id="array-body"),
        pytest.param(b"{}", "items must be a non-empty array", id="no-items"),
        pytest.param(b'{"items": []}', "items must be a non-empty array", id="empty-items"),
        pytest.param(b'{"items": "x"}', "items must be a non-empty array", id="items-string"),
        pytest.param(b'{"items": [1]}', r"items\[0\] must be an object", id="item-number"),
        pytest.param(b'{"items": [{"quantity": 1}]}', r"items\[0\]\.id", id="no-id"),
        pytest.param(b'{"items": [{"id": 5, "quantity": 1}]}', r"items\[0\]\.id", id="id-number"),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5"}]}',
            r"items\[0\]\.quantity",
            id="no-quantity",
        ),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5", "quantity": 0}]}',
            r"items\[0\]\.quantity",
            id="quantity-zero",
        ),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5", "quantity": -1}]}',
            r"items\[0\]\.quantity",
            id="quantity-negative",
        ),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5", "quantity": "1"}]}',
            r"items\[0\]\.quantity",
            id="quantity-string",
        ),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5", "quantity": 1.5}]}',
            r"items\[0\]\.quantity",
            id="quantity-fraction",
        ),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5", "quantity": true}]}',
            r"items\[0\]\.quantity",
            id="quantity-bool",
        ),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5", "quantity": 101}]}',
            r"items\[0\]\.quantity",
            id="quantity-too-large",
        ),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5", "quantity": 1}], "reference_id": 7}',
            "reference_id must be a string",
            id="reference-number",
        ),
        pytest.param(
            b'{"items": [{"id": "69ae19b4397b2e44c02853f5", "quantity": 1},'
            b' {"id": "000000000000000000000000", "quantity": 1}]}',
            r"items\[1\]\.id: product '000000000000000000000000' not found",
            id="unknown-product",
        ),
    ],
)
def test_place_order_invalid_body(fresh_sim: RunningSimulator, body: bytes, message: str) -> None:
    response = requests.post(
        f"{fresh_sim.base_url}/place-order",
        data=body,
        headers={**HEADERS, "Content-Type": "application/json"},
        timeout=TIMEOUT_S,
    )

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert re.search(message, response.json()["error"]["message"])


def test_reference_id_optional(fresh_sim: RunningSimulator) -> None:
    response = place(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])

    assert response.status_code == 200


# Catalogue outcomes


@pytest.mark.parametrize(
    ("product_id", "quantity", "status", "delivered", "key_type"),
    [
        pytest.param(catalogue.TEST_TXT_ID, 1, "COMPLETED", 1, "text", id="test-txt"),
        pytest.param(catalogue.TEST_IMG_ID, 1, "COMPLETED", 1, "image", id="test-img"),
        pytest.param(catalogue.GUIDE_TXT_ID, 2, "COMPLETED", 2, "text", id="guide-txt"),
        pytest.param(catalogue.GUIDE_IMG_ID, 1, "COMPLETED", 1, "image", id="guide-img"),
        pytest.param(catalogue.SLOW_ID, 1, "COMPLETED", 1, "text", id="slow"),
        pytest.param(catalogue.PRICED_ID, 3, "COMPLETED", 3, "text", id="priced"),
        pytest.param(catalogue.CANARY_ID, 1, "COMPLETED", 1, "text", id="canary"),
        pytest.param(catalogue.PARTIAL_ID, 2, "PARTIAL_COMPLETED", 1, "text", id="partial-2"),
        pytest.param(catalogue.PARTIAL_ID, 5, "PARTIAL_COMPLETED", 2, "text", id="partial-5"),
        pytest.param(catalogue.PARTIAL_ID, 1, "FAILED", 0, None, id="partial-1"),
        pytest.param(catalogue.FAILING_ID, 2, "FAILED", 0, None, id="failing"),
        pytest.param(catalogue.REFUNDED_ID, 1, "REFUNDED", 0, None, id="refunded"),
    ],
)
def test_catalogue_outcome(
    fresh_sim: RunningSimulator,
    product_id: str,
    quantity: int,
    status: str,
    delivered: int,
    key_type: str | None,
) -> None:
    order_id = place_ok(fresh_sim, [(product_id, quantity)])

    data = poll_until_terminal(fresh_sim, order_id)
    keys = all_keys(data)

    assert data["status"] == status
    assert data["products"][0]["quantity"] == quantity
    assert len(keys) == delivered
    assert {key["type"] for key in keys} == ({key_type} if key_type else set())


@pytest.mark.parametrize(
    ("items", "status", "delivered"),
    [
        pytest.param(
            [(catalogue.TEST_TXT_ID, 1), (catalogue.FAILING_ID, 1)],
            "PARTIAL_COMPLETED",
            1,
            id="delivered-and-failed",
        ),
        pytest.param(
            [(catalogue.TEST_TXT_ID, 1), (catalogue.REFUNDED_ID, 1)],
            "REFUNDED",
            0,
            id="refund-wins",
        ),
        pytest.param(
            [(catalogue.GUIDE_TXT_ID, 1), (catalogue.GUIDE_IMG_ID, 1)],
            "COMPLETED",
            2,
            id="text-and-image",
        ),
        pytest.param(
            [(catalogue.FAILING_ID, 1), (catalogue.PARTIAL_ID, 1)],
            "FAILED",
            0,
            id="nothing-delivered",
        ),
    ],
)
def test_mixed_order_outcome(
    fresh_sim: RunningSimulator, items: list[tuple[str, int]], status: str, delivered: int
) -> None:
    order_id = place_ok(fresh_sim, items)

    data = poll_until_terminal(fresh_sim, order_id)

    assert data["status"] == status
    assert len(all_keys(data)) == delivered


def test_out_of_stock_rejected(fresh_sim: RunningSimulator) -> None:
    response = place(fresh_sim, [(catalogue.OUT_OF_STOCK_ID, 1)], "REF-STOCK")

    assert response.status_code == 409
    assert response.json()["success"] is False
    assert "out of stock" in response.json()["error"]["message"]
    assert order_count(fresh_sim, "REF-STOCK") == 0


def test_limited_stock_decrements_and_returns(fresh_sim: RunningSimulator) -> None:
    fresh_sim.state.stock[catalogue.PARTIAL_ID] = 4
    order_id = place_ok(fresh_sim, [(catalogue.PARTIAL_ID, 4)])

    assert place(fresh_sim, [(catalogue.PARTIAL_ID, 1)]).status_code == 409

    poll_until_terminal(fresh_sim, order_id)

    assert fresh_sim.state.stock[catalogue.PARTIAL_ID] == 2


def test_same_product_twice_counts_stock_once(fresh_sim: RunningSimulator) -> None:
    fresh_sim.state.stock[catalogue.TEST_TXT_ID] = 3

    response = place(fresh_sim, [(catalogue.TEST_TXT_ID, 2), (catalogue.TEST_TXT_ID, 2)])

    assert response.status_code == 409


def test_text_keys_distinct(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 10)])

    values = [key["value"] for key in all_keys(poll_data(fresh_sim, order_id))]

    assert len(set(values)) == 10
    assert all(TEXT_KEY_PATTERN.fullmatch(value) for value in values)


def test_canary_keys_have_prefix(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.CANARY_ID, 2)])

    values = [key["value"] for key in all_keys(poll_data(fresh_sim, order_id))]

    assert all(value.startswith(catalogue.CANARY_KEY_PREFIX + "-") for value in values)


def _decode_png(value: str) -> tuple[int, int, int, bytes]:
    """Return width, height, bit depth and decompressed image data of a PNG data URL."""
    prefix = "data:image/png;base64,"
    assert value.startswith(prefix)
    png = base64.b64decode(value.removeprefix(prefix), validate=True)
    assert png.startswith(PNG_SIGNATURE)

    length, chunk_type = struct.unpack(">I4s", png[8:16])
    assert chunk_type == b"IHDR"
    width, height, bit_depth = struct.unpack(">IIB", png[16:25])
    ihdr_crc = struct.unpack(">I", png[16 + length : 20 + length])[0]
    assert ihdr_crc == zlib.crc32(png[12 : 16 + length])

    idat_at = png.index(b"IDAT")
    idat_length = struct.unpack(">I", png[idat_at - 4 : idat_at])[0]
    pixels = zlib.decompress(png[idat_at + 4 : idat_at + 4 + idat_length])
    assert png.endswith(b"IEND\xaeB`\x82")
    return width, height, bit_depth, pixels


def test_image_keys_are_valid_png(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.TEST_IMG_ID, 1)])
    [key] = all_keys(poll_data(fresh_sim, order_id))

    width, height, bit_depth, pixels = _decode_png(key["value"])

    assert (width, height, bit_depth) == (16, 16, 8)
    assert len(pixels) == height * (1 + width)


def test_image_keys_distinct_patterns(make_simulator: Any) -> None:
    sim = make_simulator(seed=7)
    order_id = place_ok(sim, [(catalogue.TEST_IMG_ID, 5)])

    images = [_decode_png(key["value"])[3] for key in all_keys(poll_data(sim, order_id))]

    assert len(set(images)) == 5


# Status progression


@pytest.mark.parametrize("polls_per_step", [1, 2, 3])
def test_slow_order_status_sequence(make_simulator: Any, polls_per_step: int) -> None:
    sim = make_simulator(polls_per_step=polls_per_step)
    order_id = place_ok(sim, [(catalogue.SLOW_ID, 1)])
    expected = ["PENDING"] * polls_per_step + ["PROCESSING"] * polls_per_step + ["COMPLETED"]

    statuses = [poll_data(sim, order_id)["status"] for _ in expected]

    assert statuses == expected


def test_keys_empty_until_terminal(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.SLOW_ID, 2)])

    pending = poll_data(fresh_sim, order_id)
    processing = poll_data(fresh_sim, order_id)
    completed = poll_data(fresh_sim, order_id)

    assert pending["products"][0]["keys"] == []
    assert processing["products"][0]["keys"] == []
    assert len(completed["products"][0]["keys"]) == 2


def test_order_moves_at_slowest_product(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1), (catalogue.SLOW_ID, 1)])

    statuses = [poll_data(fresh_sim, order_id)["status"] for _ in range(3)]

    assert statuses == ["PENDING", "PROCESSING", "COMPLETED"]


def test_instant_product_ignores_polls_per_step(make_simulator: Any) -> None:
    sim = make_simulator(polls_per_step=3)
    order_id = place_ok(sim, [(catalogue.TEST_TXT_ID, 1)])

    assert poll_data(sim, order_id)["status"] == "COMPLETED"


def test_zero_polls_per_step_makes_slow_instant(make_simulator: Any) -> None:
    sim = make_simulator(polls_per_step=0)
    order_id = place_ok(sim, [(catalogue.SLOW_ID, 1)])

    assert poll_data(sim, order_id)["status"] == "COMPLETED"


def test_terminal_order_rereads_same_keys(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 2)])

    first = poll_data(fresh_sim, order_id)
    second = poll_data(fresh_sim, order_id)

    assert second["status"] == "COMPLETED"
    assert all_keys(second) == all_keys(first)


# Money


def test_priced_order_charges_at_placement(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.PRICED_ID, 2)])

    assert balance_data(fresh_sim)["balance"] == 4975
    data = poll_data(fresh_sim, order_id)
    assert data["total_debit"] == 25
    assert data["balance"] == {"balance": 4975, "credit_limit": 0}


def test_fractional_amounts_stay_exact(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.PRICED_ID, 3)])

    data = poll_data(fresh_sim, order_id)

    assert data["total_debit"] == 37.5
    assert data["balance"]["balance"] == 4962.5


@pytest.mark.parametrize(
    ("items", "status", "total_debit"),
    [
        pytest.param([(catalogue.FAILING_ID, 2)], "FAILED", 0, id="failed-refunds-all"),
        pytest.param([(catalogue.REFUNDED_ID, 2)], "REFUNDED", 0, id="refunded-refunds-all"),
        pytest.param([(catalogue.PARTIAL_ID, 2)], "PARTIAL_COMPLETED", 5, id="partial-2"),
        pytest.param([(catalogue.PARTIAL_ID, 3)], "PARTIAL_COMPLETED", 5, id="partial-3"),
        pytest.param(
            [(catalogue.PRICED_ID, 1), (catalogue.REFUNDED_ID, 1)],
            "REFUNDED",
            0,
            id="refunded-with-priced",
        ),
        pytest.param(
            [(catalogue.PRICED_ID, 1), (catalogue.FAILING_ID, 1)],
            "PARTIAL_COMPLETED",
            12.5,
            id="priced-with-failed",
        ),
    ],
)
def test_settlement_refunds(
    fresh_sim: RunningSimulator,
    items: list[tuple[str, int]],
    status: str,
    total_debit: float,
) -> None:
    order_id = place_ok(fresh_sim, items)

    data = poll_until_terminal(fresh_sim, order_id)

    assert data["status"] == status
    assert data["total_debit"] == total_debit
    assert data["balance"]["balance"] == 5000 - total_debit
    assert balance_data(fresh_sim)["balance"] == 5000 - total_debit


def test_refund_applied_once(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.FAILING_ID, 2)])

    poll_data(fresh_sim, order_id)
    poll_data(fresh_sim, order_id)

    assert balance_data(fresh_sim)["balance"] == 5000


def test_insufficient_funds_rejected(fresh_sim: RunningSimulator) -> None:
    response = place(fresh_sim, [(catalogue.EXPENSIVE_ID, 1)], "REF-FUNDS")

    assert response.status_code == 402
    assert "insufficient funds" in response.json()["error"]["message"]
    assert balance_data(fresh_sim)["balance"] == 5000
    assert order_count(fresh_sim, "REF-FUNDS") == 0


@pytest.mark.parametrize(
    ("items", "status"),
    [
        pytest.param(
            [(catalogue.PRICED_ID, 2), (catalogue.OUT_OF_STOCK_ID, 1)], 409, id="one-out-of-stock"
        ),
        pytest.param(
            [(catalogue.PRICED_ID, 2), (catalogue.EXPENSIVE_ID, 1)], 402, id="total-too-high"
        ),
    ],
)
def test_failed_order_charges_nothing(
    fresh_sim: RunningSimulator, items: list[tuple[str, int]], status: int
) -> None:
    response = place(fresh_sim, items, "REF-ATOMIC")

    assert response.status_code == status
    assert balance_data(fresh_sim)["balance"] == 5000
    assert order_count(fresh_sim, "REF-ATOMIC") == 0


def test_credit_limit_extends_spending(make_simulator: Any) -> None:
    sim = make_simulator(balance=Decimal("10"), credit_limit=Decimal("20"))

    place_ok(sim, [(catalogue.PRICED_ID, 2)])

    assert balance_data(sim) == {"balance": -15, "credit_limit": 20}


def test_credit_limit_exhausted(make_simulator: Any) -> None:
    sim = make_simulator(balance=Decimal("10"), credit_limit=Decimal("20"))
    place_ok(sim, [(catalogue.PRICED_ID, 2)])

    response = place(sim, [(catalogue.PRICED_ID, 2)])

    assert response.status_code == 402
    assert balance_data(sim)["balance"] == -15


def test_order_exactly_at_limit_accepted(make_simulator: Any) -> None:
    sim = make_simulator(balance=Decimal("12.50"))

    place_ok(sim, [(catalogue.PRICED_ID, 1)])

    assert balance_data(sim)["balance"] == 0


def test_set_account(fresh_sim: RunningSimulator) -> None:
    response = admin(fresh_sim, "POST", "/account", json={"balance": "100.25", "credit_limit": 50})

    assert response.status_code == 200
    assert balance_data(fresh_sim) == {"balance": 100.25, "credit_limit": 50}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"balance": "lots"}, id="not-decimal"),
        pytest.param({"balance": True}, id="bool"),
        pytest.param({"balance": "NaN"}, id="nan"),
        pytest.param({"credit_limit": "-1"}, id="negative-credit"),
        pytest.param([], id="not-object"),
    ],
)
def test_set_account_invalid(fresh_sim: RunningSimulator, body: Any) -> None:
    response = admin(fresh_sim, "POST", "/account", json=body)

    assert response.status_code == 400
    assert balance_data(fresh_sim) == {"balance": 5000, "credit_limit": 0}


# Orders per reference_id


def test_orders_per_reference(fresh_sim: RunningSimulator) -> None:
    first = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "REF-1")
    second = place_ok(fresh_sim, [(catalogue.SLOW_ID, 1)], "REF-1")
    place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "REF-2")
    poll_data(fresh_sim, first)

    body = admin(fresh_sim, "GET", "/orders", params={"reference_id": "REF-1"}).json()

    assert body["reference_id"] == "REF-1"
    assert body["count"] == 2
    assert [order["id"] for order in body["orders"]] == [first, second]
    assert [order["status"] for order in body["orders"]] == ["COMPLETED", "PENDING"]
    assert all(TIMESTAMP_PATTERN.fullmatch(order["created_at"]) for order in body["orders"])
    assert all(set(order) == {"id", "status", "created_at"} for order in body["orders"])


def test_orders_unknown_reference_empty(fresh_sim: RunningSimulator) -> None:
    body = admin(fresh_sim, "GET", "/orders", params={"reference_id": "NOPE"}).json()

    assert body == {"reference_id": "NOPE", "count": 0, "orders": []}


def test_order_counts_all_references(fresh_sim: RunningSimulator) -> None:
    place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "REF-1")
    place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "REF-1")
    place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "REF-2")
    place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])

    body = admin(fresh_sim, "GET", "/orders").json()

    assert body == {"counts": {"REF-1": 2, "REF-2": 1}}


def test_admin_orders_do_not_advance_status(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.SLOW_ID, 1)], "REF-1")

    admin(fresh_sim, "GET", "/orders", params={"reference_id": "REF-1"})

    assert poll_data(fresh_sim, order_id)["status"] == "PENDING"


# Faults


def test_fault_server_error_creates_nothing(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "place-order", "server_error")

    response = place(fresh_sim, [(catalogue.PRICED_ID, 1)], "REF-F")

    assert response.status_code == 500
    assert response.json()["success"] is False
    assert order_count(fresh_sim, "REF-F") == 0
    assert balance_data(fresh_sim)["balance"] == 5000


def test_fault_server_error_after_create(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "place-order", "server_error_after_create")

    response = place(fresh_sim, [(catalogue.PRICED_ID, 1)], "REF-F")

    assert response.status_code == 500
    assert order_count(fresh_sim, "REF-F") == 1
    assert balance_data(fresh_sim)["balance"] == 4987.5


def test_fault_drop_creates_nothing(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "place-order", "drop")

    with pytest.raises(requests.ConnectionError):
        place(fresh_sim, [(catalogue.PRICED_ID, 1)], "REF-F")

    assert order_count(fresh_sim, "REF-F") == 0


def test_fault_drop_after_create(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "place-order", "drop_after_create")

    with pytest.raises(requests.ConnectionError):
        place(fresh_sim, [(catalogue.PRICED_ID, 1)], "REF-F")

    assert order_count(fresh_sim, "REF-F") == 1
    assert balance_data(fresh_sim)["balance"] == 4987.5


def test_fault_slow_delays_response(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "place-order", "slow", delay_s=0.2)

    response = place(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "REF-F")

    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.2
    assert order_count(fresh_sim, "REF-F") == 1


def test_fault_slow_creates_before_client_timeout(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "place-order", "slow", delay_s=1.0)

    with pytest.raises(requests.Timeout):
        requests.post(
            f"{fresh_sim.base_url}/place-order",
            json={"items": [{"id": catalogue.TEST_TXT_ID, "quantity": 1}], "reference_id": "R"},
            headers=HEADERS,
            timeout=0.2,
        )

    assert order_count(fresh_sim, "R") == 1


def test_fault_malformed_json(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "place-order", "malformed_json")

    response = place(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "REF-F")

    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert order_count(fresh_sim, "REF-F") == 1


def test_fault_rate_limited(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "place-order", "rate_limited", retry_after_s=7)

    response = place(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "REF-F")

    assert response.status_code == 429
    assert response.json()["error"]["message"] == "Too Many Requests"
    assert response.headers["Retry-After"] == "7"
    assert "X-RateLimit-Remaining" in response.headers
    assert order_count(fresh_sim, "REF-F") == 0


def test_fault_count_then_normal(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "balance", "server_error", count=2)

    statuses = [get_balance(fresh_sim).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


def test_faults_run_in_armed_order(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "balance", "server_error")
    arm(fresh_sim, "balance", "rate_limited")

    statuses = [get_balance(fresh_sim).status_code for _ in range(3)]

    assert statuses == [500, 429, 200]


def test_fault_hits_only_its_endpoint(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "keys", "server_error")

    assert get_balance(fresh_sim).status_code == 200
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])
    assert get_keys(fresh_sim, order_id).status_code == 500
    assert get_keys(fresh_sim, order_id).status_code == 200


def test_fault_keys_drop_after_create_advances(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.SLOW_ID, 1)])
    arm(fresh_sim, "keys", "drop_after_create")

    with pytest.raises(requests.ConnectionError):
        get_keys(fresh_sim, order_id)

    assert poll_data(fresh_sim, order_id)["status"] == "PROCESSING"


def test_fault_keys_malformed_json(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])
    arm(fresh_sim, "keys", "malformed_json")

    response = get_keys(fresh_sim, order_id)

    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


INJECTED_ERRORS = [
    pytest.param("not_found", 404, id="not-found"),
    pytest.param("unauthorized", 401, id="unauthorized"),
]


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        pytest.param("not_found", 404, "Not Found", id="not-found"),
        pytest.param("unauthorized", 401, "Unauthorized", id="unauthorized"),
    ],
)
@pytest.mark.parametrize("endpoint", ["balance", "place-order", "keys"])
def test_fault_injected_error(
    fresh_sim: RunningSimulator, endpoint: str, fault: str, status: int, message: str
) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])
    arm(fresh_sim, endpoint, fault)

    response = call_endpoint(fresh_sim, endpoint, order_id)
    body = response.json()

    assert response.status_code == status
    assert body["status"] == status
    assert body["success"] is False
    assert body["error"]["message"] == message
    assert TIMESTAMP_PATTERN.fullmatch(body["error"]["timestamp"])
    assert call_endpoint(fresh_sim, endpoint, order_id).status_code == 200


@pytest.mark.parametrize(("fault", "status"), INJECTED_ERRORS)
def test_fault_injected_error_places_nothing(
    fresh_sim: RunningSimulator, fault: str, status: int
) -> None:
    arm(fresh_sim, "place-order", fault)

    response = place(fresh_sim, [(catalogue.PRICED_ID, 1)], "REF-F")

    assert response.status_code == status
    assert order_count(fresh_sim, "REF-F") == 0
    assert balance_data(fresh_sim)["balance"] == 5000


@pytest.mark.parametrize(("fault", "status"), INJECTED_ERRORS)
def test_fault_injected_error_keeps_progress(
    fresh_sim: RunningSimulator, fault: str, status: int
) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.SLOW_ID, 1)])
    arm(fresh_sim, "keys", fault)

    response = get_keys(fresh_sim, order_id)

    assert response.status_code == status
    assert poll_data(fresh_sim, order_id)["status"] == "PENDING"


def test_fault_unknown_status_envelope(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.PRICED_ID, 2)])
    arm(fresh_sim, "keys", "unknown_status")

    response = get_keys(fresh_sim, order_id)
    body = response.json()
    data = body["details"]["data"]

    assert response.status_code == 200
    assert body["status"] == 200
    assert body["success"] is True
    assert TIMESTAMP_PATTERN.fullmatch(body["details"]["extensions"]["timestamp"])
    assert data["id"] == order_id
    assert data["status"] == "ON_HOLD"
    assert data["total_debit"] == 25
    assert data["balance"] == {"balance": 4975, "credit_limit": 0}
    [product] = data["products"]
    assert product["id"] == catalogue.PRICED_ID
    assert product["quantity"] == 2
    assert product["keys"] == []


def test_fault_unknown_status_keeps_progress(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.SLOW_ID, 1)])

    statuses = [poll_data(fresh_sim, order_id)["status"]]
    arm(fresh_sim, "keys", "unknown_status", count=2)
    statuses += [poll_data(fresh_sim, order_id)["status"] for _ in range(4)]

    assert statuses == ["PENDING", "ON_HOLD", "ON_HOLD", "PROCESSING", "COMPLETED"]


def test_fault_unknown_status_does_not_settle(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.FAILING_ID, 2)])
    arm(fresh_sim, "keys", "unknown_status")

    on_hold = poll_data(fresh_sim, order_id)
    balance_on_hold = balance_data(fresh_sim)["balance"]
    settled = poll_data(fresh_sim, order_id)

    assert on_hold["total_debit"] == 10
    assert balance_on_hold == 4990
    assert settled["status"] == "FAILED"
    assert balance_data(fresh_sim)["balance"] == 5000


def test_fault_unknown_status_hides_keys(fresh_sim: RunningSimulator) -> None:
    order_id = place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])
    completed = poll_data(fresh_sim, order_id)
    arm(fresh_sim, "keys", "unknown_status")

    on_hold = poll_data(fresh_sim, order_id)
    after = poll_data(fresh_sim, order_id)

    assert on_hold["status"] == "ON_HOLD"
    assert all_keys(on_hold) == []
    assert after["status"] == "COMPLETED"
    assert all_keys(after) == all_keys(completed)


def test_fault_unknown_status_order_not_found(make_simulator: Any) -> None:
    sim = make_simulator(api_keys=frozenset({API_KEY, "key-b"}))
    order_id = place_ok(sim, [(catalogue.TEST_TXT_ID, 1)])
    arm(sim, "keys", "unknown_status", count=2)

    unknown = get_keys(sim, "NOORDER1")
    other_key = get_keys(sim, order_id, {"x-api-key": "key-b"})

    assert unknown.status_code == 404
    assert "NOORDER1" in unknown.json()["error"]["message"]
    assert other_key.status_code == 404


def test_faults_listed_and_cleared(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "balance", "server_error", count=3)

    listed = admin(fresh_sim, "GET", "/faults").json()["armed"]
    cleared = admin(fresh_sim, "DELETE", "/faults")

    assert [(f["endpoint"], f["fault"], f["remaining"]) for f in listed] == [
        ("balance", "server_error", 3)
    ]
    assert cleared.json() == {"armed": []}
    assert get_balance(fresh_sim).status_code == 200


def test_fault_needs_valid_api_request(fresh_sim: RunningSimulator) -> None:
    arm(fresh_sim, "balance", "server_error")

    unauthorized = get_balance(fresh_sim, {"x-api-key": "wrong"})

    assert unauthorized.status_code == 401
    assert get_balance(fresh_sim).status_code == 500


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"endpoint": "orders", "fault": "drop"}, "endpoint must be one of"),
        pytest.param({"endpoint": "keys", "fault": "explode"}, "fault must be one of"),
        pytest.param({"fault": "drop"}, "endpoint must be one of"),
        pytest.param({"endpoint": "keys", "fault": "drop", "count": 0}, "count"),
        pytest.param({"endpoint": "keys", "fault": "slow", "delay_s": -1}, "delay_s"),
        pytest.param({"endpoint": "keys", "fault": "slow", "delay_s": "2"}, "delay_s"),
        pytest.param({"endpoint": "keys", "fault": "rate_limited", "retry_after_s": 1.5}, "retry"),
        pytest.param(
            {"endpoint": "balance", "fault": "unknown_status"}, "endpoint must be keys for fault"
        ),
        pytest.param(
            {"endpoint": "place-order", "fault": "unknown_status"},
            "endpoint must be keys for fault",
        ),
        pytest.param(["keys"], "JSON object"),
    ],
)
def test_arm_fault_invalid(fresh_sim: RunningSimulator, body: Any, message: str) -> None:
    response = admin(fresh_sim, "POST", "/faults", json=body)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_random_fault_always(make_simulator: Any) -> None:
    sim = make_simulator(random_faults=(RandomFault(Fault.SERVER_ERROR, 1.0, Endpoint.BALANCE),))

    assert get_balance(sim).status_code == 500
    assert place(sim, [(catalogue.TEST_TXT_ID, 1)]).status_code == 200


def test_random_fault_never(make_simulator: Any) -> None:
    sim = make_simulator(random_faults=(RandomFault(Fault.SERVER_ERROR, 0.0),))

    statuses = {get_balance(sim).status_code for _ in range(20)}

    assert statuses == {200}


def test_random_faults_repeat_with_seed(make_simulator: Any) -> None:
    settings = {"random_faults": (RandomFault(Fault.SERVER_ERROR, 0.5),), "seed": 42}
    first = make_simulator(**settings)
    second = make_simulator(**settings)

    first_statuses = [get_balance(first).status_code for _ in range(20)]
    second_statuses = [get_balance(second).status_code for _ in range(20)]

    assert first_statuses == second_statuses
    assert set(first_statuses) == {200, 500}


def test_armed_fault_precedes_random(make_simulator: Any) -> None:
    sim = make_simulator(random_faults=(RandomFault(Fault.SERVER_ERROR, 1.0),))
    arm(sim, "balance", "rate_limited")

    assert get_balance(sim).status_code == 429
    assert get_balance(sim).status_code == 500


def test_random_fault_probability_validated() -> None:
    with pytest.raises(ValueError, match="probability"):
        RandomFault(Fault.DROP, 1.5)


@pytest.mark.parametrize("endpoint", [None, Endpoint.BALANCE, Endpoint.PLACE_ORDER])
def test_random_unknown_status_needs_keys(endpoint: Endpoint | None) -> None:
    with pytest.raises(ValueError, match=r"RandomFault\.endpoint must be keys"):
        RandomFault(Fault.UNKNOWN_STATUS, 0.5, endpoint)


def test_random_unknown_status_on_keys(make_simulator: Any) -> None:
    sim = make_simulator(random_faults=(RandomFault(Fault.UNKNOWN_STATUS, 1.0, Endpoint.KEYS),))
    order_id = place_ok(sim, [(catalogue.TEST_TXT_ID, 1)])

    assert poll_data(sim, order_id)["status"] == "ON_HOLD"
    assert get_balance(sim).status_code == 200


# Statistics, reset and configuration


def test_stats_count_per_endpoint_and_status(fresh_sim: RunningSimulator) -> None:
    get_balance(fresh_sim)
    get_balance(fresh_sim)
    get_balance(fresh_sim, {})
    arm(fresh_sim, "place-order", "drop")
    with pytest.raises(requests.ConnectionError):
        place(fresh_sim, [(catalogue.TEST_TXT_ID, 1)])
    get_keys(fresh_sim, "NOORDER1")

    stats = admin(fresh_sim, "GET", "/stats").json()["requests"]

    assert stats == {
        "balance": {"200": 2, "401": 1},
        "place-order": {"dropped": 1},
        "keys": {"404": 1},
    }


def test_reset_restores_everything(fresh_sim: RunningSimulator) -> None:
    place_ok(fresh_sim, [(catalogue.PRICED_ID, 1)], "REF-1")
    arm(fresh_sim, "balance", "server_error")
    admin(fresh_sim, "POST", "/account", json={"credit_limit": "10"})

    assert admin(fresh_sim, "POST", "/reset").status_code == 200

    assert balance_data(fresh_sim) == {"balance": 5000, "credit_limit": 0}
    assert admin(fresh_sim, "GET", "/orders").json() == {"counts": {}}
    assert admin(fresh_sim, "GET", "/faults").json() == {"armed": []}
    assert admin(fresh_sim, "GET", "/stats").json() == {"requests": {"balance": {"200": 1}}}


def test_unknown_admin_endpoint(fresh_sim: RunningSimulator) -> None:
    assert admin(fresh_sim, "GET", "/nothing").status_code == 404


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"api_keys": frozenset()}, id="no-api-keys"),
        pytest.param({"rate_limit_per_minute": 0}, id="zero-rate-limit"),
        pytest.param({"credit_limit": Decimal("-1")}, id="negative-credit"),
        pytest.param({"polls_per_step": -1}, id="negative-polls"),
    ],
)
def test_config_invalid(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="SimulatorConfig"):
        SimulatorConfig(**settings)


# Logging and lifecycle


def test_log_line_per_request_without_secrets(
    fresh_sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with requests.Session() as session:
        session.headers.update(HEADERS)
        response = session.post(
            f"{fresh_sim.base_url}/place-order",
            json={"items": [{"id": catalogue.CANARY_ID, "quantity": 1}]},
            timeout=TIMEOUT_S,
        )
        order_id = response.json()["details"]["data"]["id"]
        session.get(f"{fresh_sim.base_url}/orders/{order_id}/keys", timeout=TIMEOUT_S)
        # The same connection serves the next request only after logging this one.
        session.get(f"{fresh_sim.base_url}/balance", timeout=TIMEOUT_S)

    assert f"GET /v1/partners/orders/{order_id}/keys 200" in caplog.text
    assert "POST /v1/partners/place-order 200" in caplog.text
    assert API_KEY not in caplog.text
    assert catalogue.CANARY_KEY_PREFIX not in caplog.text


def test_stop_closes_listening_socket() -> None:
    running = start_simulator()
    url = running.base_url

    running.stop()

    with pytest.raises(requests.ConnectionError):
        get_balance(running)
    assert url.startswith("http://127.0.0.1:")


def test_stop_with_open_keep_alive_connection() -> None:
    running = start_simulator()
    with requests.Session() as session:
        session.get(f"{running.base_url}/balance", headers=HEADERS, timeout=TIMEOUT_S)

        running.stop()

        with pytest.raises(requests.ConnectionError):
            session.get(f"{running.base_url}/balance", headers=HEADERS, timeout=TIMEOUT_S)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_simulator_stops_on_sigterm() -> None:
    port = _free_port()
    code = (
        "from sandbox.simulator import SimulatorConfig, serve_simulator\n"
        f"serve_simulator(SimulatorConfig(), '127.0.0.1', {port})\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}/v1/partners/balance")

        process.send_signal(signal.SIGTERM)

        assert process.wait(timeout=TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()


def _wait_until_serving(url: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            requests.get(url, headers=HEADERS, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"nothing is serving {url}")


def test_orders_empty_reference_listed(fresh_sim: RunningSimulator) -> None:
    place_ok(fresh_sim, [(catalogue.TEST_TXT_ID, 1)], "")

    body = admin(fresh_sim, "GET", "/orders", params={"reference_id": ""}).json()

    assert body["count"] == 1
