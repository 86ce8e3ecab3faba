"""HTTP plumbing shared by every route: JSON bodies, ETags, conditional headers, errors."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from restplug.bounds import MAX_DEPTH, nests_deeper, out_of_bounds
from restplug.errors import PROBLEM_JSON, BackendUnavailable, Problem, QueryTimeout

log = logging.getLogger("restplug.http")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
#: Seconds a client may take to send a request body (``RESTPLUG_BODY_TIMEOUT``).
BODY_TIMEOUT = web.AppKey("restplug.body_timeout", float)
DEFAULT_BODY_TIMEOUT = 30.0


def dumps(value: Any) -> bytes:
    """The canonical JSON of ``value`` (keys sorted), as bytes: what ETags are hashes of."""
    # Integer keys appear in validation messages (a list's element index) sent back in bodies.
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def etag_of(value: Any) -> str:
    """A strong ETag: a content hash of the canonical JSON, the same in every process."""
    return etag_of_bytes(dumps(value))


def etag_of_bytes(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def json_response(
    value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """``value`` as an ``application/json`` response."""
    return web.Response(body=dumps(value), status=status, content_type=JSON, headers=headers)


async def read_json(request: web.Request, allowed: tuple[str, ...] = (JSON,)) -> Any:
    """The request's JSON body: 415 for another content type, 400 when it does not parse or
    nests deeper than :data:`~restplug.bounds.MAX_DEPTH`, 413 past ``RESTPLUG_MAX_BODY``,
    408 when it takes longer than ``RESTPLUG_BODY_TIMEOUT`` to arrive."""
    if request.content_type not in allowed:
        raise Problem(
            415,
            f"send the body as {' or '.join(allowed)}, not {request.content_type or 'nothing'}",
        )
    body = await read_body(request)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", title="Malformed JSON") from None
    if nests_deeper(body, value):
        raise Problem(400, f"the body nests deeper than {MAX_DEPTH} levels", title="Too deep")
    return value


def require_bounded(value: Any) -> None:
    """422 naming the first number in ``value`` no store can hold (see :mod:`restplug.bounds`):
    for documents after validation, whose schema may turn a huge float into an integer."""
    if (where := out_of_bounds(value)) is not None:
        path, reason = where
        raise Problem(422, f"{path}: {reason}", title="Validation failed", errors={path: [reason]})


async def read_body(request: web.Request) -> bytes:
    """The raw body, read within ``RESTPLUG_BODY_TIMEOUT``: a client trickling its body
    would otherwise hold a connection (and its memory) for as long as it likes."""
    timeout = request.config_dict.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app._client_max_size
        raise Problem(413, f"the body is larger than {limit} bytes (RESTPLUG_MAX_BODY)") from None
    except TimeoutError:
        raise Problem(
            408,
            f"the body did not arrive within {timeout:g} s (RESTPLUG_BODY_TIMEOUT)",
            headers={"Connection": "close"},
        ) from None
    except RequestPayloadError as exc:
        raise Problem(400, f"the body is not valid HTTP: {exc}") from None
    except ConnectionError:
        # Nobody will read an answer: one line for the operator, not an error with a trace.
        log.info("client went away while sending %s %s", request.method, request.path)
        raise ClientGone() from None


class ClientGone(Exception):
    """The client closed the connection before its request was complete."""


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
    except ClientGone:
        return Problem(400, "the client went away before its request was complete").response()
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


def answer_protocol_errors(app: web.Application) -> None:
    """Answer the requests aiohttp's HTTP parser rejects (a line or header too long, too many
    headers, a null byte, Content-Length with Transfer-Encoding...) as problem+json.

    aiohttp answers these itself with its connection handler's ``handle_error``, before
    routing and middlewares: text/plain.  The app's request factory makes the request object
    of those answers too, and a request is told (``_prepare_hook``) of every response about
    to be sent for it: ours turns aiohttp's own error answers into problem+json there."""
    make_request = app._make_request

    def request_factory(
        message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.Request:
        return make_request(message, payload, protocol, writer, task, _cls=ProblemRequest)

    app._make_request = request_factory  # type: ignore[method-assign]
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietProtocolErrors) for f in server_log.filters):
        server_log.addFilter(QuietProtocolErrors())


class QuietProtocolErrors(logging.Filter):
    """aiohttp logs each request its parser rejects as an ERROR with a traceback and the
    offending bytes (a header line may hold a credential).  It is the client's fault, already
    answered with a 400: one INFO line naming the fault is enough, and keeps a client from
    flooding the error log at will."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and (error.code or 400) < 500:
            record.msg = "malformed request rejected (%s): %s"
            record.args = (type(error).__name__, parser_fault(str(error.message)))
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


class ProblemRequest(web.Request):
    """A request whose error answers made outside the app are problem+json."""

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        # Routing gives every request that reached the app its match info; without one, the
        # response is aiohttp's own answer to a request it could not parse.
        if (
            self._match_info is None
            and isinstance(response, web.Response)
            and response.status >= 400
            and response.content_type != PROBLEM_JSON
        ):
            as_problem(response)
        await super()._prepare_hook(response)


def parser_fault(text: str) -> str:
    """The fault named by one of aiohttp's parser messages, without the bytes it echoes."""
    first = text.strip().splitlines()[:1] or ["malformed request"]
    return re.split(r": (?:b'|bytearray\()", first[0])[0].rstrip(":. ")[:200]


def as_problem(response: web.Response) -> None:
    """Rewrite one of aiohttp's text error answers, in place, as problem+json.  Its text
    names the fault, then echoes the offending bytes: only the fault is kept."""
    if response.status >= 500:
        detail = "an internal error occurred; it has been logged"
    else:
        detail = f"the request is not valid HTTP: {parser_fault(response.text or '')}"
    body = orjson.dumps(Problem(response.status, detail).as_dict())
    response.body = body
    response.content_type = PROBLEM_JSON
    response.charset = None
    response.headers["Content-Length"] = str(len(body))
