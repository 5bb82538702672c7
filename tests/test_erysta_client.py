"""Specification of the Erysta HTTP client.

Most tests replace only the transport: ``FakeTransport`` is a ``requests`` adapter mounted on the
session, so the real client code prepares every request, and the transport returns canned
responses or raises the exceptions that ``requests`` and urllib3 really raise. The transport
failure classification is also checked against real sockets on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import logging
import pickle
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
import urllib3
import urllib3.exceptions
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict

from erysta import (
    AuthenticationError,
    ErystaClient,
    ErystaError,
    InvalidResponseError,
    NonRetryableError,
    NotFoundError,
    NotSentError,
    OrderItem,
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
    RetryableError,
    ServerError,
    ThrottledError,
    TransportError,
)
from erysta.client import parse_retry_after

BASE_URL = "https://erysta.invalid/v1/partners"
API_KEY = "test-api-key-0123456789"
# A key value that must never show up in logs, reprs or error messages.
CANARY_KEY = "CANARY-KEY-VALUE-7Q2X"
TRACE_ID = "10c31c63-366c-4461-ba91-150d9a375eec"
ITEMS = [OrderItem(product_id="69ae19b4397b2e44c02853f6", quantity=1)]

Outcome = requests.Response | BaseException
Timeout = float | tuple[float, float] | tuple[float, None] | None


class FakeTransport(BaseAdapter):
    """Return queued responses, or raise queued exceptions, recording each request."""

    def __init__(self, *outcomes: Outcome) -> None:
        super().__init__()
        self.outcomes = list(outcomes)
        self.requests: list[PreparedRequest] = []
        self.timeouts: list[Timeout] = []
        self.closed = False

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.requests.append(request)
        self.timeouts.append(timeout)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        outcome.request = request
        outcome.url = request.url or ""
        return outcome

    def close(self) -> None:
        self.closed = True


def make_response(
    status: int,
    body: Any = b"",
    headers: Mapping[str, str] | None = None,
    reason: str = "",
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.headers = CaseInsensitiveDict(headers or {})
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response


def success(data: Any, trace_id: str = TRACE_ID) -> dict[str, Any]:
    return {
        "status": 200,
        "success": True,
        "details": {
            "data": data,
            "extensions": {
                "cache": "no-store",
                "trace_id": trace_id,
                "timestamp": "2026-04-09T13:56:47.496Z",
            },
        },
    }


def failure(status: int, message: str) -> dict[str, Any]:
    error = {"message": message, "timestamp": "2026-03-09T15:30:00.000Z"}
    return {"status": status, "success": False, "error": error}


def keys_data(order_id: str = "SE757MKE", key_value: str = CANARY_KEY) -> dict[str, Any]:
    return {
        "id": order_id,
        "status": "COMPLETED",
        "products": [
            {
                "id": "69ae19b4397b2e44c02853f5",
                "title": "Test Product - TXT",
                "quantity": 1,
                "keys": [{"value": key_value, "type": "text"}],
            }
        ],
        "total_debit": 0,
        # json.dumps writes this float as the text 990.4, as Erysta's example does.
        "balance": {"balance": 990.4, "credit_limit": 500},
    }


def keys_response(order_id: str = "SE757MKE") -> requests.Response:
    return make_response(200, success(keys_data(order_id)))


BALANCE_OK = success({"balance": 5000, "credit_limit": 10000})
PLACED_OK = success({"id": "ABCD1234"})


def make_client(*outcomes: Outcome, **options: Any) -> tuple[ErystaClient, FakeTransport]:
    transport = FakeTransport(*outcomes)
    session = requests.Session()
    session.mount("https://", transport)
    session.mount("http://", transport)
    return ErystaClient(BASE_URL, API_KEY, session=session, **options), transport


Call = Callable[[ErystaClient], object]


def call_balance(client: ErystaClient) -> object:
    return client.get_balance()


def call_place_order(client: ErystaClient) -> object:
    return client.place_order(ITEMS, "MY-SHOP-12345")


def call_order_keys(client: ErystaClient) -> object:
    return client.get_order_keys("SE757MKE")


ALL_CALLS = [
    pytest.param(call_balance, BALANCE_OK, id="balance"),
    pytest.param(call_place_order, PLACED_OK, id="place-order"),
    pytest.param(call_order_keys, success(keys_data()), id="order-keys"),
]


# Real urllib3 objects for building the exceptions urllib3 raises; creating them opens nothing.
POOL = urllib3.HTTPSConnectionPool("erysta.invalid", 443)
CONNECTION = urllib3.connection.HTTPSConnection("erysta.invalid", 443)
URL = "/v1/partners/place-order"


def connect_timeout() -> BaseException:
    reason = urllib3.exceptions.ConnectTimeoutError(CONNECTION, "connect timeout=5.0")
    return requests.exceptions.ConnectTimeout(urllib3.exceptions.MaxRetryError(POOL, URL, reason))


def connection_refused() -> BaseException:
    reason = urllib3.exceptions.NewConnectionError(CONNECTION, "[Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(POOL, URL, reason))


def name_resolution_failed() -> BaseException:
    gaierror = socket.gaierror(-2, "Name or service not known")
    reason = urllib3.exceptions.NameResolutionError("erysta.invalid", CONNECTION, gaierror)
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(POOL, URL, reason))


def certificate_rejected() -> BaseException:
    verify_error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]")
    reason = urllib3.exceptions.SSLError(verify_error)
    return requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(POOL, URL, reason))


def tls_failure_mid_response() -> BaseException:
    reason = urllib3.exceptions.SSLError(
        ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]")
    )
    return requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(POOL, URL, reason))


def read_timeout() -> BaseException:
    reason = urllib3.exceptions.ReadTimeoutError(POOL, URL, "Read timed out. (read timeout=30.0)")
    return requests.exceptions.ReadTimeout(reason)


def remote_disconnected() -> BaseException:
    dropped = http.client.RemoteDisconnected("Remote end closed connection without response")
    protocol_error = urllib3.exceptions.ProtocolError("Connection aborted.", dropped)
    return requests.exceptions.ConnectionError(protocol_error)


def connection_reset() -> BaseException:
    reset = ConnectionResetError(104, "Connection reset by peer")
    protocol_error = urllib3.exceptions.ProtocolError("Connection aborted.", reset)
    return requests.exceptions.ConnectionError(protocol_error)


def body_cut_short() -> BaseException:
    protocol_error = urllib3.exceptions.ProtocolError("Response ended prematurely")
    return requests.exceptions.ChunkedEncodingError(protocol_error)


def refused_after_dropped_send() -> BaseException:
    # Sent evidence anywhere in the chain outweighs a later failed connect.
    error = connection_refused()
    error.__context__ = remote_disconnected()
    return error


def bare_urllib3_error() -> BaseException:
    return urllib3.exceptions.HTTPError("unexpected urllib3 failure")


TRANSPORT_FAILURES = [
    pytest.param(connect_timeout, NotSentError, NotSentError, id="connect-timeout"),
    pytest.param(connection_refused, NotSentError, NotSentError, id="refused"),
    pytest.param(name_resolution_failed, NotSentError, NotSentError, id="dns"),
    pytest.param(certificate_rejected, NotSentError, NotSentError, id="certificate"),
    pytest.param(read_timeout, TransportError, OutcomeUnknownError, id="read-timeout"),
    pytest.param(remote_disconnected, TransportError, OutcomeUnknownError, id="disconnected"),
    pytest.param(connection_reset, TransportError, OutcomeUnknownError, id="reset"),
    pytest.param(body_cut_short, TransportError, OutcomeUnknownError, id="chunked"),
    pytest.param(tls_failure_mid_response, TransportError, OutcomeUnknownError, id="tls"),
    pytest.param(refused_after_dropped_send, TransportError, OutcomeUnknownError, id="both"),
    pytest.param(bare_urllib3_error, TransportError, OutcomeUnknownError, id="urllib3"),
]


@pytest.mark.parametrize(("make_error", "read_error", "place_error"), TRANSPORT_FAILURES)
def test_transport_failure_on_get(
    make_error: Callable[[], BaseException],
    read_error: type[ErystaError],
    place_error: type[ErystaError],
) -> None:
    client, _ = make_client(make_error())

    with pytest.raises(read_error) as caught:
        client.get_balance()

    assert type(caught.value) is read_error
    assert caught.value.http_status is None
    assert caught.value.endpoint == "GET /balance"


@pytest.mark.parametrize(("make_error", "read_error", "place_error"), TRANSPORT_FAILURES)
def test_transport_failure_on_place_order(
    make_error: Callable[[], BaseException],
    read_error: type[ErystaError],
    place_error: type[ErystaError],
) -> None:
    error = make_error()
    client, _ = make_client(error)

    with pytest.raises(place_error) as caught:
        call_place_order(client)

    assert type(caught.value) is place_error
    assert caught.value.endpoint == "POST /place-order"
    assert caught.value.__cause__ is error


STATUS_TABLE = [
    (400, RejectedError, RejectedError),
    (401, AuthenticationError, AuthenticationError),
    (402, RejectedError, RejectedError),
    (403, AuthenticationError, AuthenticationError),
    (404, NotFoundError, NotFoundError),
    (409, RejectedError, RejectedError),
    (422, RejectedError, RejectedError),
    (429, RateLimitedError, RateLimitedError),
    (500, ServerError, OutcomeUnknownError),
    (502, ServerError, OutcomeUnknownError),
    (503, ServerError, OutcomeUnknownError),
    (504, ServerError, OutcomeUnknownError),
    (302, InvalidResponseError, OutcomeUnknownError),
]


@pytest.mark.parametrize(("status", "read_error", "place_error"), STATUS_TABLE)
def test_status_on_get(
    status: int, read_error: type[ErystaError], place_error: type[ErystaError]
) -> None:
    client, _ = make_client(make_response(status, failure(status, "Erysta says no")))

    with pytest.raises(read_error) as caught:
        call_order_keys(client)

    assert type(caught.value) is read_error
    assert caught.value.http_status == status
    assert caught.value.endpoint == "GET /orders/{order_id}/keys"


@pytest.mark.parametrize(("status", "read_error", "place_error"), STATUS_TABLE)
def test_status_on_place_order(
    status: int, read_error: type[ErystaError], place_error: type[ErystaError]
) -> None:
    client, _ = make_client(make_response(status, failure(status, "Erysta says no")))

    with pytest.raises(place_error) as caught:
        call_place_order(client)

    assert type(caught.value) is place_error
    assert caught.value.http_status == status
    assert caught.value.message == "Erysta says no"


def test_redirect_not_followed() -> None:
    redirect = make_response(302, b"", {"Location": "https://erysta.invalid/elsewhere"})
    client, transport = make_client(redirect)

    with pytest.raises(OutcomeUnknownError):
        call_place_order(client)

    assert len(transport.requests) == 1


@pytest.mark.parametrize(
    ("body", "reason", "expected_message"),
    [
        pytest.param(failure(400, "Insufficient funds"), "", "Insufficient funds", id="envelope"),
        pytest.param(b"<html>Bad Request</html>", "Bad Request", "HTTP 400 Bad Request", id="html"),
        pytest.param(b"", "", "HTTP 400 Bad Request", id="empty-no-reason"),
        pytest.param({"error": {"message": ""}}, "", "HTTP 400 Bad Request", id="blank-message"),
    ],
)
def test_rejected_message(body: Any, reason: str, expected_message: str) -> None:
    client, _ = make_client(make_response(400, body, reason=reason))

    with pytest.raises(RejectedError) as caught:
        call_place_order(client)

    assert caught.value.message == expected_message


def test_error_trace_id_from_body() -> None:
    body = failure(403, "IP not whitelisted")
    body["error"]["trace_id"] = TRACE_ID
    client, _ = make_client(make_response(403, body))

    with pytest.raises(AuthenticationError) as caught:
        call_balance(client)

    assert caught.value.trace_id == TRACE_ID


def test_error_message_scrubs_api_key() -> None:
    client, _ = make_client(make_response(401, failure(401, f"Unknown API key {API_KEY}")))

    with pytest.raises(AuthenticationError) as caught:
        call_balance(client)

    assert API_KEY not in caught.value.message
    assert API_KEY not in str(caught.value)


def test_error_message_truncated() -> None:
    client, _ = make_client(make_response(400, failure(400, "x" * 5000)))

    with pytest.raises(RejectedError) as caught:
        call_balance(client)

    assert len(caught.value.message) == 300


@pytest.mark.parametrize(
    ("headers", "expected_retry_after_s"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
@pytest.mark.parametrize("call", [call_balance, call_place_order, call_order_keys])
def test_rate_limited_retry_after(
    call: Call, headers: dict[str, str], expected_retry_after_s: float | None
) -> None:
    body = failure(429, "Too Many Requests")
    client, _ = make_client(make_response(429, body, headers))

    with pytest.raises(RateLimitedError) as caught:
        call(client)

    assert caught.value.retry_after_s == expected_retry_after_s
    assert caught.value.message == "Too Many Requests"


NOW = datetime(2026, 3, 9, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected_s"),
    [
        ("30", 30.0),
        (" 2 ", 2.0),
        ("0.25", 0.25),
        ("-5", 0.0),
        ("nan", None),
        ("inf", None),
        ("", None),
        (None, None),
        ("tomorrow", None),
        ("Mon, 09 Mar 2026 15:30:45 GMT", 45.0),
        ("Mon, 09 Mar 2026 15:29:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected_s: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected_s


def test_parse_retry_after_date_relative() -> None:
    later = NOW + timedelta(minutes=2)

    assert parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), NOW) == 120.0


@pytest.mark.parametrize(("call", "body"), ALL_CALLS)
def test_headers_sent(call: Call, body: Any) -> None:
    client, transport = make_client(make_response(200, body), user_agent="shop-worker/2.0")

    call(client)

    headers = transport.requests[0].headers
    assert headers["x-api-key"] == API_KEY
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "shop-worker/2.0"


@pytest.mark.parametrize(("call", "body"), ALL_CALLS)
def test_timeout_on_every_call(call: Call, body: Any) -> None:
    client, transport = make_client(
        make_response(200, body), connect_timeout_s=1.5, read_timeout_s=7.0
    )

    call(client)

    assert transport.timeouts == [(1.5, 7.0)]


def test_default_timeouts() -> None:
    client, transport = make_client(make_response(200, BALANCE_OK))

    client.get_balance()

    assert transport.timeouts == [(5.0, 30.0)]


def test_get_has_no_body() -> None:
    client, transport = make_client(make_response(200, BALANCE_OK))

    client.get_balance()

    request = transport.requests[0]
    assert request.method == "GET"
    assert request.url == f"{BASE_URL}/balance"
    assert request.body is None
    assert "Content-Type" not in request.headers


def test_place_order_request() -> None:
    client, transport = make_client(make_response(200, PLACED_OK))
    items = [OrderItem("69ae2cb3a9a53ba2d777fe59", 1), OrderItem("69ae2cb3a9a53ba2d777fe5a", 3)]

    placed = client.place_order(items, "MY-SHOP-12345")

    request = transport.requests[0]
    assert placed.order_id == "ABCD1234"
    assert request.method == "POST"
    assert request.url == f"{BASE_URL}/place-order"
    assert request.headers["Content-Type"] == "application/json"
    assert isinstance(request.body, bytes)
    assert json.loads(request.body) == {
        "items": [
            {"id": "69ae2cb3a9a53ba2d777fe59", "quantity": 1},
            {"id": "69ae2cb3a9a53ba2d777fe5a", "quantity": 3},
        ],
        "reference_id": "MY-SHOP-12345",
    }


@pytest.mark.parametrize(
    ("items", "reference_id"),
    [([], "MY-SHOP-1"), (ITEMS, ""), (ITEMS, "   ")],
    ids=["no-items", "empty-reference", "blank-reference"],
)
def test_place_order_rejects_arguments(items: list[OrderItem], reference_id: str) -> None:
    client, transport = make_client()

    with pytest.raises(ValueError):
        client.place_order(items, reference_id)

    assert transport.requests == []


@pytest.mark.parametrize(
    ("order_id", "expected_segment"),
    [
        ("SE757MKE", "SE757MKE"),
        ("ord_507f1f77bcf86cd799439011", "ord_507f1f77bcf86cd799439011"),
        ("a/b", "a%2Fb"),
        ("a b", "a%20b"),
        ("x?y=1#z", "x%3Fy%3D1%23z"),
        ("100%", "100%25"),
        ("ü", "%C3%BC"),
        ("../balance", "..%2Fbalance"),
    ],
)
def test_order_id_quoted(order_id: str, expected_segment: str) -> None:
    client, transport = make_client(keys_response(order_id))

    order = client.get_order_keys(order_id)

    assert transport.requests[0].url == f"{BASE_URL}/orders/{expected_segment}/keys"
    assert order.order_id == order_id


@pytest.mark.parametrize("order_id", ["", "  ", ".", ".."])
def test_order_id_rejected(order_id: str) -> None:
    client, transport = make_client()

    with pytest.raises(ValueError):
        client.get_order_keys(order_id)

    assert transport.requests == []


def test_order_keys_other_order() -> None:
    client, _ = make_client(keys_response("OTHER123"))

    with pytest.raises(InvalidResponseError) as caught:
        client.get_order_keys("SE757MKE")

    assert caught.value.trace_id == TRACE_ID


def test_order_keys_decimal_exact() -> None:
    client, _ = make_client(keys_response())

    order = client.get_order_keys("SE757MKE")

    assert order.balance is not None
    assert order.balance.balance == Decimal("990.4")
    assert str(order.balance.balance) == "990.4"
    assert order.total_debit == Decimal(0)


def test_balance_result() -> None:
    client, _ = make_client(make_response(200, BALANCE_OK))

    result = client.get_balance()

    assert result.balance.balance == Decimal(5000)
    assert result.balance.spending_limit == Decimal(15000)
    assert result.meta.trace_id == TRACE_ID
    assert result.meta.http_status == 200
    assert result.meta.duration_ms >= 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {
                "X-RateLimit": "100",
                "X-RateLimit-Remaining": "97",
                "X-RateLimit-Reset": "1775740000",
            },
            (100, 97, 1775740000),
        ),
        ({"X-RateLimit-Limit": "100"}, (100, None, None)),
        ({"x-ratelimit": " 100 ", "x-ratelimit-remaining": "0"}, (100, 0, None)),
        (
            {"X-RateLimit": "many", "X-RateLimit-Remaining": "", "X-RateLimit-Reset": "1.5"},
            (None,) * 3,
        ),
        ({}, (None, None, None)),
    ],
)
def test_rate_limit_headers(headers: dict[str, str], expected: tuple[int | None, ...]) -> None:
    client, _ = make_client(make_response(200, BALANCE_OK, headers))

    meta = client.get_balance().meta

    assert (meta.rate_limit, meta.rate_limit_remaining, meta.rate_limit_reset) == expected


INVALID_SUCCESS_BODIES = [
    pytest.param(b"", id="empty"),
    pytest.param(b"<html>OK</html>", id="html"),
    pytest.param(b'{"success": true, "details": {"data": {}}}', id="no-id"),
    pytest.param(b'{"success": false, "details": {"data": {"id": "A"}}}', id="success-false"),
    pytest.param(b'{"success": true, "details": {"data": {"id": NaN}}}', id="nan"),
    pytest.param(b"[" * 100_000, id="deep-nesting"),
]


@pytest.mark.parametrize("body", INVALID_SUCCESS_BODIES)
def test_invalid_body_on_get(body: bytes) -> None:
    client, _ = make_client(make_response(200, body))

    with pytest.raises(InvalidResponseError) as caught:
        client.get_balance()

    assert caught.value.http_status == 200


@pytest.mark.parametrize("body", INVALID_SUCCESS_BODIES)
def test_invalid_body_on_place_order(body: bytes) -> None:
    client, _ = make_client(make_response(200, body))

    with pytest.raises(OutcomeUnknownError) as caught:
        call_place_order(client)

    assert caught.value.http_status == 200


def test_invalid_body_keeps_trace_id() -> None:
    body = {"success": True, "details": {"data": {"id": ""}, "extensions": {"trace_id": "t-9"}}}
    client, _ = make_client(make_response(201, body))

    with pytest.raises(OutcomeUnknownError) as caught:
        call_place_order(client)

    assert caught.value.trace_id == "t-9"


def test_invalid_body_names_field() -> None:
    client, _ = make_client(make_response(200, success({"balance": 1})))

    with pytest.raises(InvalidResponseError) as caught:
        client.get_balance()

    assert "details.data.credit_limit" in caught.value.message


def test_client_repr_hides_api_key() -> None:
    client, _ = make_client()

    assert API_KEY not in repr(client)
    assert "<redacted>" in repr(client)


def test_logs_hide_secrets(caplog: pytest.LogCaptureFixture) -> None:
    client, _ = make_client(keys_response(), make_response(401, failure(401, f"bad key {API_KEY}")))
    caplog.set_level(logging.DEBUG, logger="erysta")

    order = client.get_order_keys("SE757MKE")
    with pytest.raises(AuthenticationError):
        client.get_balance()

    assert order.products[0].keys[0].value == CANARY_KEY
    assert CANARY_KEY not in caplog.text
    assert API_KEY not in caplog.text
    assert CANARY_KEY not in repr(order)


def test_log_line_per_call(caplog: pytest.LogCaptureFixture) -> None:
    client, _ = make_client(make_response(200, PLACED_OK))
    caplog.set_level(logging.DEBUG, logger="erysta")

    call_place_order(client)

    [record] = [record for record in caplog.records if record.name == "erysta.client"]
    assert record.levelno == logging.DEBUG
    assert "POST /place-order" in record.getMessage()
    assert "reference_id=MY-SHOP-12345" in record.getMessage()
    assert f"trace_id={TRACE_ID}" in record.getMessage()
    assert "http_status=200" in record.getMessage()


@pytest.mark.parametrize(
    ("base_url", "api_key", "options"),
    [
        pytest.param("api.erysta.com/v1/partners", API_KEY, {}, id="no-scheme"),
        pytest.param("ftp://api.erysta.com/v1", API_KEY, {}, id="ftp"),
        pytest.param("https:///v1/partners", API_KEY, {}, id="no-host"),
        pytest.param("https://api.erysta.com/v1?x=1", API_KEY, {}, id="query"),
        pytest.param(BASE_URL, "", {}, id="empty-key"),
        pytest.param(BASE_URL, " key", {}, id="key-whitespace"),
        pytest.param(BASE_URL, "key\r\nX-Injected: 1", {}, id="key-newline"),
        pytest.param(BASE_URL, API_KEY, {"connect_timeout_s": 0}, id="zero-timeout"),
        pytest.param(BASE_URL, API_KEY, {"read_timeout_s": -1.0}, id="negative-timeout"),
        pytest.param(BASE_URL, API_KEY, {"read_timeout_s": float("nan")}, id="nan-timeout"),
    ],
)
def test_constructor_rejects(base_url: str, api_key: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as caught:
        ErystaClient(base_url, api_key, **options)

    assert "key\r\n" not in str(caught.value)


def test_constructor_rejects_retrying_session() -> None:
    session = requests.Session()
    session.mount("https://", HTTPAdapter(max_retries=3))

    with pytest.raises(ValueError, match="retries"):
        ErystaClient(BASE_URL, API_KEY, session=session)


def test_close_keeps_caller_session() -> None:
    client, transport = make_client()

    with client:
        pass

    assert transport.closed is False


@pytest.mark.parametrize(
    ("error_class", "family"),
    [
        (RateLimitedError, RetryableError),
        (ServerError, RetryableError),
        (TransportError, RetryableError),
        (NotSentError, RetryableError),
        (AuthenticationError, NonRetryableError),
        (NotFoundError, NonRetryableError),
        (RejectedError, NonRetryableError),
        (InvalidResponseError, ErystaError),
        (OutcomeUnknownError, ErystaError),
    ],
)
def test_error_family(error_class: type[ErystaError], family: type[ErystaError]) -> None:
    assert issubclass(error_class, family)


@pytest.mark.parametrize("family", [RetryableError, NonRetryableError, InvalidResponseError])
def test_outcome_unknown_never_retryable(family: type[ErystaError]) -> None:
    assert not issubclass(OutcomeUnknownError, family)


def test_error_pickles() -> None:
    error = RateLimitedError(
        "Too Many Requests", endpoint="GET /balance", trace_id=TRACE_ID, retry_after_s=7.0
    )

    restored = pickle.loads(pickle.dumps(error))

    assert type(restored) is RateLimitedError
    assert restored.message == "Too Many Requests"
    assert restored.retry_after_s == 7.0
    assert restored.http_status == 429
    assert str(restored) == str(error)


# Real sockets on 127.0.0.1 from here on.


class LocalServer:
    """A TCP server on 127.0.0.1 that reads each request and then applies ``behavior``."""

    def __init__(self, behavior: Callable[[socket.socket], None]) -> None:
        self.behavior = behavior
        self.connections = 0
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/partners"

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with connection:
                read_request(connection)
                self.behavior(connection)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()


def read_request(connection: socket.socket) -> bytes:
    connection.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # An inherited proxy setting would send 127.0.0.1 traffic elsewhere.
    for scheme in ("http", "https", "all"):
        monkeypatch.delenv(f"{scheme}_proxy", raising=False)
        monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)


@pytest.fixture
def closed_port() -> Iterator[int]:
    # Bound but not listening, so connections are refused and no other process can take it.
    placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    placeholder.bind(("127.0.0.1", 0))
    yield placeholder.getsockname()[1]
    placeholder.close()


@pytest.fixture
def closing_server() -> Iterator[LocalServer]:
    server = LocalServer(lambda connection: None)
    yield server
    server.stop()


@pytest.fixture
def silent_server() -> Iterator[LocalServer]:
    release = threading.Event()

    def hold(connection: socket.socket) -> None:
        release.wait(timeout=10)

    server = LocalServer(hold)
    yield server
    release.set()
    server.stop()


@pytest.fixture
def balance_server() -> Iterator[LocalServer]:
    body = json.dumps(BALANCE_OK).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-RateLimit: 100\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    server = LocalServer(lambda connection: connection.sendall(head.encode() + body))
    yield server
    server.stop()


@pytest.mark.usefixtures("no_proxy")
@pytest.mark.parametrize("call", [call_balance, call_place_order, call_order_keys])
def test_socket_refused_not_sent(closed_port: int, call: Call) -> None:
    client = ErystaClient(f"http://127.0.0.1:{closed_port}/v1/partners", API_KEY)

    with pytest.raises(NotSentError):
        call(client)


@pytest.mark.usefixtures("no_proxy")
def test_socket_closed_place_order_unknown(closing_server: LocalServer) -> None:
    client = ErystaClient(closing_server.base_url, API_KEY)

    with pytest.raises(OutcomeUnknownError):
        call_place_order(client)

    assert closing_server.connections == 1


@pytest.mark.usefixtures("no_proxy")
@pytest.mark.parametrize("call", [call_balance, call_order_keys])
def test_socket_closed_get_transport(closing_server: LocalServer, call: Call) -> None:
    client = ErystaClient(closing_server.base_url, API_KEY)

    with pytest.raises(TransportError):
        call(client)


@pytest.mark.usefixtures("no_proxy")
def test_socket_silent_place_order_unknown(silent_server: LocalServer) -> None:
    client = ErystaClient(silent_server.base_url, API_KEY, read_timeout_s=0.2)

    with pytest.raises(OutcomeUnknownError):
        call_place_order(client)

    assert silent_server.connections == 1


@pytest.mark.usefixtures("no_proxy")
def test_socket_silent_get_transport(silent_server: LocalServer) -> None:
    client = ErystaClient(silent_server.base_url, API_KEY, read_timeout_s=0.2)

    with pytest.raises(TransportError):
        client.get_balance()


@pytest.mark.usefixtures("no_proxy")
def test_socket_balance_answered(balance_server: LocalServer) -> None:
    with ErystaClient(balance_server.base_url, API_KEY) as client:
        result = client.get_balance()

    assert result.balance.credit_limit == Decimal(10000)
    assert result.meta.rate_limit == 100


class FakeLimiter:
    """A limiter that returns queued waits and records pauses."""

    def __init__(self, *waits: float) -> None:
        self.waits = list(waits)
        self.pauses: list[float] = []

    def acquire(self) -> float:
        return self.waits.pop(0) if self.waits else 0.0

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.mark.parametrize("call", [call_balance, call_place_order, call_order_keys])
def test_throttled_call_not_sent(call: Call) -> None:
    limiter = FakeLimiter(2.5)
    client, transport = make_client(limiter=limiter)

    with pytest.raises(ThrottledError) as raised:
        call(client)

    assert raised.value.retry_after_s == 2.5
    assert raised.value.http_status is None
    assert transport.requests == []


def test_allowed_call_sent() -> None:
    limiter = FakeLimiter(0.0)
    client, transport = make_client(keys_response(), limiter=limiter)

    client.get_order_keys("SE757MKE")

    assert len(transport.requests) == 1
    assert limiter.pauses == []


@pytest.mark.parametrize(("retry_after", "pause"), [("7", 7.0), (None, 10.0)])
def test_429_pauses_limiter(retry_after: str | None, pause: float) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    limiter = FakeLimiter()
    client, _ = make_client(
        make_response(429, failure(429, "Too Many Requests"), headers=headers), limiter=limiter
    )

    with pytest.raises(RateLimitedError):
        client.get_order_keys("SE757MKE")

    assert limiter.pauses == [pause]
