"""``search=witcher``: full text over the resource's searchable fields, through the active search
index; ordered by relevance unless the request has an ``order_by``."""

from __future__ import annotations

import asyncio
from typing import Any

from marshmallow import fields, validate

from restplug import (
    BackendUnavailable,
    Context,
    FilterMethod,
    Fragment,
    Problem,
    QueryTimeout,
    Resource,
    hookimpl,
)

#: The most matches one search considers, as Elasticsearch's max_result_window does.
MAX_MATCHES = 10_000


async def search(restplug: Context, resource: Resource, text: str) -> Fragment:
    async def ranked() -> list[Any]:
        # Bounded here too: an index stuck on a lock (SQLite waits for another process's
        # shared-memory locks without a deadline) must not hold the request as long as it lasts.
        async with asyncio.timeout(restplug.query_timeout):
            hits = await restplug.search.search(resource.name, text, MAX_MATCHES)
        return [id for id, _ in hits]

    try:
        # Ranking every match of a common word costs the index as much as the rest of the
        # request many times over: the ranking is kept under the resource's list generation,
        # which writes renew only once the index has them, so it is never older than the index.
        ids, _ = await restplug.cache.cached("search", resource.name, None, text, ranked)
    except (BackendUnavailable, QueryTimeout, OSError, TimeoutError):
        raise Problem(
            503, "search is unavailable right now; try again", headers={"Retry-After": "5"}
        ) from None
    return Fragment({"_id": {"$in": ids}}, ranking=ids)


@hookimpl
def register_filters(restplug: Context, resource: Resource) -> list[FilterMethod] | None:
    if restplug.search is None or not resource.search_fields:
        return None
    return [
        FilterMethod(
            "search",
            fields.String(validate=validate.Length(min=1, max=200)),
            search,
            "full-text search over "
            + ", ".join(resource.search_fields)
            + "; words match as prefixes; relevance order unless order_by is given",
        )
    ]
