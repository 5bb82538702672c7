"""`reconcile`: a periodic task that re-enqueues steps whose message was lost.

A message can vanish when a worker is killed, when Redis restarts without the
message persisted, or when a task fails to enqueue its successor. Every order in the
ledger has a due time by which its next step should have happened. This task finds the
overdue ones and enqueues that step again. Each task checks the ledger before acting,
so a step that was merely slow, and now runs twice, does nothing the second time.
"""

from __future__ import annotations

import logging

from fulfillment.ledger import NOT_DUE
from fulfillment.records import OrderRecord
from fulfillment.states import OUTCOME_STATES, OrderState
from tasks.app import app
from tasks.delivering import deliver_keys
from tasks.placing import place_order
from tasks.polling import poll_order
from tasks.runtime import Runtime, runtime
from tasks.steps import due_at

logger = logging.getLogger(__name__)

# Orders handled per run, so one run stays short even after a long outage.
RECONCILE_BATCH = 500


@app.task(name="tasks.reconcile")
def reconcile() -> dict[str, int]:
    """Re-enqueue the next step of every overdue order; return how many were handled."""
    rt = runtime()
    handled = 0
    for reference_id in rt.ledger.due(now=rt.clock(), limit=RECONCILE_BATCH):
        record = rt.ledger.get(reference_id)
        if record is None:
            continue
        if reconcile_order(rt, record):
            handled += 1
    if handled:
        logger.warning("reconcile: re-enqueued the next step of %d overdue orders", handled)
    return {"reenqueued": handled}


def reconcile_order(rt: Runtime, record: OrderRecord) -> bool:
    """Enqueue the overdue order's next step again; return whether anything was enqueued."""
    state = record.state
    if state is OrderState.RECEIVED:
        return _requeue_placing(rt, record)
    if state is OrderState.PLACING:
        return _give_up_placing(rt, record)
    if state is OrderState.POLLING:
        return _restart_polling(rt, record)
    if state in OUTCOME_STATES:
        return _requeue_delivery(rt, record)
    if state is OrderState.DELIVERING:
        return _restart_delivery(rt, record)
    _bump(rt, record, NOT_DUE)
    return False


def _bump(rt: Runtime, record: OrderRecord, due: float | str, **increment: int) -> bool:
    now = rt.clock()
    return rt.ledger.transition(
        record.reference_id,
        expected=record.state,
        new=record.state,
        now=now,
        event="reconciled",
        due_at=due,
        increment=tuple(increment),
        poll_seq=record.poll_seq if record.state is OrderState.POLLING else None,
        delivery_seq=record.delivery_seq if record.state is OrderState.DELIVERING else None,
    )


def _requeue_placing(rt: Runtime, record: OrderRecord) -> bool:
    if not _bump(rt, record, due_at(rt, rt.clock())):
        return False
    place_order.apply_async(args=(record.reference_id,))
    return True


def _give_up_placing(rt: Runtime, record: OrderRecord) -> bool:
    # The request's timeouts have long passed, so the task that sent it is gone: its
    # outcome is unknown and an operator must find out whether Erysta created it.
    moved = rt.ledger.transition(
        record.reference_id,
        expected=OrderState.PLACING,
        new=OrderState.UNKNOWN_OUTCOME,
        now=rt.clock(),
        event="outcome_unknown",
        due_at=NOT_DUE,
        fields={"message": "the worker placing this order stopped before it recorded the answer"},
    )
    if moved:
        logger.error(
            "reconcile: order %s was left PLACING; its outcome is unknown", record.reference_id
        )
    return moved


def _restart_polling(rt: Runtime, record: OrderRecord) -> bool:
    if not _bump(rt, record, due_at(rt, rt.clock(), rt.settings.poll_interval_s), poll_seq=1):
        return False
    poll_order.apply_async(
        args=(
            record.reference_id,
            record.poll_seq + 1,
        )
    )
    return True


def _requeue_delivery(rt: Runtime, record: OrderRecord) -> bool:
    if not _bump(rt, record, due_at(rt, rt.clock(), rt.settings.webhook_timeout_s)):
        return False
    deliver_keys.apply_async(args=(record.reference_id,))
    return True


def _restart_delivery(rt: Runtime, record: OrderRecord) -> bool:
    due = due_at(rt, rt.clock(), rt.settings.webhook_timeout_s)
    if not _bump(rt, record, due, delivery_seq=1):
        return False
    deliver_keys.apply_async(
        args=(
            record.reference_id,
            record.delivery_seq + 1,
        )
    )
    return True
