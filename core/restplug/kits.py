"""What the contract kits (``restplug.stores.contract``, ``.caches.contract``,
``.search.contract``) share.  This module imports pytest: import it from tests only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

# Deadlines that cut calls short before, while and after they reach the backend.
DEADLINES = (0, 0.0001, 0.001, 0.01)


async def fails_within(
    call: Callable[[], Awaitable[Any]], error: type[BaseException], seconds: float, name: str
) -> None:
    """Assert that ``call()`` raises ``error`` before ``seconds`` pass: a hang fails the test,
    by name, instead of stalling the suite."""
    async with asyncio.timeout(seconds) as deadline:
        try:
            await call()
        except error:
            return
        except asyncio.CancelledError:
            if deadline.expired():
                pytest.fail(f"{name} hung for {seconds} s instead of raising {error.__name__}")
            raise
    pytest.fail(f"{name} answered instead of raising {error.__name__}")
