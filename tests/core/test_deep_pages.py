"""Deep offset pages start from remembered positions (anchors) and answer as a full skip would.

The anchor step is lowered so a few hundred apps make pages many anchors deep; the cursor walk,
which never uses anchors, is the reference.
"""

from __future__ import annotations

import pytest

from restplug import query
from restplug.app import RESTPLUG
from restplug.testing import AllowWrites

APPS = "/api/v1/apps"
ORDERS = ["-total_recommendations", "total_recommendations", "name", "discount", "-discount"]


def app(id: int) -> dict:
    document = {
        "id": id,
        "name": f"App {id % 37:02d}",  # ties: the id breaks them
        "type": "game" if id % 3 else "dlc",
        "total_recommendations": id % 11,
    }
    if id % 4:  # the others have no price: the discount order puts them last
        price = {
            "price": 9.99,
            "initial_price": 19.99,
            "discount": id % 5 * 10,
            "timestamp": "2026-10-01T00:00:00+00:00",
        }
        story = {"currency": "USD", "is_available": True, "price_story": [price]}
        document["prices"] = {"US": story}
    return document


@pytest.fixture
async def client(restplug_client, monkeypatch):
    monkeypatch.setattr(query, "ANCHOR_STEP", 10)
    client = await restplug_client(
        env={"RESTPLUG_CACHE_CLIENT_BYPASS": "1"}, plugins=[AllowWrites()]
    )
    restplug = client.app[RESTPLUG]
    await restplug.upsert_all(restplug.resources["apps"], [app(id) for id in range(1, 241)])
    return client


async def ids(client, params: str, **headers: str) -> tuple[list[int], dict]:
    response = await client.get(f"{APPS}?{params}", headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    return [item["id"] for item in body["items"]], body


async def by_cursor(client, params: str) -> list[int]:
    walked, cursor = [], None
    while True:
        page, body = await ids(client, params + (f"&cursor={cursor}" if cursor else ""))
        walked += page
        cursor = body["next_cursor"]
        if cursor is None:
            return walked


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("filters", ["", "&type=game"])
async def test_every_page_matches_the_cursor_walk(client, order, filters):
    params = f"order_by={order}{filters}&size=7&count=none"
    expected = await by_cursor(client, params)
    pages = []
    for page in range(1, len(expected) // 7 + 3):  # one past the end too
        found, _ = await ids(client, f"{params}&page={page}")
        pages += found
    assert pages == expected


async def test_pages_read_in_any_order_and_bypassed_answer_the_same(client):
    params = "order_by=-total_recommendations&size=9&count=none"
    expected = await by_cursor(client, params)
    for page in (20, 3, 17, 12, 26, 2):
        plain, _ = await ids(client, f"{params}&page={page}")
        bypassed, _ = await ids(client, f"{params}&page={page}", **{"Cache-Control": "no-cache"})
        assert plain == bypassed == expected[(page - 1) * 9 : page * 9]


async def test_a_write_moves_the_deep_pages_at_once(client):
    params = "order_by=-total_recommendations&size=10&count=none"
    before = await by_cursor(client, params)
    assert (await ids(client, f"{params}&page=15"))[0] == before[140:150]

    # Sorts first: every later position moves by one, anchors included.
    response = await client.post(APPS, json={**app(1000), "total_recommendations": 99})
    assert response.status == 201
    now, _ = await ids(client, f"{params}&page=15", **{"Cache-Control": "no-cache"})
    assert now == before[139:149]

    await client.delete(f"{APPS}/1000")
    await client.delete(f"{APPS}/{before[0]}")
    now, _ = await ids(client, f"{params}&page=15")
    assert now == before[141:151]
