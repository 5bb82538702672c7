"""Specification of the Standard Webhooks signing in fulfillment.signing."""

import base64
from datetime import UTC, datetime

import pytest
import standardwebhooks

from fulfillment.signing import (
    WebhookVerificationError,
    decode_secret,
    generate_secret,
    sign,
    signature_headers,
    verify,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
MSG_ID = "msg_2Lh7Qz"
BODY = b'{"reference_id":"SHOP-1","status":"COMPLETED"}'
NOW = 1_775_000_000


def test_generate_secret_has_prefix() -> None:
    assert generate_secret().startswith("whsec_")


def test_generate_secret_decodes_to_32_bytes() -> None:
    assert len(decode_secret(generate_secret())) == 32


def test_generate_secret_is_random() -> None:
    assert generate_secret() != generate_secret()


def test_sign_has_v1_prefix() -> None:
    assert sign(SECRET, MSG_ID, NOW, BODY).startswith("v1,")


def test_signature_headers_names_and_values() -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)

    assert headers["webhook-id"] == MSG_ID
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"] == sign(SECRET, MSG_ID, NOW, BODY)


def test_standardwebhooks_accepts_our_headers() -> None:
    # The library checks the timestamp against the real clock, so sign with the current time.
    timestamp = int(datetime.now(UTC).timestamp())
    headers = signature_headers(SECRET, MSG_ID, timestamp, BODY)

    payload = standardwebhooks.Webhook(SECRET).verify(BODY, headers)

    assert payload == {"reference_id": "SHOP-1", "status": "COMPLETED"}


def test_verify_accepts_standardwebhooks_signature() -> None:
    signed_at = datetime.fromtimestamp(NOW, tz=UTC)
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": standardwebhooks.Webhook(SECRET).sign(MSG_ID, signed_at, BODY),
    }

    verify(SECRET, headers, BODY, now=NOW)


def test_verify_accepts_own_headers() -> None:
    verify(SECRET, signature_headers(SECRET, MSG_ID, NOW, BODY), BODY, now=NOW)


def test_verify_header_names_case_insensitive() -> None:
    headers = {
        name.upper(): value for name, value in signature_headers(SECRET, MSG_ID, NOW, BODY).items()
    }

    verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    "extra_entries",
    [
        pytest.param(["v1,AAAA"], id="wrong-entry-first"),
        pytest.param(["v2,whatever"], id="unknown-version-first"),
        pytest.param(["v1,AAAA", "v1a,BBBB"], id="several-others"),
    ],
)
def test_verify_multiple_signatures_any_match(extra_entries: list[str]) -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)
    headers["webhook-signature"] = " ".join([*extra_entries, headers["webhook-signature"]])

    verify(SECRET, headers, BODY, now=NOW)


def test_verify_rotated_secret_either_matches() -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)
    old_entry = sign(OTHER_SECRET, MSG_ID, NOW, BODY)
    headers["webhook-signature"] = f"{old_entry} {headers['webhook-signature']}"

    verify(OTHER_SECRET, headers, BODY, now=NOW)
    verify(SECRET, headers, BODY, now=NOW)


def _tampered(name: str, value: str | None) -> tuple[dict[str, str], bytes]:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)
    if value is None:
        del headers[name]
    else:
        headers[name] = value
    return headers, BODY


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        pytest.param("webhook-id", None, "missing webhook-id header", id="missing-id"),
        pytest.param(
            "webhook-timestamp", None, "missing webhook-timestamp", id="missing-timestamp"
        ),
        pytest.param(
            "webhook-signature", None, "missing webhook-signature", id="missing-signature"
        ),
        pytest.param("webhook-signature", "", "missing webhook-signature", id="empty-signature"),
        pytest.param("webhook-id", "msg_other", "no v1 signature matches", id="other-id"),
        pytest.param("webhook-timestamp", "soon", "invalid webhook-timestamp", id="text-timestamp"),
        pytest.param(
            "webhook-timestamp", "-5", "invalid webhook-timestamp", id="negative-timestamp"
        ),
        pytest.param("webhook-timestamp", str(NOW + 1), "no v1 signature", id="other-timestamp"),
        pytest.param("webhook-signature", "v1,AAAA", "no v1 signature matches", id="bad-signature"),
        pytest.param("webhook-signature", "v2,AAAA", "no v1 signature matches", id="only-v2"),
        pytest.param("webhook-signature", "garbage", "no v1 signature matches", id="no-version"),
    ],
)
def test_verify_rejects_bad_header(header: str, value: str | None, message: str) -> None:
    headers, body = _tampered(header, value)

    with pytest.raises(WebhookVerificationError, match=message):
        verify(SECRET, headers, body, now=NOW)


