"""``search=witcher``: full text over the resource's searchable fields, through the active search
index; ordered by relevance unless the request has an ``order_by``."""

from __future__ import annotations

import asyncio

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
    try:
        # Bounded here too: an index stuck on a lock (SQLite waits for another process's
        # shared-memory locks without a deadline) must not hold the request as long as it lasts.
        async with asyncio.timeout(restplug.query_timeout):
            hits = await restplug.search.search(resource.name, text, MAX_MATCHES)
    except (BackendUnavailable, QueryTimeout, OSError, TimeoutError):
        raise Problem(
            503, "search is unavailable right now; try again", headers={"Retry-After": "5"}
        ) from None
    ids = [id for id, _ in hits]
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
