"""Helpers of the Redis tests: where redis-server is, the URL of a running one, a server
emptied for a test, and outages (stopped, frozen)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis
from pytest_redis.executor import RedisExecutor

REDIS_SERVER = shutil.which("redis-server")


def require_redis_server() -> None:
    """Skip without redis-server, saying how to get it; fail instead under ``CI=true``, so CI
    never passes without having run the Redis tests."""
    if REDIS_SERVER is not None:
        return
    reason = "redis-server is not installed (apt-get install redis-server, or `make test`)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires the Redis tests to run", pytrace=False)
    pytest.skip(reason)


def redis_url(server: RedisExecutor, db: int = 0) -> str:
    return f"redis://{server.host}:{server.port}/{db}"


def sync_client(server: RedisExecutor, db: int = 0) -> redis.Redis:
    """A plain client, to look at what the backend wrote or to empty the server."""
    return redis.Redis(host=server.host, port=server.port, db=db)


def flushed(request: pytest.FixtureRequest, fixture: str) -> RedisExecutor:
    """A session's server, emptied: the apps of every test share key prefixes and resource
    names, so one test's keys must not survive into the next."""
    require_redis_server()
    server: RedisExecutor = request.getfixturevalue(fixture)
    with sync_client(server) as client:
        client.flushall()
    return server


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
