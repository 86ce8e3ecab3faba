"""The cache backend protocol: what a cache plugin provides to the core's cache manager."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class CacheBackend(Protocol):
    """What a cache plugin provides.  Values are bytes; keys are strings.  Any method may raise
    (connection lost, timeout): the manager treats every error as a miss."""

    #: True when every process using the same URL sees the same entries (a server such as
    #: Redis); False when entries live in one process.  ``restplug serve --workers N`` (N > 1)
    #: refuses a cache that is not shared: a worker would keep serving what another worker's
    #: write made stale.  A class attribute is enough: ``shared = True``.
    shared: bool

    async def open(self) -> None:
        """Connect; called once at start-up."""

    async def close(self) -> None:
        """Disconnect; called once at shutdown."""

    async def ping(self) -> None:
        """Return when the backend answers; raise when it does not."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Several values in one round trip, in the order of ``keys``."""

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store a value for ``ttl`` seconds."""

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store a value only when the key is absent; True when stored (atomic: a lock)."""

    async def delete(self, key: str) -> None:
        """Remove a key; removing an absent key is not an error."""
