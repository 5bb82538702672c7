"""Key retention, re-encryption and redelivery, with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import main
from fulfillment.states import OrderState
from fulfillment.vault import KeyVault, StoredKey, StoredProduct, new_vault_key
from tasks.operations import OperatorError, redeliver_order
from tasks.retention import purge_keys
from tasks.runtime import Runtime
from tests.conftest import FakeClock, order_in

Published = list[tuple[str, list[Any]]]
PRODUCTS = [
    StoredProduct(
        product_id="69ae19b4397b2e44c02853f5",
        title="Test Product - TXT",
        quantity=1,
        keys=(StoredKey(type="text", value="KEEP-OR-PURGE"),),
    )
]


def delivered(rt: Runtime, reference_id: str) -> None:
    order_in(
        rt,
        reference_id,
        OrderState.DELIVERED,
        outcome=OrderState.FULFILLED,
        delivered_at=rt.clock(),
        delivery_seq=1,
    )
    rt.vault.store(reference_id, PRODUCTS, now=rt.clock())


def test_keys_kept_within_retention(runtime_with_clock: Runtime, clock: FakeClock) -> None:
    delivered(runtime_with_clock, "K-young")
    clock.advance(runtime_with_clock.settings.key_retention_s - 60)

    result = purge_keys()

    assert result == {"purged": 0}
    assert runtime_with_clock.vault.load("K-young") == PRODUCTS


def test_keys_purged_after_retention(runtime_with_clock: Runtime, clock: FakeClock) -> None:
    delivered(runtime_with_clock, "K-old")
    clock.advance(runtime_with_clock.settings.key_retention_s + 60)

    result = purge_keys()

    record = runtime_with_clock.ledger.get("K-old")
    assert result == {"purged": 1}
    assert runtime_with_clock.vault.load("K-old") is None
    assert record is not None
    assert record.state is OrderState.DELIVERED
    assert record.delivered_at is not None
    assert record.keys_purged_at == clock.now
    assert runtime_with_clock.ledger.timeline("K-old")[-1]["event"] == "keys_purged"


def test_undelivered_keys_never_purged(runtime_with_clock: Runtime, clock: FakeClock) -> None:
    order_in(
        runtime_with_clock, "K-stuck", OrderState.NEEDS_ATTENTION, outcome=OrderState.FULFILLED
    )
    runtime_with_clock.vault.store("K-stuck", PRODUCTS, now=clock.now)
    clock.advance(runtime_with_clock.settings.key_retention_s * 2)

    purge_keys()

    assert runtime_with_clock.vault.load("K-stuck") == PRODUCTS


def test_rotation_moves_entries_to_newest_key(runtime_with_clock: Runtime) -> None:
    delivered(runtime_with_clock, "K-rotate")
    old_keys = runtime_with_clock.settings.require_vault_keys()
    newest = new_vault_key()
    prefix = runtime_with_clock.settings.ledger_prefix
    both = KeyVault(runtime_with_clock.redis, prefix, [newest, *old_keys])

    rotated = both.rotate()

    assert rotated == 1
    only_newest = KeyVault(runtime_with_clock.redis, prefix, [newest])
    assert only_newest.load("K-rotate") == PRODUCTS


def test_rotate_vault_command(runtime_with_clock: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    delivered(runtime_with_clock, "K-cli")

    result = CliRunner().invoke(main, ["rotate-vault"])

    assert result.exit_code == 0, result.output
    assert "re-encrypted the keys of" in result.output


def test_redeliver_sends_again(runtime_with_clock: Runtime, published: Published) -> None:
    delivered(runtime_with_clock, "K-again")

    status = redeliver_order("K-again", operator="ana", note="shop lost it")

    record = runtime_with_clock.ledger.get("K-again")
    assert status.state == "DELIVERING"
    assert record is not None
    assert record.delivery_seq == 2
    assert record.delivered_sinks == frozenset()
    assert published == [("tasks.deliver_keys", ["K-again", 2])]


def test_redeliver_refused_after_purge(runtime_with_clock: Runtime, clock: FakeClock) -> None:
    delivered(runtime_with_clock, "K-purged")
    clock.advance(runtime_with_clock.settings.key_retention_s + 60)
    purge_keys()

    with pytest.raises(OperatorError, match="purged"):
        redeliver_order("K-purged", operator="ana")


def test_redeliver_refused_while_polling(runtime_with_clock: Runtime) -> None:
    order_in(runtime_with_clock, "K-busy", OrderState.POLLING)

    with pytest.raises(OperatorError, match="it is POLLING"):
        redeliver_order("K-busy", operator="ana")


def test_redeliver_command(runtime_with_clock: Runtime, published: Published) -> None:
    delivered(runtime_with_clock, "K-cmd")

    result = CliRunner().invoke(main, ["redeliver", "K-cmd", "--note", "resend"])

    assert result.output.strip() == "order K-cmd: DELIVERING"
