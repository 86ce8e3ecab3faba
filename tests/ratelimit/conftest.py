"""Apps with small budgets, and real redis-servers (pytest-redis) for the shared counters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis_helpers import REDIS_SERVER, flushed

from restplug.testing import AllowWrites, ClientFactory

ratelimit_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)
ratelimit_outage_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)

LimitedApp = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> RedisExecutor:
    return flushed(request, "ratelimit_redis_proc")


@pytest.fixture
def outage_redis_server(request: pytest.FixtureRequest) -> RedisExecutor:
    """A Redis of its own for a test that takes it down."""
    return flushed(request, "ratelimit_outage_redis_proc")


@pytest.fixture
def limited_app(restplug_client: ClientFactory) -> LimitedApp:
    """``await limited_app(READS="3/minute", ...)``: the full app (writes allowed) with the
    given ``RESTPLUG_RATELIMIT_*`` settings; other ``RESTPLUG_*`` names are passed whole."""

    async def make(plugins: tuple[object, ...] = (), **settings: str) -> TestClient:
        env = {
            name if name.startswith("RESTPLUG_") else f"RESTPLUG_RATELIMIT_{name}": value
            for name, value in settings.items()
        }
        return await restplug_client(env=env, plugins=[AllowWrites(), *plugins])

    return make
