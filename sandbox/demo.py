"""The local demo: the whole pipeline on this machine, against the simulator.

It starts a private Redis, the simulator, the demo shop, a worker, beat and Flower. Then
it submits one order per outcome and prints every state change as it happens. It ends
with what the shop received for each order, and leaves nothing running unless asked.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from config import load_settings
from fulfillment.states import OrderState
from sandbox import catalogue
from sandbox.processes import free_port
from sandbox.stack import LocalStack
from tasks.api import submit_order
from tasks.app import configure_app
from tasks.runtime import reset_runtime, runtime

# Seconds the demo waits for every order to reach the shop before it gives up.
DEMO_TIMEOUT_S = 180.0
# Seconds between two looks at the ledger while showing progress.
PROGRESS_INTERVAL_S = 0.2
SETTLED_STATES = frozenset(
    {OrderState.DELIVERED, OrderState.NEEDS_ATTENTION, OrderState.UNKNOWN_OUTCOME}
)


@dataclass(frozen=True)
class DemoOrder:
    """One demo order and the outcome the shop should receive for it."""

    label: str
    items: tuple[tuple[str, int], ...]
    expected_outcome: str


DEMO_ORDERS = (
    DemoOrder("text key", ((catalogue.TEST_TXT_ID, 1),), "FULFILLED"),
    DemoOrder("image key", ((catalogue.TEST_IMG_ID, 1),), "FULFILLED"),
    DemoOrder(
        "text and image",
        ((catalogue.GUIDE_TXT_ID, 1), (catalogue.GUIDE_IMG_ID, 1)),
        "FULFILLED",
    ),
    DemoOrder("several polls", ((catalogue.SLOW_ID, 1),), "FULFILLED"),
    DemoOrder("priced, 2 units", ((catalogue.PRICED_ID, 2),), "FULFILLED"),
    DemoOrder("partial", ((catalogue.PARTIAL_ID, 2),), "PARTIALLY_FULFILLED"),
    DemoOrder("failed", ((catalogue.FAILING_ID, 1),), "FAILED"),
    DemoOrder("refunded", ((catalogue.REFUNDED_ID, 1),), "REFUNDED"),
    DemoOrder("out of stock", ((catalogue.OUT_OF_STOCK_ID, 1),), "REJECTED"),
    DemoOrder("insufficient funds", ((catalogue.EXPENSIVE_ID, 1),), "REJECTED"),
)


def run_demo(
    *,
    keep_running: bool,
    workdir: Path | None,
    poll_interval_s: float,
    flower_port: int,
) -> int:
    """Run the demo; return 0 when every order reached the shop with its expected outcome."""
    folder = workdir or Path(tempfile.mkdtemp(prefix="erysta-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    flower_port = flower_port or free_port()
    with ExitStack() as stack:
        environment = stack.enter_context(_local_stack(folder, poll_interval_s, flower_port))
        _print_flower(flower_port, environment["FLOWER_BASIC_AUTH"], folder)
        print()
        references = _submit_all()
        settled = _show_progress(references)
        print()
        ok = _print_summary(references, environment["SHOP_URL"], environment["SIMULATOR_URL"])
        if not settled:
            print(f"Some orders did not settle within {DEMO_TIMEOUT_S:g} s.")
        if keep_running:
            print("\nThe stack keeps running; press Ctrl-C to stop it. To use the CLI on it:")
            print(
                f"  export REDIS_URL={environment['REDIS_URL']} "
                f"LEDGER_PREFIX={environment['LEDGER_PREFIX']} "
                f"VAULT_KEYS={environment['VAULT_KEYS']}"
            )
            _wait_for_interrupt()
    if ok and settled and workdir is None and not keep_running:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"Logs are kept in {folder}")
    return 0 if ok and settled else 1


# Seconds to wait for Flower to respond before the demo goes on without it.
FLOWER_START_TIMEOUT_S = 20.0


def _print_flower(port: int, login: str, folder: Path) -> None:
    """Print Flower's address once it responds, or print where its log is."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + FLOWER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            # Without the login Flower returns 401, which proves it is the one listening.
            if requests.get(url, timeout=1).status_code == 401:
                print(f"Flower:   {url}  (login {login})")
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    print(f"Flower did not start on port {port}; see {folder / 'flower.log'}")


@contextmanager
def _local_stack(
    folder: Path, poll_interval_s: float, flower_port: int
) -> Iterator[dict[str, str]]:
    """Start every service of the demo, and stop each one that started on the way out."""
    print("Starting Redis, the Erysta simulator, the demo shop, a worker, beat and Flower ...")
    settings = {
        "POLL_INTERVAL_S": str(poll_interval_s),
        "FIRST_POLL_DELAY_S": str(min(0.5, poll_interval_s)),
        "RECONCILE_INTERVAL_S": "5",
        "STEP_GRACE_S": "15",
        "FLOWER_BASIC_AUTH": f"demo:{secrets.token_urlsafe(9)}",
    }
    with LocalStack(folder, settings=settings) as stack, ExitStack() as cleanup:
        # This process submits the orders, so it uses the same settings as the worker.
        os.environ.update(stack.environment)
        reset_runtime()
        configure_app(load_settings())
        cleanup.callback(reset_runtime)
        cleanup.callback(lambda: runtime().close())

        stack.start_beat()
        stack.start_flower(flower_port or free_port())
        stack.start_worker()
        yield {
            **stack.environment,
            "SHOP_URL": stack.shop.url,
            "SIMULATOR_URL": stack.simulator.url,
        }


