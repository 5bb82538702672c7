"""The order record as stored in the ledger, and the items a shop orders."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from fulfillment.states import OrderState


@dataclass(frozen=True)
class LineItem:
    """One product and how many units of it the shop ordered."""

    product_id: str
    quantity: int

    def to_json(self) -> dict[str, object]:
        return {"product_id": self.product_id, "quantity": self.quantity}


@dataclass(frozen=True)
class OrderRecord:
    """One shop order as the ledger stores it. It never contains a key."""

    reference_id: str
    state: OrderState
    items: tuple[LineItem, ...]
    created_at: float
    updated_at: float
    erysta_order_id: str | None = None
    placed_at: float | None = None
    poll_seq: int = 0
    poll_count: int = 0
    error_count: int = 0
    next_action_at: float | None = None
    erysta_status: str | None = None
    outcome: OrderState | None = None
    message: str | None = None
    total_debit: str | None = None
    delivery_seq: int = 0
    delivery_attempts: int = 0
    delivery_started_at: float | None = None
    delivered_sinks: frozenset[str] = frozenset()
    delivered_at: float | None = None
    keys_purged_at: float | None = None

    @classmethod
    def from_hash(cls, data: Mapping[str, str]) -> OrderRecord:
        """Build a record from the ledger hash's string fields."""
        items = tuple(
            LineItem(product_id=str(item["product_id"]), quantity=int(item["quantity"]))
            for item in json.loads(data["items"])
        )
        outcome = data.get("outcome")
        return cls(
            reference_id=data["reference_id"],
            state=OrderState(data["state"]),
            items=items,
            created_at=float(data["created_at"]),
            updated_at=float(data["updated_at"]),
            erysta_order_id=data.get("erysta_order_id") or None,
            placed_at=_optional_float(data.get("placed_at")),
            poll_seq=int(data.get("poll_seq", 0)),
            poll_count=int(data.get("poll_count", 0)),
            error_count=int(data.get("error_count", 0)),
            next_action_at=_optional_float(data.get("next_action_at")),
            erysta_status=data.get("erysta_status") or None,
            outcome=OrderState(outcome) if outcome else None,
            message=data.get("message") or None,
            total_debit=data.get("total_debit") or None,
            delivery_seq=int(data.get("delivery_seq", 0)),
            delivery_attempts=int(data.get("delivery_attempts", 0)),
            delivery_started_at=_optional_float(data.get("delivery_started_at")),
            delivered_sinks=frozenset(filter(None, data.get("delivered_sinks", "").split(","))),
            delivered_at=_optional_float(data.get("delivered_at")),
            keys_purged_at=_optional_float(data.get("keys_purged_at")),
        )


def _optional_float(value: str | None) -> float | None:
    return float(value) if value else None
