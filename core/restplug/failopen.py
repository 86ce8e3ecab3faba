"""Calls to a shared backend that must never fail a request (a cache, a rate limiter's
counters): bounded in time, skipped for a while after repeated errors, answered with a
fallback instead, and logged once per outage rather than once per request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("restplug.failopen")
T = TypeVar("T")


@dataclass
class CircuitBreaker:
    """After ``threshold`` consecutive errors the backend is skipped for ``cooldown`` seconds,
    so an outage costs one timeout now and then instead of one per request."""

    threshold: int = 3
    cooldown: float = 5.0
    failures: int = 0
    open_until: float = 0.0

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self.open_until

    def success(self) -> None:
        self.failures = 0

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = time.monotonic() + self.cooldown
            self.failures = 0


class FailOpen:
    """``await guard.call(function, *args, failed=fallback)``: the function's result, or
    ``fallback`` when it raises, takes longer than ``timeout`` seconds, or the breaker is open.
    ``timeout`` None sets no timer, for a backend in this process that answers without waiting
    on any I/O (a timer per call costs more than such a call).

    ``what`` names the backend and ``fallback_means`` what callers get meanwhile, for the one
    warning an outage logs (``"cache unavailable (...): served as misses"``)."""

    def __init__(
        self,
        what: str,
        fallback_means: str,
        *,
        timeout: float | None = 0.25,
        breaker: CircuitBreaker | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.what = what
        self.fallback_means = fallback_means
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker()
        self.log = logger or log
        self.down = False

    async def call(self, function: Callable[..., Awaitable[T]], *args: Any, failed: T) -> T:
        if not self.breaker.closed:
            return failed
        try:
            if self.timeout is None:
                result = await function(*args)
            else:
                async with asyncio.timeout(self.timeout):
                    result = await function(*args)
        except Exception as exc:
            self.breaker.failure()
            if not self.down:
                self.down = True
                self.log.warning(
                    "%s unavailable (%s in %s): %s until it answers",
                    self.what,
                    type(exc).__name__,
                    getattr(function, "__name__", "a call"),
                    self.fallback_means,
                )
            return failed
        self.breaker.success()
        if self.down:
            self.down = False
            self.log.warning("%s answers again", self.what)
        return result
