"""What the OpenAPI document says of parameters: comma lists as one ``a,b`` value, sort
methods described in ``order_by``, ids typed by each resource's id field."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import fields

from restplug import FilterMethod, Fragment, hookimpl


async def tagged(restplug: Any, resource: Any, names: list[str]) -> Fragment:
    return Fragment({"genres": {"$in": names}})


class ListFilter:
    """A method filter whose field is a list: the server reads it as a comma list."""

    @hookimpl
    def register_filters(self, resource):
        if resource.name != "apps":
            return None
        return [FilterMethod("genre_any", fields.List(fields.String()), tagged, "any genre")]


@pytest.fixture
async def client(restplug_client):
    return await restplug_client(plugins=[ListFilter()])


async def operations(client) -> dict[tuple[str, str], dict[str, Any]]:
    document = await (await client.get("/openapi.json")).json()
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["name"] == name)


async def test_every_array_parameter_is_one_comma_list(client) -> None:
    described = await operations(client)
    arrays = {
        (path, p["name"]): p
        for (method, path), operation in described.items()
        for p in operation.get("parameters", [])
        if p["schema"].get("type") == "array"
    }
    names = {name for _, name in arrays}
    assert {"type__in", "genres__not_in", "is_available_in_countries", "genre_any"} <= names
    assert "status__in" in names  # tasks too
    for p in arrays.values():
        assert (p["style"], p["explode"]) == ("form", False), p
    # What a client following the document sends, the server takes.
    response = await client.get("/api/v1/apps?genre_any=RPG,Strategy&type__in=game,dlc")
    assert response.status == 200, await response.text()


async def test_order_by_describes_the_sort_methods(client) -> None:
    order_by = parameter((await operations(client))[("get", "/api/v1/apps")], "order_by")
    assert "discount" in order_by["schema"]["enum"]
    assert (
        "discount: latest discount in RESTPLUG_MAIN_COUNTRY; apps without a price there last"
        in order_by["description"]
    )


async def test_ids_are_typed_by_the_resource(client) -> None:
    described = await operations(client)
    apps = ["/api/v1/apps/{id}", "/api/v1/apps/{id}/prices/{country}"]
    for path in apps:
        assert parameter(described[("get", path)], "id")["schema"]["type"] == "integer"
    for method in ("get", "patch"):
        assert parameter(described[(method, "/api/v1/tasks/{id}")], "id")["schema"] == {
            "type": "string"
        }
