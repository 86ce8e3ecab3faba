"""Read-through caching of details and lists with the builtin memory backend."""

from __future__ import annotations

import pytest

from restplug import hookimpl
from restplug.app import RESTPLUG
from restplug.auth import Identity
from restplug.caches import manager
from restplug.caches.manager import CacheManager
from restplug.caches.memory import MemoryCache
from restplug.testing import AllowWrites


class TokenIsName:
    """Authenticates ``Bearer NAME`` as NAME: enough to tell identities apart."""

    @hookimpl
    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        return Identity(header.removeprefix("Bearer ")) if header else None


def app(id: int, name: str, recommendations: int = 0) -> dict:
    return {"id": id, "name": name, "type": "game", "total_recommendations": recommendations}


@pytest.fixture
async def client(restplug_client):
    return await restplug_client(plugins=[AllowWrites(), TokenIsName()])


async def test_detail_and_list_hit_after_a_miss(client):
    await client.post("/api/v1/apps", json=app(1, "One"))
    for path in ("/api/v1/apps/1", "/api/v1/apps?size=5"):
        first, second = await client.get(path), await client.get(path)
        assert first.headers["X-Cache"] == "MISS" and second.headers["X-Cache"] == "HIT"
        assert await first.read() == await second.read()
        assert first.headers["ETag"] == second.headers["ETag"]
        assert second.headers["Cache-Control"] == "public, max-age=0, must-revalidate"


async def test_parameter_order_and_defaults_share_one_entry(client):
    await client.get("/api/v1/apps?type=game&size=20")
    query = "size=20&type=game&page=1&order_by=-total_recommendations"
    again = await client.get(f"/api/v1/apps?{query}")
    assert again.headers["X-Cache"] == "HIT"


async def test_a_write_invalidates_details_lists_and_totals(client):
    await client.post("/api/v1/apps", json=app(1, "One", 5))
    await client.get("/api/v1/apps/1")
    await client.get("/api/v1/apps")
    await client.patch("/api/v1/apps/1", json={"name": "Renamed"})
    detail = await client.get("/api/v1/apps/1")
    assert detail.headers["X-Cache"] == "MISS" and (await detail.json())["name"] == "Renamed"
    listed = await client.get("/api/v1/apps")
    assert listed.headers["X-Cache"] == "MISS"
    assert (await listed.json())["items"][0]["name"] == "Renamed"

    await client.post("/api/v1/apps", json=app(2, "Two", 9))
    body = await (await client.get("/api/v1/apps")).json()
    assert body["total"] == 2 and body["items"][0]["id"] == 2
    await client.delete("/api/v1/apps/2")
    assert (await (await client.get("/api/v1/apps")).json())["total"] == 1
    assert (await client.get("/api/v1/apps/2")).status == 404


async def test_a_write_to_one_app_keeps_other_details_cached(client):
    await client.post("/api/v1/apps", json=app(1, "One"))
    await client.post("/api/v1/apps", json=app(2, "Two"))
    await client.get("/api/v1/apps/2")
    await client.patch("/api/v1/apps/1", json={"name": "Changed"})
    assert (await client.get("/api/v1/apps/2")).headers["X-Cache"] == "HIT"


async def test_authenticated_responses_are_private_and_never_shared(client):
    await client.post("/api/v1/apps", json=app(1, "One"))
    await client.get("/api/v1/apps/1")  # anonymous entry
    ada = await client.get("/api/v1/apps/1", headers={"Authorization": "Bearer ada"})
    assert ada.headers["X-Cache"] == "MISS"
    assert ada.headers["Cache-Control"] == "private, no-store"
    bob = await client.get("/api/v1/apps/1", headers={"Authorization": "Bearer bob"})
    assert bob.headers["X-Cache"] == "MISS"
    again = await client.get("/api/v1/apps/1", headers={"Authorization": "Bearer ada"})
    assert again.headers["X-Cache"] == "HIT"


async def test_no_cache_from_clients_is_ignored_by_default(client):
    await client.post("/api/v1/apps", json=app(1, "One"))
    await client.get("/api/v1/apps/1")
    response = await client.get("/api/v1/apps/1", headers={"Cache-Control": "no-cache"})
    assert response.headers["X-Cache"] == "HIT"


async def test_no_cache_bypasses_when_allowed(restplug_client):
    client = await restplug_client(
        env={"RESTPLUG_CACHE_CLIENT_BYPASS": "1"}, plugins=[AllowWrites()]
    )
    await client.post("/api/v1/apps", json=app(1, "One"))
    await client.get("/api/v1/apps/1")
    response = await client.get("/api/v1/apps/1", headers={"Cache-Control": "no-cache"})
    assert response.headers["X-Cache"] == "MISS"


async def test_304_carries_etag_and_cache_control(client):
    await client.post("/api/v1/apps", json=app(1, "One"))
    listed = await client.get("/api/v1/apps")
    etag = listed.headers["ETag"]
    for inm in (etag, f'"nope", {etag}', "*", f"W/{etag}"):
        response = await client.get("/api/v1/apps", headers={"If-None-Match": inm})
        assert response.status == 304, inm
        assert response.headers["ETag"] == etag and "Cache-Control" in response.headers


