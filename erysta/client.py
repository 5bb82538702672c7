"""HTTP client for the Erysta partner API.

Every failure leaves this module as an ``erysta.errors`` class: ``requests``, ``urllib3`` and
marshmallow exceptions are converted in ``_error_for_exception``, ``_error_for_status`` and
``ErystaClient._parse`` and chained with ``from``.

The conversion matters most for ``place_order``, because Erysta documents no idempotency key and
no way to look an order up by ``reference_id``: a place-order that may have reached Erysta must
never be sent again automatically. So the client never lets urllib3 retry, never follows
redirects, and raises ``OutcomeUnknownError`` whenever it cannot prove that no order was created.
"""

from __future__ import annotations

import http
import http.client
import json
import logging
import math
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions
from marshmallow import ValidationError
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry

from erysta.errors import (
    AuthenticationError,
    ErystaError,
    InvalidResponseError,
    NotFoundError,
    NotSentError,
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TransportError,
)
from erysta.models import BalanceResult, ErrorBody, OrderItem, OrderKeys, PlacedOrder, ResponseMeta
from erysta.schemas import (
    BalanceEnvelopeSchema,
    ErrorEnvelopeSchema,
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

# Characters of an error message taken from a response body, so that a proxy's HTML page or an
# oversized message cannot flood logs and task results.
_MAX_SERVER_MESSAGE_CHARS = 300
# Maximum number of exceptions examined for the cause of a transport failure. The chains that
# requests 2.34 and urllib3 2.8 raise for refused, dropped and timed-out calls hold 3 or 4.
_MAX_CAUSE_CHAIN = 20

# Evidence that the request bytes were (or may have been) written to an open connection: the
# server stopped responding, closed or reset the connection, or sent a broken response. Any of
# these outweighs evidence of a failed connect elsewhere in the chain.
_SENT_EVIDENCE: tuple[type[BaseException], ...] = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    http.client.HTTPException,
    requests.exceptions.ReadTimeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
# Proof that no request bytes left this process: these are raised only while opening the
# connection (TCP connect, name lookup, certificate check) or while preparing the request.
_NOT_SENT_EVIDENCE: tuple[type[BaseException], ...] = (
    urllib3.exceptions.NameResolutionError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    ssl.SSLCertVerificationError,
    requests.exceptions.ConnectTimeout,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidHeader,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


@dataclass(frozen=True)
class _Endpoint:
    method: str
    path_template: str
    # False for place-order: a request that may have been processed must not be repeated.
    read_only: bool

    @property
    def name(self) -> str:
        return f"{self.method} {self.path_template}"


# 4xx statuses with their own error class. Every other 4xx is a RejectedError.
_CLIENT_ERROR_CLASSES: dict[int, type[ErystaError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
}

_BALANCE = _Endpoint("GET", "/balance", read_only=True)
_PLACE_ORDER = _Endpoint("POST", "/place-order", read_only=False)
_ORDER_KEYS = _Endpoint("GET", "/orders/{order_id}/keys", read_only=True)


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
    ) -> None:
        _check_base_url(base_url)
        _check_api_key(api_key)
        _check_timeout("connect_timeout_s", connect_timeout_s)
        _check_timeout("read_timeout_s", read_timeout_s)

        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._user_agent = user_agent
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
        endpoint: _Endpoint,
        path: str,
        schema_class: type[SuccessEnvelopeSchema],
        result_type: type[_ResultT],
        *,
        body: bytes | None = None,
        log_context: str = "",
    ) -> _ResultT:
        started = time.perf_counter()
        try:
            response, http_meta = self._send(endpoint, path, body, started)
            self._raise_for_status(endpoint, response)
            result = self._parse(endpoint, response, schema_class(http_meta=http_meta), result_type)
        except ErystaError as error:
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

    def _send(
        self, endpoint: _Endpoint, path: str, body: bytes | None, started: float
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
            raise _error_for_exception(endpoint, exc) from exc

        duration_ms = (time.perf_counter() - started) * 1000
        return response, _http_meta(response, duration_ms)

    def _raise_for_status(self, endpoint: _Endpoint, response: requests.Response) -> None:
        if 200 <= response.status_code < 300:
            return

        error_body = _read_error_body(response)
        if error_body is not None:
            message = self._scrub(error_body.message)
            trace_id = error_body.trace_id
        else:
            message = _status_text(response)
            trace_id = None

        retry_after_s = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        raise _error_for_status(endpoint, response.status_code, message, trace_id, retry_after_s)

    def _parse(
        self,
        endpoint: _Endpoint,
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
            raise _invalid_body_error(endpoint, response.status_code, reason, None) from exc
        except ValidationError as exc:
            reason = f"the response body does not match the schema: {_describe_validation(exc)}"
            trace_id = _find_trace_id(payload)
            raise _invalid_body_error(endpoint, response.status_code, reason, trace_id) from exc

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


def _http_meta(response: requests.Response, duration_ms: float) -> ResponseMeta:
    headers = response.headers
    limit = _header_int(headers, "X-RateLimit")
    if limit is None:
        # Erysta's docs print the capacity header as "X-RateLimit", but accept the usual name.
        limit = _header_int(headers, "X-RateLimit-Limit")
    return ResponseMeta(
        trace_id=None,
        timestamp=None,
        cache=None,
        http_status=response.status_code,
        duration_ms=duration_ms,
        rate_limit=limit,
        rate_limit_remaining=_header_int(headers, "X-RateLimit-Remaining"),
        rate_limit_reset=_header_int(headers, "X-RateLimit-Reset"),
    )


def _header_int(headers: CaseInsensitiveDict[str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Convert a ``Retry-After`` header into seconds to wait from ``now``.

    Accepts delay-seconds (Erysta's documented form, fractions tolerated) and an HTTP-date.
    Returns ``None`` for a missing or unparseable value, and never a negative delay.
    """
    if value is None or not value.strip():
        return None

    try:
        delay_s = float(value)
    except ValueError:
        return _seconds_until_http_date(value, now)

    if not math.isfinite(delay_s):
        return None
    return max(delay_s, 0.0)


def _seconds_until_http_date(value: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # parsedate_to_datetime returns a naive datetime for a "-0000" zone, and HTTP dates
        # are always GMT.
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)


def _read_error_body(response: requests.Response) -> ErrorBody | None:
    try:
        error_body = ErrorEnvelopeSchema().load(parse_json(response.content))
    except (ValueError, RecursionError, ValidationError):
        # Only the 429 body is documented. Other errors may come from a proxy as HTML.
        return None
    return error_body if isinstance(error_body, ErrorBody) else None


def _status_text(response: requests.Response) -> str:
    reason = response.reason
    if not reason:
        try:
            reason = http.HTTPStatus(response.status_code).phrase
        except ValueError:
            reason = "unknown status"
    return f"HTTP {response.status_code} {reason}"


def _error_for_status(
    endpoint: _Endpoint,
    status: int,
    message: str,
    trace_id: str | None,
    retry_after_s: float | None,
) -> ErystaError:
    context: dict[str, Any] = {
        "endpoint": endpoint.name,
        "http_status": status,
        "trace_id": trace_id,
    }
    # A 429 means Erysta rejected the request unprocessed, so even place-order may retry it.
    if status == 429:
        return RateLimitedError(message, retry_after_s=retry_after_s, **context)
    if 400 <= status < 500:
        # NOTE: Erysta documents no status for a duplicate reference_id. A 409 here proves that
        # this request created nothing, but an earlier one with the same reference_id may have.
        error_class = _CLIENT_ERROR_CLASSES.get(status, RejectedError)
        return error_class(message, **context)
    if not endpoint.read_only:
        # A 5xx, or a 1xx or 3xx that no documented flow produces, does not prove that the
        # order was rolled back.
        return OutcomeUnknownError(message, **context)
    if status >= 500:
        return ServerError(message, **context)
    return InvalidResponseError(f"unexpected status: {message}", **context)


def _error_for_exception(endpoint: _Endpoint, exc: BaseException) -> ErystaError:
    chain = _cause_chain(exc)
    description = _describe_transport_failure(exc, chain)

    if _proves_not_sent(chain):
        return NotSentError(f"request not sent: {description}", endpoint=endpoint.name)
    if not endpoint.read_only:
        return OutcomeUnknownError(
            f"no complete response after sending: {description}. The order may have been "
            "created, so reconcile it before placing it again",
            endpoint=endpoint.name,
        )
    return TransportError(f"no complete response: {description}", endpoint=endpoint.name)


def _proves_not_sent(chain: list[BaseException]) -> bool:
    """Tell "never reached Erysta" apart from "dropped after sending".

    urllib3 raises NewConnectionError (connection refused, unreachable), NameResolutionError
    (DNS) and ConnectTimeoutError only before the first request byte is written, and the TLS
    certificate check fails before it too. Once the request is written, a failure surfaces as
    ReadTimeoutError or as ProtocolError wrapping RemoteDisconnected or ConnectionResetError.
    Any failure that is in neither group, including a ProtocolError during the TLS handshake,
    counts as possibly sent, because only proof may allow a place-order to be repeated.
    """
    if any(isinstance(cause, _SENT_EVIDENCE) for cause in chain):
        return False
    return any(isinstance(cause, _NOT_SENT_EVIDENCE) for cause in chain)


def _cause_chain(exc: BaseException) -> list[BaseException]:
    # requests wraps urllib3 errors in args, as in ConnectionError(MaxRetryError(...)). urllib3
    # keeps the underlying error in MaxRetryError.reason and in args. Both chain with "from".
    chain: list[BaseException] = []
    pending = [exc]
    while pending and len(chain) < _MAX_CAUSE_CHAIN:
        current = pending.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        pending.extend(link for link in (current.__cause__, current.__context__) if link)
    return chain


def _describe_transport_failure(exc: BaseException, chain: list[BaseException]) -> str:
    # The innermost cause names the real problem, such as "Connection refused". The wrappers
    # around it add only pool and retry details.
    root = chain[-1]
    if root is exc:
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} caused by {type(root).__name__}: {root}"


def _invalid_body_error(
    endpoint: _Endpoint, status: int, reason: str, trace_id: str | None
) -> ErystaError:
    if endpoint.read_only:
        return InvalidResponseError(
            reason, endpoint=endpoint.name, http_status=status, trace_id=trace_id
        )
    return OutcomeUnknownError(
        f"Erysta accepted the request but {reason}. The order may have been created, so "
        "reconcile it before placing it again",
        endpoint=endpoint.name,
        http_status=status,
        trace_id=trace_id,
    )


def _describe_validation(exc: ValidationError) -> str:
    problems = [f"{path}: {message}" for path, message in _flatten_messages(exc.messages, "")]
    return "; ".join(problems)


def _flatten_messages(messages: Any, path: str) -> list[tuple[str, str]]:
    # marshmallow nests messages by field name and list index. Each leaf is a list of strings.
    if isinstance(messages, dict):
        flat: list[tuple[str, str]] = []
        for key, nested in messages.items():
            flat.extend(_flatten_messages(nested, f"{path}.{key}" if path else str(key)))
        return flat
    if isinstance(messages, list):
        return [(path or "body", str(message)) for message in messages]
    return [(path or "body", str(messages))]


def _find_trace_id(payload: Any) -> str | None:
    # A body that fails the schema may still carry the trace_id that support needs.
    if not isinstance(payload, dict):
        return None
    details = payload.get("details")
    if not isinstance(details, dict):
        return None
    extensions = details.get("extensions")
    if not isinstance(extensions, dict):
        return None
    trace_id = extensions.get("trace_id")
    return trace_id if isinstance(trace_id, str) else None


def _log_call(
    endpoint: _Endpoint,
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
