"""A rate limit shared by every worker on every host: a token bucket in Redis.

Erysta allows a fixed number of calls a minute per account. Celery's own `rate_limit`
counts per worker, so it cannot keep several workers under one limit; this bucket lives
in Redis, which every worker shares. A 429 from Erysta pauses the bucket for the
`Retry-After` delay, so every worker waits, not just the one that was refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis

# KEYS: bucket hash, pause key. ARGV: now, capacity, tokens per second.
# Returns "0" when a token was taken, else the seconds until one is available.
_ACQUIRE_SCRIPT = """
local now = tonumber(ARGV[1])
local paused_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused_until > now then
  return tostring(paused_until - now)
end
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[2])
local updated_at = tonumber(redis.call('HGET', KEYS[1], 'updated_at') or ARGV[1])
tokens = math.min(capacity, tokens + math.max(0, now - updated_at) * rate)
local wait = '0'
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = tostring((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated_at', ARGV[1])
redis.call('EXPIRE', KEYS[1], 3600)
return wait
"""

# KEYS: pause key. ARGV: the time until which calls pause. Keeps the later of the two.
_PAUSE_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', math.ceil(tonumber(ARGV[2])) + 60)
end
return 0
"""


class RateLimiter(Protocol):
    def acquire(self) -> float:
        """Take one call from the limit; return 0, or the seconds to wait for one."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold every call back for `seconds`."""
        ...


class RedisTokenBucket:
    """Allows `calls_per_minute` calls a minute on average, in bursts of at most `burst`."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        calls_per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if calls_per_minute < 1 or burst < 1:
            raise ValueError(
                f"calls_per_minute={calls_per_minute} and burst={burst} must both be 1 or more"
            )
        self._bucket_key = f"{key}:bucket"
        self._pause_key = f"{key}:paused-until"
        self._capacity = burst
        self._rate_per_s = calls_per_minute / 60.0
        self._clock = clock
        self._acquire = client.register_script(_ACQUIRE_SCRIPT)
        self._pause = client.register_script(_PAUSE_SCRIPT)

    def acquire(self) -> float:
        now = self._clock()
        wait = self._acquire(
            keys=[self._bucket_key, self._pause_key],
            args=[repr(now), self._capacity, repr(self._rate_per_s)],
        )
        return float(wait)

    def pause(self, seconds: float) -> None:
        until = self._clock() + seconds
        self._pause(keys=[self._pause_key], args=[repr(until), repr(seconds)])
