"""HTTP client for the Erysta partner API.

Every failure leaves this module as an ``erysta.errors`` class. ``erysta.failures`` converts
``requests``, ``urllib3`` and marshmallow exceptions into these classes, and the client chains
the originals with ``from``. Because a place-order that may have reached Erysta must never be
sent again automatically, the client never lets urllib3 retry and never follows redirects.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions
from marshmallow import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from erysta.endpoints import Endpoint
from erysta.errors import ErystaError, InvalidResponseError, RateLimitedError, ThrottledError
from erysta.failures import (
    describe_validation,
    error_for_exception,
    error_for_status,
    find_trace_id,
    invalid_body_error,
    parse_retry_after,
    read_error_body,
    status_text,
)
from erysta.headers import http_meta
from erysta.models import BalanceResult, OrderItem, OrderKeys, PlacedOrder, ResponseMeta
from erysta.ratelimit import RateLimiter
from erysta.schemas import (
    BalanceEnvelopeSchema,
    OrderKeysEnvelopeSchema,
    PlaceOrderEnvelopeSchema,
    SuccessEnvelopeSchema,
    parse_json,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_READ_TIMEOUT_S",
    "DEFAULT_USER_AGENT",
    "ErystaClient",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

# Seconds to open the TCP and TLS connection. A reachable API connects in well under one.
DEFAULT_CONNECT_TIMEOUT_S = 5.0
# Seconds to wait for each read from the socket. Erysta documents no server-side time limit, and
# a place-order that times out becomes an unknown outcome, so this errs on the long side.
DEFAULT_READ_TIMEOUT_S = 30.0
DEFAULT_USER_AGENT = "erysta-workers/0.1"
# Seconds every worker pauses after a 429 that carries no usable Retry-After.
DEFAULT_RATE_LIMIT_PAUSE_S = 10.0

# Characters of an error message taken from a response body, so that a proxy's HTML page or an
# oversized message cannot flood logs and task results.
_MAX_SERVER_MESSAGE_CHARS = 300

_BALANCE = Endpoint("GET", "/balance", read_only=True)
_PLACE_ORDER = Endpoint("POST", "/place-order", read_only=False)
_ORDER_KEYS = Endpoint("GET", "/orders/{order_id}/keys", read_only=True)


class _HasMeta(Protocol):
    @property
    def meta(self) -> ResponseMeta: ...


_ResultT = TypeVar("_ResultT", bound=_HasMeta)


class ErystaClient:
    """Synchronous client for the three documented Erysta endpoints.

    Use one client per process: after a fork, create a new one, because a ``requests.Session``
    must not share pooled connections between processes. Every call sends the API key in the
    ``x-api-key`` header and uses the ``(connect, read)`` timeout given here.

    A caller-supplied ``session`` is used as is and stays open on ``close()``. Its adapter for
    ``base_url`` must not retry, which the constructor checks for ``HTTPAdapter``.

    With a ``limiter``, every call first takes one call from it. When none is left, the client
    raises ``ThrottledError`` without sending anything. A 429 from Erysta pauses the limiter.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        limiter: RateLimiter | None = None,
    ) -> None:
        _check_base_url(base_url)
        _check_api_key(api_key)
        _check_timeout("connect_timeout_s", connect_timeout_s)
        _check_timeout("read_timeout_s", read_timeout_s)

        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._user_agent = user_agent
        self._limiter = limiter
        self._owns_session = session is None
        self._session = session if session is not None else _new_session()
        _check_no_retries(self._session, self._base_url)

    def __repr__(self) -> str:
        return f"ErystaClient(base_url={self._base_url!r}, api_key=<redacted>)"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def get_balance(self) -> BalanceResult:
        """Fetch the account's balance and credit limit in EUR."""
        return self._call(_BALANCE, "/balance", BalanceEnvelopeSchema, BalanceResult)

    def place_order(self, items: Sequence[OrderItem], reference_id: str) -> PlacedOrder:
        """Buy ``items`` in one order and return Erysta's order id.

        Erysta checks funds and stock for the whole order at once, so it creates either the
        entire order or nothing. Raises ``OutcomeUnknownError`` when the request may have
        created an order without this client learning its id. Never retry that automatically.
        """
        if not items:
            raise ValueError("place_order needs at least one OrderItem")
        if not reference_id.strip():
            raise ValueError("reference_id must be a non-empty string identifying the shop order")

        body = _place_order_body(items, reference_id)
        return self._call(
            _PLACE_ORDER,
            "/place-order",
            PlaceOrderEnvelopeSchema,
            PlacedOrder,
            body=body,
            log_context=f"reference_id={reference_id}",
        )

    def get_order_keys(self, order_id: str) -> OrderKeys:
        """Fetch an order's status and the keys delivered so far."""
        if not order_id.strip():
            raise ValueError("order_id must be the non-empty id returned by place_order")
        if order_id in {".", ".."}:
            # URL normalization would turn these into a different path, whatever the quoting.
            raise ValueError(f"order_id {order_id!r} is not a valid Erysta order id")

        path = f"/orders/{quote(order_id, safe='')}/keys"
        order = self._call(
            _ORDER_KEYS,
            path,
            OrderKeysEnvelopeSchema,
            OrderKeys,
            log_context=f"order_id={order_id}",
        )

        if order.order_id != order_id:
            # Delivering another order's keys would hand paid goods to the wrong customer.
            raise InvalidResponseError(
                f"details.data.id is {order.order_id!r} but order {order_id!r} was requested",
                endpoint=_ORDER_KEYS.name,
                http_status=order.meta.http_status,
                trace_id=order.meta.trace_id,
            )
        return order

    def _call(
        self,
        endpoint: Endpoint,
        path: str,
        schema_class: type[SuccessEnvelopeSchema],
        result_type: type[_ResultT],
        *,
        body: bytes | None = None,
        log_context: str = "",
    ) -> _ResultT:
        started = time.perf_counter()
        try:
            self._take_call(endpoint)
            response, http_meta = self._send(endpoint, path, body, started)
            self._raise_for_status(endpoint, response)
            result = self._parse(endpoint, response, schema_class(http_meta=http_meta), result_type)
        except ErystaError as error:
            self._pause_after_429(error)
            _log_call(
                endpoint,
                http_status=error.http_status,
                started=started,
                trace_id=error.trace_id,
                log_context=log_context,
                error=error,
            )
            raise

        _log_call(
            endpoint,
            http_status=result.meta.http_status,
            started=started,
            trace_id=result.meta.trace_id,
            log_context=log_context,
        )
        return result

    @property
    def limiter(self) -> RateLimiter | None:
        """The rate limit every call takes from, if any."""
        return self._limiter

    def _take_call(self, endpoint: Endpoint) -> None:
        if self._limiter is None:
            return
        wait_s = self._limiter.acquire()
        if wait_s > 0:
            raise ThrottledError(
                f"the shared limit of calls to Erysta allows the next one in {wait_s:.2f} s",
                endpoint=endpoint.name,
                retry_after_s=wait_s,
            )

    def _pause_after_429(self, error: ErystaError) -> None:
        """Hold every worker back after Erysta refused a call for its rate limit."""
        if self._limiter is None or not isinstance(error, RateLimitedError):
            return
        if isinstance(error, ThrottledError):
            return
        pause_s = error.retry_after_s
        self._limiter.pause(DEFAULT_RATE_LIMIT_PAUSE_S if pause_s is None else pause_s)

    def _send(
        self, endpoint: Endpoint, path: str, body: bytes | None, started: float
    ) -> tuple[requests.Response, ResponseMeta]:
        headers = {
            "x-api-key": self._api_key,
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"

        try:
            response = self._session.request(
                endpoint.method,
                self._base_url + path,
                headers=headers,
                data=body,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise error_for_exception(endpoint, exc) from exc

        duration_ms = (time.perf_counter() - started) * 1000
        return response, http_meta(response, duration_ms)

    def _raise_for_status(self, endpoint: Endpoint, response: requests.Response) -> None:
        if 200 <= response.status_code < 300:
            return

        error_body = read_error_body(response)
        if error_body is not None:
            message = self._scrub(error_body.message)
            trace_id = error_body.trace_id
        else:
            message = status_text(response)
            trace_id = None

        retry_after_s = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        raise error_for_status(endpoint, response.status_code, message, trace_id, retry_after_s)

    def _parse(
        self,
        endpoint: Endpoint,
        response: requests.Response,
        schema: SuccessEnvelopeSchema,
        result_type: type[_ResultT],
    ) -> _ResultT:
        payload: Any = None
        try:
            payload = parse_json(response.content)
            result = schema.load(payload)
        except (ValueError, RecursionError) as exc:
            reason = f"the response body is not valid JSON: {exc}"
            raise invalid_body_error(endpoint, response.status_code, reason, None) from exc
        except ValidationError as exc:
            reason = f"the response body does not match the schema: {describe_validation(exc)}"
            trace_id = find_trace_id(payload)
            raise invalid_body_error(endpoint, response.status_code, reason, trace_id) from exc

        if not isinstance(result, result_type):
            raise TypeError(f"{type(schema).__name__} returned {type(result).__name__}")
        return result

    def _scrub(self, message: str) -> str:
        # Erysta's messages end up in logs and task results, so remove the API key if echoed.
        return message.replace(self._api_key, "<redacted>")[:_MAX_SERVER_MESSAGE_CHARS]


def _check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            "base_url must be an absolute http(s) URL without query or fragment, such as "
            f"https://api.erysta.com/v1/partners; got {base_url!r}"
        )


def _check_api_key(api_key: str) -> None:
    # requests rejects such header values only while sending, which would hide a configuration
    # mistake behind a transport error.
    if not api_key or api_key != api_key.strip() or not api_key.isprintable():
        raise ValueError(
            "api_key must be a non-empty Erysta API key without surrounding whitespace "
            "or control characters"
        )


def _check_timeout(name: str, value_s: float) -> None:
    if not value_s > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value_s!r}")


