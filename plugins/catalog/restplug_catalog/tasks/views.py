"""The HTTP routes of tasks and their OpenAPI descriptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from marshmallow import Schema, ValidationError

from restplug import Handler, PreconditionFailed, Problem, Route
from restplug.web import (
    JSON,
    MERGE_PATCH,
    Entry,
    cached_response,
    entry,
    header,
    id_parameter,
    json_content,
    json_response,
    list_entry,
    merge_patch,
    problem_response,
    read_json,
    require_bounded,
)
from restplug_catalog.tasks.documents import (
    NO_STORE,
    SCOPE,
    TASKS,
    TRANSITIONS,
    TaskCreateSchema,
    TaskPatchSchema,
    TaskSchema,
    timestamp,
    update_task,
    utc_now,
)
from restplug_catalog.tasks.forwarding import register_task

if TYPE_CHECKING:
    from restplug import Context

# -- HTTP -----------------------------------------------------------------------------------


def _load(schema: Schema, body: Any) -> dict[str, Any]:
    try:
        loaded = schema.load(body)
    except ValidationError as exc:
        raise Problem(
            422, "the task is not valid", title="Validation failed", errors=exc.messages
        ) from None
    # payload and result are free-form: the schema cannot bound their numbers.
    require_bounded(loaded)
    return loaded


def _transition(patch: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The change a PATCH makes, checked against the status the task has when it is applied."""

    def change(document: dict[str, Any]) -> dict[str, Any]:
        current, wanted = document["status"], patch["status"]
        if wanted not in TRANSITIONS[current]:
            raise Problem(409, _refusal(current, wanted), title="Invalid status transition")
        return {**merge_patch(document, patch), "updated_at": timestamp(utc_now())}

    return change


def _refusal(current: str, wanted: str) -> str:
    allowed = TRANSITIONS[current]
    then = (
        f"a {current} task can only become {' or '.join(allowed)}"
        if allowed
        else f"{current} is final"
    )
    if wanted not in TRANSITIONS:
        return f"{wanted!r} is not a task status ({', '.join(TRANSITIONS)}); {then}"
    if wanted == current:
        return f"the task is already {current}; {then}"
    return f"a {current} task cannot become {wanted}; {then}"


