"""A fixed-window rate limiter with the response headers that Erysta documents."""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

RATE_LIMIT_WINDOW_S = 60


@dataclass(frozen=True)
class RateLimitDecision:
    """The outcome of one call: whether it may proceed, and the quota left afterwards."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the full quota is available again
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        """Return the rate-limit headers that Erysta sends on every response."""
        headers = {
            # Erysta spells the capacity header X-RateLimit, without the usual "-Limit".
            "X-RateLimit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


@dataclass
class _Window:
    started_at: float
    calls: int


class FixedWindowRateLimiter:
    """Allow ``limit`` calls per client in each window of ``window_s`` seconds.

    A client's window starts at its first call. Rejected calls do not count, so a client
    that keeps retrying gets through as soon as the window ends.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = RATE_LIMIT_WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def hit(self, client: str) -> RateLimitDecision:
        """Count one call of ``client`` if the quota allows it."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(client)
            if window is None or now >= window.started_at + self.window_s:
                window = _Window(started_at=now, calls=0)
                self._windows[client] = window

            allowed = window.calls < self.limit
            if allowed:
                window.calls += 1

            ends_at = window.started_at + self.window_s
            return RateLimitDecision(
                allowed=allowed,
                limit=self.limit,
                remaining=self.limit - window.calls,
                reset_at=math.ceil(ends_at),
                retry_after_s=max(1, math.ceil(ends_at - now)),
            )

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
