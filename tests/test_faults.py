"""The fault suite: crashes, restarts and supplier faults against real processes.

Every check counts what the simulator created and what the demo shop received, never
what the workers logged. For each fault: Erysta creates at most one order per
`reference_id`, every order reaches a final or operator state within a bounded time, and
the shop receives each delivered order once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from fulfillment.records import OrderRecord
from fulfillment.states import OrderState
from sandbox import catalogue
from sandbox.config import SimulatorConfig
from sandbox.stack import LocalStack
from tests.support import wait_for

pytestmark = pytest.mark.faults

# Short timings so that every fault resolves within seconds. The visibility timeout must
# stay at least twice the longest countdown (POLL_ERROR_BACKOFF_MAX_S).
FAULT_SETTINGS = {
    "POLL_INTERVAL_S": "0.3",
    "FIRST_POLL_DELAY_S": "0.1",
    "POLL_DEADLINE_S": "120",
    "POLL_ERROR_BACKOFF_MAX_S": "1",
    "ERYSTA_CONNECT_TIMEOUT_S": "1",
    "ERYSTA_READ_TIMEOUT_S": "1.5",
    "ERYSTA_CALLS_PER_MINUTE": "100000",
    "WEBHOOK_TIMEOUT_S": "2",
    "STEP_GRACE_S": "2",
    "RECONCILE_INTERVAL_S": "0.5",
    "BROKER_VISIBILITY_TIMEOUT_S": "5",
}
# Seconds within which every order must settle after the fault is over.
SETTLE_TIMEOUT_S = 60.0
SETTLED = {
    OrderState.DELIVERED,
    OrderState.UNKNOWN_OUTCOME,
    OrderState.NEEDS_ATTENTION,
}


def new_stack(folder: Path, polls_per_step: int = 1) -> LocalStack:
    # The short poll interval would exceed Erysta's 100 calls a minute with a few orders
    # in flight; the 429 path has tests of its own.
    config = SimulatorConfig(polls_per_step=polls_per_step, rate_limit_per_minute=100_000)
    return LocalStack(folder, settings=FAULT_SETTINGS, simulator_config=config).start()


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One stack for the faults that kill nothing."""
    stack = new_stack(tmp_path_factory.mktemp("faults"))
    try:
        stack.start_worker()
        stack.start_beat()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A stack of its own, for tests that kill workers or Redis."""
    # Slow orders (40 polls, about 12 s) are still polling when the test kills something.
    stack = new_stack(tmp_path, polls_per_step=20)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def faults(shared_stack: LocalStack) -> Iterator[None]:
    requests.delete(f"{shared_stack.simulator.url}/_sandbox/faults", timeout=5)
    yield
    requests.delete(f"{shared_stack.simulator.url}/_sandbox/faults", timeout=5)


_counter = iter(range(1, 1_000_000))


def reference(label: str) -> str:
    return f"F-{label}-{next(_counter)}-{int(time.time() * 1000) % 100_000}"


def arm(stack: LocalStack, endpoint: str, fault: str, count: int = 1, **extra: Any) -> None:
    response = requests.post(
        f"{stack.simulator.url}/_sandbox/faults",
        json={"endpoint": endpoint, "fault": fault, "count": count, **extra},
        timeout=5,
    )
    response.raise_for_status()


def created(stack: LocalStack, reference_id: str) -> list[dict[str, Any]]:
    """The orders the simulator created for `reference_id`."""
    response = requests.get(
        f"{stack.simulator.url}/_sandbox/orders", params={"reference_id": reference_id}, timeout=5
    )
    response.raise_for_status()
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders


def received(stack: LocalStack, reference_id: str) -> list[dict[str, Any]]:
    """The webhook deliveries the shop recorded for `reference_id`."""
    response = requests.get(f"{stack.shop.url}/deliveries/{reference_id}", timeout=5)
    if response.status_code == 404:
        return []
    deliveries: list[dict[str, Any]] = response.json()["deliveries"]
    return deliveries


def repeated_deliveries(stack: LocalStack) -> int:
    duplicates = requests.get(f"{stack.shop.url}/deliveries", timeout=5).json()["duplicates"]
    return sum(duplicates.values())


def settle(
    stack: LocalStack, reference_id: str, states: Collection[OrderState] = SETTLED
) -> OrderRecord:
    """Wait until the order is in one of `states`, and return it."""

    def reached() -> OrderRecord | None:
        try:
            record = stack.ledger.get(reference_id)
        except redis.RedisError:  # Redis may be restarting
            return None
        return record if record is not None and record.state in states else None

    result: OrderRecord = wait_for(
        reached, timeout_s=SETTLE_TIMEOUT_S, message=f"{reference_id} to reach {sorted(states)}"
    )
    return result


def operator(stack: LocalStack, *arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *arguments],
        env=stack.environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def assert_delivered_once(stack: LocalStack, reference_id: str) -> None:
    record = settle(stack, reference_id)
    assert record.state is OrderState.DELIVERED, record
    assert len(created(stack, reference_id)) == 1
    assert len(wait_for(lambda: received(stack, reference_id))) == 1


# Faults on place-order, and what each must end in. A response that may or may not mean
# an order was created ends in UNKNOWN_OUTCOME; only a 429 is retried automatically.
PLACE_FAULTS = [
    ("drop_after_create", {}, OrderState.UNKNOWN_OUTCOME, 1),
    ("server_error_after_create", {}, OrderState.UNKNOWN_OUTCOME, 1),
    ("server_error", {}, OrderState.UNKNOWN_OUTCOME, 0),
    ("drop", {}, OrderState.UNKNOWN_OUTCOME, 0),
    ("slow", {"delay_s": 3.0}, OrderState.UNKNOWN_OUTCOME, 1),
    ("malformed_json", {}, OrderState.UNKNOWN_OUTCOME, 1),
    ("rate_limited", {"retry_after_s": 1}, OrderState.DELIVERED, 1),
]


@pytest.mark.parametrize(
    ("fault", "extra", "state", "orders"),
    PLACE_FAULTS,
    ids=[fault for fault, *_ in PLACE_FAULTS],
)
def test_place_fault_never_buys_twice(
    fault: str,
    extra: dict[str, Any],
    state: OrderState,
    orders: int,
    shared_stack: LocalStack,
    faults: None,
) -> None:
    reference_id = reference(fault)
    arm(shared_stack, "place-order", fault, **extra)

    shared_stack.place(reference_id, [(catalogue.TEST_TXT_ID, 1)])
    record = settle(shared_stack, reference_id)
    time.sleep(1.0)  # long enough for a wrongful second POST to show up in the count

    assert record.state is state
    assert len(created(shared_stack, reference_id)) == orders
    if state is OrderState.UNKNOWN_OUTCOME:
        assert received(shared_stack, reference_id) == []
        events = [e["event"] for e in shared_stack.ledger.timeline(reference_id)]
        assert events.count("placing") == 1
        assert "outcome_unknown" in events


def test_unknown_outcome_resolved_by_attach(shared_stack: LocalStack, faults: None) -> None:
    reference_id = reference("attach")
    arm(shared_stack, "place-order", "drop_after_create")
    shared_stack.place(reference_id, [(catalogue.TEST_TXT_ID, 1)])
    settle(shared_stack, reference_id, {OrderState.UNKNOWN_OUTCOME})
    erysta_order_id = created(shared_stack, reference_id)[0]["id"]

    output = operator(shared_stack, "attach", reference_id, erysta_order_id, "--note", "found")

    assert output == f"order {reference_id}: POLLING"
    assert_delivered_once(shared_stack, reference_id)


def test_unknown_outcome_resolved_by_replacing(shared_stack: LocalStack, faults: None) -> None:
    reference_id = reference("replace")
    arm(shared_stack, "place-order", "server_error")
    shared_stack.place(reference_id, [(catalogue.TEST_TXT_ID, 1)])
    settle(shared_stack, reference_id, {OrderState.UNKNOWN_OUTCOME})
    assert created(shared_stack, reference_id) == []

    operator(shared_stack, "confirm-not-placed", reference_id, "--note", "support: none")

    assert_delivered_once(shared_stack, reference_id)


def test_unknown_outcome_cancelled_tells_shop(shared_stack: LocalStack, faults: None) -> None:
    reference_id = reference("cancel")
    arm(shared_stack, "place-order", "server_error")
    shared_stack.place(reference_id, [(catalogue.TEST_TXT_ID, 1)])
    settle(shared_stack, reference_id, {OrderState.UNKNOWN_OUTCOME})

    operator(shared_stack, "cancel", reference_id, "--note", "refunded the customer")

    record = settle(shared_stack, reference_id)
    deliveries = wait_for(lambda: received(shared_stack, reference_id))
    assert record.state is OrderState.DELIVERED
    assert deliveries[0]["payload"]["outcome"] == "CANCELLED"
    assert deliveries[0]["payload"]["message"] == "refunded the customer"


KEYS_FAULTS = [
    ("server_error", {"count": 3}),
    ("drop", {}),
    ("malformed_json", {}),
    ("slow", {"delay_s": 3.0}),
    ("rate_limited", {"retry_after_s": 1}),
]


@pytest.mark.parametrize(("fault", "extra"), KEYS_FAULTS, ids=[f for f, _ in KEYS_FAULTS])
def test_poll_fault_retried_until_delivered(
    fault: str, extra: dict[str, Any], shared_stack: LocalStack, faults: None
) -> None:
    reference_id = reference(f"keys-{fault}")
    arm(shared_stack, "keys", fault, **extra)

    shared_stack.place(reference_id, [(catalogue.TEST_TXT_ID, 1)])

    assert_delivered_once(shared_stack, reference_id)
    events = [e["event"] for e in shared_stack.ledger.timeline(reference_id)]
    assert "poll_failed" in events


def test_concurrent_processes_buy_once(shared_stack: LocalStack) -> None:
    reference_id = reference("concurrent")
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "place",
        reference_id,
        "--item",
        f"{catalogue.TEST_TXT_ID}:1",
    ]

    processes = [
        subprocess.Popen(command, env=shared_stack.environment, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in processes]

    assert sum("queued" in output for output in outputs) == 1
    assert sum("already exists" in output for output in outputs) == 5
    assert_delivered_once(shared_stack, reference_id)


def test_worker_killed_inside_post(own_stack: LocalStack) -> None:
    own_stack.start_worker()
    own_stack.start_beat()
    reference_id = reference("kill-post")
    arm(own_stack, "place-order", "slow", delay_s=1.0)

    own_stack.place(reference_id, [(catalogue.TEST_TXT_ID, 1)])
    wait_for(lambda: created(own_stack, reference_id), message="the order to be created")
    own_stack.workers[0].kill()
    own_stack.start_worker()

    record = settle(own_stack, reference_id)
    time.sleep(float(FAULT_SETTINGS["BROKER_VISIBILITY_TIMEOUT_S"]) + 1)
    assert record.state is OrderState.UNKNOWN_OUTCOME
    assert len(created(own_stack, reference_id)) == 1
    assert received(own_stack, reference_id) == []


def test_worker_killed_while_polls_scheduled(own_stack: LocalStack) -> None:
    own_stack.start_worker()
    own_stack.start_beat()
    references = [reference("kill-poll") for _ in range(4)]

    for reference_id in references:
        own_stack.place(reference_id, [(catalogue.SLOW_ID, 1)])
    for reference_id in references:
        settle(own_stack, reference_id, {OrderState.POLLING})
    own_stack.workers[0].kill()
    own_stack.start_worker()

    for reference_id in references:
        assert_delivered_once(own_stack, reference_id)
    assert repeated_deliveries(own_stack) == 0


def test_redis_restart_mid_poll(own_stack: LocalStack) -> None:
    own_stack.start_worker()
    own_stack.start_beat()
    references = [reference("redis") for _ in range(4)]

    for reference_id in references:
        own_stack.place(reference_id, [(catalogue.SLOW_ID, 1)])
    for reference_id in references:
        settle(own_stack, reference_id, {OrderState.POLLING})
    # Slow responses keep poll tasks running while Redis dies, so the worker loses its
    # broker with tasks in hand.
    arm(own_stack, "keys", "slow", count=4, delay_s=1.0)
    time.sleep(0.5)
    own_stack.kill_redis()
    time.sleep(1.0)
    own_stack.restart_redis()

    for reference_id in references:
        assert_delivered_once(own_stack, reference_id)
    assert repeated_deliveries(own_stack) == 0


def test_unknown_status_keeps_polling(shared_stack: LocalStack, faults: None) -> None:
    reference_id = reference("unknown-status")
    arm(shared_stack, "keys", "unknown_status", count=2)

    shared_stack.place(reference_id, [(catalogue.TEST_TXT_ID, 1)])

    assert_delivered_once(shared_stack, reference_id)
    statuses = [event.get("erysta_status") for event in shared_stack.ledger.timeline(reference_id)]
    assert statuses.count("ON_HOLD") == 2


@pytest.mark.parametrize("fault", ["not_found", "unauthorized"])
def test_poll_rejection_not_retried_forever(
    fault: str, shared_stack: LocalStack, faults: None
) -> None:
    reference_id = reference(f"keys-{fault}")
    arm(shared_stack, "keys", fault)

    shared_stack.place(reference_id, [(catalogue.TEST_TXT_ID, 1)])

    record = settle(shared_stack, reference_id)
    assert record.state is OrderState.NEEDS_ATTENTION
    assert record.message is not None
    assert str(record.erysta_order_id) in record.message
    assert received(shared_stack, reference_id) == []
