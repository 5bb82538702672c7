"""The delivery payload: what the shop receives about one finished order."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fulfillment.records import OrderRecord
from fulfillment.states import OrderState
from fulfillment.vault import StoredProduct


def format_money(amount: Decimal) -> str:
    """Format an EUR amount with at least two decimal places, keeping any finer precision."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return str(amount)


def webhook_message_id(reference_id: str) -> str:
    """Return the stable message id of an order's delivery, the same on every attempt.

    The shop deduplicates on it, so a delivery repeated after a crash is recognised.
    """
    digest = hashlib.sha256(reference_id.encode()).hexdigest()[:32]
    return f"msg_{digest}"


def build_payload(
    record: OrderRecord, products: Sequence[StoredProduct], *, now: float
) -> dict[str, Any]:
    """Describe the order's outcome: every product with its keys, and what was not delivered.

    Ordered units without a key are listed under `undelivered`, so that the shop can
    refund or re-order them.
    """
    outcome = record.outcome or record.state
    ordered = Counter[str]()
    for item in record.items:
        ordered[item.product_id] += item.quantity

    delivered = Counter[str]()
    product_entries = []
    for product in products:
        delivered[product.product_id] += len(product.keys)
        product_entries.append(
            {
                "product_id": product.product_id,
                "title": product.title,
                "quantity_ordered": product.quantity,
                "quantity_delivered": len(product.keys),
                "keys": [key.to_json() for key in product.keys],
            }
        )

    undelivered = [
        {"product_id": product_id, "quantity": quantity - delivered[product_id]}
        for product_id, quantity in ordered.items()
        if quantity > delivered[product_id]
    ]
    return {
        "type": f"order.{outcome.value.lower()}",
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
        "reference_id": record.reference_id,
        "outcome": outcome.value,
        "erysta_order_id": record.erysta_order_id,
        "erysta_status": record.erysta_status,
        "message": record.message,
        "total_debit": record.total_debit,
        "products": product_entries,
        "undelivered": undelivered,
        "complete": outcome is OrderState.FULFILLED and not undelivered,
    }
