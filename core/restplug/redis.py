"""A Redis client for plugins that keep shared state in Redis (the Redis cache, the rate
limiter): failing fast, so that their fail-open callers stay fast through an outage.

Needs redis-py: install ``restplug[redis]``, as the plugins using this module require.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from restplug.errors import BackendUnavailable, ConfigError

__all__ = ["connect", "ping"]

# Callers bound each call (0.25 s by default, see restplug.failopen) and fall back.  A burst
# beyond ``max_connections`` waits up to ``timeout`` for a free connection rather than failing
# at once (which would count towards opening a circuit breaker).  The URL's query
# (``?socket_timeout=2&max_connections=200``...) overrides these.
DEFAULTS = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
    "max_connections": 100,
    "timeout": 0.5,
}


def connect(url: str, setting: str) -> Redis:
    """A client for ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://`` (TLS)
    through a bounded connection pool.  Nothing is connected yet; a URL redis-py rejects
    raises a ConfigError naming ``setting``, the variable it came from."""
    try:
        # One immediate retry: after Redis restarts, a pooled connection is dead once.
        pool = BlockingConnectionPool.from_url(url, retry=Retry(NoBackoff(), 1), **DEFAULTS)
    except ValueError as exc:
        raise ConfigError(f"{setting}: {exc}") from None
    return Redis.from_pool(pool)


async def ping(client: Redis, what: str) -> None:
    """Return when Redis answers; raise BackendUnavailable (what readiness checks expect),
    naming ``what`` uses it, when it does not."""
    try:
        await client.ping()
    except RedisError as exc:
        raise BackendUnavailable(f"{what} unavailable: {exc}") from exc
