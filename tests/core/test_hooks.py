"""Each hook is called when its docstring says and its answers combine as documented.

A throwaway plugin (nothing installed) implements every hook and records the calls.
"""

from __future__ import annotations

import click
import pytest
from aiohttp import web
from click.testing import CliRunner
from marshmallow import Schema, fields

from restplug import hookimpl
from restplug.app import RESTPLUG, Restplug
from restplug.auth import Identity
from restplug.backends import Backend
from restplug.cli import PluginCommands
from restplug.config import Setting, positive_int
from restplug.errors import ConfigError, Problem
from restplug.methods import FilterMethod, Fragment, SortMethod
from restplug.permissions import Denial
from restplug.resources import Resource
from restplug.routes import Route
from restplug.stores.sqlite import SQLiteStore
from restplug.testing import isolated_environ


class NoteSchema(Schema):
    id = fields.Integer(required=True)
    text = fields.String(required=True)
    rank = fields.Integer(load_default=0)


NOTES = Resource(
    name="notes",
    schema=NoteSchema,
    filters={"text": ("in",)},
    sorts=("rank",),
    default_order=("rank",),
)


class Recorder:
    """Implements every hook; async where the hook allows it, to prove both kinds work."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.changes: list[tuple[str, object, object]] = []

    @hookimpl
    def register_settings(self):
        self.calls.append("register_settings")
        return [Setting("RESTPLUG_NOTES_LIMIT", 3, positive_int, "notes per user")]

    @hookimpl
    async def register_backends(self):
        self.calls.append("register_backends")
        return [
            Backend(
                "store",
                ("notes",),
                lambda url, settings: SQLiteStore(
                    "sqlite:///" + url.split("://", 1)[1], timeout_ms=settings.query_timeout_ms
                ),
            )
        ]

    @hookimpl
    def register_resources(self, restplug):
        self.calls.append("register_resources")
        assert restplug.settings.notes_limit == 7
        return [NOTES]

    @hookimpl
    async def register_filters(self, resource):
        if resource.name != "notes":
            return None

        async def long_only(restplug, resource, value):
            return Fragment({"rank": {"$gte": value}})

        return [FilterMethod("min_rank", fields.Integer(), long_only, "rank at least")]

    @hookimpl
    def register_sorts(self, resource):
        return [SortMethod("text_desc", lambda restplug, resource: [("text", -1)])]

    @hookimpl
    def register_routes(self, restplug):
        async def hello(request: web.Request) -> web.Response:
            identity = await request.app[RESTPLUG].identity(request)
            return web.json_response({"hello": identity.subject if identity else None})

        return [Route("GET", "/hello", hello)]

    @hookimpl
    def register_commands(self, cli):
        @cli.command("notes-hello")
        def notes_hello():
            click.echo("hello from a plugin command")

    @hookimpl
    async def startup(self, restplug):
        self.calls.append("startup")

    @hookimpl
    def shutdown(self, restplug):
        self.calls.append("shutdown")

    @hookimpl
    async def authenticate(self, request):
        token = request.headers.get("Authorization", "")
        if token == "Bearer bad":
            raise Problem(401, "bad token")
        return Identity(token.removeprefix("Bearer ")) if token else None

    @hookimpl
    def permission(self, identity, action, request):
        if request.headers.get("X-Deny"):
            return Denial(451, "denied for a reason", {"X-Why": "test"})
        if action == "write":
            return True if identity is not None else None
        return None

    @hookimpl
    async def documents_changed(self, resource, changes):
        for change in changes:
            self.changes.append(
                (resource.name, change.id, change.document and change.document["text"])
            )


class Abstainer:
    @hookimpl
    def permission(self):
        return None

    @hookimpl
    def authenticate(self):
        return None

    @hookimpl
    def documents_changed(self):
        raise RuntimeError("a broken plugin must not fail the write")


@pytest.fixture
async def setup(tmp_path, aiohttp_client):
    recorder = Recorder()
    env = isolated_environ(
        tmp_path,
        {
            "RESTPLUG_STORE_URL": f"notes://{tmp_path}/notes.db",
            "RESTPLUG_NOTES_LIMIT": "7",
        },
    )
    restplug = await Restplug.configure(env, [recorder, Abstainer()])
    client = await aiohttp_client(restplug.web_app())
    return recorder, client


async def test_lifecycle_and_registration_hooks(setup):
    recorder, client = setup
    assert recorder.calls[:3] == ["register_settings", "register_backends", "register_resources"]
    assert recorder.calls[-1] == "startup"
    assert isinstance(client.app[RESTPLUG].backends["store"], SQLiteStore)
    await client.close()
    assert recorder.calls[-1] == "shutdown"


async def test_routes_and_authenticate(setup):
    _, client = setup
    assert await (await client.get("/hello")).json() == {"hello": None}
    response = await client.get("/hello", headers={"Authorization": "Bearer ada"})
    assert await response.json() == {"hello": "ada"}
    response = await client.get("/hello", headers={"Authorization": "Bearer bad"})
    assert response.status == 401 and response.content_type == "application/problem+json"


async def test_permission_votes_and_documents_changed(setup):
    recorder, client = setup
    note = {"id": 1, "text": "first", "rank": 2}
    # Only abstentions for an anonymous write: closed by default.
    assert (await client.post("/api/v1/notes", json=note)).status == 403
    auth = {"Authorization": "Bearer ada"}
    response = await client.post("/api/v1/notes", json=note, headers=auth)
    assert response.status == 201
    assert recorder.changes == [("notes", 1, "first")]  # the broken plugin did not fail it
    # A denial wins over an allowing vote and carries its status and headers.
    denied = await client.delete("/api/v1/notes/1", headers={**auth, "X-Deny": "1"})
    assert denied.status == 451 and denied.headers["X-Why"] == "test"
    assert (await denied.json())["detail"] == "denied for a reason"
    assert (await client.delete("/api/v1/notes/1", headers=auth)).status == 204
    assert recorder.changes[-1] == ("notes", 1, None)


async def test_filters_and_sorts_from_plugins(setup):
    _, client = setup
    auth = {"Authorization": "Bearer ada"}
    for i, text in enumerate(["b", "a", "c"], start=1):
        await client.post("/api/v1/notes", json={"id": i, "text": text, "rank": i}, headers=auth)
    body = await (await client.get("/api/v1/notes?min_rank=2&order_by=text_desc")).json()
    assert [item["text"] for item in body["items"]] == ["c", "a"]
    bad = await client.get("/api/v1/notes?min_rank=high")
    assert bad.status == 400 and "min_rank" in (await bad.json())["detail"]


def test_register_commands():
    group = PluginCommands(commands={})
    group._loaded = True
    Recorder().register_commands(group)
    result = CliRunner().invoke(group, ["notes-hello"])
    assert result.output == "hello from a plugin command\n"


async def test_two_plugins_answering_one_scheme_stop_start_up(tmp_path):
    class Twin:
        @hookimpl
        def register_backends(self):
            return [Backend("store", ("sqlite",), lambda url, settings: None)]

    with pytest.raises(ConfigError, match="several plugins"):
        await Restplug.configure(isolated_environ(tmp_path), [Twin()])


async def test_duplicate_filter_names_stop_start_up(tmp_path):
    class Clash:
        @hookimpl
        def register_resources(self):
            return [NOTES]

        @hookimpl
        def register_filters(self):
            return [FilterMethod("text", fields.String(), None)]

    with pytest.raises(ConfigError, match="declared twice"):
        await Restplug.configure(isolated_environ(tmp_path), [Clash()])


class Wrapping:
    """Middlewares that tag the response, and turn ``X-Refuse`` into a raised error."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def register_middlewares(self, restplug):
        assert isinstance(restplug, Restplug)

        @web.middleware
        async def tag(request, handler):
            if request.headers.get("X-Refuse") == self.name:
                raise Problem(429, f"refused by {self.name}")
            if request.headers.get("X-Break") == self.name:
                raise RuntimeError("a broken middleware")
            response = await handler(request)
            response.headers.add("X-Order", self.name)
            return response

        return [tag]


async def test_middlewares_wrap_every_request_and_errors_become_problems(tmp_path, aiohttp_client):
    class Outer(Wrapping):
        @hookimpl(tryfirst=True)
        def register_middlewares(self, restplug):
            return super().register_middlewares(restplug)

    restplug = await Restplug.configure(
        isolated_environ(tmp_path), [Outer("outer"), Wrapping("inner")]
    )
    client = await aiohttp_client(restplug.web_app())
    for path in ("/health/live", "/api/v1/apps"):
        response = await client.get(path)
        # Response headers are added inside out: the inner middleware's first.
        assert response.status == 200 and response.headers.getall("X-Order") == ["inner", "outer"]
    refused = await client.get("/api/v1/apps", headers={"X-Refuse": "inner"})
    assert refused.status == 429 and refused.content_type == "application/problem+json"
    assert (await refused.json())["detail"] == "refused by inner"
    broken = await client.get("/api/v1/apps", headers={"X-Break": "outer"})
    assert broken.status == 500 and broken.content_type == "application/problem+json"
    assert "Traceback" not in await broken.text()
