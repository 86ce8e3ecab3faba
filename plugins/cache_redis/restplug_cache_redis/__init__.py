"""restplug-cache-redis: the cache backend for ``redis://`` and ``rediss://`` URLs."""

from restplug_cache_redis.backend import RedisCache

__all__ = ["RedisCache"]
