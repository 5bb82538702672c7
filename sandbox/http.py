"""A small JSON-over-HTTP server base shared by the simulator and the demo shop.

It uses the standard library's ThreadingHTTPServer so that the simulator has full control
of the socket, e.g. to close a connection without sending a response.
"""

import contextlib
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Self
from urllib.parse import SplitResult, urlsplit

logger = logging.getLogger(__name__)

# Upper bound for request bodies. Real requests are a few hundred bytes.
MAX_BODY_BYTES = 1024 * 1024
# Seconds an idle keep-alive connection stays open, so that handler threads end on their own.
IDLE_CONNECTION_TIMEOUT_S = 60
# Seconds that stop() waits for the serving thread to finish.
STOP_TIMEOUT_S = 10
# How often in seconds the serving thread checks for a stop request. stop() waits up to
# this long, so it is short to keep test teardown fast. The check costs little.
SHUTDOWN_POLL_INTERVAL_S = 0.02


class HttpError(Exception):
    """An error response to send: the HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def utc_timestamp(moment: datetime | None = None) -> str:
    """Return a UTC time in ISO 8601 with milliseconds and a Z, e.g. 2026-03-09T15:30:00.000Z."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_json(payload: object) -> bytes:
    """Return compact JSON bytes."""
    return json.dumps(payload, separators=(",", ":")).encode()


class TrackingHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that can close its open connections when it stops.

    Handler threads are daemon threads and block on idle keep-alive connections, so stop()
    shuts those sockets down to let the threads end instead of waiting for the clients.
    """

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: Callable[..., BaseHTTPRequestHandler]
    ) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # OSError means that the client has closed the connection already.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class RunningServer:
    """A server that serves requests in a daemon thread until stop() is called."""

    def __init__(self, server: TrackingHTTPServer, name: str) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{_url_host(str(host))}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_INTERVAL_S},
            name=name,
            daemon=True,
        )
        self._thread.start()
        logger.info("%s listening on %s", name, self.url)

    def stop(self) -> None:
        """Stop serving, close the listening socket and open connections, join the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=STOP_TIMEOUT_S)
        logger.info("%s on %s stopped", self._thread.name, self.url)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve_until_stopped(running: RunningServer) -> None:
    """Block until Ctrl-C or SIGTERM, then stop the server.

    The SIGTERM handler is installed only when called from the main thread, because Python
    allows signal handlers nowhere else.
    """
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGTERM, request_stop)
    try:
        # A timeout lets KeyboardInterrupt through on every platform.
        while not stop_requested.wait(timeout=0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


class JsonRequestHandler(BaseHTTPRequestHandler):
    """Read the whole request, call route(), and log one line per request.

    Subclasses implement route() and respond with send_json(), send_raw() or
    drop_connection(). An HttpError raised by route() becomes send_error_response().
    """

    protocol_version = "HTTP/1.1"
    sys_version = ""  # keep the Python version out of the Server header
    timeout = IDLE_CONNECTION_TIMEOUT_S

    body: bytes
    url_parts: SplitResult
    response_status: int | None

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def begin_request(self) -> None:
        """Reset per-request attributes. Called before the body is read."""

    def route(self, method: str) -> None:
        raise NotImplementedError

    def end_request(self, method: str, outcome: str) -> None:
        """Record the outcome of a request: its status code, or "dropped"."""

    def send_error_response(self, status: int, message: str) -> None:
        self.send_json(status, {"error": message})

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        self.response_status = None
        self.url_parts = urlsplit(self.path)
        self.begin_request()
        try:
            self.body = self._read_body()
            self.route(method)
        except HttpError as error:
            self.send_error_response(error.status, error.message)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away, e.g. after its timeout expired during a slow fault.
            self.close_connection = True
            logger.info("%s %s: the client closed the connection", method, self.url_parts.path)
        except Exception:
            logger.exception("%s %s failed", method, self.url_parts.path)
            if self.response_status is None:
                self.send_error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

        duration_ms = (time.monotonic() - started) * 1000
        outcome = str(self.response_status) if self.response_status is not None else "dropped"
        self.end_request(method, outcome)
        logger.info("%s %s %s %.1f ms", method, self.url_parts.path, outcome, duration_ms)

    def _read_body(self) -> bytes:
        length_text = self.headers.get("Content-Length", "0")
        try:
            length = int(length_text)
        except ValueError:
            self.close_connection = True
            raise HttpError(
                HTTPStatus.BAD_REQUEST, f"invalid Content-Length header: {length_text!r}"
            ) from None
        if length > MAX_BODY_BYTES:
            # The unread body would be parsed as the next request, so close the connection.
            self.close_connection = True
            raise HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request body must be at most {MAX_BODY_BYTES} bytes",
            )
        return self.rfile.read(length) if length > 0 else b""

    def read_json(self) -> Any:
        """Return the parsed request body. Raises HttpError 400 if it is not valid JSON."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HttpError(
                HTTPStatus.BAD_REQUEST, f"the request body is not valid JSON: {exc}"
            ) from None

    def send_json(
        self, status: int, payload: object, headers: dict[str, str] | None = None
    ) -> None:
        self.send_raw(status, encode_json(payload), "application/json", headers)

    def send_raw(
        self,
        status: int,
        body: bytes,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.response_status = status
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def drop_connection(self) -> None:
        """Close the TCP connection without sending a response."""
        self.close_connection = True
        # OSError means that the client has closed the connection already.
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log. _handle() logs each request instead."""
