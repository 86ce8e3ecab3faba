"""A method filter's value as a plugin declares it: a ``fields.List`` takes a comma list."""

from __future__ import annotations

import pytest
from marshmallow import fields, validate

from restplug import FilterMethod, Fragment, hookimpl
from restplug.testing import AllowWrites


class IdsFilter:
    """``ids=1,3``: the apps with those ids, declared with marshmallow's own List field."""

    @hookimpl
    def register_filters(self, resource):
        if resource.name != "apps":
            return None

        async def only(restplug, resource, ids: list[int]) -> Fragment:
            return Fragment({"id": {"$in": ids}})

        field = fields.List(fields.Integer(), validate=validate.Length(max=3))
        return [FilterMethod("ids", field, only, "comma list of app ids")]


@pytest.fixture
async def client(restplug_client):
    client = await restplug_client(plugins=[AllowWrites(), IdsFilter()])
    for id in (1, 2, 3):
        await client.post("/api/v1/apps", json={"id": id, "name": f"App {id}", "type": "game"})
    return client


async def ids_of(client, query: str) -> list[int]:
    response = await client.get(f"/api/v1/apps?{query}&order_by=id")
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def test_a_list_field_takes_a_comma_list_or_repeated_parameters(client):
    assert await ids_of(client, "ids=1,3") == [1, 3]
    assert await ids_of(client, "ids=1&ids=3") == [1, 3]
    assert await ids_of(client, "ids=2") == [2]
    # Empty items are skipped, as in a field filter's `__in` list.
    assert await ids_of(client, "ids=1,,3") == [1, 3]


@pytest.mark.parametrize("value", ["1,x", "1,2,3,4", "99999999999999999999"])
async def test_a_bad_item_or_too_many_is_a_400_naming_the_parameter(client, value):
    response = await client.get(f"/api/v1/apps?ids={value}")
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert (await response.json())["detail"].startswith("ids: ")


async def test_the_openapi_document_declares_it_as_an_array_sent_as_one_value(client):
    document = await (await client.get("/openapi.json")).json()
    parameters = document["paths"]["/api/v1/apps"]["get"]["parameters"]
    ids = next(p for p in parameters if p["name"] == "ids")
    assert ids["schema"]["type"] == "array"
    assert ids["schema"]["items"]["type"] == "integer"
