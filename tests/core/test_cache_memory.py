"""The builtin ``memory://`` backend: the cache contract, plus its bound (LRU by size)."""

from __future__ import annotations

import asyncio

import pytest

from restplug.caches.contract import SHORT_TTL, CacheBackendContract
from restplug.caches.memory import DEFAULT_MAX_BYTES, MemoryCache

TTL = 60.0


class TestMemoryCacheContract(CacheBackendContract):
    @pytest.fixture
    def make_backend(self) -> type[MemoryCache]:
        return MemoryCache


async def filled(max_bytes: int, count: int, size: int = 10) -> MemoryCache:
    """A cache holding ``k0``..``k{count-1}``, each ``size`` bytes, set in that order."""
    cache = MemoryCache(max_bytes=max_bytes)
    for i in range(count):
        await cache.set(f"k{i}", bytes([i]) * size, TTL)
    return cache


async def present(cache: MemoryCache, count: int) -> list[int]:
    return [i for i in range(count) if await cache.get(f"k{i}") is not None]


async def test_a_full_cache_drops_the_oldest_first() -> None:
    cache = await filled(max_bytes=100, count=10)
    assert cache.size == 100 and await present(cache, 10) == list(range(10))
    await cache.set("k10", b"x" * 25, TTL)
    assert cache.size <= 100
    assert await present(cache, 11) == [3, 4, 5, 6, 7, 8, 9, 10]


async def test_reading_an_entry_keeps_it() -> None:
    cache = await filled(max_bytes=100, count=10)
    assert await cache.get("k0") is not None
    assert await cache.get_many(["k1"]) == [bytes([1]) * 10]
    await cache.set("k10", b"x" * 20, TTL)
    assert await present(cache, 11) == [0, 1, 4, 5, 6, 7, 8, 9, 10]


async def test_a_value_larger_than_the_bound_is_not_stored() -> None:
    cache = await filled(max_bytes=100, count=5)
    await cache.set("huge", b"x" * 101, TTL)
    assert await cache.get("huge") is None
    assert cache.size == 50 and await present(cache, 5) == [0, 1, 2, 3, 4]


async def test_an_oversized_replacement_drops_the_old_value() -> None:
    # Reading the old value after a newer set would be stale data.
    cache = await filled(max_bytes=100, count=1)
    await cache.set("k0", b"x" * 101, TTL)
    assert await cache.get("k0") is None and cache.size == 0


async def test_size_follows_replacements_deletions_and_expiry() -> None:
    cache = MemoryCache(max_bytes=1000)
    await cache.set("a", b"x" * 300, TTL)
    await cache.set("a", b"x" * 100, TTL)
    await cache.set("b", b"x" * 50, SHORT_TTL / 10)
    assert cache.size == 150
    await cache.delete("a")
    assert cache.size == 50
    await asyncio.sleep(SHORT_TTL / 5)
    assert await cache.get("b") is None and cache.size == 0


def test_the_bound_comes_from_the_url() -> None:
    assert MemoryCache.from_url("memory://").max_bytes == DEFAULT_MAX_BYTES
    assert MemoryCache.from_url("memory://?max_bytes=4096").max_bytes == 4096
