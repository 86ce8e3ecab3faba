"""Dev tokens: HS256 JWTs signed with ``RESTPLUG_AUTH_JWT_SECRET`` (``restplug token``)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import jwt


def mint_token(
    secret: str,
    scopes: Iterable[str],
    ttl: int,
    subject: str,
    *,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """A token the server in HS256 mode accepts.  Pass the configured issuer and audience so
    it passes the same checks as a token from a real authorization server."""
    now = int(time.time())
    claims = {"sub": subject, "scope": " ".join(scopes), "iat": now, "nbf": now, "exp": now + ttl}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
