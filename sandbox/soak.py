"""The soak test: hundreds of orders through random faults, killed workers and Redis restarts.

It is not part of the test suite because it runs for minutes. It starts a `LocalStack`
with several workers and a simulator that injects every fault at random, submits orders
of every product, and meanwhile kills a worker or Redis at random intervals. An automated
operator resolves `UNKNOWN_OUTCOME` orders the way a person would: it looks the order up
at the supplier (here, the simulator's admin endpoint) and attaches it or places it again.

At the end it counts, from the simulator and the demo shop rather than from the workers'
logs, what was bought and delivered, and writes a Markdown report.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import requests

from config import load_settings
from fulfillment.records import OrderRecord
from fulfillment.states import OrderState
from sandbox import catalogue
from sandbox.config import SimulatorConfig
from sandbox.faults import Endpoint, Fault, RandomFault
from sandbox.stack import LocalStack
from tasks.api import submit_order
from tasks.app import configure_app
from tasks.operations import OperatorError, attach_order, confirm_not_placed
from tasks.runtime import reset_runtime, runtime

logger = logging.getLogger(__name__)

# Timings of the soaked stack: polls every 0.5 s, and lost steps re-enqueued within a few
# seconds, so that hundreds of orders and several crashes fit in a few minutes.
SOAK_SETTINGS = {
    "POLL_INTERVAL_S": "0.5",
    "FIRST_POLL_DELAY_S": "0.2",
    "POLL_DEADLINE_S": "600",
    "POLL_ERROR_BACKOFF_MAX_S": "2",
    "ERYSTA_CONNECT_TIMEOUT_S": "1",
    "ERYSTA_READ_TIMEOUT_S": "2",
    "ERYSTA_CALLS_PER_MINUTE": "100000",
    "WEBHOOK_TIMEOUT_S": "2",
    "STEP_GRACE_S": "3",
    "RECONCILE_INTERVAL_S": "1",
    "BROKER_VISIBILITY_TIMEOUT_S": "10",
}

# Each request of the endpoint meets the fault with this probability.
RANDOM_FAULTS = (
    RandomFault(Fault.DROP_AFTER_CREATE, 0.02, Endpoint.PLACE_ORDER),
    RandomFault(Fault.SERVER_ERROR_AFTER_CREATE, 0.02, Endpoint.PLACE_ORDER),
    RandomFault(Fault.SERVER_ERROR, 0.02, Endpoint.PLACE_ORDER),
    RandomFault(Fault.SLOW, 0.01, Endpoint.PLACE_ORDER, delay_s=3.0),
    RandomFault(Fault.MALFORMED_JSON, 0.01, Endpoint.PLACE_ORDER),
    RandomFault(Fault.RATE_LIMITED, 0.03, Endpoint.PLACE_ORDER),
    RandomFault(Fault.SERVER_ERROR, 0.03, Endpoint.KEYS),
    RandomFault(Fault.DROP, 0.02, Endpoint.KEYS),
    RandomFault(Fault.MALFORMED_JSON, 0.02, Endpoint.KEYS),
    RandomFault(Fault.SLOW, 0.01, Endpoint.KEYS, delay_s=3.0),
    RandomFault(Fault.RATE_LIMITED, 0.03, Endpoint.KEYS),
    RandomFault(Fault.UNKNOWN_STATUS, 0.02, Endpoint.KEYS),
)

# Products ordered, with their weight in the mix and the outcomes they may end in.
PRODUCT_MIX = (
    (catalogue.TEST_TXT_ID, 4),
    (catalogue.TEST_IMG_ID, 2),
    (catalogue.SLOW_ID, 3),
    (catalogue.PRICED_ID, 1),
    (catalogue.PARTIAL_ID, 1),
    (catalogue.FAILING_ID, 1),
    (catalogue.REFUNDED_ID, 1),
    (catalogue.OUT_OF_STOCK_ID, 1),
)


@dataclass
class Recovery:
    """One crash, the orders in flight at that moment, and when the last of them settled."""

    target: str
    at_s: float
    at_time: float
    in_flight: list[str]
    recovered_after_s: float | None = None


@dataclass
class SoakResult:
    """Everything the report states, counted from the simulator and the shop."""

    orders: int
    workers: int
    duration_s: float = 0.0
    final_states: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    flagged: int = 0
    resolved_by_operator: Counter[str] = field(default_factory=Counter)
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    double_deliveries: list[str] = field(default_factory=list)
    repeated_webhooks: int = 0
    recoveries: list[Recovery] = field(default_factory=list)


def run_soak(
    *,
    orders: int,
    workers: int,
    rate_per_s: float,
    chaos_interval_s: float,
    seed: int,
    report: Path,
    folder: Path,
) -> SoakResult:
    """Run the soak test and write its report; return the counts."""
    rng = random.Random(seed)  # noqa: S311 - chooses faults, not secrets
    config = SimulatorConfig(
        rate_limit_per_minute=100_000,
        polls_per_step=2,
        random_faults=RANDOM_FAULTS,
        seed=seed,
        balance=catalogue.PRICED_PRICE * orders * 10,
    )
    result = SoakResult(orders=orders, workers=workers)
    started = time.monotonic()
    stack = LocalStack(folder, settings=SOAK_SETTINGS, simulator_config=config)
    with stack, _submitting_process(stack):
        for _ in range(workers):
            stack.start_worker()
        stack.start_beat()
        references = [f"SOAK-{seed}-{number:05d}" for number in range(orders)]
        # The operator works from the start, as a person on call would, so orders in
        # UNKNOWN_OUTCOME do not wait for the last submission.
        operator = threading.Thread(
            target=_wait_and_resolve, args=(stack, references, result), name="operator"
        )
        with _chaos(stack, rng, chaos_interval_s, result, started):
            operator.start()
            _submit(references, rng, rate_per_s)
            operator.join()
        result.duration_s = time.monotonic() - started
        _count(stack, references, result)
        _measure_recoveries(stack, result)
    _write_report(
        report, result, seed=seed, rate_per_s=rate_per_s, chaos_interval_s=chaos_interval_s
    )
    return result


@contextmanager
def _submitting_process(stack: LocalStack) -> Iterator[None]:
    """Point this process's settings at the stack, as checkout code's would be."""
    os.environ.update(stack.environment)
    reset_runtime()
    configure_app(load_settings())
    try:
        yield
    finally:
        runtime().close()
        reset_runtime()


def _submit(references: list[str], rng: random.Random, rate_per_s: float) -> None:
    """Submit the orders at a steady rate, so that crashes hit orders in every step."""
    products = [product for product, weight in PRODUCT_MIX for _ in range(weight)]
    started = time.monotonic()
    for number, reference_id in enumerate(references):
        time.sleep(max(0.0, started + number / rate_per_s - time.monotonic()))
        items = [{"id": rng.choice(products), "quantity": rng.choice((1, 1, 1, 2))}]
        _submit_until_recorded(reference_id, items)


# Seconds checkout code keeps trying to record one order while Redis is down.
SUBMIT_RETRY_S = 60.0


def _submit_until_recorded(reference_id: str, items: list[dict[str, Any]]) -> None:
    """Submit like checkout code that retries on error: the same reference_id buys once."""
    deadline = time.monotonic() + SUBMIT_RETRY_S
    while True:
        try:
            submit_order(reference_id, items)
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def _chaos(
    stack: LocalStack,
    rng: random.Random,
    interval_s: float,
    result: SoakResult,
    started: float,
) -> Iterator[None]:
    """Kill a worker or Redis every `interval_s` seconds, give or take half, while in use."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(rng.uniform(interval_s / 2, interval_s * 3 / 2)):
            recovery = Recovery(
                target="redis" if rng.random() < 0.3 else "worker",
                at_s=time.monotonic() - started,
                at_time=time.time(),
                in_flight=_in_flight(stack),
            )
            if recovery.target == "redis":
                stack.kill_redis()
                time.sleep(1.0)
                stack.restart_redis()
            else:
                victim = rng.choice([w for w in stack.workers if w.is_running()])
                victim.kill()
                stack.start_worker()
            result.recoveries.append(recovery)

    thread = threading.Thread(target=loop, name="chaos", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _in_flight(stack: LocalStack) -> list[str]:
    """Reference ids of the orders that are neither delivered nor waiting for an operator."""
    settled = {OrderState.DELIVERED, OrderState.NEEDS_ATTENTION}
    in_flight: list[str] = []
    try:
        reference_ids = stack.ledger.reference_ids(limit=100_000)
    except redis.RedisError:
        return in_flight
    for reference_id in reference_ids:
        record = _get_record(stack, reference_id)
        if record is not None and record.state not in settled:
            in_flight.append(reference_id)
    return in_flight


def _measure_recoveries(stack: LocalStack, result: SoakResult) -> None:
    """Set each crash's recovery time: until the last order in flight at the crash settled."""
    for recovery in result.recoveries:
        settled_at = []
        for reference_id in recovery.in_flight:
            record = _get_record(stack, reference_id)
            if record is None or record.state is not OrderState.DELIVERED:
                break
            settled_at.append(record.delivered_at or record.updated_at)
        else:
            if settled_at:
                recovery.recovered_after_s = max(settled_at) - recovery.at_time


# Seconds the soak waits, after the last submission, for every order to settle.
SETTLE_TIMEOUT_S = 600.0


def _wait_and_resolve(stack: LocalStack, references: list[str], result: SoakResult) -> None:
    """Wait until every order is delivered or flagged, resolving UNKNOWN_OUTCOME orders."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    flagged: set[str] = set()
    while time.monotonic() < deadline:
        pending = 0
        for reference_id in references:
            record = _get_record(stack, reference_id)
            if record is None:
                pending += 1
                continue
            if record.state is OrderState.UNKNOWN_OUTCOME:
                flagged.add(reference_id)
                _resolve(stack, reference_id, result)
                pending += 1
            elif record.state not in {OrderState.DELIVERED, OrderState.NEEDS_ATTENTION}:
                pending += 1
        if pending == 0:
            break
        time.sleep(1.0)
    result.flagged = len(flagged)


def _get_record(stack: LocalStack, reference_id: str) -> OrderRecord | None:
    try:
        return stack.ledger.get(reference_id)
    except redis.RedisError:  # Redis may be restarting; look again next round
        return None


def _resolve(stack: LocalStack, reference_id: str, result: SoakResult) -> None:
    """Do what an operator does: look the order up at the supplier, then attach or re-place."""
    created = _created(stack, reference_id)
    try:
        if created:
            attach_order(reference_id, created[0]["id"], operator="soak", note="found it")
            result.resolved_by_operator["attached"] += 1
        else:
            confirm_not_placed(reference_id, operator="soak", note="no such order")
            result.resolved_by_operator["placed again"] += 1
    except (OperatorError, redis.RedisError) as exc:
        # The order moved on meanwhile, or Redis is restarting: look again next round.
        logger.info("soak operator: %s left for the next round: %s", reference_id, exc)


def _created(stack: LocalStack, reference_id: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{stack.simulator.url}/_sandbox/orders", params={"reference_id": reference_id}, timeout=10
    )
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders


def _count(stack: LocalStack, references: list[str], result: SoakResult) -> None:
    deliveries = requests.get(f"{stack.shop.url}/deliveries", timeout=10).json()
    delivered_per_reference = Counter(
        entry["payload"]["reference_id"] for entry in deliveries["deliveries"]
    )
    outcome_of = {
        entry["payload"]["reference_id"]: entry["payload"]["outcome"]
        for entry in deliveries["deliveries"]
    }
    result.repeated_webhooks = sum(deliveries["duplicates"].values())
    for reference_id in references:
        record = _get_record(stack, reference_id)
        state = record.state.value if record is not None else "MISSING"
        result.final_states[state] += 1
        if len(_created(stack, reference_id)) > 1:
            result.duplicates.append(reference_id)
        if delivered_per_reference[reference_id] > 1:
            result.double_deliveries.append(reference_id)
        if reference_id in outcome_of:
            result.outcomes[outcome_of[reference_id]] += 1
        elif state != OrderState.NEEDS_ATTENTION.value:
            result.lost.append(reference_id)


def _write_report(
    path: Path, result: SoakResult, *, seed: int, rate_per_s: float, chaos_interval_s: float
) -> None:
    recoveries = [r.recovered_after_s for r in result.recoveries if r.recovered_after_s]
    lines = [
        "# Soak test report",
        "",
        f"Run on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with "
        f"`erysta-workers soak --orders {result.orders} --workers {result.workers} "
        f"--rate {rate_per_s:g} --chaos-interval {chaos_interval_s:g} --seed {seed}`, "
        f"on {platform.machine()} "
        f"Linux with {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
        "Every number below is counted from the simulator (orders it created) and the",
        "demo shop (webhooks it received), not from the workers' logs.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| orders submitted | {result.orders} |",
        f"| delivered to the shop | {sum(result.outcomes.values())} |",
        *(f"| - of which {name} | {count} |" for name, count in sorted(result.outcomes.items())),
        f"| orders flagged UNKNOWN_OUTCOME at least once | {result.flagged} |",
        *(
            f"| - operator actions: {name} | {count} |"
            for name, count in sorted(result.resolved_by_operator.items())
        ),
        f"| left NEEDS_ATTENTION | {result.final_states[OrderState.NEEDS_ATTENTION.value]} |",
        f"| bought twice (duplicates, must be 0) | {len(result.duplicates)} |",
        f"| lost (must be 0) | {len(result.lost)} |",
        f"| delivered twice (must be 0) | {len(result.double_deliveries)} |",
        f"| repeated webhooks the shop deduplicated | {result.repeated_webhooks} |",
        f"| crashes injected | {len(result.recoveries)} |",
        f"| duration | {result.duration_s:.0f} s |",
        "",
        "## Crashes and recovery",
        "",
        "Recovery is the time from the crash until the last order that was in flight at",
        "that moment was delivered. It includes the orders' normal processing time, so it",
        "is an upper bound on the delay that the crash caused.",
        "",
        "| at | what was killed | orders in flight | all of them delivered after |",
        "|---|---|---|---|",
        *(
            f"| {r.at_s:.0f} s | {r.target} | {len(r.in_flight)} | "
            f"{'-' if r.recovered_after_s is None else f'{r.recovered_after_s:.1f} s'} |"
            for r in result.recoveries
        ),
        "",
        f"Longest recovery: {max(recoveries):.1f} s." if recoveries else "",
        "",
        "## Final ledger states",
        "",
        *(f"- {state}: {count}" for state, count in sorted(result.final_states.items())),
        "",
        "## Faults injected at random",
        "",
        *(
            f"- {fault.fault.value} on {fault.endpoint}: probability {fault.probability:g}"
            for fault in RANDOM_FAULTS
        ),
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def new_soak_folder() -> Path:
    return Path(f"/tmp/erysta-soak-{secrets.token_hex(3)}")  # noqa: S108 - logs only
