"""Conversion of an Erysta response's HTTP status and rate-limit headers into ``ResponseMeta``.

A missing or non-integer header becomes ``None`` rather than an error.
"""

from __future__ import annotations

import requests
from requests.structures import CaseInsensitiveDict

from erysta.models import ResponseMeta

__all__ = ["http_meta"]


def http_meta(response: requests.Response, duration_ms: float) -> ResponseMeta:
    headers = response.headers
    limit = _header_int(headers, "X-RateLimit")
    if limit is None:
        # Erysta's docs print the capacity header as "X-RateLimit", but accept the usual name.
        limit = _header_int(headers, "X-RateLimit-Limit")
    return ResponseMeta(
        trace_id=None,
        timestamp=None,
        cache=None,
        http_status=response.status_code,
        duration_ms=duration_ms,
        rate_limit=limit,
        rate_limit_remaining=_header_int(headers, "X-RateLimit-Remaining"),
        rate_limit_reset=_header_int(headers, "X-RateLimit-Reset"),
    )


def _header_int(headers: CaseInsensitiveDict[str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
