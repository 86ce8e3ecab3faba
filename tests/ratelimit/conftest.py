"""Apps with small budgets, and the real redis-servers (pytest-redis) of the Redis tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from redis_helpers import (  # noqa: F401 (fixtures)
    outage_redis_proc,
    outage_redis_server,
    redis_server,
    shared_redis_proc,
)

from restplug.testing import AllowWrites, ClientFactory

LimitedApp = Callable[..., Awaitable[TestClient]]


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
