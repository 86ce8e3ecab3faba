"""Helpers of the Redis tests: the URL of a running redis-server, a plain client to it."""

from __future__ import annotations

import redis
from pytest_redis.executor import RedisExecutor


def redis_url(server: RedisExecutor, db: int = 0) -> str:
    return f"redis://{server.host}:{server.port}/{db}"


def sync_client(server: RedisExecutor, db: int = 0) -> redis.Redis:
    """A plain client, to look at what the backend wrote or to empty the server."""
    return redis.Redis(host=server.host, port=server.port, db=db)
