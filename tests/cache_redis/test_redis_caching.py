"""Whole apps caching in a real Redis: never stale across processes, fail-open through an
outage, one store query for many concurrent misses."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis_helpers import frozen, stopped

from restplug.app import RESTPLUG
from restplug.caches.manager import CacheManager

Model = dict[int, tuple[str, int]]  # id -> (name, total_recommendations)


def app(id: int, name: str, recommendations: int) -> dict[str, Any]:
    return {"id": id, "name": name, "type": "game", "total_recommendations": recommendations}


@asynccontextmanager
async def looping(*steps: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Each step run again and again, in a task of its own, while the block runs: requests
    that keep flowing.  A step's error fails the test at the end of the block."""
    done = asyncio.Event()

    async def loop(step: Callable[[], Awaitable[None]]) -> None:
        while not done.is_set():
            await step()

    tasks = [asyncio.create_task(loop(step)) for step in steps]
    try:
        yield
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    done.set()
    await asyncio.gather(*tasks)


# -- two instances sharing Redis and the store ----------------------------------------------

# Reads whose answer depends on different generations: details, whole lists, a sorted page,
# a bare total.  Each maps a response to what it says about the model, or a model to that.
LIST_ALL = "/api/v1/apps?size=100"
FIRST_THREE = "/api/v1/apps?order_by=id&size=3"
TOTAL = "/api/v1/apps?size=1&type=game"
IDS = range(1, 9)


def expected(path: str, model: Model) -> Any:
    if path == LIST_ALL:
        return len(model), model
    if path == FIRST_THREE:
        return len(model), [(id, *model[id]) for id in sorted(model)[:3]]
    if path == TOTAL:
        return len(model)
    id = int(path.rsplit("/", 1)[1])
    return model.get(id)


def observed(path: str, status: int, body: Any) -> Any:
    assert status in (200, 404), (path, status, body)
    if path == LIST_ALL:
        return body["total"], {
            i["id"]: (i["name"], i["total_recommendations"]) for i in body["items"]
        }
    if path == FIRST_THREE:
        items = [(i["id"], i["name"], i["total_recommendations"]) for i in body["items"]]
        return body["total"], items
    if path == TOTAL:
        return body["total"]
    return None if status == 404 else (body["name"], body["total_recommendations"])


@dataclass
class History:
    """The models after each write.  ``models[completed:]`` are the states a read that starts
    now may see: the last completed write's and those of writes still in flight."""

    models: list[Model]
    completed: int = 0
    stale: list[tuple[str, Any, int]] = field(default_factory=list)
    hits: int = 0

    async def read(self, client: TestClient, path: str) -> None:
        floor = self.completed
        async with client.get(path) as response:
            body = await response.json() if response.status in (200, 404) else None
            seen = observed(path, response.status, body)
            self.hits += response.headers.get("X-Cache") == "HIT"
        if all(seen != expected(path, model) for model in self.models[floor:]):
            self.stale.append((path, seen, floor))


def writes(rng: random.Random, model: Model, count: int) -> Iterator[tuple[str, str, Any, Model]]:
    """``count`` random writes (create, patch, replace, delete) as (method, path, body, model
    after it); the model never drops below two apps, so lists stay interesting."""
    model = dict(model)
    for step in range(count):
        id = rng.choice(IDS)
        name, recommendations = f"app {id} v{step}", rng.randrange(100)
        if id not in model:
            method, path, body = "POST", "/api/v1/apps", app(id, name, recommendations)
        elif len(model) > 2 and rng.random() < 0.25:
            method, path, body = "DELETE", f"/api/v1/apps/{id}", None
        elif rng.random() < 0.5:
            body = {"name": name, "total_recommendations": recommendations}
            method, path = "PATCH", f"/api/v1/apps/{id}"
        else:
            method, path, body = "PUT", f"/api/v1/apps/{id}", app(id, name, recommendations)
        if method == "DELETE":
            del model[id]
        else:
            model[id] = (name, recommendations)
        yield method, path, body, dict(model)


async def test_two_instances_never_read_older_than_the_last_write(redis_server, redis_app):
    writer, other = await redis_app(redis_server), await redis_app(redis_server)
    model: Model = {1: ("one", 10), 2: ("two", 20), 3: ("three", 30)}
    for id, (name, recommendations) in model.items():
        assert (await writer.post("/api/v1/apps", json=app(id, name, recommendations))).ok
    history = History([model])
    paths = [LIST_ALL, FIRST_THREE, TOTAL, *(f"/api/v1/apps/{id}" for id in IDS)]
    rng = random.Random(5)

    def reader(client: TestClient) -> Callable[[], Awaitable[None]]:
        return lambda: history.read(client, rng.choice(paths))

    async with looping(*(reader(client) for client in [writer, other] * 3)):
        for method, path, body, after in writes(rng, model, 30):
            history.models.append(after)
            response = await writer.request(method, path, json=body)
            assert response.status < 300, await response.text()
            history.completed += 1
            # With no write in flight, both instances must now answer exactly the new model.
            for client in (writer, other):
                for read in paths:
                    await history.read(client, read)
    assert history.stale == []
    assert history.hits > 50  # the reads went through the cache, not around it


