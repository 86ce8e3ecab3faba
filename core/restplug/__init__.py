"""restplug: a plugin-based REST framework on aiohttp and pluggy.

This module is the public API: everything a plugin needs, and nothing else.  The names below are
documented in ``docs/api.md`` (a test keeps the page and ``__all__`` in step); any other module
of the package is the core's own and may change without notice.  Small namespaces complete it:
:mod:`restplug.web` (responses, ETags, list pages, request parsing, OpenAPI fragments),
:mod:`restplug.commands` (helpers for a plugin's commands), :mod:`restplug.redis` (a fail-fast
Redis client; needs ``restplug[redis]``) and :mod:`restplug.testing` (the pytest plugin and the
contract kits).
"""

from pluggy import HookimplMarker

__version__ = "0.1.0"

# Defined before the imports below: the builtin plugins they load decorate with it.
hookimpl = HookimplMarker("restplug")
"""Decorate a plugin's hook implementations with ``@hookimpl``."""

from restplug.auth import Identity  # noqa: E402
from restplug.backends import Backend, scheme_of  # noqa: E402
from restplug.bounds import INT64_MAX  # noqa: E402
from restplug.caches.manager import CacheManager  # noqa: E402
from restplug.caches.memory import MemoryCache  # noqa: E402
from restplug.caches.protocol import CacheBackend  # noqa: E402
from restplug.collection import Change, Collection  # noqa: E402
from restplug.config import (  # noqa: E402
    Setting,
    Settings,
    http_url,
    non_negative_int,
    optional,
    positive_int,
    url,
)
from restplug.context import Context  # noqa: E402
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
from restplug.faults import crash_point  # noqa: E402
from restplug.fragments import SUPPORTED_OPERATORS, check_fragment  # noqa: E402
from restplug.loading import bulk_loading  # noqa: E402
from restplug.methods import FilterMethod, Fragment, SortMethod  # noqa: E402
from restplug.permissions import (  # noqa: E402
    Authenticated,
    Denial,
    Requirement,
    Scope,
    Vote,
    all_of,
    any_of,
)
from restplug.resources import ALL_OPERATORS, EQUALITY_OPERATORS, Resource  # noqa: E402
from restplug.routes import Handler, Route  # noqa: E402
from restplug.search.protocol import SearchIndex, texts_at  # noqa: E402
from restplug.stores.protocol import (  # noqa: E402
    DocumentStore,
    FindQuery,
    OutboxEntry,
    Stored,
    Write,
)
from restplug.stores.sqlite import SQLiteStore  # noqa: E402

__all__ = [
    "ALL_OPERATORS",
    "EQUALITY_OPERATORS",
    "INT64_MAX",
    "SUPPORTED_OPERATORS",
    "Authenticated",
    "Backend",
    "BackendUnavailable",
    "CacheBackend",
    "CacheManager",
    "Change",
    "Collection",
    "ConfigError",
    "Conflict",
    "Context",
    "Denial",
    "DocumentStore",
    "FailOpen",
    "FilterMethod",
    "FindQuery",
    "Fragment",
    "Handler",
    "Identity",
    "MemoryCache",
    "NotFound",
    "OutboxEntry",
    "PreconditionFailed",
    "Problem",
    "QueryTimeout",
    "Requirement",
    "Resource",
    "Route",
    "SQLiteStore",
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
    "all_of",
    "any_of",
    "bulk_loading",
    "check_fragment",
    "crash_point",
    "hookimpl",
    "http_url",
    "non_negative_int",
    "optional",
    "positive_int",
    "scheme_of",
    "texts_at",
    "url",
]
