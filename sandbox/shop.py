"""A demo shop that receives the signed webhooks of the workers and records the deliveries.

Endpoints:

- ``POST /webhooks/erysta`` verifies the Standard Webhooks signature and records the JSON
  payload: 204 when accepted, 401 for a missing or invalid signature, 400 for a body that is
  not a JSON object. A repeated ``webhook-id`` gets 204 again but is counted as a duplicate
  and not recorded twice.
- ``GET /deliveries`` returns ``{"deliveries": [...], "duplicates": {webhook_id: count},
  "rejected": n}``. Each delivery is ``{"webhook_id", "received_at", "payload"}``.
- ``GET /deliveries/{reference_id}`` returns the deliveries whose payload has that
  ``reference_id``, or 404 if there are none.
- ``POST /_shop/fail`` with ``{"count": n, "status": 503}`` makes the next n webhook
  requests fail with that status, as if the shop were down. ``POST /_shop/reset`` clears
  all deliveries, counts and injected failures.
"""

import functools
import logging
import threading
import time
from collections import Counter
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from fulfillment.signing import DEFAULT_TOLERANCE_S, WebhookVerificationError, decode_secret, verify
from sandbox.http import (
    HttpError,
    JsonRequestHandler,
    RunningServer,
    TrackingHTTPServer,
    serve_until_stopped,
    utc_timestamp,
)

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/erysta"
DELIVERIES_PATH = "/deliveries"
# Default status of POST /_shop/fail: what a shop behind a load balancer returns when down.
DEFAULT_FAILURE_STATUS = HTTPStatus.SERVICE_UNAVAILABLE


class ShopState:
    """Deliveries, duplicates, rejections and injected failures, safe for concurrent requests."""

    def __init__(self, secret: str, tolerance_s: int) -> None:
        self.secret = secret
        self.tolerance_s = tolerance_s
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.deliveries: list[dict[str, Any]] = []
            self.duplicates: Counter[str] = Counter()
            self.rejected = 0
            self._seen_ids: set[str] = set()
            self._failures_left = 0
            self._failure_status = int(DEFAULT_FAILURE_STATUS)

    def fail_next(self, count: int, status: int) -> None:
        with self._lock:
            self._failures_left = count
            self._failure_status = status

    def take_failure(self) -> int | None:
        """Return the status for an injected failure and use it up, or None."""
        with self._lock:
            if self._failures_left <= 0:
                return None
            self._failures_left -= 1
            return self._failure_status

    def count_rejection(self) -> None:
        with self._lock:
            self.rejected += 1

    def record(self, webhook_id: str, payload: dict[str, Any]) -> bool:
        """Record a delivery. Returns False, and counts a duplicate, for a known webhook id."""
        with self._lock:
            if webhook_id in self._seen_ids:
                self.duplicates[webhook_id] += 1
                return False
            self._seen_ids.add(webhook_id)
            self.deliveries.append(
                {"webhook_id": webhook_id, "received_at": utc_timestamp(), "payload": payload}
            )
            return True

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "deliveries": list(self.deliveries),
                "duplicates": dict(self.duplicates),
                "rejected": self.rejected,
            }

    def deliveries_for(self, reference_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [d for d in self.deliveries if d["payload"].get("reference_id") == reference_id]


class RunningShop(RunningServer):
    """A running demo shop. ``state`` allows tests to inspect it in-process."""

    def __init__(self, server: TrackingHTTPServer, state: ShopState) -> None:
        super().__init__(server, name="demo-shop")
        self.state = state
        self.webhook_url = self.url + WEBHOOK_PATH


def start_shop(
    secret: str, host: str = "127.0.0.1", port: int = 0, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> RunningShop:
    """Start a shop in a daemon thread. Port 0 picks a free port.

    Raises ValueError for a malformed secret, so that a bad setting fails at start-up.
    """
    decode_secret(secret)
    state = ShopState(secret, tolerance_s)
    handler = functools.partial(ShopHandler, state=state)
    return RunningShop(TrackingHTTPServer((host, port), handler), state)


def serve_shop(secret: str, host: str, port: int, tolerance_s: int = DEFAULT_TOLERANCE_S) -> None:
    """Run a shop until Ctrl-C or SIGTERM."""
    serve_until_stopped(start_shop(secret, host, port, tolerance_s))


class ShopHandler(JsonRequestHandler):
    """Handle one connection to the shop."""

    server_version = "demo-shop"

    def __init__(self, *args: Any, state: ShopState) -> None:
        # BaseHTTPRequestHandler serves the request inside __init__, so set state first.
        self.state = state
        super().__init__(*args)

    def route(self, method: str) -> None:
        path = self.url_parts.path
        if (method, path) == ("POST", WEBHOOK_PATH):
            self._receive_webhook()
        elif (method, path) == ("GET", DELIVERIES_PATH):
            self.send_json(HTTPStatus.OK, self.state.summary())
        elif method == "GET" and path.startswith(DELIVERIES_PATH + "/"):
            self._send_deliveries_for(unquote(path.removeprefix(DELIVERIES_PATH + "/")))
        elif (method, path) == ("POST", "/_shop/fail"):
            self._arm_failures()
        elif (method, path) == ("POST", "/_shop/reset"):
            self.state.reset()
            self.send_json(HTTPStatus.OK, {"reset": True})
        else:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no endpoint {method} {path}")

    def _receive_webhook(self) -> None:
        failure_status = self.state.take_failure()
        if failure_status is not None:
            raise HttpError(failure_status, "the shop is unavailable (injected failure)")

        try:
            verify(
                self.state.secret,
                dict(self.headers.items()),
                self.body,
                now=time.time(),
                tolerance_s=self.state.tolerance_s,
            )
        except WebhookVerificationError as exc:
            self.state.count_rejection()
            logger.warning("rejected webhook: %s", exc)
            raise HttpError(HTTPStatus.UNAUTHORIZED, str(exc)) from None

        payload = self._read_payload()
        webhook_id = self.headers["webhook-id"].strip()
        if self.state.record(webhook_id, payload):
            logger.info(
                "recorded webhook %s reference_id=%s", webhook_id, payload.get("reference_id")
            )
        else:
            logger.info("duplicate webhook %s acknowledged", webhook_id)
        self.send_raw(HTTPStatus.NO_CONTENT, b"")

    def _read_payload(self) -> dict[str, Any]:
        try:
            payload = self.read_json()
        except HttpError:
            self.state.count_rejection()
            raise
        if not isinstance(payload, dict):
            self.state.count_rejection()
            raise HttpError(HTTPStatus.BAD_REQUEST, "the webhook body must be a JSON object")
        return payload

    def _send_deliveries_for(self, reference_id: str) -> None:
        deliveries = self.state.deliveries_for(reference_id)
        if not deliveries:
            raise HttpError(
                HTTPStatus.NOT_FOUND, f"no deliveries for reference_id {reference_id!r}"
            )
        self.send_json(HTTPStatus.OK, {"reference_id": reference_id, "deliveries": deliveries})

    def _arm_failures(self) -> None:
        body = self.read_json()
        if not isinstance(body, dict):
            raise HttpError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")

        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"count must be an integer >= 0, got {count!r}")
        status = body.get("status", int(DEFAULT_FAILURE_STATUS))
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise HttpError(
                HTTPStatus.BAD_REQUEST, f"status must be an HTTP error code 400-599, got {status!r}"
            )

        self.state.fail_next(count, status)
        self.send_json(HTTPStatus.OK, {"failing": count, "status": status})
