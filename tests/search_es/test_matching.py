"""What the cluster adds to the contract's matching: typo tolerance on whole words."""

from __future__ import annotations

import pytest

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
