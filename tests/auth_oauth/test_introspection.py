"""Introspection mode against a real HTTP authorization server that counts its calls:
caching of active and inactive answers, the core cache backend, outage and slowness."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from typing import Any

import pytest
from oauth_helpers import AUDIENCE, CLIENT_ID, CLIENT_SECRET, ISSUER, app_document, bearer

from restplug import hookimpl
from restplug.backends import Backend
from restplug.caches.memory import MemoryCache
from restplug_auth_oauth.introspection import basic_auth

TIMEOUT_MS = 200


def active(scope: str = "backend/*", **claims: Any) -> dict[str, Any]:
    return {
        "active": True,
        "sub": "worker-1",
        "scope": scope,
        "exp": int(time.time()) + 3600,
        **claims,
    }


@pytest.fixture
def introspection_client(restplug_client, auth_server):
    """``await introspection_client(env, plugins)``: an app asking ``auth_server``."""

    async def make(env: dict[str, str] | None = None, plugins: tuple = ()):
        return await restplug_client(
            env={
                "RESTPLUG_AUTH_INTROSPECTION_URL": auth_server.url("/introspect"),
                "RESTPLUG_AUTH_CLIENT_ID": CLIENT_ID,
                "RESTPLUG_AUTH_CLIENT_SECRET": CLIENT_SECRET,
                "RESTPLUG_AUTH_ISSUER": ISSUER,
                "RESTPLUG_AUTH_AUDIENCE": AUDIENCE,
                "RESTPLUG_AUTH_TIMEOUT_MS": str(TIMEOUT_MS),
                **(env or {}),
            },
            plugins=plugins,
        )

    return make


async def create(client, token: str, id: int = 10) -> Any:
    return await client.post("/api/v1/apps", json=app_document(id), headers=bearer(token))


def challenge_of(response: Any) -> str:
    return response.headers.get("WWW-Authenticate", "")


async def test_active_token_is_asked_once_then_cached(introspection_client, auth_server):
    auth_server.answers["tok-1"] = active()
    client = await introspection_client()
    assert (await create(client, "tok-1", 10)).status == 201
    assert (await create(client, "tok-1", 11)).status == 201
    assert auth_server.calls["/introspect"] == 1


async def test_inactive_token_is_refused_and_cached_briefly(introspection_client, auth_server):
    client = await introspection_client(env={"RESTPLUG_AUTH_INACTIVE_TTL": "1"})
    for _ in range(5):
        response = await create(client, "revoked")
        assert response.status == 401
        assert challenge_of(response) == (
            'Bearer realm="restplug", error="invalid_token", '
            'error_description="the token is not active"'
        )
    assert auth_server.calls["/introspect"] == 1

    auth_server.answers["revoked"] = active()  # e.g. the server issued it after all
    await asyncio.sleep(1.1)
    assert (await create(client, "revoked")).status == 201
    assert auth_server.calls["/introspect"] == 2


@pytest.mark.parametrize(
    ("answer", "status", "description"),
    [
        (active(exp=int(time.time()) - 3600), 401, "the token has expired"),
        (active(nbf=int(time.time()) + 3600), 401, "the token is not valid yet"),
        (active(iss="https://other/"), 401, "the token has the wrong issuer"),
        (active(aud=["other", "more"]), 401, "the token has the wrong audience"),
        (active(aud=["other", AUDIENCE], iss=ISSUER), 201, None),
        (active(sub=None, client_id="service"), 201, None),
        (active(sub=None), 401, "the token names no subject"),
        (active(scope="backend/read"), 403, None),
        (active(scope=None, scp=["backend/create"]), 201, None),
    ],
)
async def test_active_answers_are_checked_like_jwts(
    introspection_client, auth_server, answer, status, description
):
    auth_server.answers["tok"] = {k: v for k, v in answer.items() if v is not None}
    response = await create(await introspection_client(), "tok")
    assert response.status == status, await response.text()
    if description:
        assert f'error_description="{description}"' in challenge_of(response)


async def test_outage_is_a_fast_503_and_cached_tokens_keep_working(
    introspection_client, auth_server, caplog
):
    auth_server.answers["known-Zq41"] = active()
    auth_server.answers["fresh-Pw93"] = active()
    client = await introspection_client()
    assert (await create(client, "known-Zq41", 10)).status == 201
    await auth_server.server.close()

    started = time.monotonic()
    response = await create(client, "fresh-Pw93", 11)
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert response.content_type == "application/problem+json"
    assert time.monotonic() - started < 1
    assert (await create(client, "known-Zq41", 12)).status == 201
    assert "fresh-Pw93" not in caplog.text and "known-Zq41" not in caplog.text


async def test_slow_server_is_a_503_within_the_timeout(introspection_client, auth_server):
    auth_server.answers["tok"] = active()
    auth_server.delay = 1.0
    client = await introspection_client()
    started = time.monotonic()
    response = await create(client, "tok")
    elapsed = time.monotonic() - started
    assert response.status == 503
    assert TIMEOUT_MS / 1000 <= elapsed < TIMEOUT_MS / 1000 + 0.5


async def test_wrong_client_credentials_are_a_503_and_logged(
    introspection_client, auth_server, caplog
):
    auth_server.answers["tok"] = active()
    client = await introspection_client(env={"RESTPLUG_AUTH_CLIENT_SECRET": "wrong-Kx81"})
    assert (await create(client, "tok")).status == 503
    assert "HTTP 401 (check RESTPLUG_AUTH_CLIENT_ID and _SECRET)" in caplog.text
    assert "wrong-Kx81" not in caplog.text


async def test_concurrent_requests_with_one_token_share_one_call(introspection_client, auth_server):
    auth_server.answers["tok"] = active()
    auth_server.delay = 0.05
    client = await introspection_client()
    responses = await asyncio.gather(*(create(client, "tok", id) for id in range(1, 21)))
    assert [r.status for r in responses] == [201] * 20
    assert auth_server.calls["/introspect"] == 1


class RecordingCache(MemoryCache):
    """A cache backend (scheme ``shared://``) whose one instance every app of a test shares,
    like processes sharing Redis; it records what is stored."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, tuple[bytes, float]] = {}

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self.stored[key] = (value, ttl)
        await super().set(key, value, ttl)


class BrokenCache(MemoryCache):
    """A cache backend (scheme ``broken://``) that is down."""

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("cache down")

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise ConnectionError("cache down")


class CachePlugin:
    def __init__(self, scheme: str, cache: MemoryCache) -> None:
        self.scheme, self.cache = scheme, cache

    @hookimpl
    def register_backends(self) -> list[Backend]:
        return [Backend("cache", (self.scheme,), lambda url, settings: self.cache)]


def introspection_entries(cache: RecordingCache) -> dict[str, tuple[bytes, float]]:
    return {k: v for k, v in cache.stored.items() if k.startswith("restplug:auth_oauth:")}


async def test_answers_are_shared_through_the_core_cache(introspection_client, auth_server):
    cache = RecordingCache()
    env = {"RESTPLUG_CACHE_URL": "shared://", "RESTPLUG_AUTH_CACHE_MAX_TTL": "120"}
    plugins = (CachePlugin("shared", cache),)
    auth_server.answers["long-lived"] = active()
    auth_server.answers["short-lived"] = active(exp=int(time.time()) + 60)
    first = await introspection_client(env=env, plugins=plugins)
    second = await introspection_client(env=env, plugins=plugins)

    assert (await create(first, "long-lived", 10)).status == 201
    assert (await create(second, "long-lived", 11)).status == 201
    assert auth_server.calls["/introspect"] == 1

    assert (await create(first, "short-lived", 12)).status == 201
    assert (await create(first, "inactive", 13)).status == 401
    entries = introspection_entries(cache)
    ttls = {
        token: entries[
            "restplug:auth_oauth:introspection:" + hashlib.sha256(token.encode()).hexdigest()
        ][1]
        for token in ("long-lived", "short-lived", "inactive")
    }
    assert ttls["long-lived"] == 120  # the maximum
    assert 55 <= ttls["short-lived"] <= 60  # until exp
    assert ttls["inactive"] == 30  # RESTPLUG_AUTH_INACTIVE_TTL's default
    for token in ("long-lived", "short-lived", "inactive"):
        assert all(
            token.encode() not in key.encode() + value for key, (value, _) in entries.items()
        )


async def test_a_failing_core_cache_is_a_miss_not_an_error(
    introspection_client, auth_server, caplog
):
    auth_server.answers["opaque-Qm2xZ7"] = active()
    plugins = (CachePlugin("broken", BrokenCache()),)
    client = await introspection_client(env={"RESTPLUG_CACHE_URL": "broken://"}, plugins=plugins)
    with caplog.at_level(logging.WARNING, logger="restplug.cache"):
        assert (await create(client, "opaque-Qm2xZ7", 10)).status == 201
        assert (await create(client, "opaque-Qm2xZ7", 11)).status == 201
    assert auth_server.calls["/introspect"] == 1  # the in-process cache still holds it
    # One warning for the outage, not one per failed call.
    # Whichever call fails first names the outage: a cached read's lookup of token and entry.
    warning = "cache unavailable (ConnectionError in _get_entry): served as misses until it answers"
    assert caplog.text.count(warning) == 1 and caplog.text.count("WARNING") == 1
    assert "opaque-Qm2xZ7" not in caplog.text


def test_client_credentials_are_form_encoded_before_basic_auth():
    """RFC 6749 2.3.1, so an id or secret holding ``:`` cannot be split wrongly."""
    expected = base64.b64encode(b"svc%3A1:p%40ss+word").decode()
    assert basic_auth("svc:1", "p@ss word") == f"Basic {expected}"
