"""From validated claims (a decoded JWT or an introspection answer) to an Identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from restplug import Identity
from restplug_auth_oauth.bearer import NO_SUBJECT, invalid_token


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """The granted scopes: ``scope`` is a space-separated string (RFC 8693, RFC 7662), ``scp``
    a list (Okta) or again a string (Azure AD); servers use either, so both are read."""
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list):
            granted.update(item for item in value if isinstance(item, str) and item)
    return frozenset(granted)


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """The identity a token stands for.  Client-credentials tokens often carry only
    ``client_id``; a token naming nobody is refused: callers that cannot be told apart must
    not share anything keyed by identity."""
    subject = claims.get("sub") or claims.get("client_id")
    if not isinstance(subject, str):
        raise invalid_token(NO_SUBJECT)
    return Identity(subject, scopes_of(claims), dict(claims))
