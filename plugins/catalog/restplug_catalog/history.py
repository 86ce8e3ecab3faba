"""Price history of one country, paginated on its own: ``GET /api/v1/apps/{id}/prices/{C}``.

The app itself carries only the latest entry per country, with a link here for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from restplug import Context, Handler, Problem, Resource
from restplug.web import (
    CACHE_HEADERS,
    DEFAULT_SIZE,
    MAX_PAGE,
    MAX_SIZE,
    Entry,
    bad_parameter,
    cached_response,
    entry,
    header,
    id_parameter,
    int_param,
    json_content,
    page_links,
    page_schema,
    pages,
    problem_response,
)
from restplug_catalog.schemas import PriceEntrySchema

#: A country code as the URL may spell it (any case).
COUNTRY_TEXT = "^[A-Za-z]{2}$"


def latest_prices(path: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The ``present`` of the apps at ``path``: the latest price entry per country, and links
    to the histories."""

    def present(document: dict[str, Any]) -> dict[str, Any]:
        prices = {
            country: {**value, "price_story": value["price_story"][:1]}
            for country, value in document.get("prices", {}).items()
        }
        links = {c: f"{path}/{document['id']}/prices/{c}" for c in prices}
        return {**document, "prices": prices, "_links": {"price_history": links}}

    return present


def history_handler(restplug: Context, resource: Resource) -> Handler:
    async def history(request: web.Request) -> web.Response:
        raw_id, country = request.match_info["id"], request.match_info["country"]
        try:
            id = resource.id_from(raw_id)
        except ValueError:
            raise Problem(404, f"no {resource.name} with id {raw_id!r}") from None
        if not re.fullmatch(COUNTRY_TEXT, country):
            raise Problem(404, f"{country!r} is not an ISO 3166 alpha-2 country code")
        country = country.upper()
        unknown = sorted(set(request.query) - {"page", "size"})
        if unknown:
            raise bad_parameter(unknown[0], "unknown parameter", ["page", "size"])
        query = {name: request.query[name] for name in request.query}
        page = int_param(query, "page", 1, 1, MAX_PAGE)
        size = int_param(query, "size", DEFAULT_SIZE, 1, MAX_SIZE)

        async def produce() -> Entry:
            stored = await restplug.collection(resource.name).get(id)
            if stored is None:
                raise Problem(404, f"no {resource.name} with id {id}")
            prices = stored.document.get("prices", {}).get(country)
            if prices is None:
                raise Problem(404, f"{resource.name} {id} has no prices in {country}")
            story = prices["price_story"]
            items = story[(page - 1) * size : page * size]
            total = len(story)
            body = {
                "items": items,
                "total": total,
                "page": page,
                "size": size,
                "pages": pages(total, size),
                "next_cursor": None,
                "currency": prices["currency"],
                "is_available": prices["is_available"],
            }
            more = page * size < total
            return entry(body, Link=page_links(request.path, {"size": str(size)}, page, more))

        return await cached_response(
            restplug, request, resource.name, "history", id, (country, page, size), produce
        )

    return history


def history_operation(resource: Resource) -> dict[str, Any]:
    """The OpenAPI operation of the price history below ``resource``'s documents."""
    return {**HISTORY_OPERATION, "parameters": [id_parameter(resource), *HISTORY_PARAMETERS]}


#: The history's parameters after the document's id.
HISTORY_PARAMETERS = [
    {
        "name": "country",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": COUNTRY_TEXT},
    },
    {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    },
    {
        "name": "size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
    },
]
HISTORY_OPERATION = {
    "summary": "Price history of an app in one country, newest first",
    "tags": ["apps"],
    "responses": {
        "200": json_content(
            page_schema(
                PriceEntrySchema,
                currency={"type": "string"},
                is_available={"type": "boolean"},
            ),
            "a page of price entries",
            ETag=header("the version of the page, for If-None-Match"),
            Link=header('rel="next" and rel="prev" page links (RFC 8288)'),
            **CACHE_HEADERS,
        ),
        "304": {"description": "not modified (If-None-Match)"},
        "400": problem_response("unknown parameter or bad page or size"),
        "404": problem_response("no such app, or no prices in that country"),
    },
}
