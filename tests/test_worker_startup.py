"""A worker with a missing or invalid setting stops at start-up and names the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fulfillment.vault import new_vault_key


def start_worker(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ERYSTA_", "VAULT_", "WEBHOOK_", "DELIVERY_", "POLL_", "LOG_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--pool=solo"],
        env={**base, "REDIS_URL": "redis://127.0.0.1:1/0", **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


VALID = {
    "ERYSTA_API_KEY": "key",
    "VAULT_KEYS": new_vault_key(),
    "DELIVERY_CALLABLE": "tests.support:record_delivery",
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ERYSTA_API_KEY": ""}, "ERYSTA_API_KEY is missing"),
        ({"VAULT_KEYS": ""}, "VAULT_KEYS is missing"),
        ({"VAULT_KEYS": "short"}, "VAULT_KEYS is invalid: key 1 is not 32"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is invalid"),
        ({"DELIVERY_CALLABLE": ""}, "no delivery is configured"),
        ({"DELIVERY_CALLABLE": "absent_module:f"}, "DELIVERY_CALLABLE='absent_module:f'"),
        ({"POLL_INTERVAL_S": "soon"}, "POLL_INTERVAL_S='soon' is invalid"),
    ],
)
def test_worker_stops_naming_setting(change: dict[str, str], expected: str) -> None:
    result = start_worker({**VALID, **change})

    assert result.returncode != 0
    assert f"invalid configuration: {expected}" in result.stderr
    assert "Traceback" not in result.stderr
