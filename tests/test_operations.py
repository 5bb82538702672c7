"""Operator actions on orders waiting for a person, driven in-process."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import main
from fulfillment.states import OrderState
from tasks.operations import OperatorError, attach_order, cancel_order, confirm_not_placed
from tasks.runtime import Runtime
from tests.conftest import order_in

Published = list[tuple[str, list[Any]]]


def test_attach_resumes_polling(runtime_with_clock: Runtime, published: Published) -> None:
    order_in(runtime_with_clock, "O-attach", OrderState.UNKNOWN_OUTCOME, poll_seq=2)

    status = attach_order("O-attach", "SE757MKE", operator="ana", note="found in dashboard")

    record = runtime_with_clock.ledger.get("O-attach")
    assert record is not None
    assert status.state == "POLLING"
    assert record.erysta_order_id == "SE757MKE"
    assert record.poll_seq == 3
    assert published == [("tasks.poll_order", ["O-attach", 3])]
    last = runtime_with_clock.ledger.timeline("O-attach")[-1]
    assert last["event"] == "operator_attached"
    assert last["operator"] == "ana"
    assert last["note"] == "found in dashboard"


def test_attach_reuses_recorded_id(runtime_with_clock: Runtime, published: Published) -> None:
    order_in(runtime_with_clock, "O-deadline", OrderState.NEEDS_ATTENTION, erysta_order_id="X1")

    attach_order("O-deadline", None, operator="ana")

    record = runtime_with_clock.ledger.get("O-deadline")
    assert record is not None
    assert record.state is OrderState.POLLING
    assert record.erysta_order_id == "X1"


@pytest.mark.parametrize("erysta_order_id", ["bad id!", "X" * 65, "a/b"])
def test_attach_rejects_malformed_id(erysta_order_id: str, runtime_with_clock: Runtime) -> None:
    order_in(runtime_with_clock, "O-badid", OrderState.UNKNOWN_OUTCOME)

    with pytest.raises(OperatorError, match=r"Erysta order id .* is invalid"):
        attach_order("O-badid", erysta_order_id, operator="ana")


def test_attach_without_any_id_rejected(runtime_with_clock: Runtime) -> None:
    order_in(runtime_with_clock, "O-noid", OrderState.UNKNOWN_OUTCOME)

    with pytest.raises(OperatorError, match="no Erysta order id"):
        attach_order("O-noid", None, operator="ana")


@pytest.mark.parametrize("state", [OrderState.RECEIVED, OrderState.POLLING, OrderState.DELIVERED])
def test_actions_reject_orders_not_waiting(
    state: OrderState, runtime_with_clock: Runtime, published: Published
) -> None:
    order_in(runtime_with_clock, "O-busy", state)

    with pytest.raises(OperatorError, match=f"it is {state.value}"):
        attach_order("O-busy", "X", operator="ana")
    with pytest.raises(OperatorError, match=f"it is {state.value}"):
        confirm_not_placed("O-busy", operator="ana")
    with pytest.raises(OperatorError, match=f"it is {state.value}"):
        cancel_order("O-busy", operator="ana", note="x")
    assert published == []


def test_unknown_order_rejected(runtime_with_clock: Runtime) -> None:
    with pytest.raises(OperatorError, match="not found"):
        attach_order("O-absent", "X", operator="ana")


def test_confirm_not_placed_places_again(runtime_with_clock: Runtime, published: Published) -> None:
    order_in(runtime_with_clock, "O-again", OrderState.UNKNOWN_OUTCOME)

    status = confirm_not_placed("O-again", operator="ana", note="support: no such order")

    assert status.state == "RECEIVED"
    assert published == [("tasks.place_order", ["O-again"])]


def test_confirm_rejected_when_order_exists(runtime_with_clock: Runtime) -> None:
    order_in(runtime_with_clock, "O-exists", OrderState.NEEDS_ATTENTION, erysta_order_id="X9")

    with pytest.raises(OperatorError, match="Erysta order X9 exists"):
        confirm_not_placed("O-exists", operator="ana")


def test_cancel_tells_shop(runtime_with_clock: Runtime, published: Published) -> None:
    order_in(runtime_with_clock, "O-cancel", OrderState.UNKNOWN_OUTCOME)

    status = cancel_order("O-cancel", operator="ana", note="customer refunded")

    record = runtime_with_clock.ledger.get("O-cancel")
    assert record is not None
    assert status.state == "CANCELLED"
    assert record.outcome is OrderState.CANCELLED
    assert record.message == "customer refunded"
    assert published == [("tasks.deliver_keys", ["O-cancel"])]


def test_cancel_requires_note(runtime_with_clock: Runtime) -> None:
    order_in(runtime_with_clock, "O-nonote", OrderState.UNKNOWN_OUTCOME)

    with pytest.raises(OperatorError, match="note is required"):
        cancel_order("O-nonote", operator="ana", note=" ")


def test_cancel_rejected_once_outcome_known(runtime_with_clock: Runtime) -> None:
    order_in(
        runtime_with_clock, "O-known", OrderState.NEEDS_ATTENTION, outcome=OrderState.FULFILLED
    )

    with pytest.raises(OperatorError, match="outcome FULFILLED is known"):
        cancel_order("O-known", operator="ana", note="x")


def test_cli_attach_and_cancel(runtime_with_clock: Runtime, published: Published) -> None:
    order_in(runtime_with_clock, "O-cli-1", OrderState.UNKNOWN_OUTCOME)
    order_in(runtime_with_clock, "O-cli-2", OrderState.UNKNOWN_OUTCOME)
    runner = CliRunner()

    attached = runner.invoke(main, ["attach", "O-cli-1", "ABCD1234", "--operator", "bo"])
    cancelled = runner.invoke(main, ["cancel", "O-cli-2", "--note", "gone"])
    rejected = runner.invoke(main, ["confirm-not-placed", "O-cli-1"])

    assert attached.output.strip() == "order O-cli-1: POLLING"
    assert cancelled.output.strip() == "order O-cli-2: CANCELLED"
    assert rejected.exit_code == 1
    assert "it is POLLING" in rejected.output


def test_cli_list_older_than(runtime_with_clock: Runtime, clock: Any) -> None:
    order_in(runtime_with_clock, "O-old", OrderState.UNKNOWN_OUTCOME)
    clock.advance(600)
    order_in(runtime_with_clock, "O-new", OrderState.UNKNOWN_OUTCOME)
    runner = CliRunner()

    result = runner.invoke(main, ["list", "--state", "UNKNOWN_OUTCOME", "--older-than", "300"])

    assert "O-old" in result.output
    assert "O-new" not in result.output
