"""Fixed-window request counters: in this process's memory, or in Redis shared by all.

``hit(key, period)`` counts one request against ``key`` and answers ``(count, reset)``: how
many requests the current window has seen, this one included, and the seconds until the
window ends.  A window starts with its first request and lasts ``period`` seconds.
"""

from __future__ import annotations

import time
from typing import Protocol

from restplug.redis import connect, ping

# INCR and the window's expiry in one script: Redis runs it atomically, so any number of
# processes share one count exactly, and the window is timed by Redis's clock alone.  A key
# without an expiry (its first request, or an expiry lost) gets one.
HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class Counters(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def hit(self, key: str, period: int) -> tuple[int, float]: ...


class MemoryCounters:
    """``memory://``: counts in this process; each process (worker) has budgets of its own."""

    # Ended windows are dropped at most this often, so idle clients cost no memory for long.
    SWEEP_EVERY = 60.0

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._next_sweep = 0.0

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        self._windows.clear()

    async def hit(self, key: str, period: int) -> tuple[int, float]:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            self._next_sweep = now + self.SWEEP_EVERY
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + period
        self._windows[key] = (count + 1, ends)
        return count + 1, ends - now


class RedisCounters:
    """``redis://`` or ``rediss://``: one count per key for every process using the database."""

    def __init__(self, url: str) -> None:
        self._redis = connect(url, "RESTPLUG_RATELIMIT_URL")
        self._hit = self._redis.register_script(HIT)

    async def open(self) -> None:
        """Check the connection: raises BackendUnavailable when Redis is down (the limiter
        starts anyway, fail-open)."""
        await ping(self._redis, "rate limit redis")

    async def close(self) -> None:
        await self._redis.aclose()

    async def hit(self, key: str, period: int) -> tuple[int, float]:
        count, ttl = await self._hit(keys=[key], args=[period * 1000])
        return int(count), int(ttl) / 1000
