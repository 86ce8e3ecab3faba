"""What a plugin's hooks receive as ``restplug``: the configured application, as plugins see it.

The core passes its own object; plugins rely on this protocol alone, so the core can change
everything else about that object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from restplug.auth import Identity
    from restplug.caches.manager import CacheManager
    from restplug.collection import Collection
    from restplug.config import Settings
    from restplug.query import ListParser
    from restplug.resources import Resource
    from restplug.search.protocol import SearchIndex


class Context(Protocol):
    """The configured restplug a hook receives."""

    @property
    def settings(self) -> Settings:
        """Every setting, the core's and each plugin's, parsed: ``settings.store_url``."""

    @property
    def resources(self) -> Mapping[str, Resource]:
        """The registered resources by name."""

    @property
    def cache(self) -> CacheManager:
        """get/save/delete for plugins (fail-open; a no-op without a cache backend)."""

    @property
    def search(self) -> SearchIndex | None:
        """The search index, or None when no search plugin is installed and enabled."""

    @property
    def query_timeout(self) -> float:
        """Seconds a store or index call may take before the request answers 503."""

    def collection(self, name: str) -> Collection:
        """Reads and writes of a resource's documents; every write updates the caches and the
        search index and tells the plugins, crash-safe."""

    async def identity(self, request: web.Request) -> Identity | None:
        """Who sent ``request`` (the ``authenticate`` hook, asked once per request)."""

    async def allows(self, request: web.Request, method: str, path: str) -> bool:
        """Whether the caller of ``request`` may call ``method path``, a route of this
        application with its ``{parameters}`` filled in: the permission votes for that route,
        asked as the route itself asks them.  False for a path no route serves."""

    def list_parser(self, resource: Resource) -> ListParser:
        """The list parameters (``page``, ``size``, ``cursor``, ``order_by``, ``fields``,
        ``count`` and ``resource``'s field filters) of a list route a plugin serves itself, for
        a resource it does not register.  ``parser.parse(query)`` validates a request's query
        (400 naming a bad parameter), :func:`restplug.web.list_entry` answers it; name the
        parser in the ``Route`` and the OpenAPI document describes its parameters."""

    async def upsert_all(
        self,
        resource: Resource,
        documents: Iterable[dict[str, Any]],
        total: int | None = None,
        *,
        validated: bool = False,
    ) -> int:
        """Validate and write many documents in bulk batches; returns how many changed.
        ``validated``: they are in the schema's own form already, written as given."""