def _submit_all() -> dict[str, DemoOrder]:
    run_id = secrets.token_hex(3).upper()
    references: dict[str, DemoOrder] = {}
    for number, order in enumerate(DEMO_ORDERS, start=1):
        reference_id = f"DEMO-{run_id}-{number:02d}"
        items = [{"id": product_id, "quantity": quantity} for product_id, quantity in order.items]
        submit_order(reference_id, items)
        references[reference_id] = order
        print(f"submitted {reference_id}  {order.label}")

    first = next(iter(references))
    again = submit_order(first, [{"id": p, "quantity": q} for p, q in DEMO_ORDERS[0].items])
    print(f"submitted {first} again: existing order returned ({again.state}), nothing bought")
    print()
    return references


def _show_progress(references: dict[str, DemoOrder]) -> bool:
    """Print every state change of every order from its timeline, until all have settled."""
    ledger = runtime().ledger
    seen: dict[str, int] = dict.fromkeys(references, 0)
    last_state: dict[str, str] = {}
    started = time.monotonic()
    while time.monotonic() - started < DEMO_TIMEOUT_S:
        settled = 0
        for reference_id, order in references.items():
            timeline = ledger.timeline(reference_id)
            for event in timeline[seen[reference_id] :]:
                state = event.get("to")
                if state and state != last_state.get(reference_id):
                    previous = last_state.get(reference_id)
                    arrow = f"{previous} -> " if previous else ""
                    label = f"{reference_id}  {order.label:<20}"
                    print(f"{time.monotonic() - started:6.1f} s  {label} {arrow}{state}")
                    last_state[reference_id] = state
            seen[reference_id] = len(timeline)
            if last_state.get(reference_id) in SETTLED_STATES:
                settled += 1
        if settled == len(references):
            return True
        time.sleep(PROGRESS_INTERVAL_S)
    return False


def _print_summary(references: dict[str, DemoOrder], shop_url: str, simulator_url: str) -> bool:
    """Print what the shop received for each order; return whether all is as expected."""
    deliveries = requests.get(f"{shop_url}/deliveries", timeout=10).json()
    received = {
        entry["payload"]["reference_id"]: entry["payload"] for entry in deliveries["deliveries"]
    }

    print("What the shop received:")
    header = (
        f"{'reference':<18} {'order':<20} {'outcome':<20} {'keys delivered':<28} "
        f"{'not delivered':<14} {'debit':>7}  bought"
    )
    print(header)
    print("-" * len(header))
    all_ok = True
    messages = []
    for reference_id, order in references.items():
        bought = _orders_created(simulator_url, reference_id)
        payload = received.get(reference_id)
        if payload is None:
            all_ok = False
            print(f"{reference_id:<18} {order.label:<20} {'NOT RECEIVED':<20}")
            continue

        ok = payload["outcome"] == order.expected_outcome and bought <= 1
        all_ok = all_ok and ok
        mark = "" if ok else f"  (expected {order.expected_outcome})"
        print(
            f"{reference_id:<18} {order.label:<20} {payload['outcome']:<20} "
            f"{_describe_keys(payload):<28} {_describe_undelivered(payload):<14} "
            f"{payload.get('total_debit') or '-':>7}  {bought}x{mark}"
        )
        if payload.get("message"):
            messages.append(f"{reference_id}: {payload['message']}")

    if messages:
        print("\nErysta's reasons for rejected orders:")
        for message in messages:
            print(f"  {message}")
    duplicates = sum(deliveries.get("duplicates", {}).values())
    total = len(deliveries["deliveries"])
    print(f"\nWebhook deliveries: {total}, repeated deliveries: {duplicates}")
    print("Key values are masked here; the shop received them in full.")
    return all_ok


def _orders_created(simulator_url: str, reference_id: str) -> int:
    """Return how many orders the simulator created for `reference_id`."""
    response = requests.get(
        f"{simulator_url}/_sandbox/orders", params={"reference_id": reference_id}, timeout=10
    )
    return int(response.json()["count"])


def _describe_keys(payload: dict[str, Any]) -> str:
    parts = []
    for product in payload["products"]:
        for key in product["keys"]:
            parts.append(_mask(key))
    return ", ".join(parts) if parts else "-"


def _mask(key: dict[str, str]) -> str:
    value = key["value"]
    if key["type"] == "image" or value.startswith("data:"):
        media_type = value[5:].split(";", 1)[0] if value.startswith("data:") else "link"
        return f"image {media_type}"
    return value[:5] + "-*****"


def _describe_undelivered(payload: dict[str, Any]) -> str:
    missing = sum(entry["quantity"] for entry in payload["undelivered"])
    return f"{missing} unit(s)" if missing else "-"


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping.")
