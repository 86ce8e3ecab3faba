"""restplug: a plugin-based REST framework on aiohttp and pluggy.

This module is the public API: everything a plugin needs, and nothing else.  The names below are
documented in ``docs/api.md`` (a test keeps the page and ``__all__`` in step); any other module
of the package is the core's own and may change without notice.  Two namespaces complete it:
:mod:`restplug.web` (responses, ETags, list pages, request parsing, OpenAPI fragments) and
:mod:`restplug.testing` (the pytest plugin and the contract kits).
"""

from pluggy import HookimplMarker

__version__ = "0.1.0"

# Defined before the imports below: the builtin plugins they load decorate with it.
hookimpl = HookimplMarker("restplug")
"""Decorate a plugin's hook implementations with ``@hookimpl``."""

from restplug.auth import Identity  # noqa: E402
from restplug.backends import Backend, scheme_of  # noqa: E402
from restplug.caches.manager import CacheManager  # noqa: E402
from restplug.caches.protocol import CacheBackend  # noqa: E402
from restplug.config import (  # noqa: E402
    Setting,
    Settings,
    http_url,
    non_negative_int,
    optional,
    positive_int,
    url,
)
from restplug.errors import (  # noqa: E402
    BackendUnavailable,
    ConfigError,
    Conflict,
    NotFound,
    PreconditionFailed,
    Problem,
    QueryTimeout,
    UnsupportedQuery,
)
from restplug.failopen import FailOpen  # noqa: E402
from restplug.fragments import SUPPORTED_OPERATORS, check_fragment  # noqa: E402
from restplug.methods import FilterMethod, Fragment, SortMethod  # noqa: E402
from restplug.permissions import Denial, Requirement, Scope, Vote  # noqa: E402
from restplug.resources import Resource  # noqa: E402
from restplug.routes import Handler, Route  # noqa: E402
from restplug.search.protocol import SearchIndex  # noqa: E402
from restplug.stores.protocol import DocumentStore, FindQuery, Stored, Write  # noqa: E402

__all__ = [
    "SUPPORTED_OPERATORS",
    "Backend",
    "BackendUnavailable",
    "CacheBackend",
    "CacheManager",
    "ConfigError",
    "Conflict",
    "Denial",
    "DocumentStore",
    "FailOpen",
    "FilterMethod",
    "FindQuery",
    "Fragment",
    "Handler",
    "Identity",
    "NotFound",
    "PreconditionFailed",
    "Problem",
    "QueryTimeout",
    "Requirement",
    "Resource",
    "Route",
    "Scope",
    "SearchIndex",
    "Setting",
    "Settings",
    "SortMethod",
    "Stored",
    "UnsupportedQuery",
    "Vote",
    "Write",
    "__version__",
    "check_fragment",
    "hookimpl",
    "http_url",
    "non_negative_int",
    "optional",
    "positive_int",
    "scheme_of",
    "url",
]
