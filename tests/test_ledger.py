"""The ledger: create-if-absent, compare-and-set transitions, guards and the due index."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis

from fulfillment.ledger import NOT_DUE, Ledger
from fulfillment.records import LineItem
from fulfillment.states import OrderState

ITEMS = (LineItem("69ae19b4397b2e44c02853f5", 1),)


@pytest.fixture
def ledger(redis_client: redis.Redis) -> Iterator[Ledger]:
    yield Ledger(redis_client, "ledger-test-" + secrets.token_hex(4))


def test_create_then_get(ledger: Ledger) -> None:
    result = ledger.create("R-1", ITEMS, now=100.0, due_at=160.0)

    assert result.created is True
    assert result.record.state is OrderState.RECEIVED
    assert result.record.items == ITEMS
    assert result.record.created_at == 100.0
    assert ledger.get("R-1") == result.record


def test_create_twice_keeps_first(ledger: Ledger) -> None:
    ledger.create("R-1", ITEMS, now=100.0, due_at=160.0)

    second = ledger.create("R-1", (LineItem("other", 5),), now=200.0, due_at=260.0)

    assert second.created is False
    assert second.record.items == ITEMS
    assert second.record.created_at == 100.0
    assert len(ledger.timeline("R-1")) == 1


def test_transition_from_expected_state(ledger: Ledger) -> None:
    ledger.create("R-1", ITEMS, now=100.0, due_at=160.0)

    moved = ledger.transition(
        "R-1", expected=OrderState.RECEIVED, new=OrderState.PLACING, now=101.0, event="placing"
    )

    record = ledger.get("R-1")
    assert moved is True
    assert record is not None
    assert record.state is OrderState.PLACING
    assert record.updated_at == 101.0


def test_transition_from_other_state_fails(ledger: Ledger) -> None:
    ledger.create("R-1", ITEMS, now=100.0, due_at=160.0)

    moved = ledger.transition(
        "R-1", expected=OrderState.POLLING, new=OrderState.FULFILLED, now=101.0, event="x"
    )

    record = ledger.get("R-1")
    assert moved is False
    assert record is not None
    assert record.state is OrderState.RECEIVED
    assert len(ledger.timeline("R-1")) == 1


def test_transition_of_missing_order_raises(ledger: Ledger) -> None:
    with pytest.raises(KeyError, match="R-absent"):
        ledger.transition(
            "R-absent", expected=OrderState.RECEIVED, new=OrderState.PLACING, now=1.0, event="x"
        )


def test_poll_seq_guard(ledger: Ledger) -> None:
    ledger.create("R-1", ITEMS, now=100.0, due_at=160.0)
    ledger.transition(
        "R-1",
        expected=OrderState.RECEIVED,
        new=OrderState.POLLING,
        now=101.0,
        event="placed",
        increment=("poll_seq",),
    )

    stale = ledger.transition(
        "R-1",
        expected=OrderState.POLLING,
        new=OrderState.FULFILLED,
        now=102.0,
        event="x",
        poll_seq=0,
    )
    current = ledger.transition(
        "R-1",
        expected=OrderState.POLLING,
        new=OrderState.FULFILLED,
        now=102.0,
        event="x",
        poll_seq=1,
    )

    assert stale is False
    assert current is True


def test_fields_and_counters_written(ledger: Ledger) -> None:
    ledger.create("R-1", ITEMS, now=100.0, due_at=160.0)

    ledger.transition(
        "R-1",
        expected=OrderState.RECEIVED,
        new=OrderState.POLLING,
        now=101.0,
        event="placed",
        fields={"erysta_order_id": "ABCD1234", "placed_at": 101.0},
        increment=("poll_seq", "poll_count"),
    )

    record = ledger.get("R-1")
    assert record is not None
    assert record.erysta_order_id == "ABCD1234"
    assert record.placed_at == 101.0
    assert record.poll_seq == 1
    assert record.poll_count == 1


def test_due_index_follows_transitions(ledger: Ledger) -> None:
    ledger.create("R-1", ITEMS, now=100.0, due_at=160.0)
    ledger.create("R-2", ITEMS, now=100.0, due_at=500.0)

    assert ledger.due(now=200.0) == ["R-1"]

    ledger.transition(
        "R-1",
        expected=OrderState.RECEIVED,
        new=OrderState.PLACING,
        now=201.0,
        event="x",
        due_at=900.0,
    )
    assert ledger.due(now=600.0) == ["R-2"]

    ledger.transition(
        "R-2",
        expected=OrderState.RECEIVED,
        new=OrderState.DELIVERED,
        now=601.0,
        event="x",
        due_at=NOT_DUE,
    )
    assert ledger.due(now=10_000.0) == ["R-1"]


def test_timeline_records_each_change(ledger: Ledger) -> None:
    ledger.create("R-1", ITEMS, now=100.0, due_at=160.0)
    ledger.transition(
        "R-1", expected=OrderState.RECEIVED, new=OrderState.PLACING, now=101.0, event="placing"
    )
    ledger.record_event("R-1", now=102.0, event="note", detail="x")

    timeline = ledger.timeline("R-1")

    assert [entry["event"] for entry in timeline] == ["received", "placing", "note"]
    assert timeline[1]["to"] == "PLACING"
    assert timeline[1]["expected"] == ["RECEIVED"]
    assert timeline[2]["detail"] == "x"


def test_reference_ids_newest_first(ledger: Ledger) -> None:
    ledger.create("R-old", ITEMS, now=100.0, due_at=160.0)
    ledger.create("R-new", ITEMS, now=200.0, due_at=260.0)

    assert ledger.reference_ids() == ["R-new", "R-old"]
