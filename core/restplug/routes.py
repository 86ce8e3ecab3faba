"""Extra routes a plugin adds with the ``register_routes`` hook."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from aiohttp import web

    from restplug.permissions import Requirement
    from restplug.query import ListParser

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


@dataclass(frozen=True)
class Route:
    """An HTTP route.  The core checks permissions (``action`` and ``requirement``) before
    calling ``handler``; ``operation`` is its OpenAPI operation object (summary, parameters,
    requestBody, responses; schema classes are allowed where a schema goes).  A list route
    that parses its query with a :class:`restplug.query.ListParser` names it as ``parser``:
    the document then describes its parameters and page from that parser, as for resources.
    ``documented`` False leaves the route out of the OpenAPI document: a web page, not an API
    (the admin panel's)."""

    method: str
    path: str
    handler: Handler
    action: Literal["read", "write"] = "read"
    requirement: Requirement | None = None
    resource: str | None = None
    operation: dict[str, Any] = field(default_factory=dict)
    parser: ListParser | None = None
    documented: bool = True
