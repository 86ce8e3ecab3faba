"""A reindex on a cluster: an alias swap that loses no change made while it ran, in this
process or another one (another worker, the servers while `restplug reindex` runs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from restplug.search.contract import COLLECTION, FIELDS, ids, stream, thing
from restplug_search_es.index import ElasticsearchIndex


@pytest_asyncio.fixture
async def two_processes(
    es_url: str,
) -> AsyncIterator[tuple[ElasticsearchIndex, ElasticsearchIndex]]:
    """Two indexes on the same names, as a server and the reindex command have."""
    pair = (ElasticsearchIndex(es_url), ElasticsearchIndex(es_url))
    for index in pair:
        await index.open()
        await index.prepare(COLLECTION, FIELDS)
    yield pair
    for index in pair:
        await index.close()


async def test_changes_during_a_rebuild_survive_it(two_processes) -> None:
    server, reindex = two_processes
    old = {n: thing(f"Harbor {n}") for n in range(1, 201)}
    for id, document in old.items():
        await server.upsert(COLLECTION, id, document)
    halfway = asyncio.Event()
    rebuild = asyncio.create_task(reindex.rebuild(COLLECTION, stream(old, halfway)))
    await asyncio.sleep(0.2)  # the first half is in the new index
    # Meanwhile a server renames an app already streamed and one not yet streamed (the rebuild
    # streams their old text), deletes one of each, and adds one.
    await server.upsert(COLLECTION, 10, thing("Lighthouse"))
    await server.upsert(COLLECTION, 150, thing("Lantern"))
    await server.delete(COLLECTION, 20)
    await server.delete(COLLECTION, 160)
    await server.upsert(COLLECTION, 999, thing("Harbor Newcomer"))
    halfway.set()
    assert await rebuild == 200
    assert await ids(server, "lighthouse") == [10]
    assert await ids(server, "lantern") == [150]
    harbor = [id for id, _ in await server.search(COLLECTION, "harbor", 1000)]
    assert sorted(harbor) == sorted({*old, 999} - {10, 150, 20, 160})


async def test_a_restarted_cluster_gets_its_index_back_at_the_next_write(es_url: str) -> None:
    index = ElasticsearchIndex(es_url)
    await index.open()
    await index.prepare(COLLECTION, FIELDS)
    try:
        client = await index._connected()
        await client.indices.delete(index=f"{index.prefix}-{COLLECTION}-0")
        await index.upsert(COLLECTION, 1, thing("Phoenix"))
        assert await ids(index, "phoenix") == [1]
    finally:
        await index.close()
