"""Checks of image keys before they are delivered.

Erysta's documentation describes image keys as base64 data URLs (for QR codes and
scanned vouchers), and one page speaks of "image links". A data URL is accepted when it
decodes, names an allowed image type, starts with that type's magic bytes, and stays
under the size limit. An `https://` link is accepted as it is, because the shop can
fetch it. Any other link or scheme is rejected, because a shop cannot safely show it.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

# Magic bytes that start a file of each accepted image type.
IMAGE_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def image_key_problem(value: str, *, max_bytes: int) -> str | None:
    """Return why an image key cannot be delivered as it is, or None when it can.

    The description never contains the key's value.
    """
    if value.startswith("data:"):
        return _data_url_problem(value, max_bytes=max_bytes)
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme:
        return f"a link with scheme {parts.scheme!r} is not allowed; only https links are"
    return "it is neither a data URL nor an https link"


def _data_url_problem(value: str, *, max_bytes: int) -> str | None:
    header, separator, data = value[len("data:") :].partition(",")
    if not separator:
        return "the data URL has no comma before its data"
    media_type, _, encoding = header.partition(";")
    if encoding != "base64":
        return "the data URL is not base64-encoded"
    if media_type not in IMAGE_SIGNATURES:
        allowed = ", ".join(sorted(IMAGE_SIGNATURES))
        return f"type {media_type!r} is not an allowed image type ({allowed})"
    if len(data) * 3 // 4 > max_bytes:
        return f"the image is larger than {max_bytes} bytes (IMAGE_KEY_MAX_BYTES)"
    return _content_problem(media_type, data)


def _content_problem(media_type: str, data: str) -> str | None:
    """Check that the base64 `data` decodes to an image of `media_type`."""
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "the base64 data does not decode"
    matches = content.startswith(IMAGE_SIGNATURES[media_type])
    if media_type == "image/webp":
        matches = matches and content[8:12] == b"WEBP"
    return None if matches else f"the bytes are not a {media_type} image"
