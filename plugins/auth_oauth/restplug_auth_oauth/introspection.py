"""Introspection mode: RFC 7662, the authorization server tells whether a token is active.

Answers are cached twice, keyed by a SHA-256 of the token (never the token): in a small
in-process cache, and in the core's cache (``restplug.cache``, a no-op without a backend), so
the processes sharing it (Redis) ask once per token.  An active answer lives until the token's
``exp``, at most ``RESTPLUG_AUTH_CACHE_MAX_TTL``; an inactive one
``RESTPLUG_AUTH_INACTIVE_TTL``, so a client replaying a bad token does not turn each request
into a call.  The core cache fails open: any failure of it is logged and taken as a miss.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import orjson

from restplug import CacheManager, Identity, MemoryCache
from restplug_auth_oauth.bearer import (
    EXPIRED,
    INACTIVE,
    NOT_YET_VALID,
    WRONG_AUDIENCE,
    WRONG_ISSUER,
    invalid_token,
    unavailable,
)
from restplug_auth_oauth.claims import identity_from_claims
from restplug_auth_oauth.settings import AuthConfig

log = logging.getLogger("restplug.auth_oauth")

CACHE_PREFIX = "auth_oauth:introspection:"
# Room for tens of thousands of answers: bounded, so a flood of distinct tokens cannot grow it.
LOCAL_CACHE_BYTES = 8 * 1024 * 1024
UNREACHABLE = "the authorization server cannot check the token now; try again"

Answer = dict[str, Any]


def cache_key(token: str) -> str:
    """A token's cache key: a hash, so whoever reads the cache learns no usable token."""
    return CACHE_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def basic_auth(client_id: str | None, client_secret: str | None) -> str:
    """RFC 6749 2.3.1: the client id and secret are form-urlencoded, then base64-encoded."""
    pair = f"{quote_plus(client_id or '')}:{quote_plus(client_secret or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


class Introspector:
    """Asks ``RESTPLUG_AUTH_INTROSPECTION_URL`` about tokens, with HTTP Basic client auth."""

    def __init__(self, config: AuthConfig, shared_cache: CacheManager) -> None:
        self.config = config
        self.url: str = config.introspection_url or ""
        self.shared_cache = shared_cache
        self.local_cache = MemoryCache(LOCAL_CACHE_BYTES)
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=config.timeout),
            headers={"Authorization": basic_auth(config.client_id, config.client_secret)},
        )
        # Requests carrying the same uncached token share one call to the server.
        self._pending: dict[str, asyncio.Task[Answer]] = {}

    async def identify(self, token: str) -> Identity:
        key = cache_key(token)
        answer = await self._cached(key)
        if answer is None:
            task = self._pending.get(key)
            if task is None:
                task = asyncio.create_task(self._introspect_and_cache(key, token))
                self._pending[key] = task
                task.add_done_callback(lambda _: self._pending.pop(key, None))
            # Shielded: one impatient client going away must not cancel the others' answer.
            answer = await asyncio.shield(task)
        return self._identity(answer)

    async def close(self) -> None:
        await self.session.close()
        await self.local_cache.close()

    async def _cached(self, key: str) -> Answer | None:
        raw = await self.local_cache.get(key)
        if raw is not None:
            return orjson.loads(raw)
        answer = await self.shared_cache.get(key)
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            return None
        await self.local_cache.set(key, orjson.dumps(answer), self._ttl(answer))
        return answer

    async def _introspect_and_cache(self, key: str, token: str) -> Answer:
        answer = await self._introspect(token)
        raw, ttl = orjson.dumps(answer), self._ttl(answer)
        await self.local_cache.set(key, raw, ttl)
        await self.shared_cache.save(answer, key, ttl)
        return answer

    async def _introspect(self, token: str) -> Answer:
        try:
            async with self.session.post(
                self.url,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"Accept": "application/json"},
            ) as response:
                if response.status != 200:
                    hint = " (check RESTPLUG_AUTH_CLIENT_ID and _SECRET)"
                    log.error(
                        "the introspection endpoint %s answered HTTP %d%s",
                        self.url,
                        response.status,
                        hint if response.status in (401, 403) else "",
                    )
                    raise unavailable(UNREACHABLE)
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("introspection at %s failed: %r", self.url, exc)
            raise unavailable(UNREACHABLE) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            log.error("the introspection endpoint %s answered without an active flag", self.url)
            raise unavailable(UNREACHABLE)
        # RFC 7662 2.2: an inactive answer says nothing else worth keeping.
        return answer if answer["active"] else {"active": False}

    def _ttl(self, answer: Answer) -> float:
        """Until the token expires, at most the maximum; inactive (or expired) briefly."""
        if answer.get("active"):
            exp = answer.get("exp")
            if not isinstance(exp, int | float):
                return self.config.cache_max_ttl
            remaining = exp - time.time()
            if remaining > 0:
                return min(remaining, self.config.cache_max_ttl)
        return self.config.inactive_ttl

    def _identity(self, answer: Answer) -> Identity:
        """An active answer's claims, checked like a JWT's where the server sent them."""
        if not answer.get("active"):
            raise invalid_token(INACTIVE)
        now, leeway = time.time(), self.config.leeway
        exp, nbf = answer.get("exp"), answer.get("nbf")
        if isinstance(exp, int | float) and exp < now - leeway:
            raise invalid_token(EXPIRED)
        if isinstance(nbf, int | float) and nbf > now + leeway:
            raise invalid_token(NOT_YET_VALID)
        issuer, iss = self.config.issuer, answer.get("iss")
        if issuer and iss is not None and iss != issuer:
            raise invalid_token(WRONG_ISSUER)
        audience, aud = self.config.audience, answer.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience and aud is not None and audience not in audiences:
            raise invalid_token(WRONG_AUDIENCE)
        return identity_from_claims(answer)
