"""The Redis cache backend: one Redis shared by every process, so generations hold everywhere."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from restplug.errors import BackendUnavailable, ConfigError

log = logging.getLogger("restplug.cache.redis")

# An outage must fail fast: the cache manager allows each call 0.25 s and then serves a miss.
# A burst beyond ``max_connections`` waits up to ``timeout`` for a free connection rather than
# failing at once (which would count towards opening the circuit breaker).  The URL's query
# (``?socket_timeout=2&max_connections=200``...) overrides these.
DEFAULTS = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
    "max_connections": 100,
    "timeout": 0.5,
}


class RedisCache:
    """``redis://[[user]:password@]host[:port][/db]`` or ``rediss://`` (TLS), through a
    bounded connection pool.  Keys are strings, values bytes; TTLs are kept to the
    millisecond."""

    def __init__(self, url: str) -> None:
        try:
            # One immediate retry: after Redis restarts, a pooled connection is dead once.
            pool = BlockingConnectionPool.from_url(url, retry=Retry(NoBackoff(), 1), **DEFAULTS)
        except ValueError as exc:
            raise ConfigError(f"RESTPLUG_CACHE_URL: {exc}") from None
        self._redis = Redis.from_pool(pool)

    async def open(self) -> None:
        """Check the connection, but start anyway when Redis is down: the cache is fail-open,
        so the service runs uncached until Redis answers."""
        try:
            await self.ping()
        except BackendUnavailable as exc:
            log.warning("%s; serving uncached until it answers", exc)

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        """Raise BackendUnavailable (what the readiness check expects) when Redis is down."""
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise BackendUnavailable(f"redis cache unavailable: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        return await self._redis.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        # MGET without keys is a Redis error, not an empty answer.
        return await self._redis.mget(keys) if keys else []

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._redis.set(key, value, px=milliseconds(ttl))

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await self._redis.set(key, value, px=milliseconds(ttl), nx=True))

    async def delete(self, key: str) -> None:
        await self._redis.delete(key)


def milliseconds(ttl: float) -> int:
    """A TTL for PX, which takes a positive whole number of milliseconds."""
    return max(1, round(ttl * 1000))
