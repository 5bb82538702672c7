"""Order states in the ledger and the transitions between them."""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    """The state of one shop order. The ledger, not the broker, is the source of truth."""

    RECEIVED = "RECEIVED"
    PLACING = "PLACING"
    POLLING = "POLLING"
    FULFILLED = "FULFILLED"
    PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    DELIVERING = "DELIVERING"
    DELIVERED = "DELIVERED"
    UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


# States in which the supplier's outcome is known and the shop has yet to hear of it.
OUTCOME_STATES = frozenset(
    {
        OrderState.FULFILLED,
        OrderState.PARTIALLY_FULFILLED,
        OrderState.FAILED,
        OrderState.REFUNDED,
        OrderState.REJECTED,
        OrderState.CANCELLED,
    }
)

# States no task moves on from; only an operator can.
FINAL_STATES = frozenset({OrderState.DELIVERED})
OPERATOR_STATES = frozenset({OrderState.UNKNOWN_OUTCOME, OrderState.NEEDS_ATTENTION})

# Erysta's terminal order statuses and the outcome each becomes.
OUTCOME_BY_ERYSTA_STATUS = {
    "COMPLETED": OrderState.FULFILLED,
    "PARTIAL_COMPLETED": OrderState.PARTIALLY_FULFILLED,
    "FAILED": OrderState.FAILED,
    "REFUNDED": OrderState.REFUNDED,
}
