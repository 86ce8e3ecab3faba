"""The plugin guide's example (docs/plugins.md) is a real package, and it works."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from restplug.app import RESTPLUG
from restplug_catalog.plugin import APPS

EXAMPLE = Path(__file__).parent / "example_on_sale"
sys.path.insert(0, str(EXAMPLE))

import restplug_on_sale  # noqa: E402  (the example package, registered without installing)


def test_the_guide_shows_the_example_as_it_is():
    guide = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```(?:python|ini)\n(.*?)```", guide, re.S)
    assert (EXAMPLE / "restplug_on_sale" / "__init__.py").read_text() in blocks
    assert (EXAMPLE / "setup.cfg").read_text() in blocks


def price(discount: int) -> dict:
    entry = {
        "price": 10.0,
        "initial_price": 10.0,
        "discount": discount,
        "timestamp": "2026-01-01T00:00:00+00:00",
    }
    return {"currency": "USD", "is_available": True, "price_story": [entry]}


@pytest.fixture
async def client(restplug_client):
    client = await restplug_client(plugins=[restplug_on_sale])
    await client.app[RESTPLUG].upsert_all(
        APPS,
        [
            {"id": 1, "name": "Sale", "type": "game", "prices": {"US": price(30)}},
            {"id": 2, "name": "Full price", "type": "game", "prices": {"US": price(0)}},
            {"id": 3, "name": "No US price", "type": "game"},
        ],
    )
    return client


async def test_the_example_filters(client):
    on = await (await client.get("/api/v1/apps?on_sale=true")).json()
    off = await (await client.get("/api/v1/apps?on_sale=false&order_by=id")).json()
    assert [i["id"] for i in on["items"]] == [1]
    assert [i["id"] for i in off["items"]] == [2, 3]
    bad = await client.get("/api/v1/apps?on_sale=perhaps")
    assert bad.status == 400 and "on_sale" in (await bad.json())["errors"]


async def test_the_example_appears_in_openapi(client):
    document = await (await client.get("/openapi.json")).json()
    names = {p["name"] for p in document["paths"]["/api/v1/apps"]["get"]["parameters"]}
    assert "on_sale" in names
