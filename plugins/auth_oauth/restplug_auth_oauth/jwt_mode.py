"""JWT mode: tokens checked locally, signed with the HS256 secret or a key from a JWKS.

The JWKS is fetched on first use and again after ``RESTPLUG_AUTH_JWKS_TTL``.  A token naming
an unknown key id (the server rotated its keys) triggers an early refresh, at most one per
``RESTPLUG_AUTH_JWKS_MIN_REFRESH`` seconds, so a flood of made-up key ids cannot turn into a
flood of requests to the authorization server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from restplug import Identity
from restplug_auth_oauth.bearer import (
    BAD_SIGNATURE,
    EXPIRED,
    MALFORMED,
    NO_EXPIRY,
    NOT_YET_VALID,
    UNKNOWN_KEY,
    WRONG_AUDIENCE,
    WRONG_ISSUER,
    invalid_token,
    unavailable,
)
from restplug_auth_oauth.claims import identity_from_claims
from restplug_auth_oauth.settings import AuthConfig

log = logging.getLogger("restplug.auth_oauth")

# Most specific first: PyJWT's errors subclass each other.
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, EXPIRED),
    (jwt.ImmatureSignatureError, NOT_YET_VALID),
    (jwt.InvalidIssuerError, WRONG_ISSUER),
    (jwt.InvalidAudienceError, WRONG_AUDIENCE),
    (jwt.InvalidSignatureError, BAD_SIGNATURE),
    # alg "none", or an HS256 token where only public keys are trusted: not signed by them.
    (jwt.InvalidAlgorithmError, BAD_SIGNATURE),
)
KEYS_UNAVAILABLE = "the authorization server's signing keys are unavailable; try again"
_MISSING_CLAIMS = {"exp": NO_EXPIRY, "iss": WRONG_ISSUER, "aud": WRONG_AUDIENCE}

# The algorithms each asymmetric key type may verify.  Symmetric (``oct``) keys from a JWKS
# are never used: a public document must not hold a shared secret.
_FAMILIES: dict[str, tuple[str, ...]] = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}


def decode(token: str, key: Any, algorithms: tuple[str, ...], config: AuthConfig) -> Identity:
    """Check signature, ``exp`` (required), ``nbf``, and ``iss``/``aud`` when configured."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            issuer=config.issuer,
            audience=config.audience,
            leeway=config.leeway,
            # Without a configured audience a token's ``aud`` is someone else's business.
            options={"require": ["exp"], "verify_aud": config.audience is not None},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise invalid_token(_MISSING_CLAIMS.get(exc.claim, MALFORMED)) from None
    except jwt.PyJWTError as exc:
        description = next((d for kind, d in _REFUSALS if isinstance(exc, kind)), MALFORMED)
        raise invalid_token(description) from None
    return identity_from_claims(claims)


class SecretVerifier:
    """HS256 tokens signed with ``RESTPLUG_AUTH_JWT_SECRET`` (``restplug token`` mints them)."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config

    async def identify(self, token: str) -> Identity:
        return decode(token, self.config.jwt_secret, ("HS256",), self.config)

    async def close(self) -> None:
        """Holds nothing to release."""


@dataclass(frozen=True)
class SigningKey:
    key: Any
    algorithms: tuple[str, ...]


class JwksError(Exception):
    """The JWKS could not be fetched or read."""


def parse_jwks(document: Any) -> dict[str | None, SigningKey]:
    """The usable signing keys of a JWKS document, by ``kid``; unusable keys are skipped,
    and a document left with none is an error."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("the answer is not a JWKS (no keys list)")
    keys: dict[str | None, SigningKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        family = _FAMILIES.get(jwk.get("kty", ""))
        if family is None:
            continue
        algorithms = (jwk["alg"],) if "alg" in jwk else family
        if not set(algorithms) <= set(family):
            continue
        try:
            key = jwt.PyJWK(jwk, algorithms[0]).key
        except jwt.PyJWTError as exc:
            log.warning("skipping JWKS key %s: %s", jwk.get("kid"), exc)
            continue
        keys[jwk.get("kid")] = SigningKey(key, algorithms)
    if not keys:
        # A failure, not an answer: the keys known so far stay in use, and a retry comes soon.
        raise JwksError("the JWKS holds no usable signing key")
    return keys


class JwksVerifier:
    """Tokens signed by an OAuth2 server, with the public keys it publishes at a JWKS URL."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.url: str = config.jwks_url or ""
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.timeout))
        self._keys: dict[str | None, SigningKey] = {}
        self._next_fetch = float("-inf")
        self._last_unknown_kid_fetch = float("-inf")
        # One fetch at a time: requests arriving meanwhile wait for it instead of fetching too.
        self._lock = asyncio.Lock()

    async def identify(self, token: str) -> Identity:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise invalid_token(MALFORMED) from None
        key = await self._signing_key(kid)
        return decode(token, key.key, key.algorithms, self.config)

    async def close(self) -> None:
        await self.session.close()

    def _find(self, kid: Any) -> SigningKey | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid) if isinstance(kid, str | None) else None

    def _fetch_due(self) -> bool:
        return time.monotonic() >= self._next_fetch

    async def _signing_key(self, kid: Any) -> SigningKey:
        if self._fetch_due():
            await self._refresh(self._fetch_due, for_unknown_kid=False)
        if not self._keys:
            raise unavailable(KEYS_UNAVAILABLE)
        key = self._find(kid)
        if key is None:

            def unknown_kid_fetch_due() -> bool:
                recently = time.monotonic() - self._last_unknown_kid_fetch
                return self._find(kid) is None and recently >= self.config.jwks_min_refresh

            await self._refresh(unknown_kid_fetch_due, for_unknown_kid=True)
            key = self._find(kid)
        if key is None:
            raise invalid_token(UNKNOWN_KEY)
        return key

    async def _refresh(self, still_due: Callable[[], bool], *, for_unknown_kid: bool) -> None:
        """Fetch the JWKS unless another request did while this one waited for the lock.

        When the fetch fails, the keys already known stay in use, and the next attempt waits
        ``jwks_min_refresh``.  Only when the failure leaves the token's key unknown is the
        answer a 503: the key may well exist, it just cannot be fetched now.
        """
        async with self._lock:
            if not still_due():
                return
            now = time.monotonic()
            if for_unknown_kid:
                self._last_unknown_kid_fetch = now
            try:
                self._keys = await self._fetch()
            except (JwksError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self._next_fetch = now + self.config.jwks_min_refresh
                log.warning("fetching the JWKS from %s failed: %r", self.url, exc)
                if for_unknown_kid:
                    raise unavailable(KEYS_UNAVAILABLE) from None
                return
            self._next_fetch = now + self.config.jwks_ttl
            log.info("fetched %d signing keys from %s", len(self._keys), self.url)

    async def _fetch(self) -> dict[str | None, SigningKey]:
        async with self.session.get(self.url, headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                raise JwksError(f"HTTP {response.status}")
            return parse_jwks(await response.json(content_type=None))
