"""Conversion of failed Erysta calls into ``erysta.errors`` classes.

Erysta documents no idempotency key and no way to look an order up by ``reference_id``, so a
place-order that may have reached Erysta must never be sent again automatically. A failed
place-order therefore becomes ``OutcomeUnknownError`` unless the failure proves that no order
was created.
"""

from __future__ import annotations

import http
import http.client
import math
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3.exceptions
from marshmallow import ValidationError

from erysta.endpoints import Endpoint
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
from erysta.models import ErrorBody
from erysta.schemas import ErrorEnvelopeSchema, parse_json

__all__ = [
    "describe_validation",
    "error_for_exception",
    "error_for_status",
    "find_trace_id",
    "invalid_body_error",
    "parse_retry_after",
    "read_error_body",
    "status_text",
]

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

# 4xx statuses with their own error class. Every other 4xx is a RejectedError.
_CLIENT_ERROR_CLASSES: dict[int, type[ErystaError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
}


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


def read_error_body(response: requests.Response) -> ErrorBody | None:
    try:
        error_body = ErrorEnvelopeSchema().load(parse_json(response.content))
    except (ValueError, RecursionError, ValidationError):
        # Only the 429 body is documented. Other errors may come from a proxy as HTML.
        return None
    return error_body if isinstance(error_body, ErrorBody) else None


def status_text(response: requests.Response) -> str:
    reason = response.reason
    if not reason:
        try:
            reason = http.HTTPStatus(response.status_code).phrase
        except ValueError:
            reason = "unknown status"
    return f"HTTP {response.status_code} {reason}"


def error_for_status(
    endpoint: Endpoint,
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


def error_for_exception(endpoint: Endpoint, exc: BaseException) -> ErystaError:
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


def invalid_body_error(
    endpoint: Endpoint, status: int, reason: str, trace_id: str | None
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


def describe_validation(exc: ValidationError) -> str:
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


def find_trace_id(payload: Any) -> str | None:
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
