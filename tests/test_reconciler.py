"""The reconciler re-enqueues overdue steps, with a fake clock and no worker involved."""

from __future__ import annotations

from typing import Any

from fulfillment.states import OrderState
from tasks.reconciling import reconcile
from tasks.runtime import Runtime
from tests.conftest import FakeClock, order_in


def test_nothing_due_nothing_enqueued(
    runtime_with_clock: Runtime, published: list[tuple[str, list[Any]]]
) -> None:
    order_in(runtime_with_clock, "C-early", OrderState.RECEIVED)

    result = reconcile()

    assert result == {"reenqueued": 0}
    assert published == []


def test_lost_placing_message_requeued(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, list[Any]]]
) -> None:
    order_in(runtime_with_clock, "C-received", OrderState.RECEIVED)
    clock.advance(11)

    reconcile()

    assert published == [("tasks.place_order", ["C-received"])]
    assert runtime_with_clock.ledger.due(now=clock.now) == []


def test_stuck_placing_becomes_unknown_outcome(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, list[Any]]]
) -> None:
    order_in(runtime_with_clock, "C-placing", OrderState.PLACING)
    clock.advance(11)

    reconcile()

    record = runtime_with_clock.ledger.get("C-placing")
    assert record is not None
    assert record.state is OrderState.UNKNOWN_OUTCOME
    assert published == []


def test_lost_poll_restarts_loop_with_new_sequence(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, list[Any]]]
) -> None:
    order_in(runtime_with_clock, "C-polling", OrderState.POLLING, erysta_order_id="X1", poll_seq=3)
    clock.advance(11)

    reconcile()

    record = runtime_with_clock.ledger.get("C-polling")
    assert record is not None
    assert record.poll_seq == 4
    assert published == [("tasks.poll_order", ["C-polling", 4])]


def test_undelivered_outcome_requeued(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, list[Any]]]
) -> None:
    order_in(runtime_with_clock, "C-outcome", OrderState.FULFILLED)
    clock.advance(11)

    reconcile()

    assert published == [("tasks.deliver_keys", ["C-outcome"])]


def test_stalled_delivery_restarts_with_new_sequence(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, list[Any]]]
) -> None:
    order_in(runtime_with_clock, "C-delivering", OrderState.DELIVERING, delivery_seq=2)
    clock.advance(11)

    reconcile()

    record = runtime_with_clock.ledger.get("C-delivering")
    assert record is not None
    assert record.delivery_seq == 3
    assert published == [("tasks.deliver_keys", ["C-delivering", 3])]


def test_requeued_step_not_requeued_again_at_once(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, list[Any]]]
) -> None:
    order_in(runtime_with_clock, "C-once", OrderState.RECEIVED)
    clock.advance(11)

    reconcile()
    reconcile()

    assert len(published) == 1
