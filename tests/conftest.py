"""Shared fixtures: a private Redis, the simulator, the demo shop and a real Celery worker.

Everything runs on 127.0.0.1 on free ports, so the suite needs no running services and
can kill and restart its own Redis.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from celery.signals import before_task_publish

from config import load_settings
from fulfillment.records import LineItem
from fulfillment.signing import generate_secret
from fulfillment.states import OrderState
from fulfillment.vault import new_vault_key
from sandbox.processes import CeleryProcess, RedisProcess, worker_process
from sandbox.shop import RunningShop, start_shop
from sandbox.simulator import RunningSimulator, SimulatorConfig, start_simulator
from tasks.app import configure_app
from tasks.runtime import Runtime, reset_runtime

TEST_API_KEY = "test-key-" + secrets.token_hex(8)
ITEMS = (LineItem("69ae19b4397b2e44c02853f5", 1),)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"), appendonly=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    server = start_simulator(
        SimulatorConfig(api_keys=frozenset({TEST_API_KEY}), rate_limit_per_minute=100_000)
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def webhook_secret() -> str:
    return generate_secret()


@pytest.fixture(scope="session")
def shop(webhook_secret: str) -> Iterator[RunningShop]:
    server = start_shop(webhook_secret)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack_environment(
    redis_server: RedisProcess,
    simulator: RunningSimulator,
    shop: RunningShop,
    webhook_secret: str,
) -> dict[str, str]:
    """The environment of the worker under test: short polls, both delivery sinks."""
    return {
        "ERYSTA_BASE_URL": simulator.base_url,
        "ERYSTA_API_KEY": TEST_API_KEY,
        "ERYSTA_READ_TIMEOUT_S": "2",
        # The simulator allows far more than Erysta, so that tests never wait for the limit.
        "ERYSTA_CALLS_PER_MINUTE": "100000",
        "REDIS_URL": redis_server.url,
        "LEDGER_PREFIX": "test",
        "WEBHOOK_URL": shop.webhook_url,
        "WEBHOOK_SECRET": webhook_secret,
        "WEBHOOK_TIMEOUT_S": "2",
        "DELIVERY_CALLABLE": "tests.support:record_delivery",
        "VAULT_KEYS": new_vault_key(),
        "POLL_INTERVAL_S": "0.2",
        "FIRST_POLL_DELAY_S": "0.1",
        "POLL_DEADLINE_S": "30",
        "POLL_ERROR_BACKOFF_MAX_S": "0.5",
        "STEP_GRACE_S": "60",
    }


@pytest.fixture(scope="session", autouse=True)
def process_environment(stack_environment: dict[str, str]) -> Iterator[None]:
    """Point this process's settings at the test stack, as checkout code would be."""
    saved = dict(os.environ)
    os.environ.update(stack_environment)
    reset_runtime()
    # Collecting tests that import task objects may have configured the app already.
    configure_app(load_settings())
    yield
    os.environ.clear()
    os.environ.update(saved)
    reset_runtime()


@pytest.fixture(scope="session")
def worker(
    stack_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryProcess]:
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    environment = {**os.environ, **stack_environment, "LOG_LEVEL": "INFO"}
    process = worker_process(environment, log_path, node_name=f"test-{secrets.token_hex(3)}@%h")
    process.start()
    process.wait_for_log("ready.")
    yield process
    process.stop()


@pytest.fixture
def worker_log(worker: CeleryProcess) -> Path:
    return worker.log_path


class FakeClock:
    """A clock the test moves by hand; it starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime_with_clock(stack_environment: dict[str, str], clock: FakeClock) -> Iterator[Runtime]:
    """A runtime in this process with a fake clock and its own ledger prefix.

    Tasks called directly run here. The worker under test uses another prefix, so a
    message these tasks enqueue finds no order there and does nothing.
    """
    prefix = "direct-" + secrets.token_hex(4)
    settings = load_settings({**stack_environment, "LEDGER_PREFIX": prefix})
    rt = Runtime(settings, clock=clock)
    reset_runtime(rt)
    yield rt
    rt.close()
    reset_runtime()


@pytest.fixture
def published() -> Iterator[list[tuple[str, list[Any]]]]:
    """(task name, arguments) of every task this process sends while the test runs."""
    messages: list[tuple[str, list[Any]]] = []

    def record(body: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
        messages.append((str((headers or {}).get("task")), list(body[0]) if body else []))

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)


def order_in(rt: Runtime, reference_id: str, state: OrderState, **fields: object) -> None:
    """Record an order and move it straight to `state`, due 10 s from the clock's now."""
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


@pytest.fixture
def clear_faults(simulator: RunningSimulator) -> Iterator[None]:
    requests.delete(f"{simulator.url}/_sandbox/faults", timeout=5)
    yield
    requests.delete(f"{simulator.url}/_sandbox/faults", timeout=5)
