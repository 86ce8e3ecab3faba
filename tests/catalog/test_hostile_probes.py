"""Hostile input, table-driven: every probe gets a 4xx problem+json and changes nothing.

Huge and oddly written integers wherever one is parsed, deep nesting, wrong JSON types in
every field of an app, forged and misused cursors, odd content types and empty bodies.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import pytest

from restplug.testing import AllowWrites

APP = {
    "id": 7,
    "name": "Probe",
    "type": "game",
    "is_free": False,
    "short_description": "a game",
    "developers": ["Studio"],
    "publishers": ["Studio"],
    "genres": ["RPG"],
    "categories": ["Single-player"],
    "platforms": {"windows": True, "mac": False, "linux": False},
    "release_date": "2020-01-01",
    "total_recommendations": 5,
    "prices": {
        "US": {
            "currency": "USD",
            "is_available": True,
            "price_story": [
                {
                    "price": 1.0,
                    "initial_price": 2.0,
                    "discount": 50,
                    "timestamp": "2026-01-01T00:00:00+00:00",
                }
            ],
        }
    },
}
BIG = [2**63, 2**64 - 1, 10**20, -(2**63) - 1]
#: Integers as URL text: too big for any store, or one number spelt many ways.
ODD_INTEGERS = [
    *map(str, BIG),
    str(10**18 * 1000),
    "\uff18",
    "\u0668",
    "+8",
    " 8",
    "8 ",
    "8_0",
    "1_0",
    "0x10",
    "1e3",
    "8.0",
    "",
    "-",
    "nan",
    "inf",
]
WRONG_TYPES: dict[str, list[Any]] = {
    "id": [0, -1, "7", 7.5, True, None, [7], *BIG, 1.8e19],
    "name": [1, True, [], {}, ["x"], ""],
    "type": ["gamez", 1, [], {}],
    "is_free": ["maybe", [], {}, 2.5],
    "short_description": [1, [], {"a": 1}],
    "developers": ["Studio", [1], [{}], {"a": 1}, [None]],
    "publishers": [1, [1], [[]]],
    "genres": [[1], "RPG", [["RPG"]], {"0": "RPG"}],
    "categories": [[True], 1],
    "platforms": ["windows", [True], {"windows": "perhaps"}, {"mac": [1]}],
    "release_date": ["yesterday", 20200101, [], "2020-13-01"],
    "total_recommendations": [-1, "many", [], *BIG, 1.8e19, 1e300],
    "prices": [
        [],
        "USD",
        {"us": APP["prices"]["US"]},
        {"US": {"currency": 1, "is_available": True}},
        {"US": {"currency": "USD", "is_available": True, "price_story": [{"price": -1}]}},
        {
            "US": {
                "currency": "USD",
                "is_available": True,
                "price_story": [{**APP["prices"]["US"]["price_story"][0], "discount": 2**64 - 1}],
            }
        },
    ],
}


def nested(depth: int) -> str:
    """JSON text nested ``depth`` arrays deep (deeper than the stdlib encoder may recurse)."""
    return "[" * depth + "1" + "]" * depth


def raw_json(text: str) -> dict[str, Any]:
    return {"data": text, "headers": {"Content-Type": "application/json"}}


def probes(task_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, request options) of every probe."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    integer_urls = [
        "/api/v1/apps?page={}",
        "/api/v1/apps?size={}",
        "/api/v1/apps?total_recommendations={}",
        "/api/v1/apps?total_recommendations__gte={}",
        "/api/v1/apps?total_recommendations__in=1,{}",
        "/api/v1/apps?released_within_days={}",
        "/api/v1/apps/{}",
        "/api/v1/apps/{}/prices/US",
        "/api/v1/apps/7/prices/US?page={}",
        "/api/v1/tasks?size={}",
    ]
    for url in integer_urls:
        # An empty element of an __in list is skipped, as a trailing comma is.
        odd = [v for v in ODD_INTEGERS if v or "__in" not in url]
        out += [("GET", url.format(quote(value, safe="")), {}) for value in odd]
    odd_amounts = ("\uff18", "\u0668", "+1", " 1", "1_0", "0x1", "nan", "inf", "1e400", "", ".")
    for value in odd_amounts:
        out.append(("GET", f"/api/v1/apps?price_lte={quote(value, safe='')}", {}))
    for method in ("PUT", "PATCH", "DELETE"):
        out += [(method, f"/api/v1/apps/{quote(v, safe='')}", {"json": APP}) for v in ODD_INTEGERS]
    for field, values in WRONG_TYPES.items():
        for value in values:
            body = {**copy.deepcopy(APP), "id": 50, field: value}
            out.append(("POST", "/api/v1/apps", {"json": body}))
            if field != "id":
                out.append(("PUT", "/api/v1/apps/7", {"json": {**body, "id": 7}}))
                out.append(("PATCH", "/api/v1/apps/7", {"json": {field: value}}))
    for depth in (65, 100, 254, 256, 300, 1000, 1024, 1030):
        task = f'{{"type": "t", "payload": {{"a": {nested(depth)}}}}}'
        out.append(("POST", "/api/v1/tasks", raw_json(task)))
        app = json.dumps({**APP, "id": 50, "genres": "GENRES"}).replace('"GENRES"', nested(depth))
        out.append(("POST", "/api/v1/apps", raw_json(app)))
        out.append(("POST", "/api/v1/package", raw_json(f'{{"apps": {nested(depth)}}}')))
    # Longer integers reach the server as floats (JSON has one number type): free-form
    # values keep them as such; a schema's integer field refuses them.
    for number in (2**63, 2**64 - 1):
        out.append(("POST", "/api/v1/tasks", {"json": {"type": "t", "payload": {"n": number}}}))
        patch = {"status": "running", "result": {"n": number}}
        out.append(("PATCH", f"/api/v1/tasks/{task_id}", {"json": patch}))
    raw_bodies = [b"", b"{", b"nul", b"[1,]", b"1e400", b'{"id": 1e999}', b"\xff\xfe", b"\x00"]
    for target in ("/api/v1/apps", "/api/v1/package", "/api/v1/tasks"):
        for raw in raw_bodies:
            out.append(
                ("POST", target, {"data": raw, "headers": {"Content-Type": "application/json"}})
            )
        for value in (None, [], 1, "x", [APP], True):
            out.append(("POST", target, {"data": json.dumps(value)}))
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "", "json"):
            headers = {"Content-Type": content_type}
            out.append(("POST", target, {"data": json.dumps(APP), "headers": headers}))
    out += [
        ("POST", "/api/v1/package", {"json": {"apps": []}}),
        ("POST", "/api/v1/package", {"json": {"apps": "all"}}),
        ("POST", "/api/v1/package", {"json": {"apps": [APP], "extra": 1}}),
        ("PUT", "/api/v1/apps/404", {"json": {**APP, "id": 404}, "headers": {"If-Match": '"x"'}}),
        ("PATCH", "/api/v1/apps/404", {"json": {"name": "n"}, "headers": {"If-Match": "*"}}),
        ("DELETE", "/api/v1/apps/404", {"headers": {"If-Match": "*"}}),
        ("PUT", "/api/v1/apps/7", {"json": APP, "headers": {"If-Match": '"stale"'}}),
        (
            "PATCH",
            "/api/v1/tasks/nope",
            {"json": {"status": "running"}, "headers": {"If-Match": "*"}},
        ),
        ("GET", "/api/v1/apps?order_by=-nothing", {}),
        ("GET", "/api/v1/apps?page=1&page=2", {}),
        ("GET", "/api/v1/apps?fields=id,secret", {}),
        ("GET", "/api/v1/apps?count=maybe", {}),
        ("GET", "/api/v1/apps?release_date__gte=2020-02-30", {}),
        ("GET", "/api/v1/apps?is_free=perhaps", {}),
        ("GET", "/api/v1/apps?%24where=1", {}),
        ("GET", "/api/v1/apps?name__in=", {}),
        ("GET", "/api/v1/apps/7?page=1", {}),
        ("GET", "/api/v1/apps/7/prices/usa", {}),
    ]
    return out


FORGED_CURSORS = [
    "x",
    "x.y",
    "....",
    "eyJ2IjpbIngiLDFdLCJzIjoiYWJjIn0",  # the old format: {"v": ["x", 1], "s": "abc"}
    "WyJ4IiwxXQ.AAAAAAAAAAAAAAAAAAAAAA",  # ["x", 1] with a made-up MAC
    "Wy0xXQ.AAAAAAAAAAAAAAAAAAAAAA",  # [-1]: a rank before the start
]


@pytest.fixture
async def client(restplug_client):
    client = await restplug_client(plugins=[AllowWrites()])
    for id in (7, 8, 9, 10):
        response = await client.post("/api/v1/apps", json={**APP, "id": id})
        assert response.status == 201
    return client


async def snapshot(client) -> Any:
    apps = await client.get(
        "/api/v1/apps?size=100&order_by=id", headers={"Cache-Control": "no-cache"}
    )
    tasks = await client.get("/api/v1/tasks?size=100")
    assert apps.status == tasks.status == 200
    return (await apps.json())["items"], [
        (t["id"], t["status"], t["payload"]) for t in (await tasks.json())["items"]
    ]


async def assert_problem(response, method: str, path: str) -> None:
    body = await response.read()
    where = f"{method} {path[:60]}...{path[-200:]} -> {response.status} {body[:300]!r}"
    assert 400 <= response.status < 500, where
    assert response.content_type == "application/problem+json", where
    problem = json.loads(body)
    assert problem["status"] == response.status, where


async def test_every_hostile_probe_is_a_4xx_problem_and_changes_nothing(client):
    created = await client.post("/api/v1/tasks", json={"type": "scrape", "payload": {"n": 1}})
    task_id = (await created.json())["id"]
    before = await snapshot(client)
    table = probes(task_id)
    for method, path, options in table:
        response = await client.request(method, path, **options)
        await assert_problem(response, method, f"{path} {options}")
    page = await client.get("/api/v1/apps?size=1&genres__in=RPG")
    cursor = (await page.json())["next_cursor"]
    assert cursor
    misuse = [
        f"/api/v1/apps?size=1&cursor={cursor}",  # another filter (none)
        f"/api/v1/apps?size=1&genres__in=Action&cursor={cursor}",
        f"/api/v1/apps?size=1&genres__in=RPG&order_by=name&cursor={cursor}",
        f"/api/v1/apps?size=1&genres__in=RPG&page=2&cursor={cursor}",
        f"/api/v1/apps?size=1&genres__in=RPG&cursor={cursor[:-2]}AA",
        f"/api/v1/tasks?cursor={cursor}",
        *(f"/api/v1/apps?cursor={forged}" for forged in FORGED_CURSORS),
        *(f"/api/v1/apps?search=probe&cursor={forged}" for forged in FORGED_CURSORS),
    ]
    for path in misuse:
        await assert_problem(await client.get(path), "GET", path)
    assert await snapshot(client) == before
    assert len(table) + len(misuse) > 250


async def test_a_cursor_pages_on_with_the_filters_it_was_made_for(client):
    seen, path = [], "/api/v1/apps?size=1&genres__in=RPG&order_by=-total_recommendations"
    while path:
        response = await client.get(path)
        assert response.status == 200
        body = await response.json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        path = (
            f"/api/v1/apps?genres__in=RPG&size=2&order_by=-total_recommendations&cursor={cursor}"
            if cursor
            else ""
        )
    assert sorted(seen) == [7, 8, 9, 10]


async def test_a_bad_list_element_is_a_422_naming_its_index(client):
    response = await client.post("/api/v1/apps", json={**APP, "id": 11, "genres": ["ok", 1]})
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert (await response.json())["errors"] == {"genres": {"1": ["Not a valid string."]}}


async def test_a_package_with_a_bad_list_element_keeps_the_good_apps_and_says_which(client):
    good = {"id": 20, "name": "Good", "type": "game"}
    bad = {"id": 21, "name": "Bad", "type": "game", "genres": [1]}
    huge = {"id": 22, "name": "Huge", "type": "game", "total_recommendations": 2**64 - 1}
    response = await client.post("/api/v1/package", json={"apps": [good, bad, huge]})
    assert response.status == 200
    body = await response.json()
    assert body["created"] == 1
    assert [(r["index"], r["id"]) for r in body["rejected"]] == [(1, 21), (2, 22)]
    assert body["rejected"][0]["errors"] == {"genres": {"0": ["Not a valid string."]}}
    assert (await client.get("/api/v1/apps/20")).status == 200
    assert (await client.get("/api/v1/apps/22")).status == 404


@pytest.mark.parametrize("path", ["/api/v1/apps", "/api/v1/apps/7", "/api/v1/apps/7/prices/US"])
async def test_head_answers_every_read_route_with_the_get_headers(client, path):
    get, head = await client.get(path), await client.head(path)
    assert head.status == get.status == 200
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert await head.read() == b""


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_if_match_on_a_missing_app_is_412(client, method):
    response = await client.request(
        method, "/api/v1/apps/404", json={**APP, "id": 404}, headers={"If-Match": "*"}
    )
    assert response.status == 412
    without = await client.request(method, "/api/v1/apps/404", json={**APP, "id": 404})
    assert without.status == 404


async def test_if_match_on_a_missing_task_is_412(client):
    response = await client.patch(
        "/api/v1/tasks/nope", json={"status": "running"}, headers={"If-Match": "*"}
    )
    assert response.status == 412


@pytest.mark.parametrize("spelling", ["\uff18", "\u0668", "+8", " 8", "0_8", "8 "])
async def test_an_id_is_ascii_digits_only(client, spelling):
    assert (await client.get("/api/v1/apps/8")).status == 200
    assert (await client.get(f"/api/v1/apps/{quote(spelling)}")).status == 404
