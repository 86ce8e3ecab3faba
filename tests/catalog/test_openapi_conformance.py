"""Every route's real answers against the served OpenAPI document, validated strictly: what a
client generated from the document parses without surprises."""

from __future__ import annotations

from conformance import Conformance

from restplug.testing import AllowWrites

APPS = "/api/v1/apps"
TASKS = "/api/v1/tasks"


def scraped(id: int, genre: str, **prices: float) -> dict:
    return {
        "id": id,
        "name": f"Witcher {id}",
        "type": "game" if id % 2 else "dlc",
        "genres": [genre],
        "release_date": "2020-01-02",
        "total_recommendations": id * 10,
        "prices": {
            country: {
                "currency": "USD",
                "price": price,
                "initial_price": 20.0,
                "discount": 10,
                "is_available": True,
            }
            for country, price in prices.items()
        },
    }


LISTS = [
    {},
    {"type": "game"},
    {"type__in": "game,dlc", "genres__in": "RPG"},
    {"is_free__neq": "true", "platforms.windows": "false"},
    {"id__gte": "2", "total_recommendations__lt": "100", "release_date__isnull": "false"},
    {"price_lte": "15", "price_gte": "DE:1"},
    {"is_available_in_countries": "US,DE"},
    {"search": "witcher", "released_within_days": "36500"},
    {"fields": "id,name"},
    {"fields": "prices.US.currency,platforms.windows"},
    {"count": "none", "size": "3"},
    {"page": "2", "size": "2"},
    *({"order_by": order} for order in ("name", "-release_date", "discount", "-id")),
]


async def test_every_route_answers_as_the_document_declares(restplug_client):
    client = await restplug_client(plugins=[AllowWrites()])
    check = Conformance(await (await client.get("/openapi.json")).json())
    apps = [scraped(i, "RPG" if i % 3 else "Indie", US=5.0 + i, DE=3.0 * i) for i in range(1, 10)]
    result = await check.call(client, "POST", "/api/v1/package", 200, json={"apps": apps})
    assert result["created"] == 9
    rejected = await check.call(client, "POST", "/api/v1/package", 200, json={"apps": [{"id": 1}]})
    assert rejected["rejected"][0]["index"] == 0
    await check.call(client, "POST", "/api/v1/package", 422, json={"apps": []})
    await check.call(client, "POST", "/api/v1/package", 415, data="x")

    for params in LISTS:
        await check.call(client, "GET", APPS, 200, params=params)
    cursor = None
    for _ in range(3):
        params = {"size": "3", "order_by": "name", **({"cursor": cursor} if cursor else {})}
        page = await check.call(client, "GET", APPS, 200, params=params)
        cursor = page["next_cursor"]
    for bad in ({"type": "bogus"}, {"size": "0"}, {"nope": "1"}, {"order_by": "price"}):
        await check.call(client, "GET", APPS, 400, params=bad)

    created = await check.call(client, "POST", APPS, 201, json=scraped(50, "RPG") | {"prices": {}})
    await check.call(client, "POST", APPS, 409, json=created)
    await check.call(client, "POST", APPS, 422, json={"id": 51})
    await check.call(
        client, "POST", APPS, 400, data="{", headers={"Content-Type": "application/json"}
    )
    item = f"{APPS}/1"
    async with client.get(item) as response:
        etag = response.headers["ETag"]
    await check.call(client, "GET", item, 200)
    await check.call(client, "GET", item, 200, params={"fields": "name,prices.US"})
    await check.call(client, "GET", item, 304, headers={"If-None-Match": etag})
    await check.call(client, "GET", item, 400, params={"fields": "nope"})
    await check.call(client, "GET", f"{APPS}/999", 404)
    patch = {"headers": {"If-Match": etag, "Content-Type": "application/merge-patch+json"}}
    changed = await check.call(client, "PATCH", item, 200, data='{"is_free": true}', **patch)
    assert changed["is_free"] is True
    await check.call(client, "PATCH", item, 412, data='{"is_free": false}', **patch)
    await check.call(client, "PATCH", item, 422, json={"name": None})
    await check.call(client, "PUT", f"{APPS}/50", 200, json=created)
    await check.call(client, "DELETE", f"{APPS}/50", 204)
    await check.call(client, "DELETE", f"{APPS}/50", 404)

    history = f"{APPS}/2/prices/US"
    await check.call(client, "GET", history, 200)
    await check.call(client, "GET", history, 200, params={"page": "2", "size": "1"})
    await check.call(client, "GET", f"{APPS}/2/prices/JP", 404)
    await check.call(client, "GET", history, 400, params={"cursor": "x"})

    task = await check.call(client, "POST", TASKS, 201, json={"type": "scrape", "payload": {}})
    await check.call(client, "POST", TASKS, 422, json={"type": "scrape"})
    for params in ({}, {"status": "pending"}, {"status__in": "running,done"}, {"fields": "id"}):
        await check.call(client, "GET", TASKS, 200, params=params)
    await check.call(client, "GET", TASKS, 400, params={"status": "bogus"})
    one = f"{TASKS}/{task['id']}"
    await check.call(client, "GET", one, 200)
    await check.call(client, "GET", f"{TASKS}/nope", 404)
    await check.call(client, "PATCH", one, 200, json={"status": "running"})
    await check.call(client, "PATCH", one, 409, json={"status": "pending"})
    await check.call(client, "PATCH", one, 422, json={"payload": {}})

    # The rate limit plugin's answer, with its headers.
    limited = await restplug_client(env={"RESTPLUG_RATELIMIT_READS": "2/minute"})
    answers = [await check.call(limited, "GET", f"{APPS}/1") for _ in range(3)]
    assert [answer["status"] for answer in answers[2:]] == [429]

    print(f"{check.checked} responses checked against the document")
    assert check.failures == [], "\n".join(check.failures)
    assert check.checked >= 55
