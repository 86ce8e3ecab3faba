"""RedisCache against a real redis-server: the cache contract, URLs, and failing fast."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import redis
from pytest_redis.executor import RedisExecutor
from redis_helpers import redis_url, sync_client
from servers import Server, call

from restplug.app import Restplug
from restplug.caches.contract import CacheBackendContract
from restplug.errors import BackendUnavailable
from restplug.testing import isolated_environ
from restplug_cache_redis import RedisCache


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[RedisCache]:
    cache = RedisCache(url)
    await cache.open()
    try:
        yield cache
    finally:
        await cache.close()


class TestRedisCacheContract(CacheBackendContract):
    @pytest.fixture
    def make_backend(self, redis_server: RedisExecutor) -> Callable[[], RedisCache]:
        return lambda: RedisCache(redis_url(redis_server))

    @pytest.fixture
    async def unavailable_backend(self) -> AsyncIterator[RedisCache]:
        async with opened(f"redis://127.0.0.1:{closed_port()}/0") as cache:
            yield cache


async def test_the_database_comes_from_the_url_path(redis_server: RedisExecutor) -> None:
    async with opened(redis_url(redis_server, db=3)) as cache:
        await cache.set("k", b"in db 3", 60)
    for db, expected in ((3, b"in db 3"), (0, None)):
        with sync_client(redis_server, db) as client:
            assert client.get("k") == expected


async def test_ttls_are_kept_to_the_millisecond(redis_server: RedisExecutor) -> None:
    async with opened(redis_url(redis_server)) as cache:
        await cache.set("k", b"v", 1.5)
        assert await cache.add("lock", b"v", 0.0001) is True  # rounded up, never 0 (an error)
    with sync_client(redis_server) as client:
        assert 1400 < client.pttl("k") <= 1500


async def test_a_burst_beyond_the_pool_waits_for_a_connection(
    redis_server: RedisExecutor,
) -> None:
    # Failing at once instead would turn load into misses and open the circuit breaker.
    async with opened(f"{redis_url(redis_server)}?max_connections=2") as cache:
        await cache.set("k", b"v", 60)
        assert await asyncio.gather(*(cache.get("k") for _ in range(50))) == [b"v"] * 50


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
async def test_the_plugin_answers_both_schemes(tmp_path, scheme: str) -> None:
    environ = isolated_environ(tmp_path, {"RESTPLUG_CACHE_URL": f"{scheme}://127.0.0.1:6390/2"})
    restplug = await Restplug.configure(environ)
    assert isinstance(restplug.cache.backend, RedisCache)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_without_redis_it_opens_and_then_fails_fast() -> None:
    # Opening must not fail (the service starts uncached); calls fail at once, not hang.
    async with opened(f"redis://127.0.0.1:{closed_port()}/0") as cache:
        start = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await cache.ping()
        with pytest.raises(redis.ConnectionError):
            await cache.get("k")
        assert time.monotonic() - start < 1


def test_serve_workers_share_the_redis_cache(tmp_path, redis_server: RedisExecutor) -> None:
    """``RedisCache.shared`` lets ``serve --workers 2`` start (a memory cache is refused): a
    page cached by whichever worker answered first is a hit for every worker after it."""
    server = Server(tmp_path, "--workers", "2", RESTPLUG_CACHE_URL=redis_url(redis_server))
    server.start()
    try:
        first = call(f"{server.url}/api/v1/apps?size=3")
        after = [call(f"{server.url}/api/v1/apps?size=3") for _ in range(4)]
    finally:
        server.terminate()
    assert first[0] == 200 and first[1]["X-Cache"] == "MISS"
    assert [(status, headers["X-Cache"]) for status, headers, _ in after] == [(200, "HIT")] * 4
