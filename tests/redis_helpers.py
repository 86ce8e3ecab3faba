"""Helpers of the Redis tests: where redis-server is, and the URL of a running one."""

from __future__ import annotations

import os
import shutil

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
