"""The erysta-workers command line, run in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests
from click.testing import CliRunner

from cli.main import main
from sandbox import catalogue
from sandbox.processes import free_port
from tasks.placing import place_order
from tasks.polling import poll_order
from tasks.runtime import Runtime, reset_runtime
from tests.support import wait_for


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_place_queues_order(runner: CliRunner, runtime_with_clock: Runtime) -> None:
    result = runner.invoke(main, ["place", "CLI-1", "--item", f"{catalogue.TEST_TXT_ID}:2"])

    assert result.exit_code == 0, result.output
    assert "order CLI-1 queued: RECEIVED" in result.output
    record = runtime_with_clock.ledger.get("CLI-1")
    assert record is not None
    assert record.items[0].quantity == 2


def test_place_twice_reports_existing(runner: CliRunner, runtime_with_clock: Runtime) -> None:
    runner.invoke(main, ["place", "CLI-2", "--item", catalogue.TEST_TXT_ID])

    result = runner.invoke(main, ["place", "CLI-2", "--item", catalogue.TEST_TXT_ID])

    assert result.exit_code == 0
    assert "already exists" in result.output


def test_place_invalid_quantity_rejected(runner: CliRunner, runtime_with_clock: Runtime) -> None:
    result = runner.invoke(main, ["place", "CLI-3", "--item", f"{catalogue.TEST_TXT_ID}:0"])

    assert result.exit_code == 1
    assert "items[0].quantity" in result.output
    assert runtime_with_clock.ledger.get("CLI-3") is None


def test_place_malformed_item_rejected(runner: CliRunner, runtime_with_clock: Runtime) -> None:
    result = runner.invoke(main, ["place", "CLI-4", "--item", "abc:two"])

    assert result.exit_code == 2
    assert "PRODUCT_ID:QUANTITY" in result.output


def test_show_prints_timeline_without_keys(runner: CliRunner, runtime_with_clock: Runtime) -> None:
    runner.invoke(main, ["place", "CLI-5", "--item", catalogue.TEST_TXT_ID])
    place_order("CLI-5")
    poll_order("CLI-5", 1)
    stored = runtime_with_clock.vault.load("CLI-5")
    assert stored is not None
    key_value = stored[0].keys[0].value

    text = runner.invoke(main, ["show", "CLI-5"])
    as_json = runner.invoke(main, ["show", "CLI-5", "--json"])

    assert text.exit_code == 0
    assert "order CLI-5: FULFILLED" in text.output
    assert "placed" in text.output
    assert key_value not in text.output
    assert json.loads(as_json.output)["order"]["state"] == "FULFILLED"
    assert key_value not in as_json.output


def test_show_unknown_order(runner: CliRunner, runtime_with_clock: Runtime) -> None:
    result = runner.invoke(main, ["show", "CLI-absent"])

    assert result.exit_code == 1
    assert "not found" in result.output


def test_list_filters_by_state(runner: CliRunner, runtime_with_clock: Runtime) -> None:
    runner.invoke(main, ["place", "CLI-6", "--item", catalogue.TEST_TXT_ID])

    received = runner.invoke(main, ["list", "--state", "RECEIVED"])
    delivered = runner.invoke(main, ["list", "--state", "DELIVERED"])

    assert "CLI-6" in received.output
    assert "CLI-6" not in delivered.output


def test_new_vault_key_prints_fernet_key(runner: CliRunner) -> None:
    result = runner.invoke(main, ["new-vault-key"])

    assert result.exit_code == 0
    assert len(result.output.strip()) == 44


def test_new_webhook_secret_prints_whsec(runner: CliRunner) -> None:
    result = runner.invoke(main, ["new-webhook-secret"])

    assert result.output.startswith("whsec_")


def test_flower_refuses_without_login(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)

    result = runner.invoke(main, ["flower", "--port=5555"])

    assert result.exit_code == 1
    assert "FLOWER_BASIC_AUTH is missing" in result.output


def test_sandbox_serves_until_interrupted() -> None:
    simulator_port, shop_port = free_port(), free_port()
    environment = {k: v for k, v in os.environ.items() if k != "WEBHOOK_SECRET"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "sandbox",
            f"--simulator-port={simulator_port}",
            f"--shop-port={shop_port}",
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        balance = wait_for(
            lambda: _get(f"http://127.0.0.1:{simulator_port}/v1/partners/balance"),
            message="the simulator to answer",
        )
        deliveries = wait_for(
            lambda: _get(f"http://127.0.0.1:{shop_port}/deliveries"),
            message="the shop to answer",
        )
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert balance.status_code == 200
    assert deliveries.status_code == 200
    assert process.returncode == 0
    assert "verifies with whsec_" in output
    assert f"ERYSTA_BASE_URL=http://127.0.0.1:{simulator_port}/v1/partners" in output


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, headers={"x-api-key": "sandbox-key"}, timeout=2)
    except requests.ConnectionError:
        return None


def test_unreachable_redis_is_one_line(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_runtime()
    try:
        result = runner.invoke(main, ["show", "CLI-x"])
    finally:
        reset_runtime()

    assert result.exit_code == 1
    assert result.output.startswith("Error: Redis failed:")
    assert "REDIS_URL" in result.output
    assert "Traceback" not in result.output


def test_invalid_setting_is_one_line(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "no-colon")

    result = runner.invoke(main, ["flower"])

    assert result.exit_code == 1
    assert "invalid configuration: FLOWER_BASIC_AUTH is invalid" in result.output


def test_list_rejects_unknown_state(runner: CliRunner) -> None:
    result = runner.invoke(main, ["list", "--state", "BOGUS"])

    assert result.exit_code == 2
    assert "BOGUS" in result.output


def test_list_says_when_nothing_matches(runner: CliRunner, runtime_with_clock: Runtime) -> None:
    result = runner.invoke(main, ["list", "--state", "REFUNDED"])

    assert result.output.strip() == "no orders match"
