"""The catalogue's search served on the Elasticsearch plugin: it finds every app the embedded
index finds on the same store, with filters, sorts and cursors; and a cluster that is down or
frozen costs searches (503 within 5 s), never lists or writes, nor the writes made meanwhile."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from es_helpers import OsmemProcess, with_prefix
from servers import Server, call, cli, token

from restplug.testing import ClientFactory

APPS = 300
# Field filters, method filters and sorts the searches are combined with.
FILTERS: list[dict[str, str]] = [
    {},
    {"type": "game"},
    {"is_free": "false", "order_by": "name"},
    {"total_recommendations__gte": "100", "order_by": "-total_recommendations,name"},
    {"type__in": "game,dlc", "is_available_in_countries": "US", "order_by": "discount"},
    {"release_date__gte": "2015-01-01", "order_by": "-release_date"},
]


async def every_page(
    client: Any, params: dict[str, str], size: int = 100
) -> tuple[list[int], list[int | None]]:
    """All ids of a list, page after page through its cursors, and each page's total."""
    ids: list[int] = []
    totals: list[int | None] = []
    query = {**params, "size": str(size)}
    while True:
        response = await client.get("/api/v1/apps?" + urlencode(query))
        assert response.status == 200, await response.text()
        body = await response.json()
        ids += [item["id"] for item in body["items"]]
        totals.append(body["total"])
        if not body["next_cursor"]:
            return ids, totals
        query = {**params, "cursor": body["next_cursor"], "size": str(size)}


def words_of_names(documents: list[dict[str, Any]], n: int) -> list[str]:
    """The ``n`` whole words most frequent in app names (of four letters or more)."""
    counts = Counter(
        word.lower() for doc in documents for word in re.findall(r"[^\W_]{4,}", doc["name"])
    )
    return [word for word, _ in counts.most_common(n)]


async def test_search_finds_every_app_the_embedded_index_finds(
    tmp_path: Path, restplug_client: ClientFactory, es_url: str
) -> None:
    loaded = cli(tmp_path, "demo-data", "--count", str(APPS), "--seed", "12")
    assert loaded.returncode == 0, loaded.stderr
    reindexed = cli(tmp_path, "reindex", RESTPLUG_SEARCH_URL=es_url)
    assert reindexed.returncode == 0, reindexed.stderr
    env = {"RESTPLUG_DISABLE_PLUGINS": "ratelimit"}
    embedded = await restplug_client(env=env)
    elastic = await restplug_client(env={**env, "RESTPLUG_SEARCH_URL": es_url})
    names = []
    for page in range(1, APPS // 100 + 1):  # the demo catalogue, for its words
        listed = await embedded.get(f"/api/v1/apps?size=100&page={page}&fields=id,name")
        names += (await listed.json())["items"]
    words = words_of_names(names, 8)
    assert len(words) == 8
    most_pages = 0
    for word in words:
        for filters in FILTERS:
            params = {"search": word, **filters}
            # Small pages: most searches go through several cursors.
            found, totals = await every_page(elastic, params, size=7)
            expected, _ = await every_page(embedded, params, size=7)
            assert set(expected) <= set(found), params
            assert len(found) == len(set(found)), params  # no app twice across pages
            assert totals[0] == len(found), params  # exact for what it returns
            most_pages = max(most_pages, len(totals))
            # Every filter holds and the order is the requested one: the store's own list
            # without the search, restricted to what the search found.
            # Without order_by the order is relevance, which the two indexes rank apart.
            unsearched = {k: v for k, v in params.items() if k != "search"}
            listed, _ = await every_page(elastic, unsearched)
            if "order_by" in unsearched:
                assert [id for id in listed if id in set(found)] == found, params
            else:
                assert set(found) <= set(listed), params
    assert most_pages >= 3  # the cursors were followed


WRITER = token("backend/*")


def search(server: Server, text: str, timeout: float = 10) -> tuple[int, Any, float]:
    started = time.monotonic()
    status, _, body = call(f"{server.url}/api/v1/apps?search={text}", timeout=timeout)
    return status, body, time.monotonic() - started


def create(server: Server, id: int, name: str) -> int:
    app = {"id": id, "name": name, "type": "game"}
    return call(f"{server.url}/api/v1/apps", "POST", app, token=WRITER)[0]


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
def test_an_outage_costs_searches_only_and_loses_no_write(
    tmp_path: Path, outage_es: OsmemProcess, outage: str
) -> None:
    server = Server(
        tmp_path,
        RESTPLUG_SEARCH_URL=with_prefix(outage_es.url),
        RESTPLUG_OUTBOX_RETRY_MS="200",
        RESTPLUG_DISABLE_PLUGINS="ratelimit",
    ).start()
    try:
        assert create(server, 1, "Hollow Knight") == 201
        status, body, _ = search(server, "hollow")
        assert status == 200 and [app["id"] for app in body["items"]] == [1]

        if outage == "stopped":
            outage_es.kill()
        else:
            outage_es.freeze()
        assert create(server, 2, "Hollow Crown") == 201
        assert call(f"{server.url}/api/v1/apps/1", "PATCH", {"name": "Silksong"}, WRITER)[0] == 200
        status, _, body = call(f"{server.url}/api/v1/apps")
        assert status == 200 and "items" in body, body
        assert sorted(app["id"] for app in body["items"]) == [1, 2]
        status, body, took = search(server, "hollow")
        assert status == 503 and took < 5, (status, took)
        assert body["status"] == 503

        if outage == "stopped":
            outage_es.start()  # an in-memory server: it comes back empty, at the same address
        else:
            outage_es.thaw()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body, _ = search(server, "hollow")
            if status == 200 and [app["id"] for app in body["items"]] == [2]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"writes made during the outage never became searchable: {body}")
        status, body, _ = search(server, "silksong")
        assert status == 200 and [app["id"] for app in body["items"]] == [1]
    finally:
        server.stop()
