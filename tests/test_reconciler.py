"""The reconciler re-enqueues overdue steps, with a fake clock and no worker involved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import before_task_publish

from fulfillment.records import LineItem
from fulfillment.states import OrderState
from tasks.reconciling import reconcile
from tasks.runtime import Runtime
from tests.conftest import FakeClock

ITEMS = (LineItem("69ae19b4397b2e44c02853f5", 1),)


@pytest.fixture
def published(runtime_with_clock: Runtime) -> Iterator[list[tuple[str, Any]]]:
    """(task name, arguments) of every task published while the test runs."""
    messages: list[tuple[str, Any]] = []

    def record(body: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
        messages.append((str((headers or {}).get("task")), list(body[0]) if body else None))

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)


def order_in(rt: Runtime, reference_id: str, state: OrderState, **fields: object) -> None:
    now = rt.clock()
    rt.ledger.create(reference_id, ITEMS, now=now, due_at=now + 10)
    if state is not OrderState.RECEIVED:
        rt.ledger.transition(
            reference_id,
            expected=OrderState.RECEIVED,
            new=state,
            now=now,
            event="test",
            due_at=now + 10,
            fields=fields,
        )


def test_nothing_due_nothing_enqueued(
    runtime_with_clock: Runtime, published: list[tuple[str, Any]]
) -> None:
    order_in(runtime_with_clock, "C-early", OrderState.RECEIVED)

    result = reconcile()

    assert result == {"reenqueued": 0}
    assert published == []


def test_lost_placing_message_requeued(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, Any]]
) -> None:
    order_in(runtime_with_clock, "C-received", OrderState.RECEIVED)
    clock.advance(11)

    reconcile()

    assert published == [("tasks.place_order", ["C-received"])]
    assert runtime_with_clock.ledger.due(now=clock.now) == []


def test_stuck_placing_becomes_unknown_outcome(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, Any]]
) -> None:
    order_in(runtime_with_clock, "C-placing", OrderState.PLACING)
    clock.advance(11)

    reconcile()

    record = runtime_with_clock.ledger.get("C-placing")
    assert record is not None
    assert record.state is OrderState.UNKNOWN_OUTCOME
    assert published == []


def test_lost_poll_restarts_loop_with_new_sequence(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, Any]]
) -> None:
    order_in(runtime_with_clock, "C-polling", OrderState.POLLING, erysta_order_id="X1", poll_seq=3)
    clock.advance(11)

    reconcile()

    record = runtime_with_clock.ledger.get("C-polling")
    assert record is not None
    assert record.poll_seq == 4
    assert published == [("tasks.poll_order", ["C-polling", 4])]


def test_undelivered_outcome_requeued(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, Any]]
) -> None:
    order_in(runtime_with_clock, "C-outcome", OrderState.FULFILLED)
    clock.advance(11)

    reconcile()

    assert published == [("tasks.deliver_keys", ["C-outcome"])]


def test_stalled_delivery_restarts_with_new_sequence(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, Any]]
) -> None:
    order_in(runtime_with_clock, "C-delivering", OrderState.DELIVERING, delivery_seq=2)
    clock.advance(11)

    reconcile()

    record = runtime_with_clock.ledger.get("C-delivering")
    assert record is not None
    assert record.delivery_seq == 3
    assert published == [("tasks.deliver_keys", ["C-delivering", 3])]


def test_requeued_step_not_requeued_again_at_once(
    runtime_with_clock: Runtime, clock: FakeClock, published: list[tuple[str, Any]]
) -> None:
    order_in(runtime_with_clock, "C-once", OrderState.RECEIVED)
    clock.advance(11)

    reconcile()
    reconcile()

    assert len(published) == 1
