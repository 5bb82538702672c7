"""Image key checks: data URLs, links, types, sizes; messages never carry the value."""

from __future__ import annotations

import base64

import pytest

from fulfillment.images import image_key_problem

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 16


def data_url(media_type: str, content: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(content).decode()}"


@pytest.mark.parametrize(
    "value",
    [
        data_url("image/png", PNG),
        data_url("image/jpeg", JPEG),
        data_url("image/gif", b"GIF89a" + b"\x00" * 10),
        data_url("image/webp", WEBP),
        "https://cdn.example/vouchers/abc.png",
    ],
)
def test_valid_image_key_accepted(value: str) -> None:
    assert image_key_problem(value, max_bytes=1024) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("data:image/png;base64" + "AAAA", "no comma"),
        ("data:image/png," + "plain", "not base64-encoded"),
        (data_url("image/svg+xml", b"<svg/>"), "not an allowed image type"),
        (data_url("text/html", b"<b>"), "not an allowed image type"),
        ("data:image/png;base64,@@@@", "does not decode"),
        (data_url("image/png", JPEG), "not a image/png image"),
        (data_url("image/jpeg", PNG), "not a image/jpeg image"),
        (
            data_url("image/webp", b"RIFF\x00\x00\x00\x00AVI " + b"\x00" * 8),
            "not a image/webp",
        ),
        (data_url("image/png", PNG + b"\x00" * 2000), "larger than 1024 bytes"),
        ("http://cdn.example/a.png", "scheme 'http' is not allowed"),
        ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
        ("ABCDE-FGHIJ", "neither a data URL nor an https link"),
    ],
)
def test_invalid_image_key_described(value: str, problem: str) -> None:
    description = image_key_problem(value, max_bytes=1024)

    assert description is not None
    assert problem in description
    assert value not in description
