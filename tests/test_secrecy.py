"""No key, and no credential, leaves the vault: logs, Redis, events and Flower are clean.

Orders of canary products run through a real worker, beat and Flower. Every key value
the shop received, text and image alike, is then searched for in every log file, every
Redis value (queues, unacknowledged messages, ledger, timelines, vault) and every page
and API response of Flower, which records every Celery event.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from fulfillment.states import OrderState
from sandbox import catalogue
from sandbox.processes import free_port
from sandbox.stack import LocalStack
from tests.support import wait_for

pytestmark = pytest.mark.faults

FLOWER_USER = "operator"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    settings = {
        "POLL_INTERVAL_S": "0.2",
        "FIRST_POLL_DELAY_S": "0.1",
        "RECONCILE_INTERVAL_S": "1",
        "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{secrets.token_urlsafe(12)}",
        "LOG_LEVEL": "DEBUG",
    }
    local = LocalStack(tmp_path_factory.mktemp("secrecy"), settings=settings).start()
    try:
        # Flower first, so that it receives every event of every task.
        local.start_flower(free_port())
        wait_for(lambda: flower_answers(local), message="Flower to start")
        local.start_worker()
        local.start_beat()
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def delivered_keys(stack: LocalStack) -> list[str]:
    """Place canary orders, wait until delivered, and return every key value received."""
    references = [f"SECRET-{number}" for number in range(3)]
    stack.place(references[0], [(catalogue.CANARY_ID, 2)])
    stack.place(references[1], [(catalogue.TEST_IMG_ID, 1), (catalogue.CANARY_ID, 1)])
    stack.place(references[2], [(catalogue.PARTIAL_ID, 2)])

    values: list[str] = []
    for reference_id in references:
        wait_for(partial(is_delivered, stack, reference_id), message=f"{reference_id} delivered")
        deliveries = requests.get(f"{stack.shop.url}/deliveries/{reference_id}", timeout=5)
        for product in deliveries.json()["deliveries"][0]["payload"]["products"]:
            values.extend(key["value"] for key in product["keys"])
    assert any(value.startswith(catalogue.CANARY_KEY_PREFIX) for value in values)
    assert any(value.startswith("data:image/") for value in values)
    return values


def flower_answers(stack: LocalStack) -> bool:
    try:
        response = requests.get(f"http://127.0.0.1:{stack.flower_port}/", timeout=1)
    except requests.ConnectionError:
        return False
    return response.status_code == 401


def flower_session(stack: LocalStack) -> requests.Session:
    user, _, password = stack.environment["FLOWER_BASIC_AUTH"].partition(":")
    session = requests.Session()
    session.auth = (user, password)
    return session


def is_delivered(stack: LocalStack, reference_id: str) -> bool:
    record = stack.ledger.get(reference_id)
    return record is not None and record.state is OrderState.DELIVERED


def flower_texts(stack: LocalStack) -> dict[str, str]:
    """Fetch every Flower page and API response worth reading, by path."""
    base = f"http://127.0.0.1:{stack.flower_port}"
    session = flower_session(stack)

    def fetch(path: str) -> str:
        return session.get(base + path, timeout=10).text

    wait_for(lambda: "tasks.deliver_keys" in fetch("/api/tasks"), message="Flower's events")
    paths = [
        "/",
        "/tasks",
        "/api/tasks",
        "/workers",
        "/api/workers",
        "/broker",
        "/api/queues/length",
        "/metrics",
        "/healthcheck",
        "/tasks/datatable?draw=1&start=0&length=500&search[value]=",
    ]
    task_ids = list(session.get(base + "/api/tasks", timeout=10).json())
    paths += [f"/api/task/info/{task_id}" for task_id in task_ids]
    paths += [f"/task/{task_id}" for task_id in task_ids]
    return {path: fetch(path) for path in paths}


def redis_values(client: redis.Redis) -> dict[str, bytes]:
    """Every value in Redis, flattened to bytes, by key name."""
    values: dict[str, bytes] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        content: Any
        if kind == b"string":
            content = [client.get(key) or b""]
        elif kind == b"hash":
            content = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == b"list":
            content = client.lrange(key, 0, -1)
        elif kind == b"set":
            content = list(client.smembers(key))
        elif kind == b"zset":
            content = client.zrange(key, 0, -1)
        else:
            content = []
        values[key.decode(errors="replace")] = b"\n".join(content)
    return values


def log_texts(folder: Path) -> dict[str, str]:
    return {
        str(path): path.read_text(encoding="utf-8", errors="replace")
        for path in folder.rglob("*.log")
    }


def test_flower_requires_login(stack: LocalStack, delivered_keys: list[str]) -> None:
    port = stack.flower_port

    for path in ("/", "/tasks", "/api/tasks", "/api/workers"):
        response = requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        assert response.status_code == 401, path


def test_keys_absent_from_logs(stack: LocalStack, delivered_keys: list[str]) -> None:
    texts = log_texts(stack.folder)

    assert texts
    for name, text in texts.items():
        for value in delivered_keys:
            assert value not in text, f"a key value appears in {name}"
        assert catalogue.CANARY_KEY_PREFIX not in text, f"a canary appears in {name}"


def test_keys_absent_from_redis(stack: LocalStack, delivered_keys: list[str]) -> None:
    values = redis_values(stack.redis)

    assert any(":vault:" in key for key in values)
    for key, content in values.items():
        for value in delivered_keys:
            assert value.encode() not in content, f"a key value appears in Redis key {key}"
        assert catalogue.CANARY_KEY_PREFIX.encode() not in content, key


def test_keys_absent_from_flower(stack: LocalStack, delivered_keys: list[str]) -> None:
    pages = flower_texts(stack)

    assert any("tasks.poll_order" in text for text in pages.values())
    for path, text in pages.items():
        for value in delivered_keys:
            assert value not in text, f"a key value appears in Flower at {path}"
        assert catalogue.CANARY_KEY_PREFIX not in text, path


def test_task_arguments_hidden_in_flower(stack: LocalStack, delivered_keys: list[str]) -> None:
    flower_texts(stack)  # waits until Flower has seen the deliveries
    url = f"http://127.0.0.1:{stack.flower_port}/api/tasks"

    tasks = flower_session(stack).get(url, timeout=10).json().values()

    names = {task["name"] for task in tasks}
    assert {"tasks.place_order", "tasks.poll_order", "tasks.deliver_keys"} <= names
    for task in tasks:
        assert task["args"] == "<hidden>", task["name"]
        assert task["kwargs"] == "<hidden>", task["name"]
        assert task["result"] in (None, "<hidden>"), task["name"]


def test_credentials_absent(stack: LocalStack, delivered_keys: list[str]) -> None:
    credentials = {
        "ERYSTA_API_KEY": stack.environment["ERYSTA_API_KEY"],
        "WEBHOOK_SECRET": stack.environment["WEBHOOK_SECRET"].removeprefix("whsec_"),
        "Redis password": stack.redis_server.password or "",
        "VAULT_KEYS": stack.environment["VAULT_KEYS"],
        "Flower password": stack.environment["FLOWER_BASIC_AUTH"].partition(":")[2],
    }
    texts = {**log_texts(stack.folder), **flower_texts(stack)}

    for name, text in texts.items():
        for credential, value in credentials.items():
            assert value
            assert value not in text, f"{credential} appears in {name}"
