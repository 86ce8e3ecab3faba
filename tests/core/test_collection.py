"""``restplug.collection(name)``: the one door for a resource's documents.  A plugin's write
through it is seen as a client's: cached reads renew, the search index finds it, and
``documents_changed`` tells every plugin, once per write batch."""

from __future__ import annotations

import gc

import pytest
from marshmallow import ValidationError

from restplug import Change, Collection, FindQuery, Write, hookimpl
from restplug.app import RESTPLUG
from restplug.errors import Conflict, NotFound, PreconditionFailed
from restplug.http import etag_of
from restplug.loading import BULK_GC_THRESHOLD
from restplug.testing import AllowWrites

APPS = "/api/v1/apps"


def app(id: int, name: str) -> dict:
    return {"id": id, "name": name, "type": "game"}


class Recorder:
    """Records each ``documents_changed`` call: (resource, [(id, name or None)])."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[object, str | None]]]] = []

    @hookimpl
    def documents_changed(self, resource, changes):
        assert all(isinstance(change, Change) for change in changes)
        named = [(c.id, c.document and c.document["name"]) for c in changes]
        self.calls.append((resource.name, named))


@pytest.fixture
async def setup(restplug_client):
    recorder = Recorder()
    client = await restplug_client(plugins=[AllowWrites(), recorder])
    return client, client.app[RESTPLUG].collection("apps"), recorder


async def test_an_unknown_name_is_a_clear_error(setup):
    client, apps, _ = setup
    assert isinstance(apps, Collection) and apps.name == "apps"
    with pytest.raises(LookupError, match=r"'games'.*apps"):
        client.app[RESTPLUG].collection("games")


async def test_reads_and_compare_and_set_writes(setup):
    _, apps, _ = setup
    etag = await apps.insert(1, app(1, "Hades"))
    assert etag == etag_of(app(1, "Hades"))
    with pytest.raises(Conflict):
        await apps.insert(1, app(1, "Hades again"))
    stored = await apps.get(1)
    assert stored is not None and (stored.document["name"], stored.etag) == ("Hades", etag)

    renamed = await apps.replace(1, app(1, "Hades II"), if_etag=etag)
    with pytest.raises(PreconditionFailed):  # the ETag read before is stale now
        await apps.replace(1, app(1, "Lost update"), if_etag=etag)
    with pytest.raises(PreconditionFailed):
        await apps.delete(1, if_etag=etag)
    with pytest.raises(NotFound):
        await apps.replace(2, app(2, "Nobody"))
    assert (await apps.get(1)).etag == renamed

    await apps.insert(2, app(2, "Celeste"))
    assert await apps.count() == 2
    assert await apps.count({"name": "Celeste"}) == 1
    found = await apps.find(FindQuery(sort=[("name", 1)]))
    assert [s.document["name"] for s in found] == ["Celeste", "Hades II"]
    await apps.delete(1, if_etag=renamed)
    assert await apps.get(1) is None
    with pytest.raises(NotFound):
        await apps.delete(1)


async def test_a_write_renews_cached_reads_and_reaches_the_search_index(setup):
    client, apps, _ = setup
    await apps.insert(1, app(1, "Hollow Knight"))
    for path in (f"{APPS}/1", f"{APPS}?search=hollow"):
        await client.get(path)
        assert (await client.get(path)).headers["X-Cache"] == "HIT"
    await apps.replace(1, app(1, "Silksong"))
    detail = await client.get(f"{APPS}/1")
    assert (detail.headers["X-Cache"], (await detail.json())["name"]) == ("MISS", "Silksong")
    assert (await (await client.get(f"{APPS}?search=hollow")).json())["total"] == 0
    assert (await (await client.get(f"{APPS}?search=silksong")).json())["total"] == 1


async def test_every_write_tells_the_plugins_once_per_batch(setup):
    client, apps, recorder = setup
    await apps.insert(1, app(1, "One"))
    await apps.delete(1)
    applied = await apps.bulk(
        [Write(id, app(id, f"Bulk {id}")) for id in range(10, 15)] + [Write(99, None)]
    )
    assert applied == [True] * 5 + [False]  # the delete of a missing id does not apply
    assert (await apps.get(10)).etag == etag_of(app(10, "Bulk 10"))  # ETag filled in
    # The core's routes go through the same door.
    assert (await client.post(APPS, json=app(2, "Two"))).status == 201
    assert recorder.calls == [
        ("apps", [(1, "One")]),
        ("apps", [(1, None)]),
        ("apps", [(id, f"Bulk {id}") for id in range(10, 15)]),
        ("apps", [(2, "Two")]),
    ]


async def test_upsert_all_writes_the_batches_before_a_bad_document_and_stops(setup):
    client, apps, _ = setup
    restplug = client.app[RESTPLUG]
    resource = restplug.resources["apps"]
    good = [app(id, f"Game {id}") for id in range(1, 1001)]
    # Documents are read a batch ahead of the writes: the error still stops the load after
    # the batches before it are written, and before anything of its own batch is.
    documents = [*good, {"id": 1001, "name": "", "type": "game"}, app(1002, "Never")]
    with pytest.raises(ValidationError):
        await restplug.upsert_all(resource, iter(documents))
    assert await apps.count() == 1000
    assert await restplug.upsert_all(resource, good) == 0  # unchanged


async def test_upsert_all_writes_an_id_given_again_in_the_next_batch_last(setup):
    client, apps, recorder = setup
    restplug = client.app[RESTPLUG]
    # Batches of 500: the next batch is written while the one before settles, unless they
    # share an id, as the first two do here (7).
    documents = [
        *(app(id, f"Game {id}") for id in range(1, 501)),
        app(7, "Seven again"),
        *(app(id, f"Game {id}") for id in range(501, 1001)),
    ]
    assert await restplug.upsert_all(restplug.resources["apps"], documents) == 1001
    assert await apps.count() == 1000
    assert (await apps.get(7)).document["name"] == "Seven again"
    told = [change for _, changes in recorder.calls for change in changes]
    # Batches without an id in common settle in any order; an id's changes, in its order.
    assert len(told) == 1001
    assert told.index((7, "Game 7")) < told.index((7, "Seven again"))


async def test_upsert_all_leaves_the_cycle_collector_as_it_found_it(setup):
    client, _, _ = setup
    restplug = client.app[RESTPLUG]
    before = gc.get_threshold()
    seen = []

    def documents():
        for id in range(1, 601):
            seen.append(gc.get_threshold())
            yield app(id, f"Game {id}")

    assert await restplug.upsert_all(restplug.resources["apps"], documents()) == 600
    # Rarely run while the documents are in flight, as before once they are written.
    assert all(threshold == BULK_GC_THRESHOLD for threshold in seen)
    assert gc.get_threshold() == before
    with pytest.raises(ValidationError):
        await restplug.upsert_all(restplug.resources["apps"], [{"id": 1, "name": ""}])
    assert gc.get_threshold() == before
