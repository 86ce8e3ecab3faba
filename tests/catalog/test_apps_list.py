"""Listing apps: field filters, sorting, pages, cursors, projections, counting and errors."""

from __future__ import annotations

import pytest

from restplug.app import RESTPLUG
from restplug_catalog.demo import generate_apps
from restplug_catalog.plugin import APPS

DOCS = [
    {
        "id": 1,
        "name": "Alpha",
        "type": "game",
        "is_free": False,
        "genres": ["RPG", "Action"],
        "total_recommendations": 50,
        "release_date": "2019-03-01",
        "platforms": {"windows": True, "mac": True, "linux": False},
    },
    {
        "id": 2,
        "name": "Bravo",
        "type": "dlc",
        "is_free": True,
        "genres": ["Action"],
        "total_recommendations": 50,
        "release_date": "2021-07-15",
        "platforms": {"windows": True, "mac": False, "linux": False},
    },
    {
        "id": 3,
        "name": "Charlie",
        "type": "game",
        "is_free": False,
        "genres": ["Puzzle"],
        "total_recommendations": 700,
        "release_date": None,
        "platforms": {"windows": False, "mac": False, "linux": True},
    },
    {
        "id": 4,
        "name": "Delta",
        "type": "soundtrack",
        "is_free": True,
        "genres": [],
        "total_recommendations": 5,
        "release_date": "2023-01-01",
        "platforms": {"windows": True, "mac": True, "linux": True},
    },
    {
        "id": 5,
        "name": "$where",
        "type": "game",
        "is_free": False,
        "genres": ["RPG"],
        "total_recommendations": 50,
        "release_date": "2020-01-01",
        "platforms": {"windows": True, "mac": False, "linux": True},
    },
]


@pytest.fixture
async def client(restplug_client):
    client = await restplug_client()
    restplug = client.app[RESTPLUG]
    await restplug.upsert_all(APPS, [{**d} for d in DOCS])
    return client


async def ids(client, query: str) -> list[int]:
    response = await client.get(f"/api/v1/apps?{query}")
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def bad(client, query: str) -> dict:
    response = await client.get(f"/api/v1/apps?{query}")
    assert response.status == 400, await response.text()
    assert response.content_type == "application/problem+json"
    return await response.json()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=game", {1, 3, 5}),
        ("type__in=dlc,soundtrack", {2, 4}),
        ("type__not_in=game", {2, 4}),
        ("type__neq=game", {2, 4}),
        ("is_free=true", {2, 4}),
        ("is_free=false", {1, 3, 5}),
        ("genres=Action", {1, 2}),
        ("genres__in=Puzzle,RPG", {1, 3, 5}),
        ("genres__not_in=Action", {3, 4, 5}),
        ("total_recommendations__gte=50", {1, 2, 3, 5}),
        ("total_recommendations__gt=50", {3}),
        ("total_recommendations__lt=50", {4}),
        ("total_recommendations__lte=50", {1, 2, 4, 5}),
        ("total_recommendations__in=5,700", {3, 4}),
        ("release_date__gte=2020-01-01", {2, 4, 5}),
        ("release_date__lt=2020-01-01", {1}),
        ("release_date__isnull=true", {3}),
        ("release_date__isnull=false", {1, 2, 4, 5}),
        ("platforms.linux=true", {3, 4, 5}),
        ("name=Bravo", {2}),
        ("name=%24where", {5}),
        ("id__in=1,2,99", {1, 2}),
        ("type=game&genres=RPG&platforms.linux=true", {5}),
        # A comma list may come as one value per repetition, as generated clients send it.
        ("genres__in=Puzzle&genres__in=RPG", {1, 3, 5}),
        ("id__not_in=1&id__not_in=2", {3, 4, 5}),
    ],
)
async def test_field_filters(client, query, expected):
    assert set(await ids(client, query)) == expected


async def test_a_single_value_parameter_given_twice_is_refused(client):
    response = await client.get("/api/v1/apps?type=game&type=dlc")
    assert response.status == 400
    assert (await response.json())["errors"] == {
        "type": ["given more than once; it takes one value"]
    }
    assert await ids(client, "order_by=-name&order_by=id") == [4, 3, 2, 1, 5]


async def test_default_order_is_most_recommended_first_with_id_ties(client):
    assert await ids(client, "") == [3, 5, 2, 1, 4]


async def test_sort_by_several_keys(client):
    assert await ids(client, "order_by=total_recommendations,-name") == [4, 2, 1, 5, 3]
    assert await ids(client, "order_by=name") == [5, 1, 2, 3, 4]
    assert await ids(client, "order_by=-release_date") == [
        4,
        2,
        5,
        1,
        3,
    ]  # null last when descending
    assert await ids(client, "order_by=release_date") == [3, 1, 5, 2, 4]


