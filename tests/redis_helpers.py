"""Helpers of the Redis tests: where redis-server is, the URL of a running one, outages
(stopped, frozen), and the fixtures giving a test an empty server (a conftest imports them)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from services import REDIS_SERVER, require_redis_server


def redis_url(server: RedisExecutor, db: int = 0) -> str:
    return f"redis://{server.host}:{server.port}/{db}"


def sync_client(server: RedisExecutor, db: int = 0) -> redis.Redis:
    """A plain client, to look at what the backend wrote or to empty the server."""
    return redis.Redis(host=server.host, port=server.port, db=db)


# Session-wide servers on free ports.  The outage tests stop and freeze their own, so no
# other test ever meets a Redis that is down.
shared_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)
outage_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)


def flushed(request: pytest.FixtureRequest, fixture: str) -> RedisExecutor:
    """A session's server, emptied: the apps of every test share key prefixes and resource
    names, so one test's keys must not survive into the next."""
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


@asynccontextmanager
async def stopped(server: RedisExecutor) -> AsyncIterator[None]:
    """Redis shut down (saving its data, as a configured Redis does) and started again."""
    await asyncio.to_thread(server.stop)
    try:
        yield
    finally:
        await asyncio.to_thread(server.start)


@asynccontextmanager
async def frozen(server: RedisExecutor) -> AsyncIterator[None]:
    """Redis hanging, as behind a network partition: connections open, no answers."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