def test_verify_rejects_changed_body() -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)

    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify(SECRET, headers, BODY + b" ", now=NOW)


def test_verify_rejects_other_secret() -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)

    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify(OTHER_SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("clock_offset_s", "tolerance_s", "accepted"),
    [
        pytest.param(0, 300, True, id="same-second"),
        pytest.param(300, 300, True, id="old-at-limit"),
        pytest.param(-300, 300, True, id="future-at-limit"),
        pytest.param(301, 300, False, id="stale"),
        pytest.param(-301, 300, False, id="future"),
        pytest.param(3600, 300, False, id="hour-old"),
        pytest.param(59, 60, True, id="short-tolerance-fresh"),
        pytest.param(61, 60, False, id="short-tolerance-stale"),
    ],
)
def test_verify_timestamp_tolerance(clock_offset_s: int, tolerance_s: int, accepted: bool) -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)
    now = NOW + clock_offset_s

    if accepted:
        verify(SECRET, headers, BODY, now=now, tolerance_s=tolerance_s)
    else:
        with pytest.raises(WebhookVerificationError, match="outside the tolerance"):
            verify(SECRET, headers, BODY, now=now, tolerance_s=tolerance_s)


@pytest.mark.parametrize(
    ("clock_offset_s", "message"),
    [
        pytest.param(400, "400 s old", id="stale"),
        pytest.param(-400, "400 s in the future", id="future"),
    ],
)
def test_verify_timestamp_message_says_direction(clock_offset_s: int, message: str) -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)

    with pytest.raises(WebhookVerificationError, match=message):
        verify(SECRET, headers, BODY, now=NOW + clock_offset_s)


def test_verify_error_never_contains_secret() -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)
    headers["webhook-signature"] = "v1,AAAA"

    with pytest.raises(WebhookVerificationError) as excinfo:
        verify(SECRET, headers, BODY, now=NOW)

    assert SECRET.removeprefix("whsec_") not in str(excinfo.value)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        pytest.param("c2VjcmV0LWtleQ==", "must start with 'whsec_'", id="no-prefix"),
        pytest.param("whsec_", "is empty", id="empty-key"),
        pytest.param("whsec_not*base64!", "not valid base64", id="not-base64"),
    ],
)
def test_malformed_secret_raises_value_error(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sign(secret, MSG_ID, NOW, BODY)


@pytest.mark.parametrize("secret", ["c2VjcmV0LWtleQ==", "whsec_not*base64!"])
def test_malformed_secret_message_hides_secret(secret: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        sign(secret, MSG_ID, NOW, BODY)

    assert secret.removeprefix("whsec_") not in str(excinfo.value)


def test_malformed_secret_rejected_by_verify() -> None:
    headers = signature_headers(SECRET, MSG_ID, NOW, BODY)

    with pytest.raises(ValueError, match="must start with 'whsec_'"):
        verify("not-a-secret", headers, BODY, now=NOW)


def test_unpadded_secret_accepted() -> None:
    padded = "whsec_" + base64.b64encode(b"12345").decode()
    unpadded = padded.rstrip("=")

    assert sign(unpadded, MSG_ID, NOW, BODY) == sign(padded, MSG_ID, NOW, BODY)
