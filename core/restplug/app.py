"""The application: configuration, plugins and backends wired together, and the aiohttp app."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from restplug import faults
from restplug.auth import Identity
from restplug.backends import Backend, Kind, choose, scheme_of
from restplug.caches.manager import CacheManager
from restplug.collection import Change, Collection
from restplug.config import (
    CORE_SETTINGS,
    Setting,
    Settings,
    generated_secret,
    parse_settings,
    read_environment,
)
from restplug.errors import BackendUnavailable, ConfigError, Conflict, Problem
from restplug.http import (
    BODY_TIMEOUT,
    answer_protocol_errors,
    etag_of,
    json_response,
    problem_middleware,
)
from restplug.loading import bulk_loading
from restplug.openapi import openapi_routes
from restplug.outbox import INTERNAL, Outbox, OutboxStore
from restplug.permissions import Denial, Requirement
from restplug.plugins import PluginManager, call, new_plugin_manager
from restplug.progress import progress
from restplug.query import RESERVED, ListParser
from restplug.resources import Resource
from restplug.routes import Route
from restplug.search.indexing import Indexer
from restplug.search.protocol import SearchIndex
from restplug.stores.protocol import DocumentStore, FindQuery, Write
from restplug.views import resource_routes

log = logging.getLogger("restplug")
RESTPLUG = web.AppKey("restplug", "Restplug")
#: Where the cursor key is generated when ``RESTPLUG_CURSOR_SECRET`` is unset (like the
#: default store, relative to the working directory, so every worker of a deployment shares it).
CURSOR_SECRET_FILE = Path("var/cursor-secret")
IDENTITY = web.RequestKey("restplug.identity", object)


class Restplug:
    """One configured restplug: settings, plugins, backends and resources.

    Plugins receive it in their hooks and see it as a :class:`restplug.Context`: what that
    protocol declares is theirs to use, the rest is the core's.  Their documents are reached
    through :meth:`collection`, whose writes run their side effects by themselves (caches,
    search index, the ``documents_changed`` hook), crash-safe (:mod:`restplug.outbox`).  The
    store itself is the core's.
    """

    def __init__(self, settings: Settings, pm: PluginManager) -> None:
        self.settings = settings
        self.pm = pm
        self.backends: dict[Kind, Any] = {}
        self.resources: dict[str, Resource] = {}
        self.parsers: dict[str, ListParser] = {}
        self.routes: list[Route] = []
        self.middlewares: list[Any] = []
        #: ``(method, path)`` -> what plugins add to the route's OpenAPI description.
        self.route_docs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.indexer: Indexer | None = None

    @property
    def store(self) -> DocumentStore:
        """The core's store; writes to resources carry their side effects (:class:`OutboxStore`)."""
        return self._store

    def collection(self, name: str) -> Collection:
        """Reads and writes of the resource ``name``'s documents; LookupError when no plugin
        registered such a resource."""
        resource = self.resources.get(name)
        if resource is None:
            known = ", ".join(sorted(self.resources)) or "none"
            raise LookupError(f"no resource is named {name!r}; the resources: {known}")
        return Collection(resource, self._store)

    @property
    def cache(self) -> CacheManager:
        """get/save/delete for plugins, and the core's read-through caching (fail-open; a
        no-op without a cache backend)."""
        return self._cache

    @property
    def search(self) -> SearchIndex | None:
        """The search index, or None when search is off (``none://``) or not installed."""
        return self.backends.get("search")

    @functools.cached_property
    def cursor_key(self) -> bytes:
        """The key that signs list cursors: ``RESTPLUG_CURSOR_SECRET``, or one generated once
        into ``var/cursor-secret``.  Cursors stay valid across restarts and workers."""
        secret = self.settings.cursor_secret or generated_secret(CURSOR_SECRET_FILE)
        return secret.encode()

    @property
    def query_timeout(self) -> float:
        return self.settings.query_timeout_ms / 1000

    def list_parser(self, resource: Resource) -> ListParser:
        """The list parameters of a plugin's own list route: :meth:`Context.list_parser`."""
        return ListParser(self, resource, [], [])

    @classmethod
    async def configure(
        cls, environ: Mapping[str, str] | None = None, plugins: Iterable[object] = ()
    ) -> Restplug:
        """Read the configuration, load the plugins, pick the backends, collect resources and
        routes.  Nothing is opened yet; any problem raises a one-line ConfigError."""
        raw = read_environment(environ)
        core = parse_settings(CORE_SETTINGS, raw, complete=False)
        pm = new_plugin_manager(core.disable_plugins, extra=plugins)
        declared: list[Setting] = [*CORE_SETTINGS, *await call(pm, "register_settings")]
        self = cls(parse_settings(declared, raw), pm)
        self._choose_backends(await self._tagged_backends())
        faults.arm(self.settings.crash_at)
        self._cache = CacheManager(
            self.backends.get("cache"), prefix="restplug", ttl=self.settings.cache_ttl
        )
        self.outbox = Outbox(
            self.backends["store"],
            self.resources,
            self._cache,
            self._notify,
            retry_interval=self.settings.outbox_retry_ms / 1000,
        )
        self._store = OutboxStore(self.backends["store"], self.outbox)
        for resource in await call(pm, "register_resources", restplug=self):
            if resource.name in self.resources:
                raise ConfigError(f"two plugins declare the resource {resource.name!r}")
            if resource.name in INTERNAL:
                raise ConfigError(f"a resource cannot be named {resource.name!r}: the core's is")
            self.resources[resource.name] = resource
        for resource in self.resources.values():
            self.parsers[resource.name] = await self._list_parser(resource)
        for resource in self.resources.values():
            if resource.default_routes:
                self.routes += resource_routes(self, resource)
        self.routes += await call(pm, "register_routes", restplug=self)
        self.middlewares = await call(pm, "register_middlewares", restplug=self)
        for route in self.routes:
            docs = await call(pm, "describe_route", restplug=self, route=route)
            self.route_docs[(route.method, route.path)] = [doc for doc in docs if doc]
        return self

    async def _tagged_backends(self) -> list[Backend]:
        return [
            Backend(backend.kind, backend.schemes, backend.factory, plugin)
            for plugin, backend in await call(self.pm, "register_backends")
        ]

    def _choose_backends(self, backends: list[Backend]) -> None:
        urls: dict[Kind, str] = {
            "store": self.settings.store_url,
            "cache": self.settings.cache_url,
            "search": self.settings.search_url,
        }
        for kind, url in urls.items():
            # A store is required; cache and search are features, off with the URL none://
            # or when no plugin of their kind is installed and enabled.
            if kind != "store" and (
                scheme_of(url) == "none" or not any(b.kind == kind for b in backends)
            ):
                continue
            self.backends[kind] = choose(kind, url, backends).factory(url, self.settings)

    async def _list_parser(self, resource: Resource) -> ListParser:
        filters = await self._methods("register_filters", resource)
        sorts = await self._methods("register_sorts", resource)
        taken = {*resource.filters, *RESERVED}
        for method in filters:
            if method.name in taken:
                raise ConfigError(f"{resource.name}: filter {method.name!r} is declared twice")
            taken.add(method.name)
        sort_names = set(resource.sorts)
        for method in sorts:
            if method.name in sort_names:
                raise ConfigError(f"{resource.name}: sort {method.name!r} is declared twice")
            sort_names.add(method.name)
        parser = ListParser(self, resource, filters, sorts)
        parser.check_index_paths()
        return parser

    async def _methods(self, hook: str, resource: Resource) -> list[Any]:
        """The filter or sort methods plugins add to a resource, each tagged with its plugin's
        name (for the errors that name it)."""
        return [
            dataclasses.replace(method, plugin=plugin)
            for plugin, method in await call(self.pm, hook, restplug=self, resource=resource)
        ]

    async def start(self) -> None:
        """Open the backends, prepare every collection, run the plugins' startup hooks."""
        self.cursor_key  # noqa: B018 - generated before the first request, not during one
        for backend in self.backends.values():
            await backend.open()
        for resource in self.resources.values():
            await self.store.prepare(resource.name, self.parsers[resource.name].index_paths)
        if self.search is not None:
            self.indexer = Indexer(
                self.backends["store"], self.search, self.resources, timeout=self.query_timeout
            )
            await self.indexer.prepare()
            self.outbox.indexer = self.indexer
        try:
            for parser in self.parsers.values():
                await parser.check_methods()
        except ConfigError:
            for backend in self.backends.values():
                await backend.close()
            raise
        await self.outbox.start()
        await call(self.pm, "startup", restplug=self)

    async def stop(self) -> None:
        await self.outbox.stop()
        await call(self.pm, "shutdown", restplug=self)
        for backend in self.backends.values():
            await backend.close()

    # -- requests ---------------------------------------------------------------------------

    async def identity(self, request: web.Request) -> Identity | None:
        """The caller's identity, asked of the ``authenticate`` hook once per request."""
        if IDENTITY not in request:
            request[IDENTITY] = await call(self.pm, "authenticate", restplug=self, request=request)
        return request[IDENTITY]  # type: ignore[return-value]

    async def authorize(
        self,
        request: web.Request,
        action: str,
        resource: str | None,
        requirement: Requirement | None,
    ) -> Identity | None:
        """Collect the permission votes; raise the first denial, or 403 with no allowing vote."""
        identity = await self.identity(request)
        verdict = await call(
            self.pm,
            "permission",
            restplug=self,
            request=request,
            identity=identity,
            action=action,
            resource=resource,
            requirement=requirement,
        )
        if isinstance(verdict, Denial):
            raise Problem(verdict.status, verdict.detail, headers=verdict.headers)
        if verdict is None:
            raise Problem(403, f"no permission plugin allows this {action}")
        if verdict is not True:
            raise Problem(403, "a permission plugin denied this request")
        return identity

    async def allows(self, request: web.Request, method: str, path: str) -> bool:
        """Whether the caller of ``request`` may call ``method path`` (:meth:`Context.allows`);
        a user interface asks before it offers an action the API would refuse."""
        route = self._route_at(method.upper(), path)
        if route is None:
            return False
        try:
            await self.authorize(request, route.action, route.resource, route.requirement)
        except Problem:
            return False
        return True

    def _route_at(self, method: str, path: str) -> Route | None:
        segments = path.split("/")
        for route in self.routes:
            pattern = route.path.split("/")
            if (
                route.method == method
                and len(pattern) == len(segments)
                and all(
                    (p.startswith("{") and p.endswith("}") and s) or p == s
                    for p, s in zip(pattern, segments, strict=True)
                )
            ):
                return route
        return None

    async def upsert_all(
        self,
        resource: Resource,
        documents: Iterable[dict[str, Any]],
        total: int | None = None,
        *,
        validated: bool = False,
    ) -> int:
        """Validate and write many documents (insert or replace) in bulk batches of 500, with a
        progress bar; unchanged documents are left alone, and each batch is one
        ``documents_changed`` call.  Returns how many were written.

        ``documents`` is read and validated in a worker thread, one batch ahead of the writes,
        so that making the documents and storing them overlap; and a batch is written while
        the one before settles its side effects (the search index has a file and a thread of
        its own), unless they share an id.  ``validated``: the documents are in the schema's
        own form already (what ``schema.dump(schema.load(document))`` returns), as a plugin's
        generator of its own documents makes them, so they are written as given: validating
        them again would cost most of the load."""
        schema = resource.schema()
        collection = self.collection(resource.name)
        written = 0
        source = iter(documents)

        def next_batch() -> list[tuple[Any, dict[str, Any], str]]:
            """The next (id, document, ETag) triples; none at the end."""
            batch = list(itertools.islice(source, 500))
            loaded = batch if validated else [schema.dump(schema.load(raw)) for raw in batch]
            return [(doc[resource.id_field], doc, etag_of(doc)) for doc in loaded]

        async def write(batch: list[tuple[Any, dict[str, Any], str]]) -> int:
            """Write the documents of a batch that changed; how many were written."""
            ids = [id for id, _, _ in batch]
            found = await collection.find(FindQuery({"_id": {"$in": ids}}))
            current = {stored.id: stored.etag for stored in found}
            writes = [
                Write(id, document, etag, current.get(id))
                for id, document, etag in batch
                if etag != current.get(id)
            ]
            results = await collection.bulk(writes)
            for write, applied in zip(writes, results, strict=True):
                if not applied:
                    raise Conflict(f"{resource.name} {write.id} changed while loading")
            return len(writes)

        with bulk_loading():
            upcoming = asyncio.ensure_future(asyncio.to_thread(next_batch))
            # The batch before, still settling, and its ids.
            settling: asyncio.Future[int] | None = None
            settling_ids: set[Any] = set()
            try:
                with progress(total, f"loading {resource.name}") as bar:
                    while batch := await upcoming:
                        upcoming = asyncio.ensure_future(asyncio.to_thread(next_batch))
                        ids = {id for id, _, _ in batch}
                        if settling is not None and not settling_ids.isdisjoint(ids):
                            # Read after the batch before is written, or it would be missed.
                            written += await settling
                            settling = None
                        before = settling
                        settling, settling_ids = asyncio.ensure_future(write(batch)), ids
                        if before is not None:
                            written += await before
                        bar.update(len(batch))
                    if settling is not None:
                        written += await settling
                        settling = None
            finally:
                # A thread cannot be cancelled: a failed load waits for the batch it was
                # reading, and for the batch it was writing.
                running = [upcoming, *([settling] if settling is not None else [])]
                await asyncio.wait(running)
                for future in running:
                    if not future.cancelled():
                        future.exception()  # retrieved: its error, if any, is raised above
        return written

    async def reindex(self, resource: Resource, bar: Any = None) -> int:
        """Rebuild the resource's search index from the store (advancing a progress ``bar``),
        then drop the cached lists of every server that shares this store (see
        :meth:`Outbox.mark_rebuilt`).  Returns how many documents were indexed."""
        if self.indexer is None:
            raise ConfigError("no search index is installed and enabled")
        indexed = await self.indexer.rebuild(resource, bar)
        await self.outbox.mark_rebuilt(resource.name)
        return indexed

    async def _notify(self, resource: Resource, changes: list[Change]) -> None:
        """The ``documents_changed`` hook of every plugin, for a write batch's side effects."""
        await call(
            self.pm,
            "documents_changed",
            restplug=self,
            resource=resource,
            changes=changes,
        )

    def web_app(self) -> web.Application:
        """The aiohttp application serving every route; starts and stops the backends."""
        # problem_middleware is outermost: what the plugins' middlewares raise is answered too.
        app = web.Application(
            middlewares=[problem_middleware, *self.middlewares],
            client_max_size=self.settings.max_body,
        )
        app[RESTPLUG] = self
        app[BODY_TIMEOUT] = self.settings.body_timeout
        answer_protocol_errors(app)
        for route in self.routes:
            handler = self._guarded(route)
            app.router.add_route(route.method, route.path, handler)
            if route.method == "GET":
                # aiohttp sends a HEAD answer's headers and drops its body.
                app.router.add_route("HEAD", route.path, handler)
        # Health probes stay outside the permission votes: an orchestrator probes without
        # credentials, and a closed probe would take every instance out of service.
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health/ready", self._ready)
        # Reads with no requirement: open by default, and a permission plugin can close them.
        for path, handler in [("/-/plugins", self._plugins), *openapi_routes(self)]:
            app.router.add_get(path, self._guarded(Route("GET", path, handler)))

        async def lifecycle(_: web.Application):  # type: ignore[no-untyped-def]
            await self.start()
            yield
            await self.stop()

        app.cleanup_ctx.append(lifecycle)
        return app

    def _guarded(self, route: Route) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            await self.authorize(request, route.action, route.resource, route.requirement)
            return await route.handler(request)

        return handler

    async def _live(self, _: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def _ready(self, _: web.Request) -> web.Response:
        async def check(backend: Any) -> str:
            try:
                async with asyncio.timeout(self.query_timeout):
                    await backend.ping()
            except (BackendUnavailable, TimeoutError, OSError) as exc:
                return f"unavailable: {type(exc).__name__}"
            return "ok"

        kinds = list(self.backends)
        results = await asyncio.gather(*(check(self.backends[k]) for k in kinds))
        checks = dict(zip(kinds, results, strict=True))
        # Only the store gates readiness: without the cache requests are slower, without the
        # search index only searches fail; taking every instance out of service for either
        # (they share it) would turn a partial outage into a whole one.
        ready = checks["store"] == "ok"
        return json_response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=200 if ready else 503,
        )

    async def _plugins(self, _: web.Request) -> web.Response:
        return json_response([info.as_dict() for info in self.pm.infos()])
