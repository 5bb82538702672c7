"""Simulated orders: request validation, status progression, settlement and JSON rendering.

An order is charged in full when it is placed. Its status advances by one key request at
a time: it stays PENDING, then PROCESSING, for ``polls_per_step`` requests per step of its
slowest product, and settles on the next request. Settling generates the keys and refunds
what was not delivered:

- every unit delivered: COMPLETED, nothing refunded;
- some units delivered: PARTIAL_COMPLETED, the undelivered units refunded;
- no unit delivered: FAILED, everything refunded;
- any product of the order refunds: REFUNDED, everything refunded and no keys.

``total_debit`` is what stays charged after refunds.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sandbox import status_codes
from sandbox.catalogue import CATALOGUE, Behaviour, KeyType, Product
from sandbox.http import HttpError
from sandbox.keys import make_key_value

# Simulator limit on one item's quantity. Erysta documents none, but every unit becomes a
# generated key in memory, so the simulator keeps orders small.
MAX_QUANTITY = 100
# Simulator limit on the length of reference_id. Erysta documents none.
MAX_REFERENCE_ID_LENGTH = 200
# The order status of the unknown_status fault. Erysta documents only the OrderStatus values.
UNDOCUMENTED_ORDER_STATUS = "ON_HOLD"


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    PARTIAL_COMPLETED = "PARTIAL_COMPLETED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"

    @property
    def is_terminal(self) -> bool:
        return self not in (OrderStatus.PENDING, OrderStatus.PROCESSING)


@dataclass(frozen=True)
class OrderItem:
    """One validated entry of a place-order request."""

    product: Product
    quantity: int


@dataclass(frozen=True)
class OrderRequest:
    """A validated place-order request body."""

    items: tuple[OrderItem, ...]
    reference_id: str | None

    @property
    def total_price(self) -> Decimal:
        return sum((item.product.price * item.quantity for item in self.items), Decimal("0"))


@dataclass(frozen=True)
class Key:
    value: str
    type: KeyType


@dataclass
class OrderLine:
    product: Product
    quantity: int
    keys: list[Key] = field(default_factory=list)


@dataclass
class Order:
    """An order and its progress. The simulator state mutates it under its lock."""

    id: str
    api_key: str
    reference_id: str | None
    lines: list[OrderLine]
    total_debit: Decimal
    created_at: datetime
    status: OrderStatus = OrderStatus.PENDING
    polls: int = 0

    @property
    def steps(self) -> int:
        return max(line.product.steps for line in self.lines)


@dataclass(frozen=True)
class Settlement:
    """The money and stock that an order returns when it settles."""

    refund: Decimal
    returned_stock: dict[str, int]


def parse_order_request(body: Any) -> OrderRequest:
    """Validate a place-order body. Raises HttpError whose message names the invalid field."""
    if not isinstance(body, dict):
        raise HttpError(status_codes.INVALID_REQUEST, "the request body must be a JSON object")

    reference_id = body.get("reference_id")
    if reference_id is not None and not isinstance(reference_id, str):
        raise HttpError(status_codes.INVALID_REQUEST, "reference_id must be a string")
    if reference_id is not None and len(reference_id) > MAX_REFERENCE_ID_LENGTH:
        raise HttpError(
            status_codes.INVALID_REQUEST,
            f"reference_id must be at most {MAX_REFERENCE_ID_LENGTH} characters",
        )

    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise HttpError(status_codes.INVALID_REQUEST, "items must be a non-empty array")
    parsed = tuple(_parse_item(index, item) for index, item in enumerate(items))
    return OrderRequest(items=parsed, reference_id=reference_id)


def _parse_item(index: int, item: Any) -> OrderItem:
    if not isinstance(item, dict):
        raise HttpError(status_codes.INVALID_REQUEST, f"items[{index}] must be an object")

    product_id = item.get("id")
    if not isinstance(product_id, str) or not product_id:
        raise HttpError(
            status_codes.INVALID_REQUEST, f"items[{index}].id must be a non-empty string"
        )

    quantity = item.get("quantity")
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not 1 <= quantity <= MAX_QUANTITY
    ):
        raise HttpError(
            status_codes.INVALID_REQUEST,
            f"items[{index}].quantity must be an integer from 1 to {MAX_QUANTITY}, "
            f"got {quantity!r}",
        )

    product = CATALOGUE.get(product_id)
    if product is None:
        raise HttpError(
            status_codes.UNKNOWN_PRODUCT, f"items[{index}].id: product {product_id!r} not found"
        )
    return OrderItem(product=product, quantity=quantity)


def advance(order: Order, polls_per_step: int, rng: random.Random) -> Settlement | None:
    """Count one key request and move the order on. Returns a Settlement when it settles."""
    if order.status.is_terminal:
        return None

    order.polls += 1
    if order.polls <= order.steps * polls_per_step:
        in_first_step = order.polls <= polls_per_step
        order.status = OrderStatus.PENDING if in_first_step else OrderStatus.PROCESSING
        return None
    return settle(order, rng)


def settle(order: Order, rng: random.Random) -> Settlement:
    """Deliver the keys, set the terminal status and lower total_debit by the refund."""
    if any(line.product.behaviour is Behaviour.REFUND for line in order.lines):
        order.status = OrderStatus.REFUNDED
        return _refund_undelivered(order)

    for line in order.lines:
        delivered = delivered_units(line.product, line.quantity)
        line.keys = [_make_key(line.product, rng) for _ in range(delivered)]

    delivered_total = sum(len(line.keys) for line in order.lines)
    ordered_total = sum(line.quantity for line in order.lines)
    if delivered_total == ordered_total:
        order.status = OrderStatus.COMPLETED
    elif delivered_total == 0:
        order.status = OrderStatus.FAILED
    else:
        order.status = OrderStatus.PARTIAL_COMPLETED
    return _refund_undelivered(order)


def delivered_units(product: Product, quantity: int) -> int:
    if product.behaviour is Behaviour.DELIVER:
        return quantity
    if product.behaviour is Behaviour.DELIVER_HALF:
        return quantity // 2
    return 0


def _make_key(product: Product, rng: random.Random) -> Key:
    return Key(make_key_value(product.key_type, rng, product.key_prefix), product.key_type)


def _refund_undelivered(order: Order) -> Settlement:
    refund = Decimal("0")
    returned_stock: dict[str, int] = {}
    for line in order.lines:
        undelivered = line.quantity - len(line.keys)
        refund += line.product.price * undelivered
        returned_stock[line.product.id] = returned_stock.get(line.product.id, 0) + undelivered
    order.total_debit -= refund
    return Settlement(refund=refund, returned_stock=returned_stock)


def order_keys_data(order: Order, balance: Decimal, credit_limit: Decimal) -> dict[str, Any]:
    """Return ``details.data`` of the keys response. Keys stay empty until the order settles."""
    return {
        "id": order.id,
        "status": str(order.status),
        "products": [
            {
                "id": line.product.id,
                "title": line.product.title,
                "quantity": line.quantity,
                "keys": [{"value": key.value, "type": str(key.type)} for key in line.keys],
            }
            for line in order.lines
        ],
        "total_debit": money_to_json(order.total_debit),
        "balance": {
            "balance": money_to_json(balance),
            "credit_limit": money_to_json(credit_limit),
        },
    }


def undocumented_status_data(
    order: Order, balance: Decimal, credit_limit: Decimal
) -> dict[str, Any]:
    """Return ``details.data`` of the keys response with UNDOCUMENTED_ORDER_STATUS and no keys.

    The unknown_status fault sends it. It reads the order without advancing it.
    """
    data = order_keys_data(order, balance, credit_limit)
    data["status"] = UNDOCUMENTED_ORDER_STATUS
    for product in data["products"]:
        product["keys"] = []
    return data


def money_to_json(amount: Decimal) -> int | float:
    """Return an amount as a JSON number, e.g. 990.4 or 5000, as Erysta's examples show.

    A float is exact enough here: amounts have at most two decimal places, and Python's
    float repr is the shortest string that reads back as the same float, so 990.40 is
    written as 990.4 and never as 990.3999.
    """
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)