async def test_response_envelope_and_headers(client):
    response = await client.get("/api/v1/apps?size=2&page=2")
    body = await response.json()
    assert body["total"] == 5 and body["pages"] == 3 and body["page"] == 2 and body["size"] == 2
    assert [i["id"] for i in body["items"]] == [2, 1]
    assert body["next_cursor"]
    link = response.headers["Link"]
    assert 'rel="next"' in link and 'rel="prev"' in link and "page=3" in link and "page=1" in link
    assert response.headers["ETag"]
    last = await (await client.get("/api/v1/apps?size=2&page=3")).json()
    assert last["next_cursor"] is None and len(last["items"]) == 1


async def test_count_none_skips_the_total(client):
    body = await (await client.get("/api/v1/apps?count=none&size=2")).json()
    assert body["total"] is None and body["pages"] is None and len(body["items"]) == 2


async def test_sparse_fields(client):
    body = await (await client.get("/api/v1/apps?fields=id,platforms.mac&size=1")).json()
    assert body["items"] == [{"id": 3, "platforms": {"mac": False}}]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("colour=red", "colour"),
        ("order_by=colour", "order_by"),
        ("order_by=name,-name", "order_by"),
        ("size=0", "size"),
        ("size=101", "size"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("total_recommendations__gte=many", "total_recommendations__gte"),
        ("release_date__gte=yesterday", "release_date__gte"),
        ("is_free=maybe", "is_free"),
        ("name__gt=a", "name__gt"),
        ("count=some", "count"),
        ("cursor=garbage", "cursor"),
        ("fields=colour", "fields"),
        ("type=game&type=dlc", "type"),
    ],
)
async def test_bad_parameters_are_400_naming_them(client, query, parameter):
    body = await bad(client, query)
    assert body["detail"].startswith(parameter)
    assert parameter in body["errors"]


async def test_unknown_parameter_lists_the_allowed_ones(client):
    body = await bad(client, "colour=red")
    assert "allowed:" in body["detail"] and "type__in" in body["detail"]
    body = await bad(client, "order_by=colour")
    assert "total_recommendations" in body["detail"]


async def test_values_never_become_operators(client):
    assert await ids(client, "name=%7B%22%24ne%22%3A%20null%7D") == []
    # Not an app type either: refused, like any value outside a closed set.
    assert (await client.get("/api/v1/apps?type__in=%24where")).status == 400


async def test_cursor_from_another_order_is_400(client):
    body = await (await client.get("/api/v1/apps?size=2&order_by=name")).json()
    problem = await bad(client, f"cursor={body['next_cursor']}&order_by=-name")
    assert "order_by" in problem["detail"]
    assert (await bad(client, f"cursor={body['next_cursor']}&order_by=name&page=2"))["errors"]


@pytest.fixture
async def catalogue(restplug_client):
    client = await restplug_client()
    await client.app[RESTPLUG].upsert_all(APPS, generate_apps(230, seed=7))
    return client


@pytest.mark.parametrize(
    "query",
    [
        "",
        "order_by=name",
        "order_by=-release_date,name",
        "order_by=total_recommendations",
        "type=game&order_by=-total_recommendations",
        "genres__in=RPG,Action&order_by=release_date",
    ],
)
async def test_page_and_cursor_walks_visit_every_document_once(catalogue, query):
    full = await (await catalogue.get(f"/api/v1/apps?{query}&size=100&count=exact")).json()
    total = full["total"]
    assert total > 0

    by_page: list[int] = []
    for page in range(1, full["pages"] * 100 // 7 + 2):
        body = await (await catalogue.get(f"/api/v1/apps?{query}&size=7&page={page}")).json()
        by_page += [item["id"] for item in body["items"]]
        if not body["items"]:
            break

    by_cursor: list[int] = []
    body = await (await catalogue.get(f"/api/v1/apps?{query}&size=7")).json()
    while True:
        by_cursor += [item["id"] for item in body["items"]]
        if not body["next_cursor"]:
            break
        response = await catalogue.get(f"/api/v1/apps?{query}&size=7&cursor={body['next_cursor']}")
        body = await response.json()
        assert ('rel="next"' in response.headers.get("Link", "")) == bool(body["next_cursor"])

    assert len(by_page) == len(set(by_page)) == total
    assert by_cursor == by_page


async def test_slow_query_is_503_not_a_hung_worker(restplug_client):
    loader = await restplug_client()
    await loader.app[RESTPLUG].upsert_all(APPS, generate_apps(3000, seed=1))
    client = await restplug_client(env={"RESTPLUG_QUERY_TIMEOUT_MS": "1"})
    response = await client.get("/api/v1/apps?genres__not_in=Nothing&order_by=name&page=140")
    assert response.status == 503, await response.text()
    assert response.content_type == "application/problem+json"
