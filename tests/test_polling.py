"""poll_order driven directly, with a fake clock, against the simulator."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from config import load_settings
from fulfillment.states import OrderState
from sandbox import catalogue
from sandbox.simulator import RunningSimulator
from tasks.api import submit_order
from tasks.placing import place_order
from tasks.polling import poll_order
from tasks.runtime import Runtime, reset_runtime
from tests.conftest import FakeClock
from tests.support import arm_fault


def placed(rt: Runtime, product_id: str, reference_id: str) -> None:
    submit_order(reference_id, [{"id": product_id, "quantity": 1}])
    place_order(reference_id)
    record = rt.ledger.get(reference_id)
    assert record is not None
    assert record.state is OrderState.POLLING


def test_first_poll_scheduled_after_delay(
    runtime_with_clock: Runtime, published: list[tuple[str, list[Any]]]
) -> None:
    placed(runtime_with_clock, catalogue.SLOW_ID, "P-first")

    assert ("tasks.poll_order", ["P-first", 1]) in published
    record = runtime_with_clock.ledger.get("P-first")
    assert record is not None
    assert record.poll_seq == 1
    assert record.next_action_at == pytest.approx(
        record.placed_at + runtime_with_clock.settings.first_poll_delay_s  # type: ignore[operator]
    )


def test_pending_order_polls_again_after_interval(
    runtime_with_clock: Runtime, clock: FakeClock
) -> None:
    placed(runtime_with_clock, catalogue.SLOW_ID, "P-again")
    clock.advance(1.0)

    result = poll_order("P-again", 1)

    record = runtime_with_clock.ledger.get("P-again")
    assert record is not None
    assert result["state"] == "POLLING"
    assert record.poll_count == 1
    assert record.next_action_at == pytest.approx(
        clock.now + runtime_with_clock.settings.poll_interval_s
    )


def test_last_poll_moves_to_deadline(runtime_with_clock: Runtime, clock: FakeClock) -> None:
    placed(runtime_with_clock, catalogue.SLOW_ID, "P-last")
    clock.advance(runtime_with_clock.settings.poll_deadline_s - 0.05)

    poll_order("P-last", 1)

    record = runtime_with_clock.ledger.get("P-last")
    assert record is not None
    assert record.state is OrderState.POLLING
    assert record.next_action_at == pytest.approx(clock.now + 0.05)


def test_deadline_flags_order(runtime_with_clock: Runtime, clock: FakeClock) -> None:
    placed(runtime_with_clock, catalogue.SLOW_ID, "P-deadline")
    clock.advance(runtime_with_clock.settings.poll_deadline_s + 1)

    result = poll_order("P-deadline", 1)

    record = runtime_with_clock.ledger.get("P-deadline")
    assert record is not None
    assert result["state"] == "NEEDS_ATTENTION"
    assert record.state is OrderState.NEEDS_ATTENTION
    assert record.message is not None
    assert "POLL_DEADLINE_S" in record.message


def test_stale_poll_loop_exits(
    runtime_with_clock: Runtime, published: list[tuple[str, list[Any]]]
) -> None:
    placed(runtime_with_clock, catalogue.SLOW_ID, "P-stale")
    published.clear()
    before = runtime_with_clock.ledger.timeline("P-stale")

    result = poll_order("P-stale", 7)

    assert result["state"] == "POLLING"
    assert runtime_with_clock.ledger.timeline("P-stale") == before
    assert published == []


def test_terminal_status_stores_keys_and_hands_over(
    runtime_with_clock: Runtime, published: list[tuple[str, list[Any]]]
) -> None:
    placed(runtime_with_clock, catalogue.TEST_TXT_ID, "P-done")
    published.clear()

    result = poll_order("P-done", 1)

    record = runtime_with_clock.ledger.get("P-done")
    assert record is not None
    assert result["state"] == "FULFILLED"
    assert record.erysta_status == "COMPLETED"
    stored = runtime_with_clock.vault.load("P-done")
    assert stored is not None
    assert len(stored[0].keys) == 1
    assert published == [("tasks.deliver_keys", ["P-done"])]


def test_poll_result_never_holds_keys(runtime_with_clock: Runtime) -> None:
    placed(runtime_with_clock, catalogue.TEST_TXT_ID, "P-result")

    result = poll_order("P-result", 1)

    stored = runtime_with_clock.vault.load("P-result")
    assert stored is not None
    assert stored[0].keys[0].value not in repr(result)


def test_successful_poll_resets_error_count(
    runtime_with_clock: Runtime, simulator: RunningSimulator
) -> None:
    placed(runtime_with_clock, catalogue.SLOW_ID, "P-errors")
    arm_fault(simulator, "keys", "server_error", count=2)
    poll_order("P-errors", 1)
    poll_order("P-errors", 1)
    record = runtime_with_clock.ledger.get("P-errors")
    assert record is not None
    assert record.error_count == 2

    poll_order("P-errors", 1)

    record = runtime_with_clock.ledger.get("P-errors")
    assert record is not None
    assert record.error_count == 0


def test_undeliverable_image_key_flags_order(
    stack_environment: dict[str, str], published: list[tuple[str, list[Any]]]
) -> None:
    settings = load_settings(
        {
            **stack_environment,
            "LEDGER_PREFIX": "images-" + secrets.token_hex(4),
            "IMAGE_KEY_MAX_BYTES": "10",
        }
    )
    rt = Runtime(settings)
    reset_runtime(rt)
    try:
        placed(rt, catalogue.TEST_IMG_ID, "P-image")
        published.clear()

        result = poll_order("P-image", 1)

        record = rt.ledger.get("P-image")
        stored = rt.vault.load("P-image")
    finally:
        rt.close()
        reset_runtime()
    assert result["state"] == "NEEDS_ATTENTION"
    assert record is not None
    assert record.outcome is OrderState.FULFILLED
    assert record.message is not None
    assert f"image key 1 of product {catalogue.TEST_IMG_ID}" in record.message
    assert "IMAGE_KEY_MAX_BYTES" in record.message
    assert stored is not None
    assert stored[0].keys[0].value not in record.message
    assert published == []