async def test_etags_are_content_hashes_stable_across_processes(restplug_client):
    first = await restplug_client(plugins=[AllowWrites()])
    await first.post("/api/v1/apps", json=app(1, "One"))
    second = await restplug_client()  # another app, another cache, same store
    for path in ("/api/v1/apps/1", "/api/v1/apps"):
        assert (await first.get(path)).headers["ETag"] == (await second.get(path)).headers["ETag"]


async def test_cache_outage_degrades_to_miss(client, monkeypatch):
    await client.post("/api/v1/apps", json=app(1, "One"))
    cache: CacheManager = client.app[RESTPLUG].cache

    async def down(*args, **kwargs):
        raise ConnectionError("cache down")

    assert isinstance(cache.backend, MemoryCache)
    for method in ("get", "get_many", "set", "add"):
        monkeypatch.setattr(cache.backend, method, down)
    for _ in range(5):
        response = await client.get("/api/v1/apps/1")
        assert response.status == 200 and response.headers["X-Cache"] == "MISS"
    patched = await client.patch("/api/v1/apps/1", json={"name": "During outage"})
    assert patched.status == 200
    assert (await (await client.get("/api/v1/apps/1")).json())["name"] == "During outage"
    assert not cache.breaker.closed  # the breaker skips the cache for a while


async def test_memory_cache_is_bounded():
    cache = MemoryCache(max_bytes=100)
    for i in range(20):
        await cache.set(f"k{i}", b"x" * 10, 60)
    assert cache.size <= 100
    assert await cache.get("k0") is None and await cache.get("k19") == b"x" * 10


class CopyingCache(MemoryCache):
    """Answers each get with new bytes, as a networked backend does."""

    async def get(self, key):
        data = await super().get(key)
        return None if data is None else bytes(bytearray(data))


@pytest.mark.parametrize("backend", [MemoryCache, CopyingCache])
async def test_a_list_entry_is_decoded_once_until_a_write(backend, monkeypatch):
    cache = CacheManager(backend())
    made = []

    async def ranking():
        made.append(1)
        return list(range(5000 + len(made)))

    first, hit = await cache.cached("search", "apps", None, "dark", ranking)
    again, hit_again = await cache.cached("search", "apps", None, "dark", ranking)
    assert not hit and hit_again and again == first
    assert (await cache.cached("search", "apps", None, "dark", ranking))[0] is again

    await cache.invalidate("apps", [1])
    renewed, hit = await cache.cached("search", "apps", None, "dark", ranking)
    assert not hit and len(renewed) == 5002

    # A document's entries are decoded on each hit: there are too many to keep.
    await cache.cached("item", "apps", 1, None, ranking)
    one = (await cache.cached("item", "apps", 1, None, ranking))[0]
    assert (await cache.cached("item", "apps", 1, None, ranking))[0] is not one


async def test_decoded_values_are_kept_within_their_bound(monkeypatch):
    monkeypatch.setattr(manager, "DECODED_MAX_BYTES", 100_000)
    cache = CacheManager(MemoryCache())

    async def ranking():
        return list(range(10_000, 20_000))  # about 60 KB of JSON

    await cache.cached("search", "apps", None, "a", ranking)
    a = (await cache.cached("search", "apps", None, "a", ranking))[0]
    for text in ("b", "c"):
        await cache.cached("search", "apps", None, text, ranking)
        await cache.cached("search", "apps", None, text, ranking)
    again = (await cache.cached("search", "apps", None, "a", ranking))[0]
    assert again == a and again is not a  # dropped to stay in bounds, decoded again
    c = (await cache.cached("search", "apps", None, "c", ranking))[0]
    assert (await cache.cached("search", "apps", None, "c", ranking))[0] is c


class SharedCache(MemoryCache):
    """Stands for a backend processes share (Redis), counting its round trips."""

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def get(self, key):
        self.calls += 1
        return await super().get(key)

    async def get_many(self, keys):
        self.calls += 1
        return [await MemoryCache.get(self, key) for key in keys]


async def test_entries_kept_near_a_shared_backend_are_never_stale():
    backend = SharedCache()
    one, other = CacheManager(backend), CacheManager(backend)  # two processes
    version = ["v1"]

    async def page():
        return list(version)

    assert (await one.cached("list", "apps", None, "p", page)) == (["v1"], False)
    assert (await other.cached("list", "apps", None, "p", page)) == (["v1"], True)
    backend.calls = 0
    assert (await other.cached("list", "apps", None, "p", page)) == (["v1"], True)
    assert backend.calls == 1  # the token; the entry was kept near

    version[0] = "v2"
    await one.invalidate("apps", [1])  # a write in the first process
    assert (await other.cached("list", "apps", None, "p", page)) == (["v2"], False)
    assert (await one.cached("list", "apps", None, "p", page)) == (["v2"], True)