class TaskViews:
    """The handlers of ``/api/v1/tasks``."""

    def __init__(self, restplug: Context) -> None:
        self.restplug = restplug
        self.tasks = restplug.collection(TASKS.name)
        self.parser = restplug.list_parser(TASKS)

    def routes(self) -> list[Route]:
        item = f"{TASKS.path}/{{id}}"
        handlers: list[tuple[str, str, Handler, Literal["read", "write"], str]] = [
            ("POST", TASKS.path, self.create, "write", "create"),
            ("GET", TASKS.path, self.list, "read", "list"),
            ("GET", item, self.detail, "read", "detail"),
            ("PATCH", item, self.patch, "write", "patch"),
        ]
        return [
            Route(
                method,
                path,
                handler,
                action,
                SCOPE,
                TASKS.name,
                OPERATIONS[operation],
                self.parser if operation == "list" else None,
            )
            for method, path, handler, action, operation in handlers
        ]

    async def create(self, request: web.Request) -> web.Response:
        body = _load(TaskCreateSchema(), await read_json(request))
        document, etag = await register_task(self.restplug, body["type"], body["payload"])
        location = f"{TASKS.path}/{document['id']}"
        headers = {"Location": location, "ETag": etag, **NO_STORE}
        return json_response(document, status=201, headers=headers)

    async def list(self, request: web.Request) -> web.Response:
        parsed = self.parser.parse({name: request.query.getall(name) for name in request.query})

        async def produce() -> Entry:
            return await list_entry(self.restplug, request, self.parser, parsed)

        return await self._cached(request, "list", None, parsed.params, produce)

    async def detail(self, request: web.Request) -> web.Response:
        if request.query:
            raise Problem(400, f"{next(iter(request.query))}: unknown parameter; allowed: none")
        id = request.match_info["id"]

        async def produce() -> Entry:
            stored = await self.tasks.get(id)
            if stored is None:
                raise _not_found(id)
            return entry(stored.document, ETag=stored.etag)

        return await self._cached(request, "item", id, None, produce)

    async def _cached(
        self,
        request: web.Request,
        kind: str,
        id: str | None,
        variant: Any,
        produce: Callable[[], Awaitable[Entry]],
    ) -> web.Response:
        """A read through the server's cache (every task write renews it, the forwarder's
        too), kept by no client or proxy: tasks are private to the workers."""
        response = await cached_response(
            self.restplug, request, TASKS.name, kind, id, variant, produce
        )
        response.headers.update(NO_STORE)
        return response

    async def patch(self, request: web.Request) -> web.Response:
        id = request.match_info["id"]
        patch = _load(TaskPatchSchema(), await read_json(request, (MERGE_PATCH, JSON)))
        if_match = request.headers.get("If-Match")
        if if_match is None and self.restplug.settings.require_if_match:
            raise Problem(428, "send If-Match with the ETag of the version you are changing")
        try:
            updated = await update_task(self.tasks, id, _transition(patch), if_match=if_match)
        except PreconditionFailed:
            if if_match is not None:
                raise Problem(
                    412, "the task changed since you read it; GET it again and retry"
                ) from None
            raise Problem(
                503,
                "the task is being changed by many at once; retry",
                headers={"Retry-After": "1"},
            ) from None
        if updated is None and if_match is not None:
            # RFC 9110 13.1.1: no current version matches, whatever the tag.
            raise Problem(412, f"no task with id {id!r} matches If-Match")
        if updated is None:
            raise _not_found(id)
        document, etag = updated
        return json_response(document, headers={"ETag": etag, **NO_STORE})


def _not_found(id: str) -> Problem:
    return Problem(404, f"no task with id {id!r}")


#: The OpenAPI operations (the schema classes become components).
_TASK = json_content(TaskSchema, "the task", ETag=header("the version, for If-Match"))
_ID = id_parameter(TASKS)
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}}
_IF_NONE_MATCH = {**_IF_MATCH, "name": "If-None-Match"}
_TAGS = [TASKS.name]
OPERATIONS: dict[str, dict[str, Any]] = {
    "create": {
        "summary": "Register a task; it is forwarded to the orchestrator in the background",
        "tags": _TAGS,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TaskCreateSchema}},
        },
        "responses": {
            "201": {**_TASK, "headers": {**_TASK["headers"], "Location": header("the new task")}},
            "400": problem_response("malformed JSON"),
            "413": problem_response("body too large"),
            "415": problem_response("not application/json"),
            "422": problem_response("invalid task (per-field messages in errors)"),
        },
    },
    # Parameters and page come from the route's list parser.
    "list": {"summary": "List tasks, newest first", "tags": _TAGS},
    "detail": {
        "summary": "Read one task",
        "tags": _TAGS,
        "parameters": [_ID, _IF_NONE_MATCH],
        "responses": {
            "200": _TASK,
            "304": {"description": "not modified (If-None-Match)"},
            "400": problem_response("a query parameter (it takes none)"),
            "404": problem_response("no such task"),
        },
    },
    "patch": {
        "summary": "Move a task on: pending -> running -> done | failed (JSON merge patch)",
        "tags": _TAGS,
        "parameters": [_ID, _IF_MATCH],
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {"schema": TaskPatchSchema},
                "application/json": {"schema": TaskPatchSchema},
            },
        },
        "responses": {
            "200": _TASK,
            "404": problem_response("no such task"),
            "409": problem_response("not an allowed status transition"),
            "412": problem_response("stale If-Match"),
            "422": problem_response("a field that cannot change, or a bad value"),
            "428": problem_response("If-Match is required (RESTPLUG_REQUIRE_IF_MATCH)"),
            "503": problem_response("too many changes at once, or a backend down; retry"),
        },
    },
}
