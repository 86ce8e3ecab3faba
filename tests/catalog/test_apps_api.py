"""The apps resource over HTTP: every endpoint's success and error paths."""

from __future__ import annotations

import copy
import json

import pytest

from restplug.app import RESTPLUG
from restplug.testing import AllowWrites

APP = {
    "id": 10,
    "name": "The Witcher 3: Wild Hunt",
    "type": "game",
    "is_free": False,
    "short_description": "A story-driven open world RPG.",
    "developers": ["CD PROJEKT RED"],
    "publishers": ["CD PROJEKT RED"],
    "genres": ["RPG", "Action"],
    "categories": ["Single-player"],
    "platforms": {"windows": True, "mac": False, "linux": False},
    "release_date": "2015-05-18",
    "total_recommendations": 500000,
    "prices": {
        "US": {
            "currency": "USD",
            "is_available": True,
            "price_story": [
                {
                    "price": 9.99,
                    "initial_price": 39.99,
                    "discount": 75,
                    "timestamp": "2026-01-02T00:00:00+00:00",
                },
                {
                    "price": 39.99,
                    "initial_price": 39.99,
                    "discount": 0,
                    "timestamp": "2025-01-01T00:00:00+00:00",
                },
            ],
        }
    },
}


def presented(document: dict) -> dict:
    """What reads return: the latest price per country and links to the histories."""
    prices = {c: {**p, "price_story": p["price_story"][:1]} for c, p in document["prices"].items()}
    links = {c: f"/api/v1/apps/{document['id']}/prices/{c}" for c in prices}
    return {**document, "prices": prices, "_links": {"price_history": links}}


def app(id: int = 10, **changes: object) -> dict:
    document = copy.deepcopy(APP)
    document.update(id=id, **changes)
    return document


@pytest.fixture
async def client(restplug_client):
    return await restplug_client(plugins=[AllowWrites()])


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


async def test_create_then_read(client):
    response = await client.post("/api/v1/apps", json=app())
    assert response.status == 201
    assert response.headers["Location"] == "/api/v1/apps/10"
    created = await response.json()
    assert created == presented(app())

    response = await client.get("/api/v1/apps/10")
    assert response.status == 200
    assert await response.json() == created
    assert response.headers["ETag"].startswith('"')


async def test_defaults_are_filled_in(client):
    response = await client.post("/api/v1/apps", json={"id": 3, "name": "Tiny", "type": "demo"})
    body = await response.json()
    assert response.status == 201
    assert body["genres"] == [] and body["prices"] == {} and body["total_recommendations"] == 0
    assert body["platforms"] == {"windows": False, "mac": False, "linux": False}


async def test_create_existing_id_is_409_and_changes_nothing(client):
    await client.post("/api/v1/apps", json=app())
    response = await client.post("/api/v1/apps", json=app(name="Other"))
    body = await problem(response, 409)
    assert "10" in body["detail"]
    assert (await (await client.get("/api/v1/apps/10")).json())["name"] == APP["name"]


async def test_validation_errors_are_per_field(client):
    bad = app(id=-1, type="boardgame")
    del bad["name"]
    body = await problem(await client.post("/api/v1/apps", json=bad), 422)
    assert set(body["errors"]) == {"id", "type", "name"}
    assert (await (await client.get("/api/v1/apps")).json())["total"] == 0


async def test_unknown_field_is_422(client):
    body = await problem(await client.post("/api/v1/apps", json=app(colour="red")), 422)
    assert "colour" in body["errors"]


async def test_malformed_json_is_400(client):
    response = await client.post(
        "/api/v1/apps", data=b'{"id": 1,', headers={"Content-Type": "application/json"}
    )
    await problem(response, 400)


async def test_wrong_content_type_is_415(client):
    response = await client.post(
        "/api/v1/apps", data=b"id=1", headers={"Content-Type": "text/plain"}
    )
    await problem(response, 415)


async def test_body_over_the_limit_is_413(restplug_client):
    client = await restplug_client(env={"RESTPLUG_MAX_BODY": "1000"}, plugins=[AllowWrites()])
    response = await client.post("/api/v1/apps", json=app(short_description="x" * 2000))
    await problem(response, 413)


async def test_missing_and_bad_ids_are_404(client):
    await problem(await client.get("/api/v1/apps/404"), 404)
    await problem(await client.get("/api/v1/apps/abc"), 404)
    await problem(await client.delete("/api/v1/apps/404"), 404)
    await problem(await client.put("/api/v1/apps/404", json=app(404)), 404)
    patch = await client.patch("/api/v1/apps/404", json={"name": "x"})
    await problem(patch, 404)


async def test_put_replaces_whole_document(client):
    await client.post("/api/v1/apps", json=app())
    replacement = {"id": 10, "name": "Renamed", "type": "dlc"}
    response = await client.put("/api/v1/apps/10", json=replacement)
    assert response.status == 200
    body = await (await client.get("/api/v1/apps/10")).json()
    assert body["name"] == "Renamed" and body["genres"] == [] and body["prices"] == {}


async def test_put_cannot_change_the_id(client):
    await client.post("/api/v1/apps", json=app())
    body = await problem(await client.put("/api/v1/apps/10", json=app(11)), 422)
    assert "id" in body["errors"]


