"""The search contract, run against the Elasticsearch plugin (osmem-server or a real cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from es_helpers import free_port

from restplug.search.contract import COLLECTION, FIELDS
from restplug.testing import SearchIndexContract
from restplug_search_es.index import ElasticsearchIndex


class TestElasticsearchIndexContract(SearchIndexContract):
    @pytest.fixture
    def make_index(self, es_url: str) -> Callable[[], ElasticsearchIndex]:
        return lambda: ElasticsearchIndex(es_url)

    @pytest_asyncio.fixture
    async def unavailable_index(self) -> AsyncIterator[ElasticsearchIndex]:
        """An index whose cluster is not there: nothing listens on its port."""
        index = ElasticsearchIndex(f"elasticsearch://127.0.0.1:{free_port()}")
        await index.open()
        with pytest.raises(Exception):  # noqa: B017 - unreachable: prepare fails too
            await index.prepare(COLLECTION, FIELDS)
        yield index
        await index.close()
