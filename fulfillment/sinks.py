"""Delivery sinks for finished orders: a signed webhook and/or a Python callable of the shop's.

A sink raises `DeliveryError`, whose `retryable` flag is true when trying again later
can help. Messages name the sink and the HTTP status, never the payload.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import requests

from fulfillment.clock import Clock
from fulfillment.signing import signature_headers

logger = logging.getLogger(__name__)

# Statuses that mean "not now" rather than "never": request timeout and rate limiting.
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A delivery attempt failed."""

    def __init__(self, message: str, *, retryable: bool, http_status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.http_status = http_status


class Sink(Protocol):
    name: str

    def deliver(self, payload: dict[str, Any], *, message_id: str) -> None: ...


class WebhookSink:
    """POSTs the payload as JSON, signed in the Standard Webhooks format."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float,
        session: requests.Session,
        clock: Clock,
    ) -> None:
        self._url = url
        self._secret = secret
        self._timeout_s = timeout_s
        self._session = session
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookSink(url={self._url!r}, secret='********')"

    def deliver(self, payload: dict[str, Any], *, message_id: str) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            **signature_headers(self._secret, message_id, int(self._clock()), body),
        }
        try:
            response = self._session.post(
                self._url, data=body, headers=headers, timeout=self._timeout_s
            )
        except requests.RequestException as exc:
            raise DeliveryError(
                f"webhook POST to {self._url} failed: {type(exc).__name__}", retryable=True
            ) from None
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return
        retryable = status >= 500 or status in _RETRYABLE_CLIENT_STATUSES
        raise DeliveryError(
            f"webhook POST to {self._url} returned HTTP {status}",
            retryable=retryable,
            http_status=status,
        )


class CallableSink:
    """Calls a function of the shop's, named by a dotted path such as `myshop.fulfil:deliver`."""

    name = "callable"

    def __init__(self, dotted_path: str) -> None:
        self._path = dotted_path
        self._function = load_callable(dotted_path)

    def __repr__(self) -> str:
        return f"CallableSink({self._path!r})"

    def deliver(self, payload: dict[str, Any], *, message_id: str) -> None:
        try:
            self._function(payload)
        except Exception as exc:
            # The exception's text is not repeated: shop code may put the payload in it.
            raise DeliveryError(
                f"delivery callable {self._path} raised {type(exc).__name__}", retryable=True
            ) from None


def load_callable(dotted_path: str) -> Callable[[dict[str, Any]], object]:
    """Import `module:attribute` and return it, raising ValueError that names the path."""
    module_name, _, attribute_path = dotted_path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"DELIVERY_CALLABLE={dotted_path!r} is invalid: module {module_name!r} "
            f"cannot be imported ({exc})"
        ) from exc
    for name in attribute_path.split("."):
        if not hasattr(target, name):
            raise ValueError(
                f"DELIVERY_CALLABLE={dotted_path!r} is invalid: "
                f"{module_name} has no {attribute_path}"
            )
        target = getattr(target, name)
    if not callable(target):
        raise ValueError(f"DELIVERY_CALLABLE={dotted_path!r} is invalid: it is not callable")
    return target  # type: ignore[no-any-return]
