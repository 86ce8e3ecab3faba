"""HTTP plumbing shared by every route: JSON bodies, ETags, conditional headers, errors."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from aiohttp import web

from restplug.errors import BackendUnavailable, Problem, QueryTimeout

log = logging.getLogger("restplug.http")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def etag_of(value: Any) -> str:
    """A strong ETag: a content hash of the canonical JSON, the same in every process."""
    return etag_of_bytes(dumps(value))


def etag_of_bytes(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def json_response(
    value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type=JSON, headers=headers)


async def read_json(request: web.Request, allowed: tuple[str, ...] = (JSON,)) -> Any:
    """The request's JSON body: 415 for another content type, 400 when it does not parse,
    413 past ``RESTPLUG_MAX_BODY``."""
    if request.content_type not in allowed:
        raise Problem(
            415,
            f"send the body as {' or '.join(allowed)}, not {request.content_type or 'nothing'}",
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app._client_max_size
        raise Problem(413, f"the body is larger than {limit} bytes (RESTPLUG_MAX_BODY)") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", title="Malformed JSON") from None


def parse_etags(header: str) -> list[str]:
    """The entity tags of an If-Match / If-None-Match header (``*`` kept as is)."""
    tags, current, quoted = [], "", False
    for char in header:
        if char == '"':
            quoted = not quoted
            current += char
        elif char == "," and not quoted:
            tags.append(current.strip())
            current = ""
        else:
            current += char
    tags.append(current.strip())
    return [tag for tag in tags if tag]


def weak_match(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: ``W/"x"`` matches ``"x"``."""
    tags = parse_etags(header)
    return "*" in tags or etag.removeprefix("W/") in (t.removeprefix("W/") for t in tags)


def strong_match(header: str, etag: str) -> bool:
    """If-Match uses the strong comparison: weak tags never match."""
    tags = parse_etags(header)
    return "*" in tags or etag in tags


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error leaves as problem+json; nothing internal (trace, query, secret) leaks."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else None
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow",)}
        return Problem(exc.status, detail, headers=headers).response()
    except (QueryTimeout, BackendUnavailable) as exc:
        log.warning("backend unavailable on %s %s: %s", request.method, request.path, exc)
        return Problem(
            503, "a backend is unavailable or too slow; try again", headers={"Retry-After": "1"}
        ).response()
    except TimeoutError:
        log.warning("request timed out: %s %s", request.method, request.path)
        return Problem(
            503, "the request took too long; try again", headers={"Retry-After": "1"}
        ).response()
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return Problem(500, "an internal error occurred; it has been logged").response()
