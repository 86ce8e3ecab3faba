"""The plugin's place in the permission policy: switched off, unconfigured or misconfigured,
composed requirements, and tokens kept out of the logs."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from oauth_helpers import HS256_ENV, SECRET, app_document, bearer, hs256, seed_app

from restplug import hookimpl
from restplug.errors import ConfigError
from restplug.permissions import Authenticated, Scope, all_of, any_of
from restplug.routes import Route

WRITE = ("POST", "/api/v1/apps")


async def write(client, token: str | None = None) -> web.Response:
    return await client.post(
        "/api/v1/apps", json=app_document(), headers=bearer(token) if token else {}
    )


async def test_disabling_the_plugin_closes_writes_and_keeps_reads_open(restplug_client):
    client = await restplug_client(env={**HS256_ENV, "RESTPLUG_DISABLE_PLUGINS": "auth_oauth"})
    await seed_app(client)
    response = await write(client, hs256("*/*"))
    assert response.status == 403
    assert "WWW-Authenticate" not in response.headers
    assert (await client.get("/api/v1/apps/10")).status == 200
    plugins = {p["name"]: p["enabled"] for p in await (await client.get("/-/plugins")).json()}
    assert plugins["auth_oauth"] is False


async def test_unconfigured_plugin_is_inert(restplug_client, caplog):
    """Installed but given no way to check tokens: no token is believed, writes stay closed
    by the default policy, and start-up says why."""
    client = await restplug_client()
    await seed_app(client)
    assert (await write(client, hs256("*/*"))).status == 403
    assert (await write(client)).status == 403
    assert (await client.get("/api/v1/apps/10", headers=bearer("garbage"))).status == 200
    assert "bearer tokens are not checked and writes stay closed" in caplog.text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {**HS256_ENV, "RESTPLUG_AUTH_JWKS_URL": "https://auth.test/jwks"},
            "RESTPLUG_AUTH_JWT_SECRET and RESTPLUG_AUTH_JWKS_URL are set together",
        ),
        (
            {
                "RESTPLUG_AUTH_JWKS_URL": "https://auth.test/jwks",
                "RESTPLUG_AUTH_INTROSPECTION_URL": "https://auth.test/introspect",
            },
            "RESTPLUG_AUTH_JWKS_URL and RESTPLUG_AUTH_INTROSPECTION_URL are set together",
        ),
        (
            {"RESTPLUG_AUTH_INTROSPECTION_URL": "https://auth.test/introspect"},
            "RESTPLUG_AUTH_INTROSPECTION_URL needs RESTPLUG_AUTH_CLIENT_ID",
        ),
        (
            {"RESTPLUG_AUTH_JWT_SECRET": "short"},
            r"RESTPLUG_AUTH_JWT_SECRET=\*\*\*: must be at least 32 characters",
        ),
        (
            {"RESTPLUG_AUTH_JWKS_URL": "auth.test/jwks"},
            "RESTPLUG_AUTH_JWKS_URL='auth.test/jwks': must be an http:// or https:// URL",
        ),
        ({"RESTPLUG_AUTH_TIMEOUT_MS": "0"}, "RESTPLUG_AUTH_TIMEOUT_MS='0': must be greater"),
    ],
    ids=["secret+jwks", "jwks+introspection", "no client", "short secret", "bad url", "timeout"],
)
async def test_bad_configuration_stops_start_up(restplug_client, env, message):
    with pytest.raises(ConfigError, match=message):
        await restplug_client(env=env)


async def test_empty_values_mean_unset(hs256_client):
    client = await hs256_client(
        env={"RESTPLUG_AUTH_JWKS_URL": "", "RESTPLUG_AUTH_INTROSPECTION_URL": ""}
    )
    assert (await write(client, hs256("backend/create"))).status == 201


async def ok(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


# The "authenticated, READ, and one of CREATE/UPDATE/DELETE", with operators and with
# functions: both must behave the same.
CHANGES = any_of(Scope("backend/create"), Scope("backend/update"), Scope("backend/delete"))
CURATE_OPERATORS = Authenticated() & Scope("backend/read") & CHANGES
CURATE_FUNCTIONS = all_of(Authenticated(), Scope("backend/read"), CHANGES)
NEEDS = "(authenticated and backend/read and (backend/create or backend/update or backend/delete))"
SCOPES = "backend/read backend/create backend/update backend/delete"


class CurateRoutes:
    @hookimpl
    def register_routes(self) -> list[Route]:
        return [
            Route("POST", "/curate/operators", ok, "write", CURATE_OPERATORS),
            Route("POST", "/curate/functions", ok, "write", CURATE_FUNCTIONS),
        ]


@pytest.mark.parametrize("path", ["/curate/operators", "/curate/functions"])
@pytest.mark.parametrize(
    ("scope", "status", "reason", "challenge"),
    [
        (None, 401, "authentication is required", 'Bearer realm="restplug"'),
        (
            "backend/create",
            403,
            "scope backend/read is required",
            f'Bearer realm="restplug", error="insufficient_scope", scope="{SCOPES}"',
        ),
        (
            "backend/read",
            403,
            "one of (backend/create or backend/update or backend/delete) is required",
            f'Bearer realm="restplug", error="insufficient_scope", scope="{SCOPES}"',
        ),
        ("backend/read backend/update", 200, None, None),
        ("backend/*", 200, None, None),
    ],
)
async def test_composed_requirements_keep_the_failing_reason(
    hs256_client, path, scope, status, reason, challenge
):
    client = await hs256_client(plugins=(CurateRoutes(),))
    headers = bearer(hs256(scope)) if scope else {}
    response = await client.post(path, headers=headers)
    assert response.status == status
    assert response.headers.get("WWW-Authenticate") == challenge
    if reason:
        assert (await response.json())["detail"] == f"{reason}; this route needs {NEEDS}"


async def test_no_token_is_ever_logged(hs256_client, caplog):
    tokens = [
        hs256("*/*"),
        hs256("*/*", exp=1),
        hs256("*/*", secret=SECRET[::-1]),
        hs256("*/*", iss="https://evil/"),
        "opaque-garbage-Zx81",
    ]
    with caplog.at_level(logging.DEBUG):
        client = await hs256_client()
        for token in tokens:
            await write(client, token)
            await client.get("/api/v1/apps", headers=bearer(token))
    assert caplog.records
    for token in tokens:
        for part in token.split("."):
            assert part not in caplog.text
