"""A resource declared with nothing but a name and a schema is served whole."""

from __future__ import annotations

from marshmallow import Schema, fields

from restplug import Resource, hookimpl
from restplug.testing import AllowWrites


class NoteSchema(Schema):
    id = fields.Integer(required=True)
    text = fields.String()


class Notes:
    @hookimpl
    def register_resources(self) -> list[Resource]:
        return [Resource("notes", NoteSchema)]


async def test_without_a_default_order_lists_come_in_id_order(restplug_client) -> None:
    client = await restplug_client(plugins=[Notes(), AllowWrites()])
    for id in (3, 1, 2):
        assert (await client.post("/api/v1/notes", json={"id": id, "text": "x"})).status == 201
    response = await client.get("/api/v1/notes")
    assert response.status == 200, await response.text()
    assert [item["id"] for item in (await response.json())["items"]] == [1, 2, 3]
