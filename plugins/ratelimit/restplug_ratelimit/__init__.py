"""restplug-ratelimit: request budgets per identity or client address, in memory or Redis."""

from restplug_ratelimit.counters import MemoryCounters, RedisCounters
from restplug_ratelimit.settings import Rate

__all__ = ["MemoryCounters", "Rate", "RedisCounters"]