# -- an outage while requests flow ----------------------------------------------------------


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def test_concurrent_misses_query_the_store_once_while_the_cache_hangs(
    outage_redis_server, redis_app, monkeypatch
):
    client = await redis_app(outage_redis_server)
    await client.post("/api/v1/apps", json=app(1, "One", 1))
    store = client.app[RESTPLUG].store
    original = store.get
    calls = 0

    async def slow_and_counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        # Long enough that every request gives up on the cache (0.25 s each) while it runs,
        # also on a loaded machine where the 50 requests start over a few hundred ms.
        await asyncio.sleep(1.0)
        return await original(*args, **kwargs)

    monkeypatch.setattr(store, "get", slow_and_counted)
    async with frozen(outage_redis_server):
        responses = await asyncio.gather(*(client.get("/api/v1/apps/1") for _ in range(50)))
    assert [r.status for r in responses] == [200] * 50
    assert {r.headers["X-Cache"] for r in responses} == {"MISS"}
    assert calls == 1


@pytest.mark.parametrize("outage", [stopped, frozen])
async def test_an_outage_costs_no_errors_and_caching_resumes(
    outage_redis_server, redis_app, outage
):
    client = await redis_app(outage_redis_server)
    cache: CacheManager = client.app[RESTPLUG].cache
    cache.breaker.cooldown = 0.3  # recover within the test, not after the default 5 s
    await client.post("/api/v1/apps", json=app(1, "before", 10))
    await client.post("/api/v1/apps", json=app(2, "other", 5))
    detail, listing = "/api/v1/apps/1", "/api/v1/apps"
    for path in (detail, listing, detail, listing):  # cached before the outage
        assert (await client.get(path)).status == 200

    statuses: list[int] = []

    async def read(path: str) -> None:
        async with client.get(path) as response:
            statuses.append(response.status)

    async def name_is(name: str, cache_state: str | None = None) -> bool:
        """Detail and list both show ``name`` for app 1 (served as ``cache_state``, if set)."""
        for path in (detail, listing):
            response = await client.get(path)
            body = await response.json()
            shown = body["name"] if path == detail else body["items"][0]["name"]
            assert shown == name, (path, response.headers.get("X-Cache"), body)
            if cache_state and response.headers["X-Cache"] != cache_state:
                return False
        return True

    async with looping(lambda: read(detail), lambda: read(listing)):
        async with outage(outage_redis_server):
            for step in range(3):
                patched = await client.patch(detail, json={"name": f"during {step}"})
                assert patched.status == 200
                assert await name_is(f"during {step}", "MISS")
        await until(lambda: name_is("during 2", "HIT"))
        patched = await client.patch(detail, json={"name": "after"})
        assert patched.status == 200 and await name_is("after")
        await until(lambda: name_is("after", "HIT"))
    assert len(statuses) > 20 and set(statuses) == {200}


# -- single-flight --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "store_method"), [("/api/v1/apps/1", "get"), ("/api/v1/apps?size=5", "find")]
)
async def test_concurrent_misses_query_the_store_once(
    redis_server, redis_app, monkeypatch, path, store_method
):
    client = await redis_app(redis_server)
    # A healthy cache is the premise: on a loaded machine 50 concurrent round trips can
    # outlast the 0.25 s fail-open deadline, and a cache that times out is an outage (tested
    # above), not this case.
    client.app[RESTPLUG].cache._guard.timeout = 5.0
    await client.post("/api/v1/apps", json=app(1, "One", 1))
    store = client.app[RESTPLUG].store
    original = getattr(store, store_method)
    calls = 0

    async def slow_and_counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.5)  # every request arrives while the first query runs
        return await original(*args, **kwargs)

    monkeypatch.setattr(store, store_method, slow_and_counted)
    responses = await asyncio.gather(*(client.get(path) for _ in range(50)))
    assert [r.status for r in responses] == [200] * 50
    assert calls == 1
    assert {r.headers["X-Cache"] for r in responses} == {"MISS"}
    assert len({await r.read() for r in responses}) == 1
