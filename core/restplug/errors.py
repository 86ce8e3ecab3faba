"""Errors: every error a client sees is an RFC 9457 ``application/problem+json`` document."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from restplug.redact import redact

PROBLEM_JSON = "application/problem+json"


class ConfigError(Exception):
    """Bad configuration: start-up stops with this one-line message (credentials masked, so
    it may quote the URL it is about)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class Problem(Exception):
    """An HTTP error answered as problem+json; raise it anywhere below a handler."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        type: str = "about:blank",
        **extra: Any,
    ) -> None:
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.type = type
        self.extra = extra
        super().__init__(detail or self.title)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self) -> web.Response:
        response = web.Response(
            status=self.status,
            # marshmallow keys a list's messages by element index: integers, not strings.
            body=orjson.dumps(self.as_dict(), option=orjson.OPT_NON_STR_KEYS),
            content_type=PROBLEM_JSON,
            headers=self.headers,
        )
        if self.headers.get("Connection", "").lower() == "close":
            response.force_close()
        return response


class StoreError(Exception):
    """Base of the errors a document store raises; the core maps each to an HTTP status."""


class Conflict(StoreError):
    """Insert of an id that already exists."""


class NotFound(StoreError):
    """No document with this id."""


class PreconditionFailed(StoreError):
    """A compare-and-set found another version than the one expected."""


class QueryTimeout(StoreError):
    """The store gave up on a query after ``RESTPLUG_QUERY_TIMEOUT_MS``."""


class UnsupportedQuery(ValueError):
    """A filter, sort or path outside the query language stores answer (see
    :mod:`restplug.fragments`).  The core builds queries from checked input, so this means a
    plugin's fragment outside the subset, or a bug: never bad input from a client."""


class BackendUnavailable(Exception):
    """A backend (store, cache, search index) cannot be reached right now."""
