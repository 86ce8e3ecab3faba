"""JWT mode with keys from a JWKS served by a real HTTP server: RS256 tokens, key rotation,
the bounded refresh rate on unknown key ids, and the server's failures."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm
from oauth_helpers import AUDIENCE, ISSUER, app_document, bearer, claims

TIMEOUT_MS = 200


def jwk_of(private_key: Any, kid: str) -> dict[str, Any]:
    public = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


def rs256(private_key: Any, kid: str | None, scope: str = "backend/*", **overrides: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(scope, **overrides), private_key, algorithm="RS256", headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(private_key: Any, kid: str) -> str:
    """The algorithm-confusion attack: HMAC-sign with the public key as if it were a secret
    (by hand, since PyJWT rightly refuses to)."""
    secret = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64url(json.dumps(claims("*/*")).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


@pytest.fixture
def jwks_client(restplug_client, auth_server):
    async def make(env: dict[str, str] | None = None):
        return await restplug_client(
            env={
                "RESTPLUG_AUTH_JWKS_URL": auth_server.url("/jwks"),
                "RESTPLUG_AUTH_ISSUER": ISSUER,
                "RESTPLUG_AUTH_AUDIENCE": AUDIENCE,
                "RESTPLUG_AUTH_TIMEOUT_MS": str(TIMEOUT_MS),
                **(env or {}),
            }
        )

    return make


async def create(client, token: str, id: int = 10) -> Any:
    return await client.post("/api/v1/apps", json=app_document(id), headers=bearer(token))


def description_of(response: Any) -> str:
    challenge = response.headers.get("WWW-Authenticate", "")
    return challenge.partition('error_description="')[2].rstrip('"')


async def test_published_key_is_used_and_cached(jwks_client, auth_server, rsa_keys):
    auth_server.jwks = {"keys": [jwk_of(rsa_keys[0], "a")]}
    client = await jwks_client()
    assert (await create(client, rs256(rsa_keys[0], "a"), 10)).status == 201
    assert (await create(client, rs256(rsa_keys[0], "a"), 11)).status == 201
    assert auth_server.calls["/jwks"] == 1


async def test_rotation_to_a_new_kid_is_picked_up(jwks_client, auth_server, rsa_keys):
    old, new = rsa_keys
    auth_server.jwks = {"keys": [jwk_of(old, "2025")]}
    client = await jwks_client()
    assert (await create(client, rs256(old, "2025"), 10)).status == 201

    auth_server.jwks = {"keys": [jwk_of(new, "2026")]}
    assert (await create(client, rs256(new, "2026"), 11)).status == 201
    assert auth_server.calls["/jwks"] == 2

    # The retired key is gone; asking again so soon is not allowed, so no further fetch.
    response = await create(client, rs256(old, "2025"), 12)
    assert response.status == 401
    assert description_of(response) == "the token is signed with an unknown key"
    assert auth_server.calls["/jwks"] == 2


async def test_a_flood_of_unknown_kids_fetches_at_most_once(jwks_client, auth_server, rsa_keys):
    auth_server.jwks = {"keys": [jwk_of(rsa_keys[0], "a")]}
    client = await jwks_client()
    assert (await create(client, rs256(rsa_keys[0], "a"))).status == 201
    forged = [rs256(rsa_keys[1], uuid.uuid4().hex) for _ in range(100)]
    responses = await asyncio.gather(*(create(client, token, 11) for token in forged))
    assert {r.status for r in responses} == {401}
    assert {description_of(r) for r in responses} == {"the token is signed with an unknown key"}
    assert auth_server.calls["/jwks"] == 2


@pytest.mark.parametrize(
    ("forge", "description"),
    [
        (lambda keys: rs256(keys[1], "a"), "the token signature is invalid"),
        (lambda keys: hs256_with_public_key(keys[0], "a"), "the token signature is invalid"),
        (lambda keys: rs256(keys[0], "a", exp=int(time.time()) - 3600), "the token has expired"),
        (lambda keys: rs256(keys[0], "a", aud="other"), "the token has the wrong audience"),
        (lambda keys: "a.b.c", "the token is malformed"),
    ],
    ids=["other key", "alg confusion", "expired", "wrong audience", "malformed"],
)
async def test_bad_tokens_are_refused(jwks_client, auth_server, rsa_keys, forge, description):
    auth_server.jwks = {"keys": [jwk_of(rsa_keys[0], "a")]}
    response = await create(await jwks_client(), forge(rsa_keys))
    assert response.status == 401
    assert description_of(response) == description


async def test_a_token_without_kid_uses_the_only_key(jwks_client, auth_server, rsa_keys):
    auth_server.jwks = {"keys": [jwk_of(rsa_keys[0], "a")]}
    assert (await create(await jwks_client(), rs256(rsa_keys[0], None))).status == 201


async def test_symmetric_keys_in_a_jwks_are_never_trusted(jwks_client, auth_server, rsa_keys):
    secret = b"a-shared-secret-nobody-should-publish"
    auth_server.jwks = {
        "keys": [jwk_of(rsa_keys[0], "a"), {"kty": "oct", "kid": "h", "k": b64url(secret)}]
    }
    token = jwt.encode(claims("*/*"), secret, algorithm="HS256", headers={"kid": "h"})
    response = await create(await jwks_client(), token)
    assert response.status == 401
    assert description_of(response) == "the token is signed with an unknown key"


async def test_unreachable_jwks_is_a_503_without_hammering(jwks_client, auth_server, rsa_keys):
    auth_server.failing = True
    client = await jwks_client()
    for id in (10, 11, 12):
        response = await create(client, rs256(rsa_keys[0], "a"), id)
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
    assert auth_server.calls["/jwks"] == 1  # the next attempt waits RESTPLUG_AUTH_JWKS_MIN_REFRESH


async def test_a_key_set_without_usable_keys_is_a_503(jwks_client, auth_server, rsa_keys):
    auth_server.jwks = {"keys": [{"kty": "oct", "kid": "a", "k": b64url(b"secret")}]}
    response = await create(await jwks_client(), rs256(rsa_keys[0], "a"))
    assert response.status == 503


async def test_slow_jwks_is_a_503_within_the_timeout(jwks_client, auth_server, rsa_keys):
    auth_server.jwks = {"keys": [jwk_of(rsa_keys[0], "a")]}
    auth_server.delay = 1.0
    client = await jwks_client()
    started = time.monotonic()
    assert (await create(client, rs256(rsa_keys[0], "a"))).status == 503
    assert time.monotonic() - started < TIMEOUT_MS / 1000 + 0.5


async def test_known_keys_outlive_a_failed_refresh(jwks_client, auth_server, rsa_keys):
    auth_server.jwks = {"keys": [jwk_of(rsa_keys[0], "a")]}
    client = await jwks_client(env={"RESTPLUG_AUTH_JWKS_TTL": "1"})
    assert (await create(client, rs256(rsa_keys[0], "a"), 10)).status == 201
    auth_server.failing = True
    await asyncio.sleep(1.1)
    assert (await create(client, rs256(rsa_keys[0], "a"), 11)).status == 201
    assert auth_server.calls["/jwks"] == 2
