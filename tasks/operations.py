"""Operator actions on orders that no task moves on by itself.

An order in `UNKNOWN_OUTCOME` may or may not exist at Erysta, and only a person can find
out (in Erysta's dashboard, or by asking support with the `reference_id` and trace ids).
These functions record what the operator found and set the order moving again. Each writes the
operator's name and note to the order's timeline.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from fulfillment.records import OrderRecord
from fulfillment.states import OPERATOR_STATES, OrderState
from tasks.api import OrderStatus
from tasks.runtime import runtime
from tasks.steps import due_at

logger = logging.getLogger(__name__)

# Erysta's order ids are opaque, but every documented one (ABCD1234, ord_507f1f...) fits
# this pattern. Anything else an operator types is more likely a mistake than an id.
ERYSTA_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class OperatorError(ValueError):
    """The action does not apply to the order in its current state; the message explains why."""


def _load(
    reference_id: str, action: str, states: frozenset[OrderState] = OPERATOR_STATES
) -> OrderRecord:
    record = runtime().ledger.get(reference_id)
    if record is None:
        raise OperatorError(f"order {reference_id!r} not found")
    if record.state not in states:
        raise OperatorError(
            f"cannot {action} order {reference_id!r}: it is {record.state.value}; this "
            f"action applies only to orders in {' or '.join(sorted(states))}"
        )
    return record


def _move(
    record: OrderRecord,
    new: OrderState,
    *,
    event: str,
    action: str,
    fields: dict[str, object],
    details: dict[str, object],
    increment: tuple[str, ...] = (),
) -> OrderStatus:
    """Move a waiting order to `new`, due now, or raise if it changed meanwhile.

    The status returned is read before the next step is enqueued, so it is the state the
    operator set, not whatever a fast worker has made of it since.
    """
    rt = runtime()
    now = rt.clock()
    moved = rt.ledger.transition(
        record.reference_id,
        expected=record.state,
        new=new,
        now=now,
        event=event,
        due_at=due_at(rt, now),
        fields=fields,
        increment=increment,
        details=details,
    )
    if not moved:
        raise OperatorError(f"order {record.reference_id!r} changed while {action} it; look again")
    return OrderStatus.from_record(dataclasses.replace(record, state=new))


def attach_order(
    reference_id: str, erysta_order_id: str | None, *, operator: str, note: str = ""
) -> OrderStatus:
    """Record that Erysta has the order under `erysta_order_id`, and resume polling it.

    Without an id, polling resumes with the id already recorded, for example after the
    polling deadline passed.
    """
    from tasks.polling import poll_order  # noqa: PLC0415 - the modules enqueue each other

    record = _load(reference_id, "attach")
    if record.outcome is not None:
        raise OperatorError(
            f"cannot attach order {reference_id!r}: its outcome {record.outcome.value} is "
            "already known"
        )
    order_id = (erysta_order_id or record.erysta_order_id or "").strip()
    if not order_id:
        raise OperatorError(
            f"cannot attach order {reference_id!r}: no Erysta order id is recorded; give one"
        )
    if not ERYSTA_ORDER_ID.fullmatch(order_id):
        raise OperatorError(
            f"Erysta order id {order_id[:80]!r} is invalid: expected 1 to 64 letters, digits, "
            "_ or -, as Erysta's dashboard shows it (for example SE757MKE)"
        )

    now = runtime().clock()
    status = _move(
        record,
        OrderState.POLLING,
        event="operator_attached",
        action="attaching",
        fields={
            "erysta_order_id": order_id,
            "placed_at": now,
            "next_action_at": now,
            "message": "",
        },
        increment=("poll_seq",),
        details={"operator": operator, "note": note, "erysta_order_id": order_id},
    )
    poll_order.apply_async(args=(reference_id, record.poll_seq + 1))
    logger.info(
        "operator %s attached order %s to Erysta order %s", operator, reference_id, order_id
    )
    return status


def confirm_not_placed(reference_id: str, *, operator: str, note: str = "") -> OrderStatus:
    """Record that Erysta has no order for `reference_id`, and place it again."""
    from tasks.placing import place_order  # noqa: PLC0415 - the modules enqueue each other

    record = _load(reference_id, "re-place")
    if record.outcome is not None or (
        record.erysta_order_id is not None and record.state is OrderState.NEEDS_ATTENTION
    ):
        raise OperatorError(
            f"cannot re-place order {reference_id!r}: Erysta order {record.erysta_order_id} "
            "exists for it; attach or cancel it instead"
        )

    status = _move(
        record,
        OrderState.RECEIVED,
        event="operator_confirmed_not_placed",
        action="re-placing",
        fields={"erysta_order_id": "", "message": ""},
        details={"operator": operator, "note": note},
    )
    place_order.apply_async(args=(reference_id,))
    logger.info("operator %s confirmed order %s was not placed; placing it", operator, reference_id)
    return status


def cancel_order(reference_id: str, *, operator: str, note: str) -> OrderStatus:
    """Give up on the order and tell the shop that nothing will be delivered."""
    from tasks.delivering import deliver_keys  # noqa: PLC0415 - the modules enqueue each other

    record = _load(reference_id, "cancel")
    if record.outcome is not None:
        raise OperatorError(
            f"cannot cancel order {reference_id!r}: its outcome {record.outcome.value} is "
            "known; the shop must receive it"
        )
    if not note.strip():
        raise OperatorError("a note is required to cancel an order: say why, for the shop")

    status = _move(
        record,
        OrderState.CANCELLED,
        event="operator_cancelled",
        action="cancelling",
        fields={"message": note, "outcome": OrderState.CANCELLED},
        details={"operator": operator, "note": note},
    )
    deliver_keys.apply_async(args=(reference_id,))
    logger.info("operator %s cancelled order %s", operator, reference_id)
    return status


def redeliver_order(reference_id: str, *, operator: str, note: str = "") -> OrderStatus:
    """Deliver a finished order's outcome to the shop again, with the same webhook id.

    For a shop that lost what it received, or an order whose delivery was refused and
    whose endpoint is now fixed. The keys must still be in the vault.
    """
    from tasks.delivering import deliver_keys  # noqa: PLC0415 - the modules enqueue each other

    record = _load(reference_id, "redeliver", REDELIVERABLE_STATES)
    if record.outcome is None:
        raise OperatorError(
            f"cannot redeliver order {reference_id!r}: its outcome is not known yet"
        )
    if record.keys_purged_at is not None:
        raise OperatorError(
            f"cannot redeliver order {reference_id!r}: its keys were purged after KEY_RETENTION_S"
        )

    now = runtime().clock()
    status = _move(
        record,
        OrderState.DELIVERING,
        event="operator_redelivered",
        action="redelivering",
        fields={"delivered_sinks": "", "delivery_started_at": now, "message": ""},
        increment=("delivery_seq",),
        details={"operator": operator, "note": note},
    )
    deliver_keys.apply_async(args=(reference_id, record.delivery_seq + 1))
    logger.info("operator %s redelivers order %s", operator, reference_id)
    return status


# Orders whose outcome may be sent to the shop again.
REDELIVERABLE_STATES = frozenset({OrderState.DELIVERED, OrderState.NEEDS_ATTENTION})

__all__ = [
    "OperatorError",
    "attach_order",
    "cancel_order",
    "confirm_not_placed",
    "redeliver_order",
]
