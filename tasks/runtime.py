"""The per-process objects tasks use: settings, Redis, the ledger, the vault, the client.

Each is built on first use. A forked worker process calls `reset_runtime()` so that it
opens its own connections and HTTP session instead of sharing the parent's sockets.
"""

from __future__ import annotations

import threading
from functools import cached_property

import redis
import requests

from config import Settings, load_settings
from erysta import ErystaClient, RedisTokenBucket
from fulfillment.clock import Clock, system_clock
from fulfillment.ledger import Ledger
from fulfillment.sinks import CallableSink, Sink, WebhookSink
from fulfillment.vault import KeyVault


class Runtime:
    """Lazily built services for one process."""

    def __init__(self, settings: Settings, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.clock = clock

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.ledger_redis_url)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.settings.ledger_prefix)

    @cached_property
    def vault(self) -> KeyVault:
        return KeyVault(self.redis, self.settings.ledger_prefix, self.settings.require_vault_keys())

    @cached_property
    def client(self) -> ErystaClient:
        calls_per_minute = self.settings.erysta_calls_per_minute
        limiter = RedisTokenBucket(
            self.redis,
            f"{self.settings.ledger_prefix}:erysta-calls",
            calls_per_minute=calls_per_minute,
            burst=max(1, calls_per_minute // 10),
            clock=self.clock,
        )
        return ErystaClient(
            self.settings.erysta_base_url,
            self.settings.require_api_key(),
            connect_timeout_s=self.settings.erysta_connect_timeout_s,
            read_timeout_s=self.settings.erysta_read_timeout_s,
            limiter=limiter,
        )

    @cached_property
    def http(self) -> requests.Session:
        """The session for calls to the shop; the supplier client keeps its own."""
        return requests.Session()

    @cached_property
    def sinks(self) -> list[Sink]:
        self.settings.require_delivery()
        sinks: list[Sink] = []
        if self.settings.webhook_url is not None and self.settings.webhook_secret is not None:
            sinks.append(
                WebhookSink(
                    self.settings.webhook_url,
                    self.settings.webhook_secret.reveal(),
                    timeout_s=self.settings.webhook_timeout_s,
                    session=self.http,
                    # The receiver checks the signature's timestamp against its own clock.
                    clock=system_clock,
                )
            )
        if self.settings.delivery_callable is not None:
            sinks.append(CallableSink(self.settings.delivery_callable))
        return sinks

    def close(self) -> None:
        for name in ("client", "http"):
            resource = self.__dict__.pop(name, None)
            if resource is not None:
                resource.close()
        connection = self.__dict__.pop("redis", None)
        if connection is not None:
            connection.close()


_lock = threading.Lock()
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """Return this process's runtime, building it from the environment on first use."""
    global _runtime  # noqa: PLW0603 - one runtime per process, replaced after fork
    with _lock:
        if _runtime is None:
            _runtime = Runtime(load_settings())
        return _runtime


def current_settings() -> Settings:
    return runtime().settings


def reset_runtime(replacement: Runtime | None = None) -> None:
    """Drop this process's runtime; the next `runtime()` builds a new one (or uses `replacement`).

    The old one's sockets are not closed, because after a fork they belong to the parent.
    """
    global _runtime  # noqa: PLW0603
    with _lock:
        _runtime = replacement