def _new_session() -> requests.Session:
    session = requests.Session()
    for prefix in ("https://", "http://"):
        # total=0 turns every would-be retry into an error. read=False re-raises read errors
        # unwrapped, which keeps their cause visible to _proves_not_sent.
        session.mount(prefix, HTTPAdapter(max_retries=Retry(total=0, read=False)))
    return session


def _check_no_retries(session: requests.Session, base_url: str) -> None:
    adapter = session.get_adapter(base_url + "/")
    if not isinstance(adapter, HTTPAdapter):
        return
    total = adapter.max_retries.total
    if total is not False and total != 0:
        raise ValueError(
            f"the session's adapter for {base_url} retries requests (max_retries.total={total}). "
            "A retried place-order could buy twice, so mount HTTPAdapter(max_retries=0)"
        )


def _place_order_body(items: Sequence[OrderItem], reference_id: str) -> bytes:
    document = {
        "items": [{"id": item.product_id, "quantity": item.quantity} for item in items],
        "reference_id": reference_id,
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _log_call(
    endpoint: Endpoint,
    *,
    http_status: int | None,
    started: float,
    trace_id: str | None,
    log_context: str,
    error: ErystaError | None = None,
) -> None:
    duration_ms = (time.perf_counter() - started) * 1000
    outcome = "ok" if error is None else type(error).__name__
    context = f", {log_context}" if log_context else ""
    logger.debug(
        "Erysta %s %s: %s, http_status=%s, duration_ms=%.1f, trace_id=%s%s",
        endpoint.method,
        endpoint.path_template,
        outcome,
        http_status,
        duration_ms,
        trace_id,
        context,
    )
