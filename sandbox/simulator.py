"""An HTTP simulator of the Erysta partner API, with admin endpoints to inject faults.

API endpoints, under ``/v1/partners``, each requiring an ``x-api-key`` header:

- ``GET /balance``
- ``POST /place-order``
- ``GET /orders/{id}/keys``

Admin endpoints, under ``/_sandbox``, without an API key:

- ``POST /faults`` arms a fault, ``GET /faults`` lists the armed ones, ``DELETE /faults``
  clears them. The body is ``{"endpoint": "place-order" | "keys" | "balance", "fault":
  <name>, "count": 1, "delay_s": 2.0, "retry_after_s": 1}``. Fault names are in
  sandbox.faults.Fault. ``unknown_status`` is valid only with ``"endpoint": "keys"``.
- ``GET /orders?reference_id=X`` lists the orders placed with that reference. ``GET /orders``
  returns the order count of every reference.
- ``GET /stats`` returns request counts per endpoint and status.
- ``POST /account`` sets ``balance`` and ``credit_limit`` (decimal strings or numbers).
- ``POST /reset`` restores the configured account and stock, and clears orders, faults,
  rate-limit windows and request counts.

Status codes of the API errors are listed in sandbox.status_codes.
"""

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from sandbox import status_codes
from sandbox.admin import ADMIN_ENDPOINTS
from sandbox.config import SimulatorConfig
from sandbox.faults import Endpoint, Fault, FaultPlan
from sandbox.http import (
    HttpError,
    JsonRequestHandler,
    RunningServer,
    TrackingHTTPServer,
    encode_json,
    serve_until_stopped,
    utc_timestamp,
)
from sandbox.orders import parse_order_request, undocumented_status_data
from sandbox.state import SimulatorState

__all__ = [
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorHandler",
    "serve_simulator",
    "start_simulator",
]

logger = logging.getLogger(__name__)

API_PREFIX = "/v1/partners"
ADMIN_PREFIX = "/_sandbox"
API_KEY_HEADER = "x-api-key"
# Statistics key for API requests to a path that matches no endpoint.
UNKNOWN_ENDPOINT = "unknown"

_KEYS_PATH = re.compile(r"/orders/(?P<order_id>[^/]+)/keys")
_API_METHODS = {
    Endpoint.BALANCE: "GET",
    Endpoint.PLACE_ORDER: "POST",
    Endpoint.KEYS: "GET",
}


class RunningSimulator(RunningServer):
    """A running simulator. ``state`` allows tests to inspect it in-process."""

    def __init__(self, server: TrackingHTTPServer, state: SimulatorState) -> None:
        super().__init__(server, name="erysta-simulator")
        self.state = state
        self.base_url = self.url + API_PREFIX


