"""The routes every resource gets: list, detail, create, replace, merge-patch, delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from aiohttp import web
from marshmallow import ValidationError

from restplug.errors import Conflict, NotFound, PreconditionFailed, Problem
from restplug.http import (
    JSON,
    MERGE_PATCH,
    dumps,
    etag_of_bytes,
    json_response,
    read_json,
    require_bounded,
    strong_match,
    weak_match,
)
from restplug.query import ListParser, ListRequest, pages, run_list
from restplug.routes import Route
from restplug.stores.protocol import Stored

if TYPE_CHECKING:
    from restplug.app import Restplug
    from restplug.context import Context
    from restplug.resources import Resource


@dataclass(frozen=True, slots=True)
class Entry:
    """A response as the cache keeps it: the JSON body, serialized once, and its headers
    (the ETag and any other, such as ``Link``)."""

    body: bytes
    headers: dict[str, str]


class EntryCoder:
    """Entries to cache bytes and back without parsing the body again: the headers' JSON, a
    newline (orjson never writes one), then the body exactly as it is sent."""

    def encode(self, value: Entry) -> bytes:
        return orjson.dumps(value.headers) + b"\n" + value.body

    def decode(self, data: bytes) -> Entry:
        head, _, body = data.partition(b"\n")
        return Entry(body, orjson.loads(head))


ENTRY_CODER = EntryCoder()
#: Part of every entry's key: entries cached in another layout by an older version, in a
#: cache shared with it, are never read as this one's.
ENTRY_LAYOUT = "entry/2"
PRIVATE = "private, no-store"
PUBLIC = "public, max-age=0, must-revalidate"


def entry(body: Any, **headers: str) -> Entry:
    """A response as the cache keeps it: the JSON text, its ETag (a hash of the text unless
    ``ETag`` is given) and the other non-empty ``headers``."""
    text = dumps(body)
    etag = headers.pop("ETag", None) or etag_of_bytes(text)
    return Entry(text, {"ETag": etag, **{name: value for name, value in headers.items() if value}})


async def cached_response(
    restplug: Context,
    request: web.Request,
    resource: str,
    kind: str,
    id: Any,
    variant: Any,
    produce: Callable[[], Awaitable[Entry]],
) -> web.Response:
    """A read through the cache, keyed by everything the response depends on: the
    parameters (``variant``) and, behind a token, the caller (never shared between
    identities).  ``produce`` makes the :func:`entry` on a miss; ``id`` None keys it on the
    resource's generation (lists), else on the document's."""
    identity = await restplug.identity(request)
    viewer = identity.subject if identity else None
    bypass = restplug.settings.cache_client_bypass and "no-cache" in request.headers.get(
        "Cache-Control", ""
    )
    cached, hit = await restplug.cache.cached(
        kind,
        resource,
        id,
        (ENTRY_LAYOUT, variant, viewer),
        produce,
        bypass=bypass,
        coder=ENTRY_CODER,
    )
    # Clients revalidate every time (a 304 is cheap), so none keeps data older than a write.
    return send_entry(
        request,
        cached,
        {
            "X-Cache": "HIT" if hit else "MISS",
            "Cache-Control": PRIVATE if identity else PUBLIC,
        },
    )


def send_entry(request: web.Request, cached: Entry, headers: dict[str, str]) -> web.Response:
    """An :func:`entry` as the response, or 304 when the client's If-None-Match matches."""
    headers = {**cached.headers, **headers}
    inm = request.headers.get("If-None-Match")
    if inm and weak_match(inm, cached.headers["ETag"]):
        return web.Response(status=304, headers=headers)
    return web.Response(body=cached.body, content_type=JSON, headers=headers)


async def list_entry(
    restplug: Context, request: web.Request, parser: ListParser, parsed: ListRequest
) -> Entry:
    """One list page as an :func:`entry`: the envelope, its ETag and its Link header."""
    resource = parser.resource
    query = await parser.resolve(parsed)
    result = await run_list(
        restplug.store, resource.name, parsed, query, restplug.query_timeout, restplug.cache
    )
    body = {
        "items": [project(resource.presented(s.document), parsed.fields) for s in result.items],
        "total": result.total,
        "page": parsed.page,
        "size": parsed.size,
        "pages": pages(result.total, parsed.size),
        "next_cursor": result.next_cursor,
    }
    more = result.next_cursor is not None
    link = page_links(request.path, dict(parsed.params), parsed.page, more, result.next_cursor)
    return entry(body, Link=link)


