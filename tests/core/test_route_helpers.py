"""Helpers around routes: `Context.allows` (what the votes would say to a route, asked before
calling it) and routes left out of the OpenAPI document."""

from __future__ import annotations

import pytest
from aiohttp import web
from servers import SECRET, token

from restplug import Context, Route, hookimpl
from restplug.web import json_response


class Probe:
    """``GET /probe?method=M&path=P``: whether the caller may call ``M P``."""

    @hookimpl
    def register_routes(self, restplug: Context) -> list[Route]:
        async def probe(request: web.Request) -> web.Response:
            allowed = await restplug.allows(request, request.query["method"], request.query["path"])
            return json_response({"allowed": allowed})

        return [Route("GET", "/probe", probe)]


@pytest.fixture
async def client(restplug_client):
    return await restplug_client(env={"RESTPLUG_AUTH_JWT_SECRET": SECRET}, plugins=[Probe()])


async def allowed(client, method: str, path: str, bearer: str = "") -> bool:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    response = await client.get("/probe", params={"method": method, "path": path}, headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["allowed"]


@pytest.mark.parametrize(
    ("method", "path", "scopes", "expected"),
    [
        ("GET", "/api/v1/apps/10", (), True),
        ("PATCH", "/api/v1/apps/10", (), False),
        ("patch", "/api/v1/apps/10", ("backend/update",), True),
        ("PATCH", "/api/v1/apps/10", ("backend/create",), False),
        ("DELETE", "/api/v1/apps/10", ("backend/*",), True),
        ("POST", "/api/v1/apps", ("backend/create",), True),
        ("GET", "/api/v1/tasks", (), False),
        ("GET", "/api/v1/tasks", ("backend/tasks",), True),
        ("PATCH", "/api/v1/tasks/abc", ("backend/tasks",), True),
        ("GET", "/api/v1/nothing-here", ("*/*",), False),
        ("PUT", "/api/v1/apps", ("*/*",), False),
        ("GET", "/api/v1/apps/10/prices/US", (), True),
    ],
)
async def test_the_votes_of_the_route_the_path_names(client, method, path, scopes, expected):
    bearer = token(*scopes) if scopes else ""
    assert await allowed(client, method, path, bearer) is expected


async def test_an_empty_path_parameter_matches_no_route(client):
    assert await allowed(client, "GET", "/api/v1/apps/", token("*/*")) is False


class Page:
    """A web page served next to the API, not part of it."""

    @hookimpl
    def register_routes(self) -> list[Route]:
        async def page(_: web.Request) -> web.Response:
            return web.Response(text="<p>hello</p>", content_type="text/html")

        return [Route("GET", "/page", page, documented=False)]


async def test_an_undocumented_route_is_served_and_left_out_of_openapi(restplug_client):
    client = await restplug_client(plugins=[Page()])
    assert (await (await client.get("/page")).text()) == "<p>hello</p>"
    document = await (await client.get("/openapi.json")).json()
    assert "/page" not in document["paths"] and "/api/v1/apps" in document["paths"]
