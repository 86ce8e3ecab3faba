"""RFC 6750 on the wire: the token in ``Authorization: Bearer``, and the answers that refuse it.

Every refusal of a token is a 401 with ``error="invalid_token"`` and one fixed description
per cause, so clients (and tests) can tell the causes apart without any token value ever
being echoed back or logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiohttp import web

from restplug import Problem

REALM = 'Bearer realm="restplug"'

# How long a client should wait after the authorization server failed us: long enough not to
# hammer it while it recovers, short enough that a blip costs little.
RETRY_AFTER_SECONDS = 5

# The fixed descriptions of why a token is refused (error_description and problem detail).
MALFORMED = "the token is malformed"
BAD_SIGNATURE = "the token signature is invalid"
EXPIRED = "the token has expired"
NOT_YET_VALID = "the token is not valid yet"
WRONG_ISSUER = "the token has the wrong issuer"
WRONG_AUDIENCE = "the token has the wrong audience"
INACTIVE = "the token is not active"
UNKNOWN_KEY = "the token is signed with an unknown key"
NO_SUBJECT = "the token names no subject"
NO_EXPIRY = "the token has no expiry"

# RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(request: web.Request) -> str | None:
    """The bearer token of a request; None when it sends no ``Authorization: Bearer`` header
    (another scheme is another plugin's business).  A token outside the RFC 6750 syntax is
    refused here, before it can cost a call to the authorization server."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not _B64TOKEN.fullmatch(token):
        raise invalid_token(MALFORMED)
    return token


def invalid_token(description: str) -> Problem:
    """401 for a token that is malformed, forged, expired, inactive or not meant for us."""
    return Problem(
        401,
        description,
        headers={
            "WWW-Authenticate": (
                f'{REALM}, error="invalid_token", error_description="{description}"'
            )
        },
    )


def unavailable(detail: str) -> Problem:
    """503 when the authorization server cannot answer in time: the token may well be good."""
    return Problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def missing_credentials_challenge() -> dict[str, str]:
    """RFC 6750 3.1: a request without credentials gets the bare challenge, no error code."""
    return {"WWW-Authenticate": REALM}


def insufficient_scope_challenge(scopes: Iterable[str]) -> dict[str, str]:
    """The scopes a route needs, each once, in the order the route declares them (none
    named, as for a custom requirement, leaves the attribute out)."""
    challenge = f'{REALM}, error="insufficient_scope"'
    needed = " ".join(dict.fromkeys(scopes))
    return {"WWW-Authenticate": f'{challenge}, scope="{needed}"' if needed else challenge}