def page_links(
    path: str, params: dict[str, str], page: int | None, more: bool, cursor: str | None = None
) -> str:
    """The ``Link`` header of a page: ``rel="next"`` when there is ``more`` (the next page
    number in page mode, else the ``cursor``), ``rel="prev"`` after the first page."""
    links = []
    if more and page is not None:
        links.append(({**params, "page": str(page + 1)}, "next"))
    elif more:
        links.append(({**params, "cursor": str(cursor)}, "next"))
    if page and page > 1:
        links.append(({**params, "page": str(page - 1)}, "prev"))
    return ", ".join(
        f'<{path}?{urlencode(sorted(query.items()))}>; rel="{rel}"' for query, rel in links
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` removes, the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def project(document: dict[str, Any], paths: tuple[str, ...] | None) -> dict[str, Any]:
    """Keep only the dotted ``paths`` of a document (``fields=id,name,prices.US``)."""
    if paths is None:
        return document
    result: dict[str, Any] = {}
    for path in paths:
        source: Any = document
        segments = path.split(".")
        for segment in segments:
            if not isinstance(source, dict) or segment not in source:
                break
            source = source[segment]
        else:
            target = result
            for segment in segments[:-1]:
                target = target.setdefault(segment, {})
            target[segments[-1]] = source
    return result


class ResourceViews:
    """The handlers of one resource: reads and writes through its collection, the door every
    plugin writes through too."""

    def __init__(self, restplug: Restplug, resource: Resource) -> None:
        self.restplug = restplug
        self.resource = resource
        self.schema = resource.schema()
        self.collection = restplug.collection(resource.name)

    def routes(self) -> list[Route]:
        r = self.resource
        item = f"{r.path}/{{id}}"
        need = r.requirements.get
        return [
            Route("GET", r.path, self.list, "read", None, r.name),
            Route("POST", r.path, self.create, "write", need("create"), r.name),
            Route("GET", item, self.detail, "read", None, r.name),
            Route("PUT", item, self.replace, "write", need("update"), r.name),
            Route("PATCH", item, self.patch, "write", need("update"), r.name),
            Route("DELETE", item, self.delete, "write", need("delete"), r.name),
        ]

    # -- reads ------------------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        parser = self.restplug.parsers[self.resource.name]
        parsed = parser.parse({name: request.query.getall(name) for name in request.query})

        async def produce() -> Entry:
            return await list_entry(self.restplug, request, parser, parsed)

        return await self._cached(request, "list", None, parsed.params, produce)

    async def detail(self, request: web.Request) -> web.Response:
        id = self._id(request)
        unknown = sorted(set(request.query) - {"fields"})
        if unknown:
            raise Problem(400, f"{unknown[0]}: unknown parameter; allowed: fields")
        fields = None
        if "fields" in request.query:
            fields = self.restplug.parsers[self.resource.name].fields_param(request.query["fields"])

        async def produce() -> Entry:
            stored = await self._get(request, id)
            body = project(self.resource.presented(stored.document), fields)
            # The whole document's ETag is the stored one, so If-Match works with it.
            return entry(body) if fields else entry(body, ETag=stored.etag)

        return await self._cached(request, "item", id, fields, produce)

    async def _cached(
        self,
        request: web.Request,
        kind: str,
        id: Any,
        variant: Any,
        produce: Callable[[], Awaitable[Entry]],
    ) -> web.Response:
        return await cached_response(
            self.restplug, request, self.resource.name, kind, id, variant, produce
        )

    # -- writes -----------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        document = self._validate(await read_json(request))
        id = document[self.resource.id_field]
        try:
            etag = await self.collection.insert(id, document)
        except Conflict:
            raise Problem(
                409, f"{self.resource.name} {id} already exists; use PUT or PATCH to change it"
            ) from None
        location = f"{self.resource.path}/{id}"
        return json_response(
            self.resource.presented(document),
            status=201,
            headers={"Location": location, "ETag": etag},
        )

    async def replace(self, request: web.Request) -> web.Response:
        id = self._id(request)
        body = await read_json(request)
        if isinstance(body, dict):
            body.setdefault(self.resource.id_field, id)
        return await self._write(request, id, self._validate(body, id))

    async def patch(self, request: web.Request) -> web.Response:
        id = self._id(request)
        patch = await read_json(request, (MERGE_PATCH, JSON))
        if not isinstance(patch, dict):
            raise Problem(
                422, "a merge patch must be a JSON object", errors={"_schema": ["not an object"]}
            )
        current = await self._get(request)
        return await self._write(
            request, id, self._validate(merge_patch(current.document, patch), id), current
        )

    async def delete(self, request: web.Request) -> web.Response:
        id = self._id(request)
        current = await self._precondition(request, id)
        try:
            await self.collection.delete(id, if_etag=current.etag)
        except NotFound:
            raise self._missing(request, id) from None
        except PreconditionFailed:
            raise self._stale() from None
        return web.Response(status=204)

    async def _write(
        self, request: web.Request, id: Any, document: dict[str, Any], current: Stored | None = None
    ) -> web.Response:
        """Replace atomically: the store writes only if the document still has the ETag it had
        when it was read (and the client's If-Match, if any, named that ETag)."""
        current = await self._precondition(request, id, current)
        try:
            etag = await self.collection.replace(id, document, if_etag=current.etag)
        except NotFound:
            raise self._missing(request, id) from None
        except PreconditionFailed:
            raise self._stale() from None
        return json_response(self.resource.presented(document), headers={"ETag": etag})

    async def _precondition(
        self, request: web.Request, id: Any, current: Stored | None = None
    ) -> Stored:
        if_match = request.headers.get("If-Match")
        if if_match is None and self.restplug.settings.require_if_match:
            raise Problem(428, "send If-Match with the ETag of the version you are changing")
        if current is None:
            current = await self._get(request, id)
        if if_match is not None and not strong_match(if_match, current.etag):
            raise self._stale()
        return current

    def _validate(self, body: Any, id: Any = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Problem(
                422, "the body must be a JSON object", errors={"_schema": ["not an object"]}
            )
        body.pop("_links", None)  # what reads add: a client may send a read back
        try:
            document = self.schema.dump(self.schema.load(body))
        except ValidationError as exc:
            raise Problem(
                422, "the document is not valid", title="Validation failed", errors=exc.messages
            ) from None
        require_bounded(document)
        if id is not None and document[self.resource.id_field] != id:
            raise Problem(
                422,
                f"{self.resource.id_field} cannot change",
                errors={self.resource.id_field: [f"must be {id}, the id in the URL"]},
            )
        return document

    def _id(self, request: web.Request) -> Any:
        try:
            return self.resource.id_from(request.match_info["id"])
        except ValueError as exc:
            raise Problem(
                404, f"no {self.resource.name} with id {request.match_info['id']!r}: {exc}"
            ) from None

    async def _get(self, request: web.Request, id: Any = None) -> Stored:
        id = self._id(request) if id is None else id
        stored = await self.collection.get(id)
        if stored is None:
            raise self._missing(request, id)
        return stored

    def _missing(self, request: web.Request, id: Any) -> Problem:
        """404, or 412 for a write with If-Match: no current version matches (RFC 9110 13.1.1),
        which tells a client holding an ETag that what it read is gone."""
        if request.method != "GET" and "If-Match" in request.headers:
            return Problem(412, f"no {self.resource.name} with id {id} matches If-Match")
        return self._not_found(id)

    def _not_found(self, id: Any) -> Problem:
        return Problem(404, f"no {self.resource.name} with id {id}")

    def _stale(self) -> Problem:
        return Problem(412, "the document changed since you read it; GET it again and retry")


def resource_routes(restplug: Restplug, resource: Resource) -> list[Route]:
    return ResourceViews(restplug, resource).routes()
