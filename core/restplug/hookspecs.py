"""The hooks a restplug plugin can implement: the framework's public API.

Every hook may be implemented as a plain function or as an ``async def``; the core awaits
whatever comes back.  Each docstring says when the core calls the hook, what an implementation
returns, and how the answers of several plugins are combined; the spec's :class:`Combine` rule
says the same to the code: :func:`restplug.plugins.call` combines the answers by it.
``docs/hooks.md`` is generated from this module and a test keeps the two in step.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pluggy import HookspecMarker

if TYPE_CHECKING:
    from collections.abc import Awaitable

    import click
    from aiohttp import web

    from restplug.auth import Identity
    from restplug.backends import Backend
    from restplug.collection import Change
    from restplug.config import Setting
    from restplug.context import Context
    from restplug.methods import FilterMethod, SortMethod
    from restplug.permissions import Requirement, Vote
    from restplug.resources import Resource
    from restplug.routes import Route

    Middleware = Callable[
        [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
        Awaitable[web.StreamResponse],
    ]

F = TypeVar("F", bound=Callable[..., Any])


class Combine(enum.Enum):
    """How the answers of a hook's implementations become the one answer the core uses.

    "Call order" is pluggy's: the plugin registered last first, ``tryfirst``/``trylast``
    implementations moved to either end.  A rule :attr:`one_plugin_at_a_time` calls the hook
    once per implementing plugin (through pluggy still, wrappers included): to stop early, to
    go on past a failing plugin, or to tell the answers apart by plugin.
    """

    CONCATENATE = (
        "Every plugin answers a list, or None for nothing; the lists are concatenated in call "
        "order."
    )
    CONCATENATE_BY_PLUGIN = (
        "Each plugin answers a list, or None for nothing; the lists are concatenated in call "
        "order and the core labels each item with the name of the plugin that answered it."
    )
    ANSWERS = "Every plugin answers, or None for nothing; the core uses the answers in call order."
    VOTES = (
        "Every plugin votes: True allows, None abstains, anything else (False, a Denial) "
        "denies.  The first denial in call order wins; otherwise a True allows; with only "
        "abstentions, or no plugin voting, the core refuses."
    )
    FIRST_ANSWER = (
        "The plugins are asked in call order, each answer awaited before the next plugin is "
        "asked: the first answer that is not None wins and the plugins after it are not "
        "called (an async implementation answering None passes the turn, as a plain one "
        "does).  None when no plugin answers."
    )
    EACH = (
        "Every plugin is called, in call order; the return value is ignored; an exception "
        "stops the call and reaches the caller."
    )
    EACH_TOLERANT = (
        "Every plugin is called, in call order; the return value is ignored; an exception is "
        "logged with the plugin's name and the other plugins still run."
    )

    @property
    def one_plugin_at_a_time(self) -> bool:
        """Whether the core calls the hook once per plugin, rather than once for all."""
        return self in (Combine.CONCATENATE_BY_PLUGIN, Combine.FIRST_ANSWER, Combine.EACH_TOLERANT)


_spec = HookspecMarker("restplug")


def hookspec(combine: Combine) -> Callable[[F], F]:
    """Declare a hook, with the rule its answers are combined by (read by the calling code
    and by :mod:`restplug.hookdocs`).  No spec is a pluggy ``firstresult`` one: with async
    implementations pluggy would stop at the first coroutine; :attr:`Combine.FIRST_ANSWER`
    awaits each answer instead."""

    def mark(function: F) -> F:
        function.restplug_combine = combine  # type: ignore[attr-defined]
        return _spec(function)

    return mark


@hookspec(Combine.CONCATENATE)
def register_settings() -> list[Setting]:
    """Declare the environment variables a plugin reads.

    Called once when the configuration is loaded, before anything starts.  Return a list of
    :class:`restplug.Setting`; the lists of all plugins are concatenated.  Each value is
    read from the environment (or ``.env``), parsed and validated with the core's own settings,
    so a bad value stops start-up with one clear line naming the variable.
    """


@hookspec(Combine.CONCATENATE_BY_PLUGIN)
def register_backends() -> list[Backend]:
    """Declare the document stores, cache backends and search indexes a plugin provides.

    Called once at start-up.  Return a list of :class:`restplug.Backend`, each naming its kind
    (``store``, ``cache`` or ``search``), the URL schemes it answers and a factory, called as
    ``factory(url, settings)`` with the configured URL and the parsed settings.  The lists of
    all plugins are concatenated, each backend labelled with its plugin's name (start-up errors
    quote it); the scheme of ``RESTPLUG_STORE_URL`` (``_CACHE_URL``, ``_SEARCH_URL``) then
    selects the one backend of that kind answering it.  No answer, or two enabled plugins
    answering the same scheme, stops start-up with a line naming the installed choices.
    """


@hookspec(Combine.CONCATENATE)
def register_resources(restplug: Context) -> list[Resource]:
    """Declare the REST resources a plugin serves.

    Called once at start-up, before routes are built.  Return a list of
    :class:`restplug.Resource`; the lists of all plugins are concatenated.  The core gives
    every resource its list, detail, create, replace, merge-patch and delete routes (unless it
    says ``default_routes=False``), its OpenAPI description and its cache handling, and
    ``restplug.collection(name)`` for its documents.  Two resources with one name stop
    start-up.
    """


@hookspec(Combine.CONCATENATE_BY_PLUGIN)
def register_filters(restplug: Context, resource: Resource) -> list[FilterMethod]:
    """Add method filters to a resource's list route.

    Called once per resource at start-up, after the backends are chosen (``restplug.search`` is
    the search index, or None).  Return a list of :class:`restplug.FilterMethod` (a
    query parameter, its marshmallow field and an async function turning the parsed value into
    a MongoDB-syntax filter fragment, optionally with a relevance ranking), or ``None`` to add
    nothing to this resource.  A method's ``index_paths`` are indexed at start-up with the
    resource's declared fields; its fragments, tried on its ``examples`` once the backends are
    open, must keep to :data:`restplug.SUPPORTED_OPERATORS`.  The lists of all plugins are
    concatenated, each method labelled with its plugin's name (start-up errors quote it); a
    parameter name used twice, or clashing with a field filter, stops start-up.
    """


@hookspec(Combine.CONCATENATE_BY_PLUGIN)
def register_sorts(restplug: Context, resource: Resource) -> list[SortMethod]:
    """Add sort methods to a resource's ``order_by`` parameter.

    Called once per resource at start-up.  Return a list of
    :class:`restplug.SortMethod` (a name usable in ``order_by`` and the document paths it
    sorts by, with the ``index_paths`` to index at start-up), or ``None``.  The lists of all
    plugins are concatenated, each method labelled with its plugin's name; a name used twice,
    or clashing with a declared sort field, stops start-up.
    """


@hookspec(Combine.CONCATENATE)
def register_routes(restplug: Context) -> list[Route]:
    """Add HTTP routes beyond the resources' own.

    Called once at start-up, after the resources are known.  Return a list of
    :class:`restplug.Route` (method, path, async handler, the permission requirement
    and OpenAPI description); the lists of all plugins are concatenated.  Routes are checked by
    the same permission hooks as resource routes.
    """


@hookspec(Combine.ANSWERS)
def describe_route(restplug: Context, route: Route) -> dict[str, Any] | None:
    """Declare in the OpenAPI document what a plugin adds to a route's answers (the statuses
    and headers of its middleware), so that the document says everything the route does.

    Called once per route at start-up, after the middlewares are collected.  Return ``None``
    or a dict with ``responses`` (status -> OpenAPI response object: answers the route gains)
    and ``headers`` (name -> OpenAPI header object: sent with every answer of the route, so
    never ``required`` unless it always is).  The answers of all plugins are applied in
    pluggy's call order; a status the route already declares keeps its own description.
    """


@hookspec(Combine.CONCATENATE)
def register_middlewares(restplug: Context) -> list[Middleware]:
    """Run code around every request: aiohttp middlewares (rate limits, request logging).

    Called once at start-up, after the routes are collected.  Return a list of aiohttp
    middlewares (``@web.middleware async def m(request, handler)``), or ``None``.  They wrap
    every request the application serves, health probes, documentation and unknown paths
    included (a middleware skips what it must not touch).  The lists of all plugins are
    concatenated in pluggy's call order (the plugin registered last first, unless a hookimpl
    says ``tryfirst``/``trylast``); the first middleware of the combined list is the
    outermost.  The core's error handling stays
    outside them all, so anything a middleware raises, a
    :class:`restplug.Problem` above all, reaches the client as problem+json.
    """


@hookspec(Combine.EACH)
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``restplug`` command line.

    Called once when the command line is built.  Add commands with ``@cli.command()``; the
    return value is ignored.  Every enabled plugin is called.  This hook runs outside the event
    loop and must be a plain function.
    """


