"""The plugin: registers :class:`RedisCache` for the ``redis`` and ``rediss`` schemes."""

from __future__ import annotations

from restplug import Backend, Settings, hookimpl
from restplug_cache_redis.backend import RedisCache


def build(url: str, settings: Settings) -> RedisCache:
    return RedisCache(url)


@hookimpl
def register_backends() -> list[Backend]:
    return [Backend("cache", ("redis", "rediss"), build)]
