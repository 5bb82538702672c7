"""Checkout API: validation before anything is written or queued."""

from __future__ import annotations

from typing import Any

import pytest

from config import SettingsError, load_settings
from tasks.api import (
    InvalidOrderError,
    ReferenceConflictError,
    get_order_keys,
    submit_order,
)
from tasks.placing import place_order
from tasks.polling import poll_order
from tasks.runtime import Runtime, reset_runtime

VALID_ITEM = {"id": "69ae19b4397b2e44c02853f5", "quantity": 1}


@pytest.mark.parametrize(
    ("reference_id", "items", "field", "quoted_value"),
    [
        ("", [VALID_ITEM], "reference_id", "''"),
        (None, [VALID_ITEM], "reference_id", "None"),
        ("has space", [VALID_ITEM], "reference_id", "'has space'"),
        ("R-1\n", [VALID_ITEM], "reference_id", "'R-1\\n'"),
        ("R-1", [{"id": "69ae19b4397b2e44c02853f5\n", "quantity": 1}], "items[0].id", "\\n'"),
        ("R-1", [VALID_ITEM] * 101, "items", "..."),
        ("R" * 129, [VALID_ITEM], "reference_id", "'RRR"),
        ("R-1", [], "items", "[]"),
        ("R-1", "not-a-list", "items", "'not-a-list'"),
        ("R-1", [{"id": "69ae19b4397b2e44c02853f5", "quantity": 0}], "items[0].quantity", "0"),
        ("R-1", [{"id": "69ae19b4397b2e44c02853f5", "quantity": "2"}], "items[0].quantity", "'2'"),
        ("R-1", [{"id": "69ae19b4397b2e44c02853f5", "quantity": 1.5}], "items[0].quantity", "1.5"),
        (
            "R-1",
            [{"id": "69ae19b4397b2e44c02853f5", "quantity": 1001}],
            "items[0].quantity",
            "1001",
        ),
        ("R-1", [{"quantity": 1}], "items[0].id", ""),
        ("R-1", [VALID_ITEM, {"id": "bad id!", "quantity": 1}], "items[1].id", "'bad id!'"),
        ("R-1", [{"id": "69ae19b4397b2e44c02853f5"}], "items[0].quantity", ""),
    ],
)
def test_invalid_request_names_field_and_value(
    reference_id: Any,
    items: Any,
    field: str,
    quoted_value: str,
    runtime_with_clock: Runtime,
    published: list[tuple[str, list[Any]]],
) -> None:
    with pytest.raises(InvalidOrderError) as raised:
        submit_order(reference_id, items)

    assert field in raised.value.errors
    assert field in str(raised.value)
    assert quoted_value in str(raised.value)
    assert published == []


def test_invalid_request_writes_nothing(
    runtime_with_clock: Runtime, published: list[tuple[str, list[Any]]]
) -> None:
    with pytest.raises(InvalidOrderError):
        submit_order("R-nothing", [{"id": "69ae19b4397b2e44c02853f5", "quantity": -1}])

    assert runtime_with_clock.ledger.get("R-nothing") is None
    assert published == []


def test_valid_request_is_recorded_and_queued(
    runtime_with_clock: Runtime, published: list[tuple[str, list[Any]]]
) -> None:
    status = submit_order("R-valid", [VALID_ITEM])

    assert status.created is True
    assert status.state == "RECEIVED"
    assert published == [("tasks.place_order", ["R-valid"])]


def test_repeated_reference_queues_nothing(
    runtime_with_clock: Runtime, published: list[tuple[str, list[Any]]]
) -> None:
    submit_order("R-twice", [VALID_ITEM])
    published.clear()

    status = submit_order("R-twice", [VALID_ITEM])

    assert status.created is False
    assert published == []


def test_repeated_reference_with_other_items_raises(
    runtime_with_clock: Runtime, published: list[tuple[str, list[Any]]]
) -> None:
    submit_order("R-conflict", [VALID_ITEM])
    published.clear()

    with pytest.raises(ReferenceConflictError, match="R-conflict"):
        submit_order("R-conflict", [{"id": "69ae19b4397b2e44c02853f5", "quantity": 2}])
    assert published == []


def test_order_keys_readable_with_vault_key(runtime_with_clock: Runtime) -> None:
    submit_order("R-keys", [VALID_ITEM])
    assert get_order_keys("R-keys") is None
    place_order("R-keys")
    poll_order("R-keys", 1)

    products = get_order_keys("R-keys")

    assert products is not None
    assert products[0].product_id == VALID_ITEM["id"]
    assert len(products[0].keys) == 1
    assert products[0].keys[0].type == "text"


def test_order_keys_need_vault_key(stack_environment: dict[str, str]) -> None:
    without_key = {k: v for k, v in stack_environment.items() if k != "VAULT_KEYS"}
    reset_runtime(Runtime(load_settings(without_key)))
    try:
        with pytest.raises(SettingsError, match="VAULT_KEYS is missing"):
            get_order_keys("R-keys")
    finally:
        reset_runtime()