@hookspec(Combine.ANSWERS)
def load_demo_data(
    restplug: Context, count: int, seed: int, if_empty: bool
) -> dict[str, int] | None:
    """Load a plugin's demo documents, for ``restplug demo-data``.

    Called once per run of the command, after the backends are open and the ``startup`` hooks
    ran, for every enabled plugin, in call order.  ``count`` is how many main documents to
    load (the catalogue's apps; a plugin sizes its own data by it) and ``seed`` picks them:
    the same arguments load the same documents, so a second run changes nothing.  With
    ``if_empty`` a plugin loads nothing into a resource that has documents already.  Write
    through ``restplug.collection`` (or ``restplug.upsert_all``) and return how many documents
    were written per resource (``{"apps": 20}``), or ``None`` when the plugin has no demo
    data.  The answers are merged into the command's one line; none at all is an error.
    """


@hookspec(Combine.EACH)
def startup(restplug: Context) -> None:
    """Run code when the server (or a command using the backends) starts.

    Called once after the backends are open and the resources are set up, before the first
    request.  Every enabled plugin is called, in call order; the return value is ignored; an
    exception stops start-up.
    """


@hookspec(Combine.EACH_TOLERANT)
def shutdown(restplug: Context) -> None:
    """Release what :func:`startup` acquired.

    Called once when the server stops, before the backends are closed.  Every enabled plugin is
    called; the return value is ignored; an exception is logged and the others still run.
    """


