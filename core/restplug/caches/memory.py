"""The builtin in-process cache backend (``memory://``): bounded LRU with per-entry TTL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from restplug import hookimpl
from restplug.backends import Backend
from restplug.config import Settings
from restplug.errors import BackendUnavailable

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class MemoryCache:
    """Values are bytes; the cache holds at most ``max_bytes`` of them, dropping the least
    recently used first.  ``memory://?max_bytes=N`` sets the bound."""

    #: Entries live in this process only: workers of ``serve --workers N`` would not see each
    #: other's invalidations.
    shared = False

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._open = True

    @classmethod
    def from_url(cls, url: str) -> MemoryCache:
        query = parse_qs(urlsplit(url).query)
        return cls(int(query.get("max_bytes", [DEFAULT_MAX_BYTES])[0]))

    async def open(self) -> None:
        """Nothing to connect to."""
        self._open = True

    async def close(self) -> None:
        """Drop every entry; calls fail until the next :meth:`open`, as a server's would."""
        self._entries.clear()
        self.size = 0
        self._open = False

    async def ping(self) -> None:
        """Reachable while open."""
        self._check_open()

    async def get(self, key: str) -> bytes | None:
        self._check_open()
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._check_open()
        self._drop(key)  # even when the new value is too big: the old one is stale now
        if len(value) > self.max_bytes:
            return
        self._entries[key] = (value, time.monotonic() + ttl)
        self.size += len(value)
        while self.size > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    async def delete(self, key: str) -> None:
        self._check_open()
        self._drop(key)

    def _check_open(self) -> None:
        if not self._open:
            raise BackendUnavailable("the memory cache is closed")

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry[0])


@hookimpl
def register_backends() -> list[Backend]:
    def build(url: str, settings: Settings) -> MemoryCache:
        return MemoryCache.from_url(url)

    return [Backend("cache", ("memory",), build)]
