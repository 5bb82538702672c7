"""Marshmallow schemas for Erysta's response bodies, producing the dataclasses in ``models``.

Every successful response is wrapped the same way::

    {"status": 200, "success": true,
     "details": {"data": {...}, "extensions": {"cache": ..., "trace_id": ..., "timestamp": ...}}}

and every documented failure as::

    {"status": 429, "success": false, "error": {"message": "...", "timestamp": "..."}}

The schemas are lenient where Erysta's published examples differ from each other. Unknown fields
are dropped at every level, and ``extensions`` and ``extensions.cache`` may be missing. Order ids
are any non-blank string, and unknown key types and order statuses are kept. The schemas are
strict where a wrong guess costs money or keys. An order id, a status and every key's ``value``
must be present, and a terminal order must list its products.

The envelope schemas need the HTTP facts of the response (status, duration, rate-limit headers)
to build ``ResponseMeta``, so they take a partial ``http_meta`` at construction and fill in the
``extensions`` fields from the body.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any, NoReturn

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from erysta.models import (
    KNOWN_TERMINAL_STATUSES,
    Balance,
    BalanceResult,
    ErrorBody,
    Key,
    OrderKeys,
    PlacedOrder,
    ProductKeys,
    ResponseMeta,
)

__all__ = [
    "BalanceEnvelopeSchema",
    "BalanceSchema",
    "ErrorEnvelopeSchema",
    "KeySchema",
    "OrderKeysEnvelopeSchema",
    "PlaceOrderEnvelopeSchema",
    "ProductKeysSchema",
    "SuccessEnvelopeSchema",
    "parse_json",
]


def parse_json(content: bytes) -> Any:
    """Decode a JSON body, reading every non-integer number as an exact ``Decimal``.

    Raises ``ValueError`` for bytes that are not strict JSON, including ``NaN`` and ``Infinity``,
    which Python's decoder would otherwise accept.
    """
    return json.loads(content, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a valid JSON number")


def _reject_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _non_blank_string(**kwargs: Any) -> fields.String:
    return fields.String(validate=_reject_blank, **kwargs)


def _money(**kwargs: Any) -> fields.Decimal:
    # allow_nan stays False, because a NaN amount breaks every comparison with a price.
    return fields.Decimal(**kwargs)


class _LenientSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class KeySchema(_LenientSchema):
    """One delivered key: ``{"value": "...", "type": "text"}``."""

    type = fields.String(required=True)
    value = fields.String(required=True)

    @post_load
    def make_key(self, data: dict[str, Any], **kwargs: Any) -> Key:
        return Key(type=data["type"], value=data["value"])


class ProductKeysSchema(_LenientSchema):
    """One product of an order with the keys delivered for it.

    ``keys`` may be missing or null while an order is in progress, and is then empty. Erysta's
    docs do not say which form it uses. ``title`` is only for display, so a missing one is empty.
    """

    id = _non_blank_string(required=True)
    title = fields.String(load_default="")
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    keys = fields.List(fields.Nested(KeySchema), load_default=None)

    @post_load
    def make_product_keys(self, data: dict[str, Any], **kwargs: Any) -> ProductKeys:
        return ProductKeys(
            product_id=data["id"],
            title=data["title"],
            quantity=data["quantity"],
            keys=tuple(data["keys"] or ()),
        )


class BalanceSchema(_LenientSchema):
    """``{"balance": 5000, "credit_limit": 10000}`` in EUR."""

    balance = _money(required=True)
    credit_limit = _money(required=True)

    @post_load
    def make_balance(self, data: dict[str, Any], **kwargs: Any) -> Balance:
        return Balance(balance=data["balance"], credit_limit=data["credit_limit"])


class _PlacedOrderDataSchema(_LenientSchema):
    # Published ids look like "ABCD1234" in examples and "ord_507f1f..." in prose. Both pass.
    id = _non_blank_string(required=True)


class _OrderKeysDataSchema(_LenientSchema):
    id = _non_blank_string(required=True)
    status = _non_blank_string(required=True)
    products = fields.List(fields.Nested(ProductKeysSchema), load_default=None)
    total_debit = _money(load_default=None)
    balance = fields.Nested(BalanceSchema, load_default=None)

    @validates_schema
    def require_products_when_terminal(self, data: dict[str, Any], **kwargs: Any) -> None:
        # A finished order without a product list would be delivered as "no keys" for good.
        # An in-progress or unknown status may omit the list.
        if data["status"] in KNOWN_TERMINAL_STATUSES and data["products"] is None:
            raise ValidationError(
                f"Missing data for required field when status is {data['status']}.",
                field_name="products",
            )


class _ExtensionsSchema(_LenientSchema):
    cache = fields.String(load_default=None)
    trace_id = fields.String(load_default=None)
    timestamp = fields.String(load_default=None)


class _DetailsSchema(_LenientSchema):
    extensions = fields.Nested(_ExtensionsSchema, load_default=None)


class _BalanceDetailsSchema(_DetailsSchema):
    data = fields.Nested(BalanceSchema, required=True)


class _PlacedOrderDetailsSchema(_DetailsSchema):
    data = fields.Nested(_PlacedOrderDataSchema, required=True)


class _OrderKeysDetailsSchema(_DetailsSchema):
    data = fields.Nested(_OrderKeysDataSchema, required=True)


class SuccessEnvelopeSchema(_LenientSchema):
    """Base of the success envelopes.

    ``http_meta`` is the ``ResponseMeta`` measured by the client. The schema replaces its
    ``trace_id``, ``timestamp`` and ``cache`` with the values from ``details.extensions``.
    """

    status = fields.Integer(load_default=None)
    success = fields.Boolean(required=True, validate=validate.Equal(True))

    def __init__(self, *, http_meta: ResponseMeta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.http_meta = http_meta

    def build_meta(self, details: dict[str, Any]) -> ResponseMeta:
        extensions = details["extensions"] or {}
        return dataclasses.replace(
            self.http_meta,
            trace_id=extensions.get("trace_id"),
            timestamp=extensions.get("timestamp"),
            cache=extensions.get("cache"),
        )


class BalanceEnvelopeSchema(SuccessEnvelopeSchema):
    """The ``GET /balance`` success response."""

    details = fields.Nested(_BalanceDetailsSchema, required=True)

    @post_load
    def make_result(self, data: dict[str, Any], **kwargs: Any) -> BalanceResult:
        details = data["details"]
        return BalanceResult(balance=details["data"], meta=self.build_meta(details))


class PlaceOrderEnvelopeSchema(SuccessEnvelopeSchema):
    """The ``POST /place-order`` success response."""

    details = fields.Nested(_PlacedOrderDetailsSchema, required=True)

    @post_load
    def make_placed_order(self, data: dict[str, Any], **kwargs: Any) -> PlacedOrder:
        details = data["details"]
        return PlacedOrder(order_id=details["data"]["id"], meta=self.build_meta(details))


class OrderKeysEnvelopeSchema(SuccessEnvelopeSchema):
    """The ``GET /orders/{order_id}/keys`` success response."""

    details = fields.Nested(_OrderKeysDetailsSchema, required=True)

    @post_load
    def make_order_keys(self, data: dict[str, Any], **kwargs: Any) -> OrderKeys:
        details = data["details"]
        order = details["data"]
        return OrderKeys(
            order_id=order["id"],
            status=order["status"],
            products=tuple(order["products"] or ()),
            total_debit=order["total_debit"],
            balance=order["balance"],
            meta=self.build_meta(details),
        )


class _ErrorSchema(_LenientSchema):
    message = _non_blank_string(required=True)
    timestamp = fields.String(load_default=None)
    # Not in the published 429 example; read in case other errors carry it.
    trace_id = fields.String(load_default=None)


class ErrorEnvelopeSchema(_LenientSchema):
    """The failure response. Only its 429 form is documented, so all but the message is optional."""

    status = fields.Integer(load_default=None)
    success = fields.Boolean(load_default=None)
    error = fields.Nested(_ErrorSchema, required=True)

    @post_load
    def make_error_body(self, data: dict[str, Any], **kwargs: Any) -> ErrorBody:
        error = data["error"]
        return ErrorBody(
            message=error["message"], timestamp=error["timestamp"], trace_id=error["trace_id"]
        )