@hookspec(Combine.FIRST_ANSWER)
def authenticate(restplug: Context, request: web.Request) -> Identity | None:
    """Tell who sent a request.

    Called at most once per request, the first time a route or a permission check needs the
    identity.  Return a :class:`restplug.Identity` for valid credentials, ``None`` when the
    plugin has nothing to say (no credentials it understands), or raise
    :class:`restplug.Problem` (for instance a 401 for a bad token, 503 when the
    authorization server is unreachable).  The first non-``None`` answer wins and the plugins
    after it are not asked; an ``async`` implementation answering ``None`` lets the next plugin
    answer.  With no answer, the request is anonymous.
    """


@hookspec(Combine.VOTES)
def permission(
    restplug: Context,
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
    :class:`restplug.Denial` (which carries the status, reason and headers the
    client gets) to deny.  Every plugin votes: any denial wins; otherwise any ``True`` allows;
    with only abstentions the request is refused (403).  The builtin ``default_permissions``
    plugin votes ``True`` for reads that declare no requirement: reads are open and writes
    closed until a plugin allows them.
    """


@hookspec(Combine.EACH_TOLERANT)
def documents_changed(restplug: Context, resource: Resource, changes: list[Change]) -> None:
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
    ``id``, take ``document`` as the current state).  The calls for two batches of
    ``upsert_all`` with no id in common may come in either order; the changes to one id come
    in the order they were written.
    """
