"""What the MongoDB store adds to the contract: start-up checks, indexes, outages and recovery,
counting without a scan, package ingest in one bulk write.

The outage cases stop the stand-in (``StandInServer.reachable``), which a real server cannot be
from here, so they run on the stand-in whatever the target; the unreachable server is the real
PyMongo client pointed at a port nobody listens on.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from mongo_targets import MongoTarget
from mongomock_async import StandInServer

from restplug import (
    BackendUnavailable,
    ConfigError,
    FindQuery,
    OutboxEntry,
    QueryTimeout,
    Write,
)
from restplug.app import RESTPLUG
from restplug.testing import AllowWrites
from restplug_catalog.demo import generate_apps
from restplug_mongo_store import MongoStore


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_server_stops_start_up_within_the_selection_timeout() -> None:
    url = f"mongodb://127.0.0.1:{_closed_port()}/restplug?serverSelectionTimeoutMS=300"
    store = MongoStore(url)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        await store.open()
    assert time.monotonic() - started < 10
    with pytest.raises(BackendUnavailable):  # and the store says so after, not a crash
        await store.get("apps", 1)


async def test_a_standalone_server_is_refused_with_how_to_fix_it() -> None:
    server = StandInServer(replica_set=False)
    store = MongoStore("mongodb://user:secret@stand-in/restplug", client_factory=server.client)
    with pytest.raises(ConfigError) as error:
        await store.open()
    message = str(error.value)
    assert "standalone" in message and "--replSet" in message and "rs.initiate()" in message
    assert "secret" not in message


@pytest.mark.parametrize(
    "url", ["mongodb://user:secret@db:99999/restplug", "mongodb+srv://user:secret@db:27017/"]
)
async def test_a_bad_url_stops_start_up_with_one_line(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        await MongoStore(url).open()
    assert "RESTPLUG_STORE_URL" in str(error.value) and "secret" not in str(error.value)


async def test_prepare_creates_an_index_per_declared_path(restplug_client: Any) -> None:
    # The catalogue's store after start-up: every declared filter and sort path indexed with
    # the id after it (multikey on arrays such as genres is MongoDB's own doing).
    client = await restplug_client()
    store = client.app[RESTPLUG].backends["store"]
    assert isinstance(store, MongoStore)
    indexes = await store._db["apps"].index_information()
    paths = [p for p in client.app[RESTPLUG].resources["apps"].index_paths if p != "_id"]
    assert {"genres", "name", "release_date", "total_recommendations", "platforms.mac"} <= {*paths}
    assert {path: indexes[path]["key"] for path in paths} == {
        path: [(path, 1), ("_id", 1)] for path in paths
    }


async def test_an_outage_is_503_and_the_same_client_recovers(client_on: Any) -> None:
    server = StandInServer()
    target = MongoTarget("mongodb://stand-in/restplug", server.client, server)
    client = await client_on(target, plugins=[AllowWrites()])
    app = {"id": 1, "name": "One", "type": "game"}
    assert (await client.post("/api/v1/apps", json=app)).status == 201

    server.reachable = False  # nothing was read yet: no page is in the cache
    for method, path, body in (
        ("GET", "/api/v1/apps/1", None),
        ("GET", "/api/v1/apps?type=game", None),
        ("POST", "/api/v1/apps", {**app, "id": 2}),
        ("PATCH", "/api/v1/apps/1", {"name": "Renamed"}),
        ("POST", "/api/v1/package", {"apps": [{**app, "id": 3}]}),
    ):
        response = await client.request(method, path, json=body)
        assert response.status == 503, (method, path, await response.text())
        assert response.content_type == "application/problem+json"
    ready = await client.get("/health/ready")
    checks = (await ready.json())["checks"]
    assert ready.status == 503
    assert checks["store"].startswith("unavailable")
    assert checks["cache"] == checks["search"] == "ok"

    server.reachable = True
    assert (await client.get("/health/ready")).status == 200
    assert (await client.get("/api/v1/apps/1")).status == 200
    assert (await client.post("/api/v1/apps", json={**app, "id": 2})).status == 201
    listed = await (await client.get("/api/v1/apps?order_by=id")).json()
    assert [item["id"] for item in listed["items"]] == [1, 2]


async def test_counting_everything_reads_the_metadata_not_the_documents() -> None:
    server = StandInServer()
    store = MongoStore("mongodb://stand-in/restplug", client_factory=server.client)
    await store.open()
    await store.bulk_write("things", [Write(i, {"n": i}, "e") for i in range(50)])
    server.calls.clear()
    assert await store.count("things", {}) == 50
    assert server.calls == ["estimated_document_count"]
    assert await store.count("things", {"n": {"$gte": 10}}) == 40
    assert server.calls[-1] == "count_documents"


async def test_a_query_past_max_time_ms_is_a_query_timeout() -> None:
    # The stand-in stops a read that took longer than its maxTimeMS, as the server does;
    # scanning thousands of documents takes mongomock far longer than 1 ms.
    server = StandInServer()
    loader = MongoStore("mongodb://stand-in/restplug", client_factory=server.client)
    await loader.open()
    await loader.bulk_write("things", [Write(i, {"n": i}, "e") for i in range(3000)])
    store = MongoStore("mongodb://stand-in/restplug", timeout_ms=1, client_factory=server.client)
    await store.open()
    query = FindQuery({"n": {"$gte": 0}}, [("n", -1)], skip=2900, limit=20)
    with pytest.raises(QueryTimeout):
        await store.find("things", query)
    with pytest.raises(QueryTimeout):
        await store.count("things", {"n": {"$ne": 5}})
    assert len(await loader.find("things", query)) == 20  # within the default bound


async def test_a_package_is_one_bulk_write(client_on: Any) -> None:
    server = StandInServer()
    target = MongoTarget("mongodb://stand-in/restplug", server.client, server)
    client = await client_on(target, plugins=[AllowWrites()])
    # Without prices: a package carries current prices, not the demo data's price histories.
    apps = [{k: v for k, v in app.items() if k != "prices"} for app in generate_apps(200, seed=3)]
    server.calls.clear()
    response = await client.post("/api/v1/package", json={"apps": apps})
    assert (await response.json())["created"] == 200
    # The apps and then their outbox entries, each in one bulk write (no write per app).
    assert server.calls.count("bulk_write") <= 3
    assert not {"insert_one", "replace_one", "delete_one"} & set(server.calls)


async def test_bulk_write_collapses_several_writes_of_one_id(mongo: MongoTarget) -> None:
    store = mongo.store()
    await store.open()
    try:
        entry = OutboxEntry("outbox", "o", {"x": 1}, "oe")
        applied = await store.bulk_write(
            "things",
            [
                Write(1, {"v": 1}, "a"),
                Write(1, {"v": 2}, "b", if_etag="a"),
                Write.delete(1, if_etag="b"),
                Write(1, {"v": 3}, "c", outbox=entry),
                Write(2, {"v": 1}, "x"),
                Write.delete(2),
            ],
        )
        assert applied == [True] * 6
        assert [(s.id, s.document, s.etag) for s in await store.find("things", FindQuery())] == [
            (1, {"v": 3}, "c")
        ]
        assert (await store.get("outbox", "o")).document == {"x": 1}
    finally:
        await store.close()


async def test_a_document_may_not_hold_the_stores_own_keys(mongo: MongoTarget) -> None:
    store = mongo.store()
    await store.open()
    try:
        for key in ("_id", "_etag"):
            with pytest.raises(ValueError, match="_etag"):
                await store.insert("things", 1, {key: "x"}, "e")
        assert await store.get("things", 1) is None
    finally:
        await store.close()
