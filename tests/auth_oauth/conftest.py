"""Shared pieces of the auth_oauth tests: signed tokens, app clients in each mode, and a real
aiohttp authorization server (introspection and JWKS endpoints) that counts its calls."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from oauth_helpers import CLIENT_ID, CLIENT_SECRET, HS256_ENV

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def hs256_client(restplug_client: ClientFactory) -> ClientFactory:
    """``await hs256_client(env={...}, plugins=[...])``: an app in HS256 mode."""

    async def make(env: dict[str, str] | None = None, plugins: tuple = ()) -> TestClient:
        return await restplug_client(env={**HS256_ENV, **(env or {})}, plugins=plugins)

    return make


class AuthServer:
    """A real authorization server over HTTP: ``POST /introspect`` (RFC 7662, HTTP Basic
    client auth) answers from ``answers`` (token -> answer, default inactive); ``GET /jwks``
    serves ``jwks``.  ``calls`` counts requests per path; ``delay`` slows every answer and
    ``failing`` turns every answer into a 500."""

    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}
        self.jwks: dict[str, Any] = {"keys": []}
        self.calls: dict[str, int] = {"/introspect": 0, "/jwks": 0}
        self.delay = 0.0
        self.failing = False
        self.server: TestServer | None = None
        self.app = web.Application(middlewares=[self._counted])
        self.app.router.add_post("/introspect", self._introspect)
        self.app.router.add_get("/jwks", self._jwks)

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    @web.middleware
    async def _counted(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.calls[request.path] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:
            return web.json_response({"error": "server_error"}, status=500)
        return await handler(request)

    async def _introspect(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        return web.json_response(self.answers.get(str(form.get("token")), {"active": False}))

    async def _jwks(self, _: web.Request) -> web.Response:
        return web.json_response(self.jwks)


@pytest.fixture
async def auth_server(aiohttp_server: Any) -> AuthServer:
    server = AuthServer()
    server.server = await aiohttp_server(server.app)
    return server


@pytest.fixture(scope="session")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    """Two RSA keys (generating them is the slow part, so once per session)."""
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
