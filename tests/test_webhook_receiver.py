"""A receiver written only from the README's description verifies real deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests

from fulfillment.signing import generate_secret
from fulfillment.sinks import WebhookSink

# Five minutes, the tolerance the README documents.
TOLERANCE_S = 300


def readme_verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """The README's four steps, with nothing but the standard library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    entries = headers["webhook-signature"].split(" ")
    matches = any(
        hmac.compare_digest(entry.partition(",")[2], expected)
        for entry in entries
        if entry.startswith("v1,")
    )
    fresh = abs(now - int(headers["webhook-timestamp"])) <= TOLERANCE_S
    return matches and fresh


class Capture(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        Capture.received.append((headers, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Capture.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def deliver(url: str, secret: str, payload: dict[str, object]) -> tuple[dict[str, str], bytes]:
    sink = WebhookSink(url, secret, timeout_s=5, session=requests.Session(), clock=time.time)
    sink.deliver(payload, message_id="msg_readme")
    return Capture.received[-1]


def test_readme_receiver_accepts_delivery(receiver: str) -> None:
    secret = generate_secret()

    headers, body = deliver(receiver, secret, {"reference_id": "R-1", "outcome": "FULFILLED"})

    assert readme_verify(secret, headers, body, now=time.time())
    assert json.loads(body)["reference_id"] == "R-1"
    assert headers["webhook-id"] == "msg_readme"


def test_readme_receiver_rejects_tampering(receiver: str) -> None:
    secret = generate_secret()
    headers, body = deliver(receiver, secret, {"reference_id": "R-1"})

    assert not readme_verify(secret, headers, body.replace(b"R-1", b"R-2"), now=time.time())
    assert not readme_verify(generate_secret(), headers, body, now=time.time())


def test_readme_receiver_rejects_replay(receiver: str) -> None:
    secret = generate_secret()
    headers, body = deliver(receiver, secret, {"reference_id": "R-1"})

    assert not readme_verify(secret, headers, body, now=time.time() + TOLERANCE_S + 60)
