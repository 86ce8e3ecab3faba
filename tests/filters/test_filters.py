"""The method filters and sorts of restplug-filters, alone and combined, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from restplug.app import RESTPLUG
from restplug_catalog.plugin import APPS


def price(amount: float, discount: int, *, available: bool = True, currency: str = "USD") -> dict:
    initial = round(amount * 100 / (100 - discount), 2) if discount < 100 else amount
    return {
        "currency": currency,
        "is_available": available,
        "price_story": [
            {
                "price": amount,
                "initial_price": initial,
                "discount": discount,
                "timestamp": "2026-10-01T00:00:00+00:00",
            },
            {
                "price": initial,
                "initial_price": initial,
                "discount": 0,
                "timestamp": "2026-01-01T00:00:00+00:00",
            },
        ],
    }


TODAY = datetime.now(UTC).date()
DOCS = [
    {
        "id": 1,
        "name": "The Witcher 3: Wild Hunt",
        "type": "game",
        "total_recommendations": 900,
        "short_description": "A story-driven RPG.",
        "developers": ["CD PROJEKT RED"],
        "release_date": "2015-05-18",
        "prices": {"US": price(9.99, 75), "DE": price(9.99, 75, currency="EUR")},
    },
    {
        "id": 2,
        "name": "Gwent",
        "type": "game",
        "total_recommendations": 300,
        "short_description": "A card game from the world of The Witcher.",
        "release_date": (TODAY - timedelta(days=10)).isoformat(),
        "prices": {"US": price(0, 0), "DE": price(0, 0, available=False, currency="EUR")},
    },
    {
        "id": 3,
        "name": "Café Witchcraft",
        "type": "game",
        "total_recommendations": 50,
        "short_description": "Brew potions in a cosy café.",
        "release_date": (TODAY - timedelta(days=100)).isoformat(),
        "prices": {"DE": price(19.99, 10, currency="EUR")},
    },
    {
        "id": 4,
        "name": "Stardew Valley",
        "type": "game",
        "total_recommendations": 700,
        "short_description": "Farming life.",
        "release_date": "2016-02-26",
        "prices": {"US": price(14.99, 0), "DE": price(13.99, 20, currency="EUR")},
    },
    {
        "id": 5,
        "name": "Hades",
        "type": "game",
        "total_recommendations": 800,
        "short_description": "Defy the god of the dead.",
        "release_date": "2020-09-17",
        "prices": {"US": price(12.49, 50)},
    },
]


@pytest.fixture
async def client(restplug_client):
    client = await restplug_client()
    await client.app[RESTPLUG].upsert_all(APPS, [dict(d) for d in DOCS])
    return client


async def ids(client, query: str) -> list[int]:
    response = await client.get(f"/api/v1/apps?{query}")
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def walk(client, query: str) -> list[int]:
    """Every id of a list, following next_cursor page by page."""
    seen, url = [], f"/api/v1/apps?{query}"
    while url:
        body = await (await client.get(url)).json()
        seen += [item["id"] for item in body["items"]]
        url = body["next_cursor"] and f"/api/v1/apps?{query}&cursor={body['next_cursor']}"
    return seen


async def test_available_in_every_listed_country(client):
    assert set(await ids(client, "is_available_in_countries=US")) == {1, 2, 4, 5}
    assert set(await ids(client, "is_available_in_countries=us,DE")) == {1, 4}
    response = await client.get("/api/v1/apps?is_available_in_countries=USA")
    assert response.status == 400
    assert "is_available_in_countries" in (await response.json())["detail"]


async def test_discount_sort_puts_missing_prices_last_both_ways(client):
    assert await ids(client, "order_by=-discount") == [1, 5, 4, 2, 3]
    assert await ids(client, "order_by=discount") == [2, 4, 5, 1, 3]  # ties by id


async def test_discount_sort_follows_the_main_country(restplug_client):
    client = await restplug_client(env={"RESTPLUG_MAIN_COUNTRY": "DE"})
    await client.app[RESTPLUG].upsert_all(APPS, [dict(d) for d in DOCS])
    assert await ids(client, "order_by=-discount") == [1, 4, 3, 2, 5]


async def test_discount_sort_cursor_walk(client):
    assert await walk(client, "order_by=discount&size=2") == [2, 4, 5, 1, 3]
    assert await walk(client, "order_by=-discount&size=2") == [1, 5, 4, 2, 3]


async def test_price_bounds(client):
    assert set(await ids(client, "price_lte=10")) == {1, 2}
    assert set(await ids(client, "price_gte=12.49")) == {4, 5}
    assert set(await ids(client, "price_gte=de:15")) == {3}
    assert set(await ids(client, "price_gte=5&price_lte=13")) == {1, 5}
    response = await client.get("/api/v1/apps?price_lte=cheap")
    assert response.status == 400 and "price_lte" in (await response.json())["errors"]


async def test_released_within_days(client):
    assert set(await ids(client, "released_within_days=30")) == {2}
    assert set(await ids(client, "released_within_days=365")) == {2, 3}
    assert (await client.get("/api/v1/apps?released_within_days=0")).status == 400


async def test_search_relevance_prefix_and_diacritics(client):
    # The name match ranks above the description mention.
    assert await ids(client, "search=witcher") == [1, 2]
    by_prefix = await ids(client, "search=witch")
    assert set(by_prefix[:2]) == {1, 3} and by_prefix[2:] == [2]
    assert await ids(client, "search=cafe") == [3]
    assert await ids(client, "search=CD%20projekt") == [1]
    assert await ids(client, "search=nothing-like-this") == []


async def test_search_combines_with_filters_sorts_and_counts(client):
    query = "search=witch&order_by=-total_recommendations"
    body = await (await client.get(f"/api/v1/apps?{query}")).json()
    assert [i["id"] for i in body["items"]] == [1, 2, 3] and body["total"] == 3
    body = await (await client.get("/api/v1/apps?search=witch&is_available_in_countries=DE")).json()
    assert {i["id"] for i in body["items"]} == {1, 3} and body["total"] == 2


async def test_search_relevance_cursor_walk_visits_each_match_once(client):
    full = await ids(client, "search=witch")
    seen = await walk(client, "search=witch&size=1")
    assert seen == full and len(seen) == 3
    filtered = await walk(client, "search=witch&size=1&is_available_in_countries=DE&order_by=name")
    assert filtered == [3, 1]


async def test_each_method_can_be_disabled_alone(restplug_client):
    client = await restplug_client(env={"RESTPLUG_DISABLE_PLUGINS": "filter_search"})
    await client.app[RESTPLUG].upsert_all(APPS, [dict(d) for d in DOCS])
    response = await client.get("/api/v1/apps?search=witcher")
    assert response.status == 400
    assert (await response.json())["detail"].startswith("search: unknown parameter")
    assert set(await ids(client, "is_available_in_countries=US,DE")) == {1, 4}
    assert await ids(client, "order_by=-discount") == [1, 5, 4, 2, 3]


async def test_a_filter_keeping_few_of_many_search_matches_pages_through_them_all(
    restplug_client,
):
    """The ranking is read in windows: matches the filter keeps far down it, past several
    windows, are still found, by page number and by cursor, and counted."""
    client = await restplug_client()
    many = [
        {
            "id": id,
            "name": f"Dungeon {id}",
            "type": "dlc" if id % 50 else "game",
            "total_recommendations": id,
        }
        for id in range(1, 401)
    ]
    await client.app[RESTPLUG].upsert_all(APPS, many)
    games = sorted(await ids(client, "search=dungeon&type=game&size=100"))
    assert games == list(range(50, 401, 50))
    body = await (await client.get("/api/v1/apps?search=dungeon&type=game&size=3&page=3")).json()
    assert len(body["items"]) == 2 and body["total"] == 8 and body["pages"] == 3
    assert sorted(await walk(client, "search=dungeon&type=game&size=3")) == games
    everything = await walk(client, "search=dungeon&size=100")
    assert sorted(everything) == list(range(1, 401))
    # The ranking and the total kept for this search are renewed by a write.
    await client.app[RESTPLUG].upsert_all(
        APPS, [{"id": 401, "name": "Dungeon 401", "type": "game", "total_recommendations": 1}]
    )
    body = await (await client.get("/api/v1/apps?search=dungeon&type=game&size=100")).json()
    assert body["total"] == 9 and 401 in [item["id"] for item in body["items"]]
