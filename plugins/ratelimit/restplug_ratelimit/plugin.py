"""The ``ratelimit`` plugin: a middleware drawing every request on a budget (health probes
excepted), with the limiter's counters opened and closed with the server."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from restplug import Context, Route, Setting, hookimpl
from restplug.web import header, problem_response
from restplug_ratelimit.limiter import NEVER_LIMITED, Limiter, Middleware
from restplug_ratelimit.settings import SETTINGS

# One limiter per restplug (tests run several in one process).
_limiters: WeakKeyDictionary[Context, Limiter] = WeakKeyDictionary()


@hookimpl
def register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
def register_middlewares(restplug: Context) -> list[Middleware]:
    limiter = _limiters[restplug] = Limiter.from_settings(restplug)
    return [limiter.middleware]


#: The figures sent with every limited answer (none while the counters are down).
SECONDS = {"type": "string", "pattern": "^[0-9]+$"}
RATE_HEADERS = {
    "RateLimit-Limit": header("requests allowed per window", SECONDS),
    "RateLimit-Remaining": header("requests left in this window", SECONDS),
    "RateLimit-Reset": header("seconds until the window resets", SECONDS),
}


@hookimpl
def describe_route(route: Route) -> dict[str, Any] | None:
    if route.path in NEVER_LIMITED:
        return None
    over = problem_response(
        "over the client's budget of requests",
        {**RATE_HEADERS, "Retry-After": header("seconds to wait", SECONDS)},
    )
    return {"responses": {"429": over}, "headers": RATE_HEADERS}


@hookimpl
async def startup(restplug: Context) -> None:
    await _limiters[restplug].open()


@hookimpl
async def shutdown(restplug: Context) -> None:
    limiter = _limiters.pop(restplug, None)
    if limiter is not None:
        await limiter.close()
