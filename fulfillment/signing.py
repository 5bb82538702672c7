"""Sign and verify webhooks with the Standard Webhooks scheme (https://www.standardwebhooks.com/).

The algorithm, for shops that implement the receiving side in another language:

1. The secret has the form ``whsec_<base64>``. The HMAC key is the base64-decoded part.
2. The signed content is the UTF-8 bytes of ``f"{webhook_id}.{webhook_timestamp}."``
   followed by the raw request body, byte for byte.
3. The signature is ``base64(HMAC-SHA256(key, content))``. The ``webhook-signature``
   header contains one or more space-separated entries of the form ``v1,<signature>``.
4. A receiver accepts the request when any ``v1`` entry equals its own signature (compared
   in constant time) and ``webhook-timestamp``, in Unix seconds, is within its tolerance
   (300 s by default) of its own clock. Entries with another version prefix are ignored.

Headers: ``webhook-id`` (a unique message id, the same on every retry), ``webhook-timestamp``
and ``webhook-signature``. Header names are case-insensitive.
"""

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
SIGNATURE_VERSION = "v1"

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

# Maximum difference in seconds between the webhook timestamp and the receiver's clock.
# Five minutes is the Standard Webhooks default: it allows for clock skew and for the time
# a request spends in transit, and keeps the replay window short.
DEFAULT_TOLERANCE_S = 300

# 32 random bytes give a 256-bit HMAC key, as long as a SHA-256 digest.
SECRET_KEY_BYTES = 32

# Up to 15 digits: Unix seconds stay below that for millions of years, and the bound keeps
# int() away from absurdly long strings.
_TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,15}")


class WebhookVerificationError(Exception):
    """A webhook request whose headers are missing or invalid, or whose signature does not match."""


def generate_secret() -> str:
    """Create a new random secret of the form ``whsec_<base64>``."""
    key = secrets.token_bytes(SECRET_KEY_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key of a ``whsec_<base64>`` secret.

    Raises ValueError if the prefix is missing, the rest is not base64 or the key is empty.
    The message never contains the secret. Missing base64 padding is accepted, because
    other Standard Webhooks libraries accept it too.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"invalid webhook secret: it must start with {SECRET_PREFIX!r}")

    encoded = secret[len(SECRET_PREFIX) :]
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            f"invalid webhook secret: the part after {SECRET_PREFIX!r} is not valid base64"
        ) from exc

    if not key:
        raise ValueError(f"invalid webhook secret: the key after {SECRET_PREFIX!r} is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` header value for one message: ``v1,<base64>``."""
    key = decode_secret(secret)
    return f"{SIGNATURE_VERSION},{_compute_signature(key, msg_id, str(timestamp), body)}"


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the three Standard Webhooks headers for one message."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise WebhookVerificationError unless the headers carry a valid signature of ``body``.

    ``now`` is the receiver's clock in Unix seconds. The timestamp is checked before the
    signature, so a stale request fails on its age even if it was signed correctly.
    Raises ValueError for a malformed secret.
    """
    key = decode_secret(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = _require_header(lowered, ID_HEADER)
    timestamp_text = _require_header(lowered, TIMESTAMP_HEADER)
    signature_text = _require_header(lowered, SIGNATURE_HEADER)

    _check_timestamp(timestamp_text, now=now, tolerance_s=tolerance_s)

    expected = _compute_signature(key, msg_id, timestamp_text, body).encode("ascii")
    if not any(hmac.compare_digest(expected, given) for given in _v1_signatures(signature_text)):
        raise WebhookVerificationError(
            f"invalid {SIGNATURE_HEADER} header: no {SIGNATURE_VERSION} signature matches the body"
        )


def _compute_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _require_header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise WebhookVerificationError(f"missing {name} header")
    return value


def _check_timestamp(timestamp_text: str, *, now: float, tolerance_s: int) -> None:
    if not _TIMESTAMP_PATTERN.fullmatch(timestamp_text):
        raise WebhookVerificationError(
            f"invalid {TIMESTAMP_HEADER} header: expected Unix seconds, got {timestamp_text!r}"
        )

    age_s = now - int(timestamp_text)
    if age_s > tolerance_s:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} is outside the tolerance of {tolerance_s} s: "
            f"the message is {age_s:.0f} s old"
        )
    if -age_s > tolerance_s:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} is outside the tolerance of {tolerance_s} s: "
            f"the message is {-age_s:.0f} s in the future"
        )


def _v1_signatures(header_value: str) -> list[bytes]:
    """Return the signatures of the ``v1`` entries, ignoring entries of other versions."""
    signatures = []
    for entry in header_value.split():
        version, _, signature = entry.partition(",")
        if version == SIGNATURE_VERSION and signature:
            signatures.append(signature.encode("utf-8"))
    return signatures
