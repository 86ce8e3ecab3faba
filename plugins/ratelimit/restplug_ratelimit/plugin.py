"""The ``ratelimit`` plugin: a middleware drawing every request on a budget (health probes
excepted), with the limiter's counters opened and closed with the server."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from restplug import hookimpl
from restplug.app import Restplug
from restplug.config import Setting
from restplug_ratelimit.limiter import Limiter, Middleware
from restplug_ratelimit.settings import SETTINGS

# One limiter per Restplug (tests run several in one process).
_limiters: WeakKeyDictionary[Restplug, Limiter] = WeakKeyDictionary()


@hookimpl
def register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
def register_middlewares(restplug: Restplug) -> list[Middleware]:
    limiter = _limiters[restplug] = Limiter.from_settings(restplug)
    return [limiter.middleware]


@hookimpl
async def startup(restplug: Restplug) -> None:
    await _limiters[restplug].open()


@hookimpl
async def shutdown(restplug: Restplug) -> None:
    limiter = _limiters.pop(restplug, None)
    if limiter is not None:
        await limiter.close()
