"""The cache manager that makes cached reads never stale.

Invalidation by generations: every resource has a generation token in the cache backend, and
every document one of its own.  A list page's key carries the resource generation, a detail's
key the document's; a write replaces both tokens (with fresh random values) after the store
write and before the response.  Readers that start after the write returns read the new tokens
and so new keys: old entries are never read again, in any process sharing the backend, and
expire by TTL.  A reader that raced the write can only save its result under the old key.
Random tokens (not counters) keep this true when the backend evicts or loses a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import orjson

from restplug.caches.memory import MemoryCache
from restplug.caches.protocol import CacheBackend
from restplug.failopen import CircuitBreaker, FailOpen

log = logging.getLogger("restplug.cache")

#: The bytes of entries a process keeps beside a shared backend (see CacheManager._get_entry).
NEAR_MAX_BYTES = 32 * 1024 * 1024
#: The bytes of list-generation entries whose decoded values a process keeps (see
#: :meth:`CacheManager.cached`).
DECODED_MAX_BYTES = 16 * 1024 * 1024


class Coder(Protocol):
    """Turns cached values to bytes and back."""

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class JsonCoder:
    """JSON through orjson: the default coder."""

    def encode(self, value: Any) -> bytes:
        return orjson.dumps(value)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


def digest(*parts: Any) -> str:
    """A short stable hash of key material (never Python's salted ``hash()``)."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


class CacheManager:
    """get/save/delete for application code, and the generation-keyed read-through caching
    the core uses for detail and list responses.  Fail-open: a backend error is logged and
    served as a miss."""

    def __init__(
        self,
        backend: CacheBackend | None,
        *,
        prefix: str = "restplug",
        ttl: float = 600,
        coder: Coder | None = None,
        timeout: float = 0.25,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.backend = backend
        self.prefix = prefix
        self.ttl = ttl
        self.coder = coder or JsonCoder()
        # A cache in this process (not shared) answers without I/O, so nothing to time out.
        if backend is not None and not backend.shared:
            timeout = None
        self._guard = FailOpen(
            "cache", "served as misses", timeout=timeout, breaker=breaker, logger=log
        )
        self._flights: dict[str, asyncio.Future[Any]] = {}
        self._unflushed: set[str] = set()
        # Beside a shared backend, the entries this process has read or made, by key.  A key
        # carries its generation token, so an entry found here is the one the backend holds
        # under that key: a hit costs one round trip (the token) instead of two.
        self._near = MemoryCache(NEAR_MAX_BYTES) if backend is not None and backend.shared else None
        self._decoded: OrderedDict[str, tuple[bytes, Any]] = OrderedDict()
        self._decoded_bytes = 0

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    @property
    def breaker(self) -> CircuitBreaker:
        return self._guard.breaker

    async def _call(self, method: str, *args: Any, failed: Any = None) -> Any:
        """One backend call, bounded in time; ``failed`` (a miss) on any error or open breaker."""
        if self.backend is None:
            return failed
        return await self._guard.call(getattr(self.backend, method), *args, failed=failed)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- application API (the seed's CacheManager) ------------------------------------------

    async def get(self, key: str) -> Any:
        data = await self._call("get", self.key(key))
        return None if data is None else self.coder.decode(data)

    async def save(self, value: Any, key: str, ttl: float | None = None) -> None:
        await self._call("set", self.key(key), self.coder.encode(value), ttl or self.ttl)

    async def delete(self, key: str) -> None:
        await self._call("delete", self.key(key))

    # -- generations ------------------------------------------------------------------------

    def _resource_gen(self, resource: str) -> str:
        return self.key(resource, "gen")

    def _item_gen(self, resource: str, id: Any) -> str:
        return self.key(resource, "gen", digest(id))

    async def generations(self, keys: Sequence[str]) -> list[str] | None:
        """The current tokens of generation keys, creating missing ones; None on cache error."""
        if self.backend is None:
            return None
        return await self._guard.call(self._tokens, keys, failed=None)

    async def _tokens(self, keys: Sequence[str]) -> list[str]:
        assert self.backend is not None
        values = await self.backend.get_many(list(keys))
        tokens = []
        for key, value in zip(keys, values, strict=True):
            if value is None:
                token = secrets.token_hex(8).encode()
                # Another process may create it at the same moment: whoever wins, both use it.
                if not await self.backend.add(key, token, self._gen_ttl):
                    token = await self.backend.get(key) or token
                value = token
            tokens.append(value.decode())
        return tokens

    @property
    def _gen_ttl(self) -> float:
        # Tokens outlive every entry keyed by them; a lost token only costs misses.
        return self.ttl * 10

    async def invalidate(self, resource: str, ids: Iterable[Any]) -> None:
        """After writes to documents of one resource: new tokens for each of them, and one for
        the resource's lists (a package of thousands renews it once, not once per document).

        When the cache cannot take them (an outage), the old tokens, and the entries keyed by
        them, may come back with the cache: this process then serves misses until it has
        replaced them."""
        self._unflushed.update(self._item_gen(resource, id) for id in ids)
        self._unflushed.add(self._resource_gen(resource))
        await self._flush()

    async def invalidate_lists(self, resource: str) -> None:
        """A new token for the resource's lists only: after its search index was rebuilt, a
        search may answer differently although no document changed."""
        self._unflushed.add(self._resource_gen(resource))
        await self._flush()

    async def _flush(self) -> bool:
        """Replace the tokens of writes the cache missed; True when none is left."""
        for key in list(self._unflushed):
            token = secrets.token_hex(8).encode()
            if await self._call("set", key, token, self._gen_ttl, failed=False) is False:
                return False
            self._unflushed.discard(key)
        return True

    async def cached(
        self,
        kind: str,
        resource: str,
        id: Any,
        variant: Any,
        produce: Callable[[], Awaitable[Any]],
        *,
        bypass: bool = False,
        coder: Coder | None = None,
    ) -> tuple[Any, bool]:
        """``(value, hit)``: the cached value for this request, or ``produce()`` stored.

        ``id`` None keys the entry on the resource generation (lists), else on the document's
        (details, histories).  ``variant`` is everything else the response depends on:
        normalized parameters, the caller's identity.  Concurrent misses on one key share one
        ``produce()`` call (single-flight).  ``coder`` turns these values to bytes and back
        (the manager's own by default).

        A hit on an entry kept under the resource generation (``id`` None) is decoded once per
        process while its bytes stay the same: the requests that hit it share the value, so
        callers treat it as read-only.  A search's ranking of thousands of ids is such a value,
        hit by every request for that search."""
        if self.backend is None or bypass or (self._unflushed and not await self._flush()):
            return await produce(), False
        coder = coder or self.coder
        gen_key = self._resource_gen(resource) if id is None else self._item_gen(resource, id)
        which = digest(id, variant)
        # One guarded call (one timer) for both round trips: the token, then the entry.
        found = await self._guard.call(self._get_entry, gen_key, resource, kind, which, failed=None)
        if found is None:
            # The cache is down, and the store must not take every concurrent miss at once
            # because of it.  Safe without a token: a write in this process meanwhile leaves
            # a token unflushed, and the requests after it skip the flight (see above).
            return await self._single_flight(self.key(resource, kind, which), produce, coder), False
        key, data = found
        if data is None:
            return await self._single_flight(key, produce, coder, near=True), False
        if id is not None:
            return coder.decode(data), True
        return self._decode_shared(key, data, coder), True

    def _decode_shared(self, key: str, data: bytes, coder: Coder) -> Any:
        """``data`` decoded, or the value decoded from the same bytes under ``key`` before."""
        known = self._decoded.get(key)
        if known is not None and known[0] == data:
            self._decoded.move_to_end(key)
            return known[1]
        value = coder.decode(data)
        if known is not None:
            self._decoded_bytes -= len(known[0])
        self._decoded[key] = (data, value)
        self._decoded_bytes += len(data)
        while self._decoded_bytes > DECODED_MAX_BYTES and self._decoded:
            _, (dropped, _) = self._decoded.popitem(last=False)
            self._decoded_bytes -= len(dropped)
        return value

    async def total(self, resource: str, query: Any, produce: Callable[[], Awaitable[int]]) -> int:
        """How many documents of ``resource`` match ``query`` (what makes its filter):
        ``produce()``'s count, kept under the resource's list generation like a list page, so
        no count made before a write is read after it.  An exact total over a broad filter
        reads every matching index entry; a page reads a few: a request that bypasses the
        cached pages still takes its total from here, being as fresh as a count in the store."""
        value, _ = await self.cached("total", resource, None, query, produce)
        return int(value)

    async def anchor(self, resource: str, query: Any, produce: Callable[[], Awaitable[Any]]) -> Any:
        """A position in a list (``query``: what selects and orders it, and an offset):
        ``produce()``'s sort values of the document there, kept under the resource's list
        generation as :meth:`total` keeps a count, so a deep offset page starts from it
        instead of skipping every document before it, and no position found before a write is
        used after it."""
        value, _ = await self.cached("anchor", resource, None, query, produce)
        return value

    async def _get_entry(
        self, gen_key: str, resource: str, kind: str, which: str
    ) -> tuple[str, bytes | None]:
        """The key of an entry under its current generation token, and the entry's bytes."""
        assert self.backend is not None
        (token,) = await self._tokens([gen_key])
        key = self.key(resource, kind, token, which)
        near = self._near
        if near is None:
            return key, await self.backend.get(key)
        data = await near.get(key)
        if data is None:
            data = await self.backend.get(key)
            if data is not None:
                await near.set(key, data, self.ttl)
        return key, data

    async def _single_flight(
        self,
        key: str,
        produce: Callable[[], Awaitable[Any]],
        coder: Coder,
        *,
        near: bool = False,
    ) -> Any:
        """``produce()``, shared by the concurrent callers for ``key``, then saved under it
        (and kept near when ``near``: ``key`` holds its generation token)."""
        flight = self._flights.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            value = await produce()
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            self._flights.pop(key, None)
        flight.set_result(value)
        data = coder.encode(value)
        if near and self._near is not None:
            await self._near.set(key, data, self.ttl)
        await self._call("set", key, data, self.ttl)
        return value
