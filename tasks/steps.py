"""Helpers shared by the task modules: due times and supplier-call timeline entries."""

from __future__ import annotations

from typing import Any

from erysta import ErystaError, ResponseMeta
from tasks.runtime import Runtime


def due_at(rt: Runtime, now: float, after_s: float = 0.0) -> float:
    """Return when the reconciler should consider a step due `after_s` from now as lost."""
    return now + after_s + rt.settings.step_grace_s


def throttle_countdown(rt: Runtime, wait_s: float | None) -> float:
    """Return how long a task held back by the shared rate limit waits before it tries again.

    A 429's Retry-After can be long, but no countdown may exceed the longest one the
    settings allow, which stays below half the broker's visibility timeout. A task that
    wakes too early is held back again and waits once more.
    """
    return min(wait_s or 0.0, rt.settings.poll_error_backoff_max_s)


def call_details(endpoint: str, meta: ResponseMeta) -> dict[str, Any]:
    """Timeline details of a successful supplier call."""
    return {
        "endpoint": endpoint,
        "http_status": meta.http_status,
        "trace_id": meta.trace_id,
        "duration_ms": round(meta.duration_ms, 1),
    }


def error_details(endpoint: str, error: ErystaError) -> dict[str, Any]:
    """Timeline details of a failed supplier call; the message is Erysta's or ours, never a key."""
    return {
        "endpoint": endpoint,
        "error": type(error).__name__,
        "http_status": error.http_status,
        "trace_id": error.trace_id,
        "message": error.message,
    }


def summary(reference_id: str, state: str) -> dict[str, str]:
    """Build a task result of ids and a state only, because results are visible in Flower."""
    return {"reference_id": reference_id, "state": state}
