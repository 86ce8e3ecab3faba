"""Method filters and sorts declare index paths, and the real SQLite store serves them from
their indexes: ``order_by=discount`` and ``price_lte`` plan neither a full scan nor a sort."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from restplug import hookimpl
from restplug.app import RESTPLUG, Restplug
from restplug.errors import ConfigError
from restplug.methods import SortMethod
from restplug.stores.protocol import FindQuery
from restplug.testing import isolated_environ
from restplug_catalog.plugin import APPS

#: Enough apps for the planner's statistics (the store keeps them from 1,000 documents on).
COUNT = 1500


def app(id: int) -> dict:
    """An app with a US price for most ids; a few without one, as the catalogue has."""
    document = {"id": id, "name": f"App {id}", "type": "game", "total_recommendations": id % 97}
    if id % 10:
        story = [
            {
                "price": round(id % 40 + 0.99, 2),
                "initial_price": 49.99,
                "discount": id % 90,
                "timestamp": "2026-10-01T00:00:00+00:00",
            }
        ]
        document["prices"] = {"US": {"currency": "USD", "is_available": True, "price_story": story}}
    return document


@pytest.fixture
async def restplug(restplug_client) -> Restplug:
    client = await restplug_client()
    restplug = client.app[RESTPLUG]
    await restplug.upsert_all(APPS, (app(id) for id in range(1, COUNT + 1)))
    # As a start-up on a full store does: the planner's statistics.
    await restplug.store.prepare(APPS.name, restplug.parsers[APPS.name].index_paths)
    return restplug


async def plans(restplug: Restplug, query: str) -> tuple[list[str], list[str]]:
    """SQLite's plans for the first page and for the total of ``GET /api/v1/apps?query``."""
    parser = restplug.parsers[APPS.name]
    request = parser.parse(parse_qs(query))
    resolved = await parser.resolve(request)
    store = restplug.backends["store"]
    find = FindQuery(resolved.filter, resolved.sort, 0, request.size + 1, resolved.missing_last)
    return await store.explain(APPS.name, find), await store.explain_count(
        APPS.name, resolved.filter
    )


def full_scans(plan: list[str]) -> list[str]:
    """The steps that read every row of the table, or sort the matches."""
    return [line for line in plan if line == f"SCAN {APPS.name}" or "TEMP B-TREE" in line]


def test_the_methods_declare_their_paths(restplug: Restplug) -> None:
    paths = restplug.parsers[APPS.name].index_paths
    assert "prices.US.price_story.0.discount" in paths
    assert "prices.US.price_story.0.price" in paths
    assert set(APPS.index_paths) <= set(paths)


@pytest.mark.parametrize("order", ["discount", "-discount"])
async def test_discount_order_walks_its_index(restplug: Restplug, order: str) -> None:
    page, _ = await plans(restplug, f"order_by={order}")
    assert not full_scans(page), page
    assert any("prices.US.price_story.0.discount" in line for line in page), page


async def test_price_bound_counts_from_its_index(restplug: Restplug) -> None:
    page, count = await plans(restplug, "price_lte=9.99")
    assert not full_scans(page), page
    assert not full_scans(count), count
    assert any("INDEX apps.prices.US.price_story.0.price" in line for line in count), count


def us_discount(document: dict) -> int | None:
    prices = document.get("prices", {})
    return prices["US"]["price_story"][0]["discount"] if "US" in prices else None


async def test_pages_in_two_parts_follow_one_order(restplug_client) -> None:
    """Apps with a discount, then those without: page after page, as one order."""
    client = await restplug_client()
    documents = [app(id) for id in range(1, 41)]
    await client.app[RESTPLUG].upsert_all(APPS, documents)
    ordered = sorted(documents, key=lambda d: (us_discount(d) is None, us_discount(d), d["id"]))
    seen = []
    for page in range(1, 5):
        response = await client.get(f"/api/v1/apps?order_by=discount&size=12&page={page}")
        seen += [item["id"] for item in (await response.json())["items"]]
    assert seen == [d["id"] for d in ordered]


class Typo:
    """A sort method whose index path is not in the schema."""

    @hookimpl
    def register_sorts(self, resource):
        keys = lambda restplug, resource: [("prices.US.discount", 1)]  # noqa: E731
        return [SortMethod("typo", keys, index_paths=("prices.US.discount",))]


async def test_a_method_index_path_outside_the_schema_stops_start_up(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"sort 'typo' of plugin .* 'prices\.US\.discount'"):
        await Restplug.configure(isolated_environ(tmp_path), [Typo()])