def start_simulator(
    config: SimulatorConfig = SimulatorConfig(),  # noqa: B008 - frozen, so sharing it is safe
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningSimulator:
    """Start a simulator in a daemon thread. Port 0 picks a free port."""
    state = SimulatorState(config)
    handler = functools.partial(SimulatorHandler, state=state)
    return RunningSimulator(TrackingHTTPServer((host, port), handler), state)


def serve_simulator(config: SimulatorConfig, host: str, port: int) -> None:
    """Run a simulator until Ctrl-C or SIGTERM."""
    serve_until_stopped(start_simulator(config, host, port))


class SimulatorHandler(JsonRequestHandler):
    """Handle one connection to the simulator."""

    server_version = "erysta-simulator"

    def __init__(self, *args: Any, state: SimulatorState) -> None:
        # BaseHTTPRequestHandler serves the request inside __init__, so set state first.
        self.state = state
        self.is_api_request = False
        self.rate_limit_headers: dict[str, str] = {}
        super().__init__(*args)

    def begin_request(self) -> None:
        # One handler serves every request of a keep-alive connection, so reset per request.
        self.is_api_request = self.url_parts.path.startswith(API_PREFIX + "/")
        self.rate_limit_headers = {}

    def route(self, method: str) -> None:
        path = self.url_parts.path
        if self.is_api_request:
            self._route_api(method, path.removeprefix(API_PREFIX))
        elif path.startswith(ADMIN_PREFIX + "/"):
            self._route_admin(method, path.removeprefix(ADMIN_PREFIX))
        else:
            raise HttpError(status_codes.UNKNOWN_ENDPOINT, f"no endpoint at {path}")

    # API endpoints

    def end_request(self, method: str, outcome: str) -> None:
        if self.is_api_request:
            endpoint, _ = _match_endpoint(self.url_parts.path.removeprefix(API_PREFIX))
            self.state.count_request(str(endpoint or UNKNOWN_ENDPOINT), outcome)

    def _route_api(self, method: str, subpath: str) -> None:
        endpoint, order_id = _match_endpoint(subpath)
        # NOTE: a 401 carries no rate-limit headers, because the limit is counted per API key.
        # Erysta does not document whether it counts rejected calls, or by which key.
        api_key = self._authenticate()

        decision = self.state.rate_limiter.hit(api_key)
        self.rate_limit_headers = decision.headers()
        if not decision.allowed:
            self._send_too_many_requests(decision.retry_after_s)
            return

        if endpoint is None:
            raise HttpError(status_codes.UNKNOWN_ENDPOINT, f"no endpoint at {self.url_parts.path}")
        if method != _API_METHODS[endpoint]:
            raise HttpError(
                status_codes.METHOD_NOT_ALLOWED,
                f"{method} is not allowed on {self.url_parts.path}, use {_API_METHODS[endpoint]}",
            )

        plan = self.state.faults.take(endpoint)
        if plan is not None:
            logger.info("injecting fault %s into %s", plan.fault, endpoint)
        work = self._api_work(endpoint, api_key, order_id, plan)
        self._respond(plan, work)

    def _authenticate(self) -> str:
        api_key = self.headers.get(API_KEY_HEADER)
        if not api_key:
            raise HttpError(status_codes.MISSING_API_KEY, f"missing {API_KEY_HEADER} header")
        if api_key not in self.state.config.api_keys:
            # The message leaves out the key, because a rejected key may still be a secret.
            raise HttpError(
                status_codes.UNKNOWN_API_KEY,
                f"invalid {API_KEY_HEADER}: use one of the keys in SimulatorConfig.api_keys",
            )
        return api_key

    def _api_work(
        self, endpoint: Endpoint, api_key: str, order_id: str, plan: FaultPlan | None
    ) -> Callable[[], dict[str, Any]]:
        if endpoint is Endpoint.BALANCE:
            return self.state.balance_data
        if endpoint is Endpoint.KEYS:
            if plan is not None and plan.fault is Fault.UNKNOWN_STATUS:
                return functools.partial(self._read_order_undocumented, api_key, order_id)
            return functools.partial(self.state.poll_order, api_key, order_id)

        def place_order() -> dict[str, Any]:
            request = parse_order_request(self.read_json())
            order = self.state.place_order(api_key, request)
            logger.info("placed order %s reference_id=%s", order.id, order.reference_id)
            return {"id": order.id}

        return place_order

    def _read_order_undocumented(self, api_key: str, order_id: str) -> dict[str, Any]:
        """Read an order for the unknown_status fault, without advancing it.

        Raises HttpError 404 for an unknown order or one that another API key placed, as
        SimulatorState.poll_order does.
        """
        # TODO: move this into SimulatorState next to poll_order, which owns the lock and
        # does the same lookup.
        state = self.state
        with state._lock:
            order = state.orders.get(order_id)
            if order is None or order.api_key != api_key:
                raise HttpError(status_codes.ORDER_NOT_FOUND, f"order {order_id!r} not found")
            return undocumented_status_data(order, state.balance, state.credit_limit)

    def _respond(self, plan: FaultPlan | None, work: Callable[[], dict[str, Any]]) -> None:
        """Do the endpoint's work and respond, with the injected fault if there is one."""
        if plan is not None and plan.fault.runs_before_work:
            self._send_early_fault(plan)
            return

        data = work()
        # For unknown_status, _api_work already swapped the work, so the data goes out as usual.
        if plan is None or plan.fault is Fault.UNKNOWN_STATUS:
            self._send_success(data)
        elif plan.fault is Fault.SERVER_ERROR_AFTER_CREATE:
            self.send_error_response(status_codes.SERVER_ERROR, "Internal Server Error")
        elif plan.fault is Fault.DROP_AFTER_CREATE:
            self.drop_connection()
        elif plan.fault is Fault.SLOW:
            time.sleep(plan.delay_s)
            self._send_success(data)
        elif plan.fault is Fault.MALFORMED_JSON:
            body = self._success_body(data)
            truncated = body[: len(body) // 2]
            self.send_raw(HTTPStatus.OK, truncated, "application/json", self.rate_limit_headers)

    def _send_early_fault(self, plan: FaultPlan) -> None:
        if plan.fault is Fault.SERVER_ERROR:
            self.send_error_response(status_codes.SERVER_ERROR, "Internal Server Error")
        elif plan.fault is Fault.DROP:
            self.drop_connection()
        elif plan.fault is Fault.RATE_LIMITED:
            self._send_too_many_requests(plan.retry_after_s)
        elif plan.fault is Fault.NOT_FOUND:
            status = status_codes.INJECTED_NOT_FOUND
            self.send_error_response(status, status.phrase)
        elif plan.fault is Fault.UNAUTHORIZED:
            status = status_codes.INJECTED_UNAUTHORIZED
            self.send_error_response(status, status.phrase)

    def _success_body(self, data: dict[str, Any]) -> bytes:
        envelope = {
            "status": HTTPStatus.OK.value,
            "success": True,
            "details": {
                "data": data,
                "extensions": {
                    "cache": "no-store",
                    "trace_id": str(uuid.uuid4()),
                    "timestamp": utc_timestamp(),
                },
            },
        }
        return encode_json(envelope)

    def _send_success(self, data: dict[str, Any]) -> None:
        body = self._success_body(data)
        self.send_raw(HTTPStatus.OK, body, "application/json", self.rate_limit_headers)

    def _send_too_many_requests(self, retry_after_s: int) -> None:
        # Erysta documents this exact body, with the message "Too Many Requests".
        headers = {**self.rate_limit_headers, "Retry-After": str(retry_after_s)}
        self.rate_limit_headers = headers
        self.send_error_response(status_codes.RATE_LIMITED, "Too Many Requests")

    def send_error_response(self, status: int, message: str) -> None:
        if not self.is_api_request:
            super().send_error_response(status, message)
            return
        envelope = {
            "status": status,
            "success": False,
            "error": {"message": message, "timestamp": utc_timestamp()},
        }
        self.send_raw(status, encode_json(envelope), "application/json", self.rate_limit_headers)

    # Admin endpoints

    def _route_admin(self, method: str, subpath: str) -> None:
        route = ADMIN_ENDPOINTS.get((method, subpath))
        if route is None:
            raise HttpError(
                status_codes.UNKNOWN_ENDPOINT, f"no endpoint {method} {ADMIN_PREFIX}{subpath}"
            )

        endpoint, reads_body = route
        body = self.read_json() if reads_body else None
        self.send_json(HTTPStatus.OK, endpoint(self.state, self.url_parts.query, body))


def _match_endpoint(subpath: str) -> tuple[Endpoint | None, str]:
    """Return the endpoint of a path under API_PREFIX and the order id of a keys path."""
    if subpath == "/balance":
        return Endpoint.BALANCE, ""
    if subpath == "/place-order":
        return Endpoint.PLACE_ORDER, ""
    match = _KEYS_PATH.fullmatch(subpath)
    if match:
        return Endpoint.KEYS, match["order_id"]
    return None, ""
