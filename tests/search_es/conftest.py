"""Fixtures of the Elasticsearch plugin's tests: a search cluster, and URLs of their own on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from es_helpers import REAL_CLUSTER, OsmemProcess, osmem_process, with_prefix


@pytest.fixture(scope="session")
def es_cluster_url() -> Iterator[str]:
    """The URL of the cluster every test of the session shares (each with its own names)."""
    if REAL_CLUSTER:
        yield REAL_CLUSTER
        return
    with osmem_process() as server:
        yield server.url


@pytest.fixture
def es_url(es_cluster_url: str) -> str:
    """A ``RESTPLUG_SEARCH_URL`` with an index prefix of this test's own."""
    return with_prefix(es_cluster_url)


@pytest.fixture
def outage_es() -> Iterator[OsmemProcess]:
    """An osmem-server of this test's own, to kill, freeze and restart."""
    with osmem_process() as server:
        yield server
