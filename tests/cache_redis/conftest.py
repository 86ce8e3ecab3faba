"""A real redis-server for the Redis cache tests (pytest-redis), and apps that cache in it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from pytest_redis.executor import RedisExecutor
from redis_helpers import (  # noqa: F401 (fixtures)
    outage_redis_proc,
    outage_redis_server,
    redis_server,
    redis_url,
    shared_redis_proc,
)

from restplug.testing import AllowWrites, ClientFactory

RedisApp = Callable[[RedisExecutor], Awaitable[TestClient]]


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
