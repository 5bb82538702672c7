"""A whole local deployment for the demo, the fault tests and the soak test.

`LocalStack` runs a private Redis with an append-only file, the Erysta simulator, the
demo shop, any number of workers and one beat, each of which can be killed and started
again. Orders are submitted by `place`, which runs the `erysta-workers place` command in a
process of its own, as checkout code would.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from fulfillment.ledger import Ledger
from fulfillment.signing import generate_secret
from fulfillment.vault import new_vault_key
from sandbox.config import SimulatorConfig
from sandbox.processes import CeleryProcess, RedisProcess, worker_process
from sandbox.shop import RunningShop, start_shop
from sandbox.simulator import RunningSimulator, start_simulator

# Seconds one `erysta-workers place` command may take.
PLACE_TIMEOUT_S = 60.0


class LocalStack:
    """Redis, the simulator, the demo shop, workers and beat, on 127.0.0.1."""

    def __init__(
        self,
        folder: Path,
        *,
        settings: Mapping[str, str] | None = None,
        simulator_config: SimulatorConfig | None = None,
    ) -> None:
        self.folder = folder
        self._settings = dict(settings or {})
        self._simulator_config = simulator_config
        self._api_key = f"stack-{secrets.token_hex(8)}"
        self._webhook_secret = generate_secret()
        self._cleanup = ExitStack()
        self.redis_server = RedisProcess(
            folder / "redis", appendonly=True, password=secrets.token_hex(16)
        )
        self.workers: list[CeleryProcess] = []
        self.beat: CeleryProcess | None = None
        self.flower_port: int | None = None
        self.environment: dict[str, str] = {}
        self._simulator: RunningSimulator | None = None
        self._shop: RunningShop | None = None
        self._redis_client: redis.Redis | None = None

    @property
    def simulator(self) -> RunningSimulator:
        assert self._simulator is not None, "start the stack first"
        return self._simulator

    @property
    def shop(self) -> RunningShop:
        assert self._shop is not None, "start the stack first"
        return self._shop

    def start(self) -> Self:
        """Start Redis, the simulator and the shop; workers and beat start separately."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.redis_server.start()
        self._cleanup.callback(self.redis_server.stop)

        config = dataclasses.replace(
            self._simulator_config or SimulatorConfig(), api_keys=frozenset({self._api_key})
        )
        self._simulator = start_simulator(config)
        self._cleanup.callback(self._simulator.stop)
        self._shop = start_shop(self._webhook_secret)
        self._cleanup.callback(self._shop.stop)

        self.environment = {
            **_inherited_environment(),
            "ERYSTA_BASE_URL": self._simulator.base_url,
            "ERYSTA_API_KEY": self._api_key,
            "REDIS_URL": self.redis_server.url,
            "LEDGER_PREFIX": "stack",
            "WEBHOOK_URL": self._shop.webhook_url,
            "WEBHOOK_SECRET": self._webhook_secret,
            "VAULT_KEYS": new_vault_key(),
            **self._settings,
        }
        return self

    def start_worker(self, *, concurrency: int = 2) -> CeleryProcess:
        """Start one more worker and wait until it consumes."""
        number = len(self.workers) + 1
        process = worker_process(
            self.environment,
            self.folder / f"worker-{number}.log",
            node_name=f"worker{number}-{secrets.token_hex(2)}@%h",
            concurrency=concurrency,
        )
        process.start()
        self._cleanup.callback(process.stop)
        process.wait_for_log("ready.")
        self.workers.append(process)
        return process

    def start_flower(self, port: int) -> CeleryProcess:
        """Start Flower on 127.0.0.1:`port`; it needs FLOWER_BASIC_AUTH in the settings."""
        process = CeleryProcess(
            ["flower", "--address=127.0.0.1", f"--port={port}"],
            environment=self.environment,
            log_path=self.folder / "flower.log",
        )
        process.start()
        self._cleanup.callback(process.stop)
        self.flower_port = port
        return process

    def start_beat(self) -> CeleryProcess:
        process = CeleryProcess(
            ["beat", "--schedule", str(self.folder / "beat-schedule"), "--loglevel=INFO"],
            environment=self.environment,
            log_path=self.folder / "beat.log",
        )
        process.start()
        self._cleanup.callback(process.stop)
        self.beat = process
        return process

    def kill_redis(self) -> None:
        """Kill Redis with SIGKILL, as a crash would; its append-only file stays."""
        self._close_client()
        self.redis_server.kill()

    def restart_redis(self) -> None:
        """Start Redis again on the same port, loading its append-only file."""
        self.redis_server.start()

    def place(self, reference_id: str, items: Sequence[tuple[str, int]]) -> str:
        """Submit an order through the command line; return what it printed."""
        arguments = [f"{product_id}:{quantity}" for product_id, quantity in items]
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [sys.executable, "-m", "cli.main", "place", reference_id]
            + [part for argument in arguments for part in ("--item", argument)],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=PLACE_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"placing {reference_id} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    @property
    def redis(self) -> redis.Redis:
        if self._redis_client is None:
            self._redis_client = redis.Redis.from_url(self.redis_server.url)
        return self._redis_client

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.environment["LEDGER_PREFIX"])

    def _close_client(self) -> None:
        if self._redis_client is not None:
            self._redis_client.close()
            self._redis_client = None

    def stop(self) -> None:
        """Stop everything that started, newest first."""
        self._close_client()
        self._cleanup.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _inherited_environment() -> dict[str, str]:
    """This process's environment without the project's settings, which the stack sets."""
    prefixes = (
        "ERYSTA_",
        "REDIS_",
        "BROKER_",
        "RESULT_",
        "LEDGER_",
        "WEBHOOK_",
        "VAULT_",
        "POLL_",
        "DELIVERY_",
        "FLOWER_",
        "STEP_",
        "RECONCILE_",
        "PLACE_",
    )
    return {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
