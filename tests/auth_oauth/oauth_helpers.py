"""Tokens and documents for the auth_oauth tests (importable by name: it sits next to them)."""

from __future__ import annotations

import time
from typing import Any

import jwt
from aiohttp.test_utils import TestClient

from restplug.testing import RESTPLUG

SECRET = "test-secret-0123456789-0123456789-0123456789"
ISSUER = "https://auth.example.test/"
AUDIENCE = "restplug-api"
HS256_ENV = {
    "RESTPLUG_AUTH_JWT_SECRET": SECRET,
    "RESTPLUG_AUTH_ISSUER": ISSUER,
    "RESTPLUG_AUTH_AUDIENCE": AUDIENCE,
}
CLIENT_ID, CLIENT_SECRET = "restplug", "client-secret"


def claims(scope: str | None = "", **overrides: Any) -> dict[str, Any]:
    """Valid claims for HS256_ENV; ``overrides`` replace them, a value of None drops one."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "alice",
        "scope": scope,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        **overrides,
    }
    return {name: value for name, value in values.items() if value is not None}


def hs256(scope: str | None = "", *, secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(scope, **overrides), secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def app_document(id: int = 10) -> dict[str, Any]:
    return {"id": id, "name": f"App {id}", "type": "game"}


async def seed_app(client: TestClient, id: int = 10) -> None:
    """An app in the store, written around the permission checks."""
    restplug = client.app[RESTPLUG]
    await restplug.upsert_all(restplug.resources["apps"], [app_document(id)])
