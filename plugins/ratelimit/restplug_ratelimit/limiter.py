"""The limiter: which budget a request draws on, whose it is, and the middleware enforcing it."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

from restplug import BackendUnavailable, Context, FailOpen, Problem, Settings, scheme_of
from restplug_ratelimit.counters import Counters, MemoryCounters, RedisCounters
from restplug_ratelimit.settings import Network, Rate

log = logging.getLogger("restplug.ratelimit")
Kind = Literal["read", "search", "write"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
PREFIX = "restplug:ratelimit"
# The probes exactly: any other path, under /health/ or not, is counted.
NEVER_LIMITED = frozenset({"/health/live", "/health/ready"})
PLURAL: dict[Kind, str] = {"read": "reads", "search": "searches", "write": "writes"}


def kind_of(request: web.Request) -> Kind:
    if request.method in ("GET", "HEAD"):
        return "search" if "search" in request.query else "read"
    return "write"


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The peer's address; behind trusted proxies, the nearest address in X-Forwarded-For
    that is not one of them.  Entries a trusted proxy did not add are the client's own
    claims, so the walk goes from the right and stops at the first untrusted hop."""
    address = request.remote or "unknown"
    if not trusted:
        return address
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([address, *filter(None, hops)]):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return address  # not an address: whoever wrote it is not to be believed
        address = hop
        if not any(ip in network for network in trusted):
            return hop
    return address


class Limiter:
    """Budgets per identity (or client address) and kind of request, counted by ``counters``."""

    def __init__(
        self,
        restplug: Context,
        counters: Counters,
        rates: dict[Kind, Rate],
        trusted: tuple[Network, ...] = (),
    ) -> None:
        self.restplug = restplug
        self.counters = counters
        self.rates = rates
        self.trusted = trusted
        # Counters in this process's memory wait on no I/O: a timer per request would cost
        # more than counting.
        timeout = None if isinstance(counters, MemoryCounters) else 0.25
        self.guard = FailOpen(
            "rate limit counters", "requests pass unlimited", timeout=timeout, logger=log
        )

    @classmethod
    def from_settings(cls, restplug: Context) -> Limiter:
        settings: Settings = restplug.settings
        url = settings.ratelimit_url
        counters = MemoryCounters() if scheme_of(url) == "memory" else RedisCounters(url)
        rates: dict[Kind, Rate] = {
            "read": settings.ratelimit_reads,
            "search": settings.ratelimit_searches,
            "write": settings.ratelimit_writes,
        }
        return cls(restplug, counters, rates, settings.ratelimit_trusted_proxies)

    async def open(self) -> None:
        try:
            await self.counters.open()
        except BackendUnavailable as exc:
            log.warning("%s; requests pass unlimited until it answers", exc)

    async def close(self) -> None:
        await self.counters.close()

    async def who(self, request: web.Request) -> str:
        """The authenticated subject, else the client address.  Bad credentials count against
        the address: the route itself answers them with 401."""
        try:
            identity = await self.restplug.identity(request)
        except Problem:
            identity = None
        if identity is None:
            return "address:" + client_address(request, self.trusted)
        return "subject:" + hashlib.sha256(identity.subject.encode()).hexdigest()[:32]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in NEVER_LIMITED:
            return await handler(request)
        kind = kind_of(request)
        rate = self.rates[kind]
        key = f"{PREFIX}:{kind}:{await self.who(request)}"
        counted = await self.guard.call(self.counters.hit, key, rate.period, failed=None)
        if counted is None:  # the counters are down: fail-open, and no figures to tell
            return await handler(request)
        count, reset = counted
        headers = {
            "RateLimit-Limit": str(rate.limit),
            "RateLimit-Remaining": str(max(0, rate.limit - count)),
            # Whole seconds, rounded up; never past the window (float error) nor 0.
            "RateLimit-Reset": str(min(rate.period, max(1, math.ceil(reset)))),
        }
        if count > rate.limit:
            raise Problem(
                429,
                f"over the budget of {rate} for {PLURAL[kind]}; "
                f"retry in {headers['RateLimit-Reset']} s",
                headers={**headers, "Retry-After": headers["RateLimit-Reset"]},
            )
        try:
            response = await handler(request)
        except Problem as problem:
            problem.headers = {**problem.headers, **headers}
            raise
        response.headers.update(headers)
        return response
