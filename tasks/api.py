"""The public API for checkout code: submit an order, read its state.

```python
from tasks import submit_order

status = submit_order("SHOP-ORDER-1001", [{"id": "69ae19b4397b2e44c02853f5", "quantity": 1}])
```

The request is validated before anything is written or queued; an invalid one raises
`InvalidOrderError` naming each bad field and its value. Submitting the same
`reference_id` again returns the existing order and buys nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from fulfillment.records import LineItem, OrderRecord
from fulfillment.vault import StoredProduct
from tasks.runtime import runtime
from tasks.steps import due_at

logger = logging.getLogger(__name__)

# Bounds of one request. Erysta documents none; these keep a typo in checkout code
# (a quantity of 10000, a reference id of a whole JSON document) from reaching it.
MAX_ITEMS = 100
MAX_QUANTITY = 1000
MAX_REFERENCE_ID_LENGTH = 128
MAX_PRODUCT_ID_LENGTH = 64


class InvalidOrderError(ValueError):
    """The order request is invalid; `errors` maps each field path to its problems."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        details = "; ".join(f"{path}: {' '.join(problems)}" for path, problems in errors.items())
        super().__init__(f"invalid order request: {details}")


class ReferenceConflictError(ValueError):
    """A `reference_id` was submitted again with different items."""


class _ItemSchema(Schema):
    id = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=MAX_PRODUCT_ID_LENGTH),
            validate.Regexp(r"[A-Za-z0-9_-]+\Z", error="must contain only letters, digits, _ or -"),
        ],
    )
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )


class OrderRequestSchema(Schema):
    """An order as checkout code submits it."""

    reference_id = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=MAX_REFERENCE_ID_LENGTH),
            validate.Regexp(
                r"[A-Za-z0-9][A-Za-z0-9._:-]*\Z",
                error="must start with a letter or digit and contain only letters, digits, . _ : -",
            ),
        ],
    )
    items = fields.List(
        fields.Nested(_ItemSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_ITEMS),
    )


@dataclass(frozen=True)
class OrderStatus:
    """The view of an order that checkout code gets: its state and outcome, never its keys."""

    reference_id: str
    state: str
    outcome: str | None
    message: str | None
    erysta_order_id: str | None
    created: bool = False

    @classmethod
    def from_record(cls, record: OrderRecord, *, created: bool = False) -> OrderStatus:
        return cls(
            reference_id=record.reference_id,
            state=record.state.value,
            outcome=record.outcome.value if record.outcome else None,
            message=record.message,
            erysta_order_id=record.erysta_order_id,
            created=created,
        )


def validate_order(reference_id: object, items: object) -> tuple[str, tuple[LineItem, ...]]:
    """Validate an order request; raise `InvalidOrderError` naming each bad field and value."""
    raw = {"reference_id": reference_id, "items": items}
    try:
        data = OrderRequestSchema().load(raw)
    except ValidationError as exc:
        messages: Any = exc.messages
        raise InvalidOrderError(_describe(messages, raw)) from None
    line_items = tuple(LineItem(item["id"], item["quantity"]) for item in data["items"])
    return data["reference_id"], line_items


def submit_order(reference_id: str, items: Sequence[Mapping[str, Any]]) -> OrderStatus:
    """Record the order and enqueue its placing; a repeated `reference_id` buys nothing.

    Raises `InvalidOrderError` before anything is written or queued, and
    `ReferenceConflictError` when the `reference_id` exists with different items.
    """
    from tasks.placing import place_order  # noqa: PLC0415 - keeps this module free of Celery

    reference_id, line_items = validate_order(reference_id, items)
    rt = runtime()
    now = rt.clock()
    result = rt.ledger.create(reference_id, line_items, now=now, due_at=due_at(rt, now))
    if not result.created:
        if sorted(result.record.items, key=repr) != sorted(line_items, key=repr):
            raise ReferenceConflictError(
                f"reference_id {reference_id!r} was already submitted with different items; "
                "use a new reference_id for a new order"
            )
        logger.info(
            "submit_order: order %s exists (%s); not submitted again",
            reference_id,
            result.record.state.value,
        )
        return OrderStatus.from_record(result.record)

    # If enqueueing fails the order stays RECEIVED, and the reconciler enqueues it later.
    place_order.apply_async(args=(reference_id,))
    logger.info("submit_order: order %s received with %d items", reference_id, len(line_items))
    return OrderStatus.from_record(result.record, created=True)


def get_order(reference_id: str) -> OrderStatus | None:
    """Return the order's state, or None when no order has this `reference_id`."""
    record = runtime().ledger.get(reference_id)
    return None if record is None else OrderStatus.from_record(record)


def get_order_keys(reference_id: str) -> list[StoredProduct] | None:
    """Return the order's products with their keys, or None when no keys are stored.

    Only a process that has the vault's encryption key (`VAULT_KEYS`) can read keys;
    without it this raises `SettingsError`. There are no keys before the order's outcome
    is known, for orders that delivered none, and after `KEY_RETENTION_S`.
    """
    return runtime().vault.load(reference_id)


def _describe(messages: Any, raw: Any, path: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages into `field.path: problems (got value)`."""
    described: dict[str, list[str]] = {}
    if isinstance(messages, list):
        suffix = "" if raw is _MISSING else f" (got {_shorten(repr(raw))})"
        described[path or "request"] = [f"{message.rstrip('.')}{suffix}" for message in messages]
        return described
    for key, nested in messages.items():
        child_raw = _child(raw, key)
        child_path = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip(".")
        described.update(_describe(nested, child_raw, child_path))
    return described


_MISSING = object()
# Characters of a bad value quoted in an error message; longer values are cut.
MAX_QUOTED_CHARS = 80


def _shorten(text: str) -> str:
    if len(text) <= MAX_QUOTED_CHARS:
        return text
    return f"{text[: MAX_QUOTED_CHARS - 3]}..."


def _child(raw: Any, key: Any) -> Any:
    if isinstance(raw, Mapping):
        return raw.get(key, _MISSING)
    if isinstance(raw, list) and isinstance(key, int) and 0 <= key < len(raw):
        return raw[key]
    return _MISSING


__all__ = [
    "InvalidOrderError",
    "OrderRequestSchema",
    "OrderStatus",
    "ReferenceConflictError",
    "get_order",
    "get_order_keys",
    "submit_order",
    "validate_order",
]
