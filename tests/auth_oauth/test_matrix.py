"""Every protected route of PRODUCT.md 4 against every kind of credential: exact status and
exact ``WWW-Authenticate`` each time.

Adding a protected route is adding a row to ``PROTECTED``; adding a kind of credential is
adding one to ``CREDENTIALS``.  The expectation of each pair follows from the two rows.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from oauth_helpers import SECRET, app_document, bearer, claims, hs256, seed_app

NOW = int(time.time())
REALM = 'Bearer realm="restplug"'
# Every scope PRODUCT.md 4 names; all are ``backend/...``, so ``backend/*`` grants them all.
SCOPES = ("backend/create", "backend/update", "backend/delete", "backend/package", "backend/tasks")


@dataclass(frozen=True)
class Protected:
    """A protected route (its path as in OpenAPI, requested with ``{id}`` = 10), the scope it
    needs, and its status when allowed.  ``setup`` prepares the store (``seed_app`` writes
    app 10) for routes acting on an existing document."""

    method: str
    path: str
    scope: str
    allowed: int
    body: Callable[[], Any] | None = None
    setup: Callable[[TestClient], Awaitable[None]] | None = None


PROTECTED = (
    Protected("POST", "/api/v1/apps", "backend/create", 201, app_document),
    Protected("PUT", "/api/v1/apps/{id}", "backend/update", 200, app_document, seed_app),
    Protected("PATCH", "/api/v1/apps/{id}", "backend/update", 200, lambda: {"name": "X"}, seed_app),
    Protected("DELETE", "/api/v1/apps/{id}", "backend/delete", 204, setup=seed_app),
    Protected(
        "POST", "/api/v1/package", "backend/package", 200, lambda: {"apps": [app_document()]}
    ),
    Protected("POST", "/api/v1/tasks", "backend/tasks", 201, lambda: {"type": "t", "payload": {}}),
    Protected("GET", "/api/v1/tasks", "backend/tasks", 200),
)


@dataclass(frozen=True)
class Credential:
    """What a request sends.  ``anonymous``: no bearer credentials at all; ``invalid``: the
    description a refused token gets; otherwise a valid token that ``grants`` these scopes."""

    name: str
    authorization: Callable[[], dict[str, str]]
    grants: frozenset[str] = field(default_factory=frozenset)
    invalid: str | None = None
    anonymous: bool = False

    def expect(self, route: Protected) -> tuple[int, str | None]:
        if self.anonymous:
            return 401, REALM
        if self.invalid:
            return 401, f'{REALM}, error="invalid_token", error_description="{self.invalid}"'
        if route.scope in self.grants:
            return route.allowed, None
        return 403, f'{REALM}, error="insufficient_scope", scope="{route.scope}"'


def token(scope: str = "backend/*", **overrides: Any) -> Callable[[], dict[str, str]]:
    # Tokens are signed when the test runs, so their times are fresh.
    return lambda: bearer(hs256(scope, **overrides))


CREDENTIALS = (
    Credential("no header", dict, anonymous=True),
    Credential("basic auth", lambda: {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, anonymous=True),
    Credential("no scope", token(None)),
    Credential("empty scope", token("")),
    *(Credential(scope, token(scope), frozenset({scope})) for scope in SCOPES),
    Credential("scp list", token(None, scp=list(SCOPES)), frozenset(SCOPES)),
    Credential("backend/*", token("backend/*"), frozenset(SCOPES)),
    Credential("*/*", token("*/*"), frozenset(SCOPES)),
    Credential("backendx/*", token("backendx/*")),
    Credential("backend-create", token("backend-create backend")),
    Credential("expired", token(exp=NOW - 3600), invalid="the token has expired"),
    Credential("not yet valid", token(nbf=NOW + 3600), invalid="the token is not valid yet"),
    Credential(
        "wrong issuer", token(iss="https://evil/"), invalid="the token has the wrong issuer"
    ),
    Credential("no issuer", token(iss=None), invalid="the token has the wrong issuer"),
    Credential("wrong audience", token(aud="other"), invalid="the token has the wrong audience"),
    Credential("no expiry", token(exp=None), invalid="the token has no expiry"),
    Credential("no subject", token(sub=None), invalid="the token names no subject"),
    Credential(
        "bad signature",
        token(secret=SECRET[::-1]),
        invalid="the token signature is invalid",
    ),
    Credential(
        "alg none",
        lambda: bearer(jwt.encode(claims("*/*"), None, algorithm="none")),
        invalid="the token signature is invalid",
    ),
    Credential("garbage", lambda: bearer("not-a-jwt"), invalid="the token is malformed"),
    Credential("bad syntax", lambda: bearer("a b"), invalid="the token is malformed"),
    Credential(
        "empty bearer", lambda: {"Authorization": "Bearer"}, invalid="the token is malformed"
    ),
)


@pytest.mark.parametrize(
    ("route", "credential"),
    list(itertools.product(PROTECTED, CREDENTIALS)),
    ids=lambda value: (
        f"{value.method} {value.path}" if isinstance(value, Protected) else value.name
    ),
)
async def test_protected_route(hs256_client, route: Protected, credential: Credential):
    client = await hs256_client()
    if route.setup:
        await route.setup(client)
    body = route.body() if route.body else None
    response = await client.request(
        route.method, route.path.format(id=10), json=body, headers=credential.authorization()
    )
    status, challenge = credential.expect(route)
    assert response.status == status, await response.text()
    assert response.headers.get("WWW-Authenticate") == challenge
    if status >= 400:
        assert response.content_type == "application/problem+json"
        assert (await response.json())["status"] == status


READS = ("/api/v1/apps", "/api/v1/apps/10")


@pytest.mark.parametrize("path", READS)
async def test_reads_stay_open_without_a_token(hs256_client, path: str):
    client = await hs256_client()
    await seed_app(client)
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("path", READS)
async def test_reads_accept_a_valid_token_and_refuse_a_bad_one(hs256_client, path: str):
    """A token that is sent is checked, on reads too: a client must learn its token is bad."""
    client = await hs256_client()
    await seed_app(client)
    assert (await client.get(path, headers=bearer(hs256("")))).status == 200
    response = await client.get(path, headers=bearer(hs256("", exp=NOW - 3600)))
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_openapi_marks_every_protected_operation(hs256_client):
    document = await (await (await hs256_client()).get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for route in PROTECTED:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["security"] == [{"bearer": [route.scope]}]
        assert {"401", "403"} <= set(operation["responses"])
    for path in ("/api/v1/apps", "/api/v1/apps/{id}"):
        assert "security" not in document["paths"][path]["get"]