async def test_merge_patch(client):
    await client.post("/api/v1/apps", json=app())
    patch = {"name": "Patched", "platforms": {"linux": True}, "short_description": None}
    response = await client.patch(
        "/api/v1/apps/10",
        data=json.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status == 200, await response.text()
    body = await (await client.get("/api/v1/apps/10")).json()
    assert body["name"] == "Patched"
    assert body["platforms"] == {"windows": True, "mac": False, "linux": True}
    assert body["short_description"] == ""  # removed, so the default applies again
    assert body["prices"] == presented(APP)["prices"]


async def test_patch_that_breaks_validation_is_422_and_changes_nothing(client):
    await client.post("/api/v1/apps", json=app())
    await problem(await client.patch("/api/v1/apps/10", json={"type": "boardgame"}), 422)
    await problem(await client.patch("/api/v1/apps/10", json=[1, 2]), 422)
    assert (await (await client.get("/api/v1/apps/10")).json())["type"] == "game"


async def test_delete(client):
    await client.post("/api/v1/apps", json=app())
    assert (await client.delete("/api/v1/apps/10")).status == 204
    await problem(await client.get("/api/v1/apps/10"), 404)


async def test_if_none_match_gives_304(client):
    await client.post("/api/v1/apps", json=app())
    etag = (await client.get("/api/v1/apps/10")).headers["ETag"]
    response = await client.get("/api/v1/apps/10", headers={"If-None-Match": etag})
    assert response.status == 304 and response.headers["ETag"] == etag
    weak = await client.get("/api/v1/apps/10", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status == 304
    other = await client.get("/api/v1/apps/10", headers={"If-None-Match": '"other"'})
    assert other.status == 200


async def test_etag_changes_with_content_and_is_stable(client):
    await client.post("/api/v1/apps", json=app())
    first = (await client.get("/api/v1/apps/10")).headers["ETag"]
    assert (await client.get("/api/v1/apps/10")).headers["ETag"] == first
    await client.patch("/api/v1/apps/10", json={"name": "New"})
    assert (await client.get("/api/v1/apps/10")).headers["ETag"] != first


async def test_if_match_stale_is_412_and_changes_nothing(client):
    await client.post("/api/v1/apps", json=app())
    etag = (await client.get("/api/v1/apps/10")).headers["ETag"]
    ok = await client.patch("/api/v1/apps/10", json={"name": "A"}, headers={"If-Match": etag})
    assert ok.status == 200
    for method in ("patch", "put", "delete"):
        response = await getattr(client, method)(
            "/api/v1/apps/10", json=app(name="B"), headers={"If-Match": etag}
        )
        await problem(response, 412)
    assert (await (await client.get("/api/v1/apps/10")).json())["name"] == "A"
    weak = await client.patch(
        "/api/v1/apps/10", json={"name": "C"}, headers={"If-Match": f"W/{ok.headers['ETag']}"}
    )
    await problem(weak, 412)  # If-Match compares strongly
    star = await client.patch("/api/v1/apps/10", json={"name": "C"}, headers={"If-Match": "*"})
    assert star.status == 200


async def test_require_if_match_gives_428(restplug_client):
    client = await restplug_client(env={"RESTPLUG_REQUIRE_IF_MATCH": "1"}, plugins=[AllowWrites()])
    await client.post("/api/v1/apps", json=app())
    await problem(await client.patch("/api/v1/apps/10", json={"name": "x"}), 428)
    await problem(await client.delete("/api/v1/apps/10"), 428)
    etag = (await client.get("/api/v1/apps/10")).headers["ETag"]
    assert (await client.delete("/api/v1/apps/10", headers={"If-Match": etag})).status == 204


async def test_detail_sparse_fields(client):
    await client.post("/api/v1/apps", json=app())
    body = await (await client.get("/api/v1/apps/10?fields=id,name,prices.US.currency")).json()
    assert body == {"id": 10, "name": APP["name"], "prices": {"US": {"currency": "USD"}}}
    bad = await problem(await client.get("/api/v1/apps/10?fields=colour"), 400)
    assert "fields" in bad["detail"]


async def test_writes_are_closed_without_a_permission_plugin(restplug_client):
    client = await restplug_client()
    body = await problem(await client.post("/api/v1/apps", json=app()), 403)
    assert "write" in body["detail"]
    assert (await client.get("/api/v1/apps")).status == 200


async def test_errors_never_leak_internals(client, monkeypatch):
    restplug = client.app[RESTPLUG]

    async def broken(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(restplug.store, "get", broken)
    response = await client.get("/api/v1/apps/1")
    body = await problem(response, 500)
    assert "SELECT" not in await response.text() and "Traceback" not in await response.text()
    assert body["detail"]


async def test_a_read_can_be_sent_back(client):
    await client.post("/api/v1/apps", json=app())
    read = await client.get("/api/v1/apps/10")
    body = await read.json()
    body["name"] = "Edited"
    response = await client.put(
        "/api/v1/apps/10", json=body, headers={"If-Match": read.headers["ETag"]}
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["_links"] == body["_links"]
