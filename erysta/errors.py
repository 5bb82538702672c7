"""Errors raised by the Erysta client, grouped by what the caller must do next.

::

    ErystaError
    ├── RetryableError              retry later, with backoff
    │   ├── RateLimitedError        HTTP 429, wait at least retry_after_s
    │   │   └── ThrottledError      the shared rate limit held the call back; nothing was sent
    │   ├── ServerError             HTTP 5xx on a read-only call
    │   ├── TransportError          timeout or dropped connection on a read-only call
    │   └── NotSentError            the request never reached Erysta, so even place-order may retry
    ├── NonRetryableError           the same request fails again, so fix the cause first
    │   ├── AuthenticationError     HTTP 401 or 403: wrong API key or source IP not whitelisted
    │   ├── NotFoundError           HTTP 404
    │   └── RejectedError           any other 4xx; for place-order, Erysta refused the order
    ├── InvalidResponseError        the body is not JSON or does not match the documented schema
    └── OutcomeUnknownError         place-order was sent and may have created a paid order

``OutcomeUnknownError`` is deliberately outside ``RetryableError``: retrying it automatically
could buy the same goods twice, so a caller that catches ``RetryableError`` never retries it.

Every error carries the HTTP status (``None`` when no response arrived), a message, the
``trace_id`` that Erysta support asks for (``None`` when the response had none) and the endpoint
as ``"METHOD /path/template"``. Messages never contain the API key or a key value.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "ErystaError",
    "InvalidResponseError",
    "NonRetryableError",
    "NotFoundError",
    "NotSentError",
    "OutcomeUnknownError",
    "RateLimitedError",
    "RejectedError",
    "RetryableError",
    "ServerError",
    "ThrottledError",
    "TransportError",
]


class ErystaError(Exception):
    """Base class of every error raised by the Erysta client."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        http_status: int | None = None,
        trace_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.http_status = http_status
        self.trace_id = trace_id

    def __str__(self) -> str:
        details = [f"HTTP {self.http_status}" if self.http_status is not None else "no response"]
        if self.trace_id is not None:
            details.append(f"trace_id={self.trace_id}")
        return f"{self.endpoint}: {self.message} ({', '.join(details)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Default pickling calls cls(*args), which fails on the keyword-only arguments.
        # Celery pickles exceptions when it stores a failed task's result.
        return (_restore_error, (type(self), dict(self.__dict__)))


def _restore_error(cls: type[ErystaError], state: dict[str, Any]) -> ErystaError:
    error = cls.__new__(cls)
    error.args = (state["message"],)
    error.__dict__.update(state)
    return error


class RetryableError(ErystaError):
    """The call failed without effect; the same call may succeed later."""


class RateLimitedError(RetryableError):
    """Erysta returned 429 Too Many Requests without processing the request.

    ``retry_after_s`` is the delay from the ``Retry-After`` header, or ``None`` when the header
    is missing or unparseable.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        http_status: int | None = 429,
        trace_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, http_status=http_status, trace_id=trace_id)
        self.retry_after_s = retry_after_s


class ThrottledError(RateLimitedError):
    """The shared rate limit allows no call now, so the request was not sent.

    ``retry_after_s`` is when the limit allows the next call.
    """

    def __init__(self, message: str, *, endpoint: str, retry_after_s: float) -> None:
        super().__init__(message, endpoint=endpoint, http_status=None, retry_after_s=retry_after_s)


class ServerError(RetryableError):
    """A read-only call received a 5xx response."""


class TransportError(RetryableError):
    """A read-only call timed out or lost its connection after the request was sent."""


class NotSentError(RetryableError):
    """The request never reached Erysta: connection refused, DNS failure or connect timeout."""


class NonRetryableError(ErystaError):
    """Erysta rejected the request, so repeating it unchanged fails the same way."""


class AuthenticationError(NonRetryableError):
    """HTTP 401 or 403: the API key is wrong or revoked, or the source IP is not whitelisted."""


class NotFoundError(NonRetryableError):
    """HTTP 404: the endpoint or the order does not exist for this account."""


class RejectedError(NonRetryableError):
    """Any other 4xx. For place-order, Erysta refused the order and created nothing."""


class InvalidResponseError(ErystaError):
    """The response body is not JSON or does not match the documented schema.

    Only read-only calls raise it. A 2xx place-order body that cannot be parsed may still describe
    a created order, so that case is an ``OutcomeUnknownError``.
    """


class OutcomeUnknownError(ErystaError):
    """place-order was sent, and Erysta may or may not have created (and charged) the order.

    Raised for a read timeout, a connection dropped after sending, a 5xx response, and a 2xx
    response whose body cannot be parsed. Do not retry automatically: reconcile first, quoting
    the reference_id and, when present, the trace_id.
    """
