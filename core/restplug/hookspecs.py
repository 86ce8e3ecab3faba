"""The hooks a restplug plugin can implement: the framework's public API.

Every hook may be implemented as a plain function or as an ``async def``; the core awaits
whatever comes back.  Each docstring says when the core calls the hook, what an implementation
returns, and how the answers of several plugins are combined.  ``docs/hooks.md`` documents the
same hooks and a test keeps the two in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pluggy import HookspecMarker

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import click
    from aiohttp import web

    from restplug.app import Restplug
    from restplug.auth import Identity
    from restplug.backends import Backend
    from restplug.collection import Change
    from restplug.config import Setting
    from restplug.methods import FilterMethod, SortMethod
    from restplug.permissions import Requirement, Vote
    from restplug.resources import Resource
    from restplug.routes import Route

    Middleware = Callable[
        [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
        Awaitable[web.StreamResponse],
    ]

hookspec = HookspecMarker("restplug")


@hookspec
def register_settings() -> list[Setting]:
    """Declare the environment variables a plugin reads.

    Called once when the configuration is loaded, before anything starts.  Return a list of
    :class:`restplug.config.Setting`; the lists of all plugins are concatenated.  Each value is
    read from the environment (or ``.env``), parsed and validated with the core's own settings,
    so a bad value stops start-up with one clear line naming the variable.
    """


@hookspec
def register_backends() -> list[Backend]:
    """Declare the document stores, cache backends and search indexes a plugin provides.

    Called once at start-up.  Return a list of :class:`restplug.backends.Backend`, each naming
    its kind (``store``, ``cache`` or ``search``), the URL schemes it answers and a factory that
    builds it from a URL.  The lists of all plugins are concatenated; the scheme of
    ``RESTPLUG_STORE_URL`` (``_CACHE_URL``, ``_SEARCH_URL``) then selects the one backend of that
    kind answering it.  No answer, or two enabled plugins answering the same scheme, stops
    start-up with a line naming the installed choices.
    """


@hookspec
def register_resources(restplug: Restplug) -> list[Resource]:
    """Declare the REST resources a plugin serves.

    Called once at start-up, before routes are built.  Return a list of
    :class:`restplug.resources.Resource`; the lists of all plugins are concatenated.  The core
    gives every resource its list, detail, create, replace, merge-patch and delete routes
    (unless it says ``default_routes=False``), its OpenAPI description and its cache handling,
    and ``restplug.collection(name)`` for its documents.  Two resources with one name stop
    start-up.
    """


@hookspec
def register_filters(restplug: Restplug, resource: Resource) -> list[FilterMethod]:
    """Add method filters to a resource's list route.

    Called once per resource at start-up, after the backends are chosen (``restplug.search`` is
    the search index, or None).  Return a list of :class:`restplug.methods.FilterMethod` (a
    query parameter, its marshmallow field and an async function turning the parsed value into
    a MongoDB-syntax filter fragment, optionally with a relevance ranking), or ``None`` to add
    nothing to this resource.  The lists of all plugins are concatenated; a parameter
    name used twice, or clashing with a field filter, stops start-up.
    """


@hookspec
def register_sorts(restplug: Restplug, resource: Resource) -> list[SortMethod]:
    """Add sort methods to a resource's ``order_by`` parameter.

    Called once per resource at start-up.  Return a list of
    :class:`restplug.methods.SortMethod` (a name usable in ``order_by`` and the document path
    it sorts by), or ``None``.  The lists of all plugins are concatenated; a name used twice, or
    clashing with a declared sort field, stops start-up.
    """


@hookspec
def register_routes(restplug: Restplug) -> list[Route]:
    """Add HTTP routes beyond the resources' own.

    Called once at start-up, after the resources are known.  Return a list of
    :class:`restplug.routes.Route` (method, path, async handler, the permission requirement
    and OpenAPI description); the lists of all plugins are concatenated.  Routes are checked by
    the same permission hooks as resource routes.
    """


@hookspec
def describe_route(restplug: Restplug, route: Route) -> dict[str, Any] | None:
    """Declare in the OpenAPI document what a plugin adds to a route's answers (the statuses
    and headers of its middleware), so that the document says everything the route does.

    Called once per route at start-up, after the middlewares are collected.  Return ``None``
    or a dict with ``responses`` (status -> OpenAPI response object: answers the route gains)
    and ``headers`` (name -> OpenAPI header object: sent with every answer of the route, so
    never ``required`` unless it always is).  The answers of all plugins are applied in
    pluggy's call order; a status the route already declares keeps its own description.
    """


@hookspec
def register_middlewares(restplug: Restplug) -> list[Middleware]:
    """Run code around every request: aiohttp middlewares (rate limits, request logging).

    Called once at start-up, after the routes are collected.  Return a list of aiohttp
    middlewares (``@web.middleware async def m(request, handler)``), or ``None``.  They wrap
    every request the application serves, health probes, documentation and unknown paths
    included (a middleware skips what it must not touch).  The lists of all plugins are
    concatenated in pluggy's call order (the plugin registered last first, unless a hookimpl
    says ``tryfirst``/``trylast``); the first middleware of the combined list is the
    outermost.  The core's error handling stays
    outside them all, so anything a middleware raises, a
    :class:`restplug.errors.Problem` above all, reaches the client as problem+json.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``restplug`` command line.

    Called once when the command line is built.  Add commands with ``@cli.command()``; the
    return value is ignored.  Every enabled plugin is called.  This hook runs outside the event
    loop and must be a plain function.
    """


@hookspec
def load_demo_data(
    restplug: Restplug, count: int, seed: int, if_empty: bool
) -> dict[str, int] | None:
    """Load a plugin's demo documents, for ``restplug demo-data``.

    Called once per run of the command, after the backends are open and the ``startup`` hooks
    ran, for every enabled plugin, in plugin order.  ``count`` is how many main documents to
    load (the catalogue's apps; a plugin sizes its own data by it) and ``seed`` picks them:
    the same arguments load the same documents, so a second run changes nothing.  With
    ``if_empty`` a plugin loads nothing into a resource that has documents already.  Write
    through ``restplug.collection`` (or ``restplug.upsert_all``) and return how many documents
    were written per resource (``{"apps": 20}``), or ``None`` when the plugin has no demo
    data.  The answers are merged into the command's one line; none at all is an error.
    """


@hookspec
def startup(restplug: Restplug) -> None:
    """Run code when the server (or a command using the backends) starts.

    Called once after the backends are open and the resources are set up, before the first
    request.  Every enabled plugin is called, in plugin order; the return value is ignored; an
    exception stops start-up.
    """


@hookspec
def shutdown(restplug: Restplug) -> None:
    """Release what :func:`startup` acquired.

    Called once when the server stops, before the backends are closed.  Every enabled plugin is
    called; the return value is ignored; an exception is logged and the others still run.
    """


@hookspec(firstresult=True)
def authenticate(restplug: Restplug, request: web.Request) -> Identity | None:
    """Tell who sent a request.

    Called at most once per request, the first time a route or a permission check needs the
    identity.  Return a :class:`restplug.auth.Identity` for valid credentials, ``None`` when the
    plugin has nothing to say (no credentials it understands), or raise
    :class:`restplug.errors.Problem` (for instance a 401 for a bad token, 503 when the
    authorization server is unreachable).  The first non-``None`` answer wins; with none, the
    request is anonymous.
    """


@hookspec
def permission(
    restplug: Restplug,
    request: web.Request,
    identity: Identity | None,
    action: str,
    resource: str | None,
    requirement: Requirement | None,
) -> Vote:
    """Vote on whether a request may run.

    Called once per request to every route, after :func:`authenticate`.  ``action`` is
    ``read`` or ``write``; ``requirement`` is what the route declares it needs (scopes).
    Return ``True`` to allow, ``None`` to abstain, ``False`` or a
    :class:`restplug.permissions.Denial` (which carries the status, reason and headers the
    client gets) to deny.  Every plugin votes: any denial wins; otherwise any ``True`` allows;
    with only abstentions the default policy applies: reads are open, writes are closed.
    """


@hookspec
def documents_changed(restplug: Restplug, resource: Resource, changes: list[Change]) -> None:
    """Learn which documents a write changed.

    Called after every write through ``restplug.collection(name)`` (the core's routes, package
    ingest, ``demo-data``, tasks, any plugin's own writes), once per write batch and resource:
    a single write is a list of one :class:`restplug.Change`, a bulk write (a package, a batch
    of ``upsert_all``) one call with every document it changed.  Each change has the ``id``
    and the ``document`` as written, ``None`` after a delete.  Called after the search index
    and the caches were updated, normally before the response is sent; the return value is
    ignored.  Every plugin is called; an exception is logged and never fails the write.

    Delivery is at least once, also across a crash: the pending call is stored in the write's
    own transaction (the outbox), so a process killed before or while calling it calls it at
    the next start, with the documents as stored then (batched by page of pending writes); a
    write whose search update failed is told again when its retry succeeds.  So a document
    may be told twice, or with a newer state than the write's: make it idempotent (key on
    ``id``, take ``document`` as the current state).
    """
