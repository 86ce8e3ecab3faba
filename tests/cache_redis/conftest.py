"""A real redis-server for the Redis cache tests (pytest-redis), and apps that cache in it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis_helpers import REDIS_SERVER, flushed, redis_url

from restplug.testing import AllowWrites, ClientFactory

# Session-wide servers on free ports.  The outage tests stop and freeze their own, so no
# other test ever meets a Redis that is down.
shared_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)
outage_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)

RedisApp = Callable[[RedisExecutor], Awaitable[TestClient]]


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> RedisExecutor:
    """The Redis most tests share, empty."""
    return flushed(request, "shared_redis_proc")


@pytest.fixture
def outage_redis_server(request: pytest.FixtureRequest) -> RedisExecutor:
    """A Redis of its own for a test that takes it down, empty."""
    return flushed(request, "outage_redis_proc")


@pytest.fixture
def redis_app(restplug_client: ClientFactory) -> RedisApp:
    """``await redis_app(server)``: a full app (catalogue included, writes allowed) caching in
    ``server``.  Every call is another instance on the same store files, as another process
    of one deployment would be."""

    async def make(server: RedisExecutor) -> TestClient:
        # These tests read as fast as they can; rate limits have tests of their own.
        env = {"RESTPLUG_CACHE_URL": redis_url(server), "RESTPLUG_DISABLE_PLUGINS": "ratelimit"}
        return await restplug_client(env=env, plugins=[AllowWrites()])

    return make
