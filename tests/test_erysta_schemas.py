"""Specification of the Erysta response schemas and the models they produce.

The JSON bodies below are Erysta's published examples, copied verbatim where the docs print a
whole body.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from marshmallow import ValidationError

from erysta.models import (
    COMPLETED,
    FAILED,
    PARTIAL_COMPLETED,
    PENDING,
    PROCESSING,
    REFUNDED,
    Balance,
    BalanceResult,
    ErrorBody,
    Key,
    OrderItem,
    OrderKeys,
    PlacedOrder,
    ProductKeys,
    ResponseMeta,
)
from erysta.schemas import (
    BalanceEnvelopeSchema,
    ErrorEnvelopeSchema,
    OrderKeysEnvelopeSchema,
    PlaceOrderEnvelopeSchema,
    parse_json,
)

HTTP_META = ResponseMeta(
    trace_id=None,
    timestamp=None,
    cache=None,
    http_status=200,
    duration_ms=12.5,
    rate_limit=100,
    rate_limit_remaining=99,
    rate_limit_reset=1775740000,
)

BALANCE_EXAMPLE = (
    b'{"status":200,"success":true,"details":{"data":{"balance":5000,"credit_limit":10000},'
    b'"extensions":{"cache":"no-store","trace_id":"req-7f8a9b2c...",'
    b'"timestamp":"2026-03-09T15:30:00.000Z"}}}'
)

PLACE_ORDER_EXAMPLE = (
    b'{"status":200,"success":true,"details":{"data":{"id":"ABCD1234"},'
    b'"extensions":{"cache":"no-store","trace_id":"req-7f8a9b2c...",'
    b'"timestamp":"2026-03-09T15:30:00.000Z"}}}'
)

# The orders guide prints its place-order example with only trace_id and timestamp.
PLACE_ORDER_WITHOUT_CACHE = (
    b'{"status":200,"success":true,"details":{"data":{"id":"ABCD1234"},'
    b'"extensions":{"trace_id":"req-7f8a9b2c...","timestamp":"2026-03-09T15:30:00.000Z"}}}'
)

KEYS_EXAMPLE = (
    b'{"status":200,"success":true,"details":{"data":{'
    b'"id":"SE757MKE","status":"COMPLETED",'
    b'"products":[{"id":"69ae19b4397b2e44c02853f5","title":"Test Product - TXT","quantity":1,'
    b'"keys":[{"value":"OAZKI-OATJ9-A4JDC","type":"text"}]}],'
    b'"total_debit":0,'
    b'"balance":{"balance":990.4,"credit_limit":500}},'
    b'"extensions":{"cache":"no-store","trace_id":"10c31c63-366c-4461-ba91-150d9a375eec",'
    b'"timestamp":"2026-04-09T13:56:47.496Z"}}}'
)

# The orders guide's two-product order. Its end is not fully legible, so the status, the
# quantities and the extensions repeat the values of the other examples.
TWO_PRODUCT_EXAMPLE = (
    b'{"status":200,"success":true,"details":{"data":{'
    b'"id":"ABCD1234","status":"COMPLETED","products":['
    b'{"id":"69ae2cb3a9a53ba2d777fe59","title":"Test Product - TXT","quantity":1,'
    b'"keys":[{"value":"AAAAA-BBBBB-CCCCC","type":"text"}]},'
    b'{"id":"69ae2cb3a9a53ba2d777fe5a","title":"Test Product - IMG","quantity":1,'
    b'"keys":[{"value":"data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ...","type":"image"}]}]},'
    b'"extensions":{"cache":"no-store","trace_id":"req-7f8a9b2c...",'
    b'"timestamp":"2026-03-09T15:30:00.000Z"}}}'
)

RATE_LIMITED_EXAMPLE = (
    b'{"status":429,"success":false,"error":{"message":"Too Many Requests",'
    b'"timestamp":"2026-03-09T15:30:00.000Z"}}'
)


def load_keys(body: dict[str, Any] | bytes) -> OrderKeys:
    payload = parse_json(body) if isinstance(body, bytes) else body
    result = OrderKeysEnvelopeSchema(http_meta=HTTP_META).load(payload)
    assert isinstance(result, OrderKeys)
    return result


def keys_body(**data: Any) -> dict[str, Any]:
    order: dict[str, Any] = {"id": "ABCD1234", "status": COMPLETED, "products": []}
    order.update(data)
    return {"status": 200, "success": True, "details": {"data": order}}


def error_paths(messages: Any, prefix: str = "") -> set[str]:
    if not isinstance(messages, dict):
        return {prefix}
    paths: set[str] = set()
    for key, nested in messages.items():
        paths |= error_paths(nested, f"{prefix}.{key}" if prefix else str(key))
    return paths


def test_balance_example() -> None:
    result = BalanceEnvelopeSchema(http_meta=HTTP_META).load(parse_json(BALANCE_EXAMPLE))

    assert result == BalanceResult(
        balance=Balance(balance=Decimal(5000), credit_limit=Decimal(10000)),
        meta=dataclasses.replace(
            HTTP_META,
            trace_id="req-7f8a9b2c...",
            timestamp="2026-03-09T15:30:00.000Z",
            cache="no-store",
        ),
    )


def test_place_order_example() -> None:
    result = PlaceOrderEnvelopeSchema(http_meta=HTTP_META).load(parse_json(PLACE_ORDER_EXAMPLE))

    assert isinstance(result, PlacedOrder)
    assert result.order_id == "ABCD1234"
    assert result.meta.cache == "no-store"
    assert result.meta.trace_id == "req-7f8a9b2c..."


def test_place_order_without_cache() -> None:
    result = PlaceOrderEnvelopeSchema(http_meta=HTTP_META).load(
        parse_json(PLACE_ORDER_WITHOUT_CACHE)
    )

    assert result.order_id == "ABCD1234"
    assert result.meta.cache is None
    assert result.meta.timestamp == "2026-03-09T15:30:00.000Z"


def test_keys_example() -> None:
    order = load_keys(KEYS_EXAMPLE)

    assert order == OrderKeys(
        order_id="SE757MKE",
        status=COMPLETED,
        products=(
            ProductKeys(
                product_id="69ae19b4397b2e44c02853f5",
                title="Test Product - TXT",
                quantity=1,
                keys=(Key(type="text", value="OAZKI-OATJ9-A4JDC"),),
            ),
        ),
        total_debit=Decimal(0),
        balance=Balance(balance=Decimal("990.4"), credit_limit=Decimal(500)),
        meta=dataclasses.replace(
            HTTP_META,
            trace_id="10c31c63-366c-4461-ba91-150d9a375eec",
            timestamp="2026-04-09T13:56:47.496Z",
            cache="no-store",
        ),
    )


def test_keys_balance_decimal_exact() -> None:
    order = load_keys(KEYS_EXAMPLE)

    assert order.balance is not None
    assert str(order.balance.balance) == "990.4"
    assert order.balance.spending_limit == Decimal("1490.4")


def test_keys_two_products_with_image() -> None:
    order = load_keys(TWO_PRODUCT_EXAMPLE)

    assert [product.title for product in order.products] == [
        "Test Product - TXT",
        "Test Product - IMG",
    ]
    assert order.products[1].keys == (
        Key(type="image", value="data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ..."),
    )
    assert order.total_debit is None
    assert order.balance is None


def test_error_envelope_example() -> None:
    error_body = ErrorEnvelopeSchema().load(parse_json(RATE_LIMITED_EXAMPLE))

    assert error_body == ErrorBody(
        message="Too Many Requests", timestamp="2026-03-09T15:30:00.000Z", trace_id=None
    )


def test_unknown_fields_ignored_everywhere() -> None:
    body = keys_body(
        products=[
            {
                "id": "p1",
                "title": "T",
                "quantity": 1,
                "region": "EU",
                "keys": [{"value": "K", "type": "text", "pin": "1234"}],
            }
        ],
        reference_id="MY-SHOP-12345",
        balance={"balance": 1, "credit_limit": 0, "currency": "EUR"},
    )
    body["details"]["extensions"] = {"trace_id": "t-1", "region": "eu-west"}
    body["details"]["pagination"] = None
    body["request_id"] = "x"

    order = load_keys(body)

    assert order.products[0].keys == (Key(type="text", value="K"),)
    assert order.meta.trace_id == "t-1"


@pytest.mark.parametrize(
    ("data", "expected_status", "expected_products"),
    [
        pytest.param({"status": PENDING, "products": None}, PENDING, (), id="pending-null"),
        pytest.param({"status": PROCESSING}, PROCESSING, (), id="processing-missing"),
        pytest.param({"status": "ON_HOLD"}, "ON_HOLD", (), id="unknown-status-missing"),
        pytest.param({"status": FAILED, "products": []}, FAILED, (), id="failed-empty"),
    ],
)
def test_keys_products_optional_unless_terminal(
    data: dict[str, Any], expected_status: str, expected_products: tuple[ProductKeys, ...]
) -> None:
    body = keys_body(**data)
    if "products" not in data:
        del body["details"]["data"]["products"]

    order = load_keys(body)

    assert order.status == expected_status
    assert order.products == expected_products


def test_keys_missing_extensions() -> None:
    order = load_keys(keys_body())

    assert order.meta == HTTP_META


@pytest.mark.parametrize("keys", [None, []], ids=["null", "empty"])
def test_product_without_keys_yet(keys: list[Any] | None) -> None:
    product: dict[str, Any] = {"id": "p1", "title": "T", "quantity": 2}
    if keys is not None:
        product["keys"] = keys

    order = load_keys(keys_body(status=PROCESSING, products=[product]))

    assert order.products[0].keys == ()


@pytest.mark.parametrize(
    ("order_id", "key_type"),
    [
        ("ABCD1234", "text"),
        ("ord_507f1f77bcf86cd799439011", "image"),
        ("se757mke", "pdf"),
    ],
)
def test_ids_and_key_types_kept_as_received(order_id: str, key_type: str) -> None:
    product = {"id": "p1", "title": "T", "quantity": 1, "keys": [{"value": "K", "type": key_type}]}

    order = load_keys(keys_body(id=order_id, products=[product]))

    assert order.order_id == order_id
    assert order.products[0].keys[0].type == key_type


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (b"990.4", Decimal("990.4")),
        (b"0.1", Decimal("0.1")),
        (b"150.50", Decimal("150.50")),
        (b"-20", Decimal(-20)),
        (b'"12.30"', Decimal("12.30")),
    ],
)
def test_money_parsed_exactly(amount: bytes, expected: Decimal) -> None:
    body = b'{"success":true,"details":{"data":{"balance":' + amount + b',"credit_limit":0}}}'

    result = BalanceEnvelopeSchema(http_meta=HTTP_META).load(parse_json(body))

    assert result.balance.balance == expected
    assert str(result.balance.balance) == str(expected)


# Marks a field to delete from the body.
MISSING = object()

# Each case: fields that replace those of a valid "details.data", and the dotted path that the
# ValidationError must name.
INVALID_KEYS_BODIES: list[Any] = [
    pytest.param({"id": ""}, "details.data.id", id="empty-id"),
    pytest.param({"id": "   "}, "details.data.id", id="blank-id"),
    pytest.param({"id": None}, "details.data.id", id="null-id"),
    pytest.param({"id": 1234}, "details.data.id", id="numeric-id"),
    pytest.param({"id": MISSING}, "details.data.id", id="missing-id"),
    pytest.param({"status": MISSING}, "details.data.status", id="missing-status"),
    pytest.param({"status": None}, "details.data.status", id="null-status"),
    pytest.param({"status": ""}, "details.data.status", id="empty-status"),
    pytest.param({"products": MISSING}, "details.data.products", id="completed-no-products"),
    pytest.param({"products": None}, "details.data.products", id="completed-null-products"),
    pytest.param(
        {"status": PARTIAL_COMPLETED, "products": None},
        "details.data.products",
        id="partial-null-products",
    ),
    pytest.param(
        {"status": REFUNDED, "products": None}, "details.data.products", id="refunded-null-products"
    ),
    pytest.param(
        {"products": [{"id": "p1", "title": "T", "quantity": 1, "keys": [{"type": "text"}]}]},
        "details.data.products.0.keys.0.value",
        id="key-without-value",
    ),
    pytest.param(
        {"products": [{"id": "p1", "title": "T", "quantity": 1, "keys": [{"value": "K"}]}]},
        "details.data.products.0.keys.0.type",
        id="key-without-type",
    ),
    pytest.param(
        {"products": [{"id": "p1", "title": "T", "quantity": 1, "keys": [{"value": None}]}]},
        "details.data.products.0.keys.0.value",
        id="key-null-value",
    ),
    pytest.param(
        {"products": [{"title": "T", "quantity": 1}]},
        "details.data.products.0.id",
        id="product-without-id",
    ),
    pytest.param(
        {"products": [{"id": "p1", "title": "T", "quantity": Decimal("1.5")}]},
        "details.data.products.0.quantity",
        id="fractional-quantity",
    ),
    pytest.param(
        {"products": [{"id": "p1", "title": "T", "quantity": -1}]},
        "details.data.products.0.quantity",
        id="negative-quantity",
    ),
    pytest.param({"products": {"id": "p1"}}, "details.data.products", id="products-not-list"),
    pytest.param({"total_debit": "ten"}, "details.data.total_debit", id="total-debit-text"),
    pytest.param({"total_debit": True}, "details.data.total_debit", id="total-debit-bool"),
    pytest.param(
        {"balance": {"balance": 1}}, "details.data.balance.credit_limit", id="balance-partial"
    ),
]


@pytest.mark.parametrize(("data", "expected_path"), INVALID_KEYS_BODIES)
def test_keys_invalid_data(data: dict[str, Any], expected_path: str) -> None:
    body = keys_body(**data)
    order = body["details"]["data"]
    for field in [name for name, value in order.items() if value is MISSING]:
        del order[field]

    with pytest.raises(ValidationError) as caught:
        load_keys(body)

    assert expected_path in error_paths(caught.value.messages)


@pytest.mark.parametrize(
    ("body", "expected_path"),
    [
        pytest.param([], "_schema", id="list"),
        pytest.param("ok", "_schema", id="string"),
        pytest.param({"success": True}, "details", id="no-details"),
        pytest.param({"success": True, "details": {}}, "details.data", id="no-data"),
        pytest.param({"details": {"data": {"id": "A"}}}, "success", id="no-success"),
        pytest.param(
            {"success": False, "details": {"data": {"id": "A"}}}, "success", id="success-false"
        ),
        pytest.param({"success": True, "details": {"data": {}}}, "details.data.id", id="no-id"),
        pytest.param(
            {"success": True, "details": {"data": {"id": ""}}}, "details.data.id", id="empty-id"
        ),
        pytest.param(
            {"success": True, "details": {"data": {"id": "A"}, "extensions": []}},
            "details.extensions._schema",
            id="extensions-not-object",
        ),
    ],
)
def test_place_order_invalid_body(body: Any, expected_path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PlaceOrderEnvelopeSchema(http_meta=HTTP_META).load(body)

    assert expected_path in error_paths(caught.value.messages)


@pytest.mark.parametrize(
    ("data", "expected_path"),
    [
        pytest.param({"balance": 1}, "details.data.credit_limit", id="no-credit-limit"),
        pytest.param({"credit_limit": 1}, "details.data.balance", id="no-balance"),
        pytest.param(
            {"balance": "NaN", "credit_limit": 0}, "details.data.balance", id="nan-string"
        ),
        pytest.param({"balance": None, "credit_limit": 0}, "details.data.balance", id="null"),
    ],
)
def test_balance_invalid_data(data: dict[str, Any], expected_path: str) -> None:
    body = {"success": True, "details": {"data": data}}

    with pytest.raises(ValidationError) as caught:
        BalanceEnvelopeSchema(http_meta=HTTP_META).load(body)

    assert expected_path in error_paths(caught.value.messages)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"status": 429, "success": False}, id="no-error"),
        pytest.param({"error": {"timestamp": "t"}}, id="no-message"),
        pytest.param({"error": {"message": ""}}, id="empty-message"),
        pytest.param({"error": "Too Many Requests"}, id="error-not-object"),
    ],
)
def test_error_envelope_invalid(body: Any) -> None:
    with pytest.raises(ValidationError):
        ErrorEnvelopeSchema().load(body)


@pytest.mark.parametrize(
    "content",
    [b"", b"<html>502 Bad Gateway</html>", b'{"balance": NaN}', b"[Infinity]", b"\xff\xfe{"],
    ids=["empty", "html", "nan", "infinity", "bad-bytes"],
)
def test_parse_json_rejects(content: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(content)


def test_parse_json_integers_stay_int() -> None:
    assert parse_json(b'{"quantity": 3}') == {"quantity": 3}


def test_key_repr_hides_value() -> None:
    key = Key(type="text", value="OAZKI-OATJ9-A4JDC")

    assert repr(key) == "Key(type='text', value=<redacted 17 chars>)"
    assert "OAZKI" not in str(key)


def test_order_keys_repr_hides_values() -> None:
    order = load_keys(TWO_PRODUCT_EXAMPLE)

    assert "AAAAA-BBBBB-CCCCC" not in repr(order)
    assert "base64" not in repr(order)


@pytest.mark.parametrize(
    ("status", "is_terminal", "is_known"),
    [
        (PENDING, False, True),
        (PROCESSING, False, True),
        (COMPLETED, True, True),
        (PARTIAL_COMPLETED, True, True),
        (FAILED, True, True),
        (REFUNDED, True, True),
        ("ON_HOLD", False, False),
        ("completed", False, False),
    ],
)
def test_order_status_terminal(status: str, is_terminal: bool, is_known: bool) -> None:
    order = load_keys(keys_body(status=status))

    assert order.is_terminal is is_terminal
    assert order.is_known_status is is_known


@pytest.mark.parametrize(
    ("balance", "credit_limit", "expected"),
    [
        (Decimal("150.50"), Decimal(0), Decimal("150.50")),
        (Decimal(-200), Decimal(500), Decimal(300)),
        (Decimal("990.4"), Decimal(500), Decimal("1490.4")),
    ],
)
def test_balance_spending_limit(balance: Decimal, credit_limit: Decimal, expected: Decimal) -> None:
    assert Balance(balance=balance, credit_limit=credit_limit).spending_limit == expected


@pytest.mark.parametrize(
    ("product_id", "quantity"),
    [("", 1), ("  ", 1), ("p1", 0), ("p1", -1), ("p1", True), ("p1", 1.0)],
)
def test_order_item_rejects(product_id: str, quantity: Any) -> None:
    with pytest.raises(ValueError):
        OrderItem(product_id=product_id, quantity=quantity)
