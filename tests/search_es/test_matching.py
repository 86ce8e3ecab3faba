"""What the cluster adds to the contract's matching: typo tolerance on whole words."""

from __future__ import annotations

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import BadRequestError

from restplug import BackendUnavailable
from restplug.search.contract import COLLECTION, FIELDS, ids, thing
from restplug_search_es.index import ElasticsearchIndex


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("wichter", [1]),  # two letters swapped
        ("witcher hnut", [1]),
        ("harbr", [2]),  # one left out
        ("cozzy", [3]),  # one too many
        ("wi", [1]),  # prefixes stay exact: no typo on a short start
        ("xitcher", []),  # the first letter must be right
        ("hx", []),
    ],
)
async def test_a_typo_in_a_whole_word_is_forgiven(es_url: str, text: str, found: list) -> None:
    index = ElasticsearchIndex(es_url)
    await index.open()
    try:
        await index.prepare(COLLECTION, FIELDS)
        await index.upsert(COLLECTION, 1, thing("The Witcher 3: Wild Hunt"))
        await index.upsert(COLLECTION, 2, thing("Harbor Lights"))
        await index.upsert(COLLECTION, 3, thing("Cozy Grove", "A calm island."))
        assert await ids(index, text) == found
    finally:
        await index.close()


@pytest.mark.parametrize(
    "text", ["abc " * 50, "a " * 100, "witcher " + "wxyzq " * 40, "é" * 200, "ab1_" * 50]
)
async def test_the_longest_search_text_is_answered(es_url: str, text: str) -> None:
    """Search text is at most 200 characters (the filter's limit): however it is cut into
    words, the query stays within what the cluster accepts."""
    index = ElasticsearchIndex(es_url)
    await index.open()
    try:
        await index.prepare(COLLECTION, FIELDS)
        await index.upsert(COLLECTION, 1, thing("The Witcher 3: Wild Hunt", "abc " * 10))
        assert set(await ids(index, text[:200])) <= {1}
    finally:
        await index.close()


async def test_words_past_the_sixteenth_are_not_required(es_url: str) -> None:
    index = ElasticsearchIndex(es_url)
    await index.open()
    try:
        await index.prepare(COLLECTION, FIELDS)
        sixteen = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
        sixteen += "november oscar papa"
        await index.upsert(COLLECTION, 1, thing(sixteen))
        assert await ids(index, sixteen + " quebec") == [1]
        assert await ids(index, "quebec " + sixteen) == []
    finally:
        await index.close()


async def test_a_refused_search_is_unavailable_not_an_error(
    es_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search the cluster refuses (a 4xx other than a missing index: an index changed
    behind the plugin's back, a stricter cluster) makes search unavailable, not a 500."""
    index = ElasticsearchIndex(es_url)
    await index.open()
    try:
        await index.prepare(COLLECTION, FIELDS)
        client = await index._connected()  # the test plays the cluster

        async def refuse(**kwargs: object) -> None:
            node = NodeConfig("http", "127.0.0.1", 9200)
            meta = ApiResponseMeta(400, "1.1", HttpHeaders(), 0.0, node)
            raise BadRequestError("search_phase_execution_exception", meta, {})

        monkeypatch.setattr(client, "search", refuse)
        with pytest.raises(BackendUnavailable):
            await index.search(COLLECTION, "anything", 10)
    finally:
        await index.close()
