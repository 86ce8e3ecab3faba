"""One plugin for Elasticsearch and OpenSearch: the root document decides the media types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from elasticsearch import ApiError, AsyncElasticsearch
from es_helpers import OsmemProcess
from servers import cli

from restplug import BackendUnavailable, ConfigError
from restplug_search_es.index import Cluster, ElasticsearchIndex, client_options

VERSIONED = "application/vnd.elasticsearch+json; compatible-with=9"


@pytest.mark.parametrize(
    ("version", "sent"),
    [
        ({"number": "3.8.0", "distribution": "opensearch"}, "application/json"),
        ({"number": "2.19.1", "distribution": "opensearch"}, "application/json"),
        ({"number": "8.17.0"}, "application/vnd.elasticsearch+json; compatible-with=8"),
        ({"number": "9.1.0"}, VERSIONED),
    ],
)
def test_media_type_follows_the_cluster(version: dict[str, str], sent: str) -> None:
    assert Cluster.from_root({"version": version}).media_type(VERSIONED) == sent


@pytest.mark.parametrize("root", [{"version": {"number": "7.17.0"}}, {"name": "not a cluster"}])
def test_an_unsupported_cluster_stops_start_up(root: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Cluster.from_root(root)


def test_url_credentials_and_prefix() -> None:
    options, prefix = client_options("elasticsearch+https://u%40x:p@es.example:9243/shop", "k")
    assert options["hosts"] == [{"scheme": "https", "host": "es.example", "port": 9243}]
    assert options["basic_auth"] == ("u@x", "p") and options["api_key"] == "k"
    assert prefix == "shop"
    with pytest.raises(ConfigError):
        client_options("elasticsearch://host/Bad_Prefix", None)


def test_restplug_plugins_lists_it(tmp_path: Path) -> None:
    listed = cli(tmp_path, "plugins")
    assert listed.returncode == 0, listed.stderr
    assert "elasticsearch" in listed.stdout and "restplug-search-es" in listed.stdout


async def test_opensearch_gets_plain_json(outage_es: OsmemProcess) -> None:
    """osmem-server answers the client's versioned media type as OpenSearch does (406); the
    plugin, having read the root document, is served."""
    client = AsyncElasticsearch(f"http://127.0.0.1:{outage_es.port}", max_retries=0)
    try:
        with pytest.raises(ApiError) as refused:
            await client.index(index="x", id="1", document={"name": "Versioned"})
        assert refused.value.status_code == 406
    finally:
        await client.close()
    index = ElasticsearchIndex(outage_es.url)
    await index.open()
    try:
        await index.prepare("things", {"name": 1.0})
        await index.upsert("things", 1, {"name": "Plain"})
        assert await index.search("things", "plain", 10) == [(1, pytest.approx(1, rel=10))]
    finally:
        await index.close()


async def test_an_old_cluster_stops_start_up_and_later_fails_searches_only(
    aiohttp_server: Any,
) -> None:
    async def root(request: web.Request) -> web.Response:
        return web.json_response({"version": {"number": "7.10.2"}})

    app = web.Application()
    app.router.add_get("/", root)
    server = await aiohttp_server(app)
    url = f"elasticsearch://127.0.0.1:{server.port}"
    with pytest.raises(ConfigError, match=r"7\.10\.2 is too old"):
        await ElasticsearchIndex(url).open()
    # Found after start-up (the cluster was down then): the server runs, search is unavailable.
    index = ElasticsearchIndex(url)
    with pytest.raises(BackendUnavailable):
        await index.ping()
    await index.close()
