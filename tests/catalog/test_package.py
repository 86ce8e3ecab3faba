"""Package ingest and price histories per country."""

from __future__ import annotations

import asyncio

import pytest

from restplug import hookimpl
from restplug.app import RESTPLUG
from restplug.testing import AllowWrites


def scraped(id: int, name: str = "", **prices: tuple[float, int, bool]) -> dict:
    """An app as a worker sends it; prices as COUNTRY=(price, discount, available)."""
    return {
        "id": id,
        "name": name or f"App {id}",
        "type": "game",
        "genres": ["Indie"],
        "prices": {
            country: {
                "currency": "EUR" if country != "US" else "USD",
                "price": price,
                "initial_price": 20.0,
                "discount": discount,
                "is_available": available,
            }
            for country, (price, discount, available) in prices.items()
        },
    }


@pytest.fixture
async def client(restplug_client):
    return await restplug_client(plugins=[AllowWrites()])


async def send(client, apps: list) -> dict:
    response = await client.post("/api/v1/package", json={"apps": apps})
    assert response.status == 200, await response.text()
    return await response.json()


async def stored(client, id: int) -> dict:
    found = await client.app[RESTPLUG].collection("apps").get(id)
    return found.document


class CountsCalls:
    """Counts the ``documents_changed`` calls, and the documents each was told of."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    @hookimpl
    def documents_changed(self, resource, changes):
        self.calls.append((resource.name, len(changes)))


async def test_a_package_tells_the_plugins_once(restplug_client):
    counter = CountsCalls()
    client = await restplug_client(plugins=[AllowWrites(), counter])
    apps = [scraped(id, US=(9.99, 0, True)) for id in range(1, 301)]
    assert (await send(client, apps))["created"] == 300
    assert counter.calls == [("apps", 300)]
    # Ten apps change, the rest are unchanged: one call, of the ten.
    changed = [scraped(id, US=(4.99, 50, True)) for id in range(1, 11)]
    assert (await send(client, changed + apps[10:]))["updated"] == 10
    assert counter.calls == [("apps", 300), ("apps", 10)]
    assert (await send(client, apps[10:]))["unchanged"] == 290  # nothing changed: no call
    assert len(counter.calls) == 2


async def test_create_update_unchanged_and_rejected_in_one_package(client):
    await send(client, [scraped(1, US=(20.0, 0, True)), scraped(2, US=(10.0, 50, True))])
    result = await send(
        client,
        [
            scraped(1, US=(20.0, 0, True)),  # unchanged
            scraped(2, "Renamed", US=(10.0, 50, True)),  # updated, no new price entry
            {"id": 3, "type": "game"},  # a new app without a name: rejected
            scraped(4, DE=(5.0, 75, True)),  # created
            {"id": -5, "name": "x", "type": "boardgame"},  # invalid
            "not an object",
        ],
    )
    assert (result["created"], result["updated"], result["unchanged"]) == (1, 1, 1)
    assert [(r["index"], r["id"]) for r in result["rejected"]] == [(2, 3), (4, -5), (5, None)]
    assert "name" in result["rejected"][0]["errors"]
    assert {"id", "type"} <= set(result["rejected"][1]["errors"])
    two = await stored(client, 2)
    assert two["name"] == "Renamed" and len(two["prices"]["US"]["price_story"]) == 1
    assert (await client.get("/api/v1/apps/3")).status == 404


async def test_the_same_package_twice_changes_nothing(client):
    package = [scraped(i, US=(9.99, 50, True), DE=(8.99, 50, True)) for i in range(1, 6)]
    first = await send(client, package)
    assert first["created"] == 5
    before = [await stored(client, i) for i in range(1, 6)]
    second = await send(client, package)
    assert second == {"created": 0, "updated": 0, "unchanged": 5, "rejected": []}
    assert [await stored(client, i) for i in range(1, 6)] == before


async def test_price_entries_only_when_price_discount_or_availability_change(client):
    await send(client, [scraped(1, US=(20.0, 0, True))])
    await send(client, [scraped(1, US=(10.0, 50, True))])  # price and discount
    await send(client, [scraped(1, US=(10.0, 50, False))])  # availability
    await send(client, [scraped(1, "New name", US=(10.0, 50, False))])  # no price change
    story = (await stored(client, 1))["prices"]["US"]["price_story"]
    assert [(e["price"], e["discount"]) for e in story] == [(10.0, 50), (10.0, 50), (20.0, 0)]
    assert story[0]["timestamp"] >= story[1]["timestamp"] >= story[2]["timestamp"]
    assert (await stored(client, 1))["prices"]["US"]["is_available"] is False


async def test_fields_a_worker_leaves_out_keep_their_value(client):
    await send(client, [scraped(1, US=(20.0, 0, True))])
    await client.patch("/api/v1/apps/1", json={"total_recommendations": 77})
    await send(client, [{"id": 1, "name": "App 1", "type": "game"}])
    document = await stored(client, 1)
    assert document["total_recommendations"] == 77 and document["genres"] == ["Indie"]
    assert len(document["prices"]["US"]["price_story"]) == 1


async def test_bad_packages(client):
    for body in ({}, {"apps": []}, {"apps": "x"}, [1, 2]):
        response = await client.post("/api/v1/package", json=body)
        assert response.status == 422, body
        assert response.content_type == "application/problem+json"


async def test_concurrent_packages_lose_no_price_entry(restplug_client):
    first = await restplug_client(plugins=[AllowWrites()])
    second = await restplug_client(plugins=[AllowWrites()])  # another process, same store
    await send(first, [scraped(1, US=(20.0, 0, True))])
    packages = [
        (first if i % 2 else second, [scraped(1, US=(20.0 - i, i, True))]) for i in range(1, 21)
    ]
    results = await asyncio.gather(*(send(client, apps) for client, apps in packages))
    assert all(not r["rejected"] for r in results)
    story = (await stored(first, 1))["prices"]["US"]["price_story"]
    assert sorted(e["discount"] for e in story) == list(range(21))


async def test_a_thousand_app_package(client):
    package = [
        scraped(i, US=(float(i % 50), i % 90, True), DE=(1.0, 0, i % 3 != 0))
        for i in range(1, 1001)
    ]
    result = await send(client, package)
    assert result["created"] == 1000 and not result["rejected"]
    body = await (await client.get("/api/v1/apps?size=1")).json()
    assert body["total"] == 1000
    changed = [scraped(i, US=(99.0, 1, True)) for i in range(1, 1001, 2)]
    result = await send(client, package[:10] + changed)
    assert (result["updated"], result["unchanged"]) == (500, 5)


async def test_ingest_reaches_caches_and_the_search_index(client):
    await send(client, [scraped(1, "Hollow Knight", US=(20.0, 0, True))])
    assert (await client.get("/api/v1/apps/1")).headers["X-Cache"] == "MISS"
    assert (await client.get("/api/v1/apps/1")).headers["X-Cache"] == "HIT"
    await send(client, [scraped(1, "Silksong", US=(15.0, 25, True))])
    detail = await client.get("/api/v1/apps/1")
    assert (await detail.json())["name"] == "Silksong"
    body = await (await client.get("/api/v1/apps?search=silksong")).json()
    assert [i["id"] for i in body["items"]] == [1]


async def test_history_pages_per_country(client):
    for step in range(25):
        await send(client, [scraped(1, US=(20.0 - step * 0.5, step, True), DE=(9.0, 0, True))])
    detail = await (await client.get("/api/v1/apps/1")).json()
    assert len(detail["prices"]["US"]["price_story"]) == 1
    assert detail["prices"]["US"]["price_story"][0]["discount"] == 24
    assert detail["_links"]["price_history"]["US"] == "/api/v1/apps/1/prices/US"

    us = await client.get("/api/v1/apps/1/prices/us?size=10&page=2")
    body = await us.json()
    assert us.status == 200 and body["total"] == 25 and body["pages"] == 3
    assert [e["discount"] for e in body["items"]] == list(range(14, 4, -1))
    assert 'rel="next"' in us.headers["Link"] and 'rel="prev"' in us.headers["Link"]
    de = await (await client.get("/api/v1/apps/1/prices/DE")).json()
    assert de["total"] == 1 and de["currency"] == "EUR"

    for path, status in [
        ("/api/v1/apps/1/prices/JP", 404),
        ("/api/v1/apps/9/prices/US", 404),
        ("/api/v1/apps/1/prices/USA", 404),
        ("/api/v1/apps/1/prices/US?size=0", 400),
        ("/api/v1/apps/1/prices/US?colour=red", 400),
    ]:
        response = await client.get(path)
        assert response.status == status, path
        assert response.content_type == "application/problem+json"


async def test_history_pages_are_never_stale(client):
    await send(client, [scraped(1, US=(20.0, 0, True))])
    first = await (await client.get("/api/v1/apps/1/prices/US")).json()
    await send(client, [scraped(1, US=(10.0, 50, True))])
    second = await client.get("/api/v1/apps/1/prices/US")
    assert second.headers["X-Cache"] == "MISS"
    assert (await second.json())["total"] == first["total"] + 1
