"""A real redis-server for the Redis cache tests (pytest-redis), and apps that cache in it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis_helpers import redis_url, sync_client
from services import REDIS_SERVER, require_redis_server

from restplug.testing import AllowWrites, ClientFactory

# Session-wide servers on free ports.  The outage tests stop and freeze their own, so no
# other test ever meets a Redis that is down.
shared_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)
outage_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)

RedisApp = Callable[[RedisExecutor], Awaitable[TestClient]]


def flushed(request: pytest.FixtureRequest, fixture: str) -> RedisExecutor:
    """A session's server, emptied: the apps of every test share the key prefix and resource
    names, so one test's generations must not survive into the next."""
    require_redis_server()
    server: RedisExecutor = request.getfixturevalue(fixture)
    with sync_client(server) as client:
        client.flushall()
    return server


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
        return await restplug_client(
            env={"RESTPLUG_CACHE_URL": redis_url(server)}, plugins=[AllowWrites()]
        )

    return make
