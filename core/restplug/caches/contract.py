"""The contract every cache backend passes: a pytest suite a cache plugin imports and runs.

The cache manager (:mod:`restplug.cache`) is only as correct as its backend: generations need
``add`` to be atomic (two processes creating a token must agree on one), ``get_many`` must
answer in order, TTLs must be honoured and bytes must come back unchanged.  This module holds
those rules once, so the builtin ``memory://`` backend and every plugin are tested alike.

The contract also holds a backend to what the core relies on under load and in outages: a call
cut short by the manager's deadline (``asyncio.timeout``) leaves the backend answering right (no
reply handed to the wrong caller); a backend that cannot reach its server raises within seconds,
never hangs; and a backend declares in ``shared`` whether the processes of ``restplug serve
--workers N`` can share it (``True``: every instance built from one URL sees one cache, which
the contract checks with two instances).

Use it from a plugin's tests (``pip install restplug[testing]``; the cases are marked for
pytest-asyncio, so they run in its strict and auto modes alike)::

    import pytest
    from restplug.testing import CacheBackendContract

    class TestMyCache(CacheBackendContract):
        @pytest.fixture
        def make_backend(self):
            # each call: a new, not yet opened backend on the same storage
            return lambda: MyCache("mycache://127.0.0.1/0")

Each test writes under its own random key prefix, so a backend whose storage outlives one
test (a server shared by the whole session) needs no flushing between tests.  A backend with a
server overrides ``unavailable_backend`` too (by default, a backend opened and closed again),
for instance with one pointed at a closed port.

This module imports pytest: import it from tests only.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from restplug.caches.protocol import CacheBackend
from restplug.errors import BackendUnavailable
from restplug.kits import DEADLINES, fails_within

KeyOf = Callable[[str], str]

# Short enough for a quick suite, long enough that a loaded machine reads before expiry.
SHORT_TTL = 0.3
LONG_TTL = 60.0
AFTER_EXPIRY = SHORT_TTL + 0.3


class CacheBackendContract:
    """Subclass it as ``Test...`` and provide the ``make_backend`` fixture."""

    pytestmark = pytest.mark.asyncio
    #: Seconds an unreachable backend may take to fail: far above any connect timeout, far
    #: below "hangs".
    unavailable_within: ClassVar[float] = 10.0

    @pytest.fixture
    def make_backend(self) -> Callable[[], CacheBackend]:
        raise NotImplementedError(
            "a CacheBackendContract subclass provides the make_backend fixture"
        )

    @pytest.fixture
    def backend(self, make_backend: Callable[[], CacheBackend]) -> CacheBackend:
        """A new, not yet opened backend."""
        return make_backend()

    @pytest_asyncio.fixture
    async def unavailable_backend(
        self, make_backend: Callable[[], CacheBackend]
    ) -> AsyncIterator[CacheBackend]:
        """A backend that cannot reach its storage: by default one opened and closed again."""
        backend = make_backend()
        await backend.open()
        await backend.close()
        yield backend

    @pytest_asyncio.fixture
    async def cache(self, backend: CacheBackend) -> AsyncIterator[CacheBackend]:
        await backend.open()
        try:
            yield backend
        finally:
            await backend.close()

    @pytest.fixture
    def key(self) -> KeyOf:
        """``key("name")``: a key no other test uses (the same separators the manager uses)."""
        prefix = f"contract:{secrets.token_hex(8)}"
        return lambda name: f"{prefix}:{name}"

    async def test_implements_the_protocol(self, backend: CacheBackend) -> None:
        assert isinstance(backend, CacheBackend)

    async def test_ping_answers(self, cache: CacheBackend) -> None:
        await cache.ping()

    async def test_get_misses_then_hits(self, cache: CacheBackend, key: KeyOf) -> None:
        assert await cache.get(key("a")) is None
        await cache.set(key("a"), b"one", LONG_TTL)
        assert await cache.get(key("a")) == b"one"
        await cache.set(key("a"), b"two", LONG_TTL)
        assert await cache.get(key("a")) == b"two"

    async def test_get_many_answers_in_order_with_misses(
        self, cache: CacheBackend, key: KeyOf
    ) -> None:
        await cache.set(key("a"), b"A", LONG_TTL)
        await cache.set(key("c"), b"C", LONG_TTL)
        names = ["c", "missing", "a", "c"]
        assert await cache.get_many([key(n) for n in names]) == [b"C", None, b"A", b"C"]
        assert await cache.get_many([]) == []

    async def test_binary_values_round_trip(self, cache: CacheBackend, key: KeyOf) -> None:
        values = {
            "empty": b"",
            "every byte": bytes(range(256)),
            "nul": b"\x00" * 10,
            "not utf-8": b"\xff\xfe\x80",
            "large": secrets.token_bytes(512 * 1024),
        }
        for name, value in values.items():
            await cache.set(key(name), value, LONG_TTL)
        for name, value in values.items():
            assert await cache.get(key(name)) == value, name
        assert await cache.get_many([key(n) for n in values]) == list(values.values())

    async def test_keys_are_opaque_strings(self, cache: CacheBackend, key: KeyOf) -> None:
        names = ["gen:3f2a", "with space", "ünïcødé", "a*?[]{}", "apps:gen"]
        for i, name in enumerate(names):
            await cache.set(key(name), str(i).encode(), LONG_TTL)
        assert await cache.get_many([key(n) for n in names]) == [
            str(i).encode() for i in range(len(names))
        ]

    async def test_set_honours_ttl(self, cache: CacheBackend, key: KeyOf) -> None:
        await cache.set(key("short"), b"x", SHORT_TTL)
        await cache.set(key("long"), b"y", LONG_TTL)
        assert await cache.get(key("short")) == b"x"
        await asyncio.sleep(AFTER_EXPIRY)
        assert await cache.get(key("short")) is None
        assert await cache.get_many([key("short"), key("long")]) == [None, b"y"]

    async def test_set_replaces_the_ttl(self, cache: CacheBackend, key: KeyOf) -> None:
        await cache.set(key("a"), b"old", SHORT_TTL)
        await cache.set(key("a"), b"new", LONG_TTL)
        await asyncio.sleep(AFTER_EXPIRY)
        assert await cache.get(key("a")) == b"new"

    async def test_add_stores_only_when_absent(self, cache: CacheBackend, key: KeyOf) -> None:
        assert await cache.add(key("a"), b"first", LONG_TTL) is True
        assert await cache.add(key("a"), b"second", LONG_TTL) is False
        assert await cache.get(key("a")) == b"first"
        await cache.delete(key("a"))
        assert await cache.add(key("a"), b"third", LONG_TTL) is True
        assert await cache.get(key("a")) == b"third"

    async def test_add_honours_ttl_and_succeeds_after_expiry(
        self, cache: CacheBackend, key: KeyOf
    ) -> None:
        assert await cache.add(key("lock"), b"1", SHORT_TTL) is True
        await asyncio.sleep(AFTER_EXPIRY)
        assert await cache.get(key("lock")) is None
        assert await cache.add(key("lock"), b"2", LONG_TTL) is True

    async def test_add_is_atomic_under_concurrency(self, cache: CacheBackend, key: KeyOf) -> None:
        # Generation tokens rely on this: of many racing creators exactly one wins, and every
        # reader afterwards sees the winner's value.
        values = [f"token-{i}".encode() for i in range(50)]
        results = await asyncio.gather(*(cache.add(key("gen"), v, LONG_TTL) for v in values))
        assert results.count(True) == 1 and results.count(False) == len(values) - 1
        assert await cache.get(key("gen")) == values[results.index(True)]

    async def test_delete_is_idempotent(self, cache: CacheBackend, key: KeyOf) -> None:
        await cache.delete(key("never-set"))
        await cache.set(key("a"), b"x", LONG_TTL)
        await cache.set(key("b"), b"y", LONG_TTL)
        await cache.delete(key("a"))
        await cache.delete(key("a"))
        assert await cache.get_many([key("a"), key("b")]) == [None, b"y"]

    # -- deadlines, outages, sharing ------------------------------------------------------

    async def test_calls_cut_short_by_a_deadline_leave_the_backend_right(
        self, cache: CacheBackend, key: KeyOf
    ) -> None:
        # The manager bounds every call with asyncio.timeout.  A client that loses track of a
        # cancelled request can hand its reply to the next caller: another key's value.
        values = {key(str(i)): f"value-{i}".encode() for i in range(20)}
        for k, value in values.items():
            await cache.set(k, value, LONG_TTL)
        for deadline in DEADLINES:
            calls = [
                call
                for k, value in values.items()
                for call in (cache.get(k), cache.set(k, value, LONG_TTL), cache.get_many([k, k]))
            ]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline):
                    await asyncio.gather(*calls)
        await cache.ping()
        for k, value in values.items():
            assert await cache.get(k) == value
        assert await cache.get_many(list(values)) == list(values.values())

    async def test_an_unreachable_backend_fails_at_once(
        self, unavailable_backend: CacheBackend, key: KeyOf
    ) -> None:
        # The manager turns any error into a miss; what it cannot survive is a hang.
        backend = unavailable_backend
        await fails_within(backend.ping, BackendUnavailable, self.unavailable_within, "ping")
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "get": lambda: backend.get(key("a")),
            "get_many": lambda: backend.get_many([key("a"), key("b")]),
            "set": lambda: backend.set(key("a"), b"x", LONG_TTL),
            "add": lambda: backend.add(key("a"), b"x", LONG_TTL),
            "delete": lambda: backend.delete(key("a")),
        }
        for name, call in calls.items():
            await fails_within(call, Exception, self.unavailable_within, name)

    async def test_shared_declares_whether_workers_see_one_cache(
        self, make_backend: Callable[[], CacheBackend], key: KeyOf
    ) -> None:
        # restplug serve --workers N refuses a backend that is not shared: each process
        # would keep serving what another one's writes made stale.
        first, second = make_backend(), make_backend()
        assert isinstance(first.shared, bool), "a cache backend declares shared = True or False"
        if not first.shared:
            return  # a private cache promises nothing across instances
        await first.open()
        await second.open()
        try:
            await first.set(key("a"), b"from first", LONG_TTL)
            assert await second.get(key("a")) == b"from first"
            await second.delete(key("a"))
            assert await first.get(key("a")) is None
            racing = [
                cache.add(key("gen"), bytes([n]), LONG_TTL)
                for n, cache in enumerate([first, second] * 10)
            ]
            won = await asyncio.gather(*racing)
            assert won.count(True) == 1
            assert await first.get(key("gen")) == await second.get(key("gen"))
        finally:
            await first.close()
            await second.close()
