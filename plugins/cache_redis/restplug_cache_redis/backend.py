"""The Redis cache backend: one Redis shared by every process, so generations hold everywhere."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from restplug.errors import BackendUnavailable
from restplug.redis import connect, ping

log = logging.getLogger("restplug.cache.redis")


class RedisCache:
    """``redis://[[user]:password@]host[:port][/db]`` or ``rediss://`` (TLS), through
    :func:`restplug.redis.connect`.  Keys are strings, values bytes; TTLs are kept to the
    millisecond."""

    #: One Redis serves every worker of ``restplug serve --workers N``.
    shared = True

    def __init__(self, url: str) -> None:
        self._redis = connect(url, "RESTPLUG_CACHE_URL")

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
        await ping(self._redis, "redis cache")

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
