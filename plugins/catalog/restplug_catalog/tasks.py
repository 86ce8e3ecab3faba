"""Tasks for the scraping orchestrator (plugin ``catalog_tasks``): ``/api/v1/tasks``.

A task is work a client registers (``{"type", "payload"}``) and workers move along
``pending -> running -> done | failed``.  Every route needs the scope ``backend/tasks``.

Registered tasks are written to the store *first*, then forwarded in the background to
``RESTPLUG_ORCHESTRATOR_URL``: the client's 201 never waits on the orchestrator, and an outage
of the orchestrator loses nothing.  The forwarding state lives in the task document itself
(``forwarding``), so it is visible to clients and a restarted server resumes every pending
forward from the store.  Delivery is at least once: the orchestrator dedupes by task id, which
each request also carries as ``Idempotency-Key``.

Tasks are not a registered resource: they must not get the generic CRUD routes (no client
chooses an id, no PUT or DELETE, status changes are transitions), and they are never cached,
since the forwarder changes them behind every cache's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from weakref import WeakKeyDictionary

import aiohttp
from aiohttp import web
from marshmallow import Schema, ValidationError, fields, validate

from restplug import hookimpl
from restplug.config import Setting, http_url, optional, positive_int
from restplug.errors import Conflict, NotFound, PreconditionFailed, Problem
from restplug.http import (
    JSON,
    MERGE_PATCH,
    dumps,
    etag_of,
    json_response,
    read_json,
    strong_match,
)
from restplug.openapi import problem_response
from restplug.permissions import Scope
from restplug.query import ListParser
from restplug.resources import Resource
from restplug.routes import Handler, Route
from restplug.store import FindQuery
from restplug.views import entry, list_entry, merge_patch, send_entry
from restplug_catalog.demo import generate_tasks

if TYPE_CHECKING:
    from restplug.app import Restplug
    from restplug.config import Settings
    from restplug.store import DocumentStore

log = logging.getLogger("restplug.catalog.tasks")

SCOPE = Scope("backend/tasks")
#: Where a task may go from each status; a status not listed here is unknown.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("running",),
    "running": ("done", "failed"),
    "done": (),
    "failed": (),
}
FORWARDING_STATES = ("pending", "done", "failed", "off")
#: Answers that say "not now" rather than "never": forwarding retries them like 5xx.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
#: Reads are answered from the store each time; nobody on the way may keep a copy.
NO_STORE = {"Cache-Control": "private, no-store"}
#: Compare-and-set rounds before a write gives up: losing one round means another write got in
#: between (a worker's PATCH, the forwarder's bookkeeping), losing this many means a storm.
CAS_ROUNDS = 5


# -- settings -------------------------------------------------------------------------------


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "RESTPLUG_ORCHESTRATOR_URL",
        None,
        optional(http_url),
        "where registered tasks are POSTed (unset: tasks are only stored)",
    ),
    Setting(
        "RESTPLUG_ORCHESTRATOR_TIMEOUT_MS",
        5000,
        positive_int,
        "longest wait for the orchestrator to answer one forward, ms",
    ),
    Setting(
        "RESTPLUG_ORCHESTRATOR_RETRY_BASE_MS",
        1000,
        positive_int,
        "wait before the first retry of a failed forward, ms (doubles per attempt)",
    ),
    Setting(
        "RESTPLUG_ORCHESTRATOR_RETRY_MAX_MS",
        300_000,
        positive_int,
        "longest wait between two attempts of one forward, ms (wins over the base)",
    ),
    Setting(
        "RESTPLUG_ORCHESTRATOR_CONCURRENCY",
        4,
        positive_int,
        "forwards in flight at once (a hanging orchestrator holds up no more than these)",
    ),
)


# -- documents ------------------------------------------------------------------------------


class ForwardingSchema(Schema):
    """Where the task stands on its way to the orchestrator."""

    state = fields.String(
        validate=validate.OneOf(FORWARDING_STATES),
        metadata={"description": "off when no orchestrator is configured"},
    )
    attempts = fields.Integer(metadata={"description": "requests made to the orchestrator"})
    last_error = fields.String(
        allow_none=True, metadata={"description": "why the latest failed attempt failed"}
    )
    next_attempt_at = fields.String(
        allow_none=True, metadata={"description": "when the next attempt is due (pending only)"}
    )


class TaskSchema(Schema):
    """A task for the scraping orchestrator, as stored and returned."""

    id = fields.String(dump_only=True)
    type = fields.String()
    payload = fields.Dict(keys=fields.String())
    status = fields.String(validate=validate.OneOf(tuple(TRANSITIONS)))
    result = fields.Raw(metadata={"description": "set by a worker, usually when done"})
    error = fields.String(metadata={"description": "set by a worker, usually when failed"})
    created_at = fields.String()
    updated_at = fields.String()
    forwarding = fields.Nested(ForwardingSchema)


class TaskCreateSchema(Schema):
    """The body of ``POST /api/v1/tasks``."""

    error_messages = {"unknown": "set by the server: send only type and payload"}

    type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    payload = fields.Dict(keys=fields.String(), required=True)


class TaskPatchSchema(Schema):
    """The body of ``PATCH /api/v1/tasks/{id}``: a JSON merge patch moving the status on.

    ``status`` is a plain string here so that an unknown status is refused as a transition
    (409) with the allowed ones, like any other impossible move."""

    error_messages = {"unknown": "cannot be changed: a PATCH sets only status, result and error"}

    status = fields.String(required=True)
    result = fields.Raw(allow_none=True)
    error = fields.String(allow_none=True, validate=validate.Length(max=10_000))


class TaskPageSchema(Schema):
    """One page of tasks: the list envelope every list of the API uses."""

    items = fields.List(fields.Nested(TaskSchema))
    total = fields.Integer(allow_none=True)
    page = fields.Integer(allow_none=True)
    size = fields.Integer()
    pages = fields.Integer(allow_none=True)
    next_cursor = fields.String(allow_none=True)


class TaskListQuerySchema(Schema):
    """The query parameters of ``GET /api/v1/tasks``, for the OpenAPI document."""

    status = fields.String(metadata={"description": "one status"})
    status__in = fields.String(metadata={"description": "comma-separated statuses"})
    type = fields.String(metadata={"description": "one task type"})
    type__in = fields.String(metadata={"description": "comma-separated task types"})
    page = fields.Integer(metadata={"description": "page number, from 1"})
    size = fields.Integer(metadata={"description": "items per page, 1..100 (default 20)"})
    cursor = fields.String(metadata={"description": "opaque cursor from next_cursor"})
    order_by = fields.String(metadata={"description": "created_at or -created_at (default)"})
    fields_ = fields.String(data_key="fields", metadata={"description": "paths to return"})
    count = fields.String(metadata={"description": "exact (default) or none"})


#: Only for the list parser (filters, sort, cursors): never registered, so no CRUD routes.
TASKS = Resource(
    name="tasks",
    schema=TaskSchema,
    title="Tasks",
    description="Work for the scraping orchestrator.",
    filters={"status": ("in",), "type": ("in",)},
    sorts=("created_at",),
    default_order=("-created_at",),
)
#: The forwarder's start-up scan filters on the forwarding state.
INDEX_PATHS = [*TASKS.index_paths, "forwarding.state"]


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    """A fixed-width ISO 8601 UTC timestamp: string order is time order, so the store can sort
    ``created_at`` as text."""
    return moment.isoformat(timespec="microseconds")


def new_task(id: str, task_type: str, payload: dict[str, Any], *, forward: bool) -> dict[str, Any]:
    """A freshly registered task; ``forward`` when an orchestrator is configured."""
    stamp = _stamp(_now())
    return {
        "id": id,
        "type": task_type,
        "payload": payload,
        "status": "pending",
        "created_at": stamp,
        "updated_at": stamp,
        "forwarding": {
            "state": "pending" if forward else "off",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": stamp if forward else None,
        },
    }


async def update_task(
    store: DocumentStore,
    id: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    if_match: str | None = None,
) -> tuple[dict[str, Any], str] | None:
    """Read a task, ``change`` it and write it back with the store's compare-and-set.

    Workers PATCH the status while the forwarder records its attempts: when another write got
    in between, the task is read again and ``change`` re-applied to what is there now, so
    neither write is lost and a transition is always checked against the current status (two
    workers cannot both move one task to running).  With ``if_match`` the client asked for
    one exact version: a different one raises PreconditionFailed at once.  PreconditionFailed
    also ends a storm of :data:`CAS_ROUNDS` lost rounds.  None when there is no such task."""
    for _ in range(CAS_ROUNDS):
        stored = await store.get(TASKS.name, id)
        if stored is None:
            return None
        if if_match is not None and not strong_match(if_match, stored.etag):
            raise PreconditionFailed(id)
        document = change(stored.document)
        etag = etag_of(document)
        try:
            await store.replace(TASKS.name, id, document, etag, if_etag=stored.etag)
        except PreconditionFailed:
            continue
        except NotFound:
            return None
        return document, etag
    raise PreconditionFailed(id)


# -- forwarding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    base: float
    maximum: float

    def delay(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` failed ones: doubling, capped by
        ``maximum`` (which wins over ``base``), with jitter, so the tasks an outage piled up do
        not all retry at the same instant."""
        capped = min(self.maximum, self.base * 2 ** min(failures - 1, 60))
        return capped / 2 + random.uniform(0, capped / 2)


class Forwarder:
    """POSTs pending tasks to the orchestrator, retrying with backoff, from a few background
    workers.  The store is the queue: each attempt re-reads the task and records its outcome
    in ``forwarding``; the in-memory schedule only says when to look again."""

    def __init__(
        self, store: DocumentStore, url: str, timeout: float, backoff: Backoff, workers: int
    ) -> None:
        self._store = store
        self._url = url
        self._timeout = timeout
        self._backoff = backoff
        self._worker_count = workers
        self._due: list[tuple[float, str]] = []  # heap of (loop time due, task id)
        self._wakeup = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, store: DocumentStore, settings: Settings) -> Forwarder:
        backoff = Backoff(
            settings["RESTPLUG_ORCHESTRATOR_RETRY_BASE_MS"] / 1000,
            settings["RESTPLUG_ORCHESTRATOR_RETRY_MAX_MS"] / 1000,
        )
        return cls(
            store,
            settings["RESTPLUG_ORCHESTRATOR_URL"],
            settings["RESTPLUG_ORCHESTRATOR_TIMEOUT_MS"] / 1000,
            backoff,
            settings["RESTPLUG_ORCHESTRATOR_CONCURRENCY"],
        )

    async def start(self) -> None:
        """Schedule every forward a previous run left pending, then start the workers."""
        pending = await self._store.find(
            TASKS.name, FindQuery({"forwarding.state": {"$eq": "pending"}})
        )
        for stored in pending:
            self.schedule(stored.id, _seconds_until(stored.document["forwarding"]))
        if pending:
            log.info("resuming %d pending forwards to the orchestrator", len(pending))
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        self._workers = [
            asyncio.create_task(self._work(), name=f"restplug-task-forwarder-{n}")
            for n in range(self._worker_count)
        ]

    async def stop(self) -> None:
        """Cancel the workers (an interrupted attempt stays pending and is resumed by the next
        start: at least once) and close the HTTP session."""
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._session is not None:
            await self._session.close()

    def schedule(self, id: str, delay: float = 0.0) -> None:
        heapq.heappush(self._due, (asyncio.get_running_loop().time() + delay, id))
        self._wakeup.set()

    async def _next_due(self) -> str:
        loop = asyncio.get_running_loop()
        while True:
            wait = None
            if self._due:
                due, id = self._due[0]
                wait = due - loop.time()
                if wait <= 0:
                    heapq.heappop(self._due)
                    return id
            # Set by schedule(): something new may be due before ``wait`` is over.
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    async def _work(self) -> None:
        while True:
            id = await self._next_due()
            try:
                await self._attempt(id)
            except Exception:
                # The store failed (or kept losing compare-and-set rounds): the task is still
                # pending in the store, so look again later rather than lose the worker.
                log.exception("forwarding task %s failed; retrying later", id)
                self.schedule(id, self._backoff.maximum)

    async def _attempt(self, id: str) -> None:
        stored = await self._store.get(TASKS.name, id)
        if stored is None or stored.document["forwarding"]["state"] != "pending":
            return
        state, error = await self._send(stored.document)
        failures = stored.document["forwarding"]["attempts"] + 1
        delay = self._backoff.delay(failures) if state == "pending" else None

        def record(document: dict[str, Any]) -> dict[str, Any]:
            forwarding = document["forwarding"]
            due = None if delay is None else _stamp(_now() + timedelta(seconds=delay))
            return {
                **document,
                "forwarding": {
                    "state": state,
                    "attempts": forwarding["attempts"] + 1,
                    # Kept after a success: how the forward went stays on record.
                    "last_error": error or forwarding["last_error"],
                    "next_attempt_at": due,
                },
            }

        await update_task(self._store, id, record)
        if delay is not None:
            log.warning("forwarding task %s failed (%s); retry in %.1f s", id, error, delay)
            self.schedule(id, delay)
        elif state == "failed":
            log.error("the orchestrator refused task %s: %s", id, error)

    async def _send(self, task: dict[str, Any]) -> tuple[str, str | None]:
        """POST one task: the forwarding state it leads to, and the error if it failed.  A
        4xx other than 408/425/429 is a refusal of this very task (sending it again cannot
        help); everything else that is not a 2xx is worth retrying."""
        assert self._session is not None, "start() opens the session"
        body = {key: value for key, value in task.items() if key != "forwarding"}
        headers = {"Content-Type": JSON, "Idempotency-Key": task["id"]}
        try:
            async with self._session.post(
                self._url, data=dumps(body), headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return "done", None
                error = f"the orchestrator answered HTTP {response.status}"
                if 400 <= response.status < 500 and response.status not in RETRYABLE_CLIENT_ERRORS:
                    excerpt = (await response.content.read(200)).decode(errors="replace")
                    return "failed", f"{error}: {excerpt}"
                return "pending", error
        except TimeoutError:
            return "pending", f"no answer within {self._timeout * 1000:.0f} ms"
        except aiohttp.ClientError as exc:
            return "pending", f"{type(exc).__name__}: {exc}"


def _seconds_until(forwarding: dict[str, Any]) -> float:
    due = forwarding.get("next_attempt_at")
    if due is None:
        return 0.0
    return max(0.0, (datetime.fromisoformat(due) - _now()).total_seconds())


# One forwarder per started Restplug with an orchestrator (tests run several in one process).
_forwarders: WeakKeyDictionary[Restplug, Forwarder] = WeakKeyDictionary()


async def register_task(
    restplug: Restplug, task_type: str, payload: dict[str, Any], id: str | None = None
) -> tuple[dict[str, Any], str]:
    """Store a new task, then hand it to the forwarder: stored first, so a crash before the
    forward leaves a pending forward to resume.  Raises Conflict when ``id`` is taken."""
    forward = restplug.settings["RESTPLUG_ORCHESTRATOR_URL"] is not None
    document = new_task(id or uuid.uuid4().hex, task_type, payload, forward=forward)
    etag = etag_of(document)
    await restplug.store.insert(TASKS.name, document["id"], document, etag)
    forwarder = _forwarders.get(restplug)
    if forwarder is not None:
        forwarder.schedule(document["id"])
    return document, etag


async def load_demo_tasks(
    restplug: Restplug, count: int, seed: int, *, max_app_id: int = 100
) -> int:
    """Register the demo tasks of :func:`restplug_catalog.demo.generate_tasks`; returns how
    many were new.  Ids derive from the seed, so a re-run adds nothing and leaves the tasks
    already there (whose status may have moved on) alone."""
    loaded = 0
    for index, task in enumerate(generate_tasks(count, seed, max_app_id=max_app_id)):
        try:
            await register_task(restplug, task["type"], task["payload"], f"demo-{seed}-{index}")
        except Conflict:
            continue
        loaded += 1
    return loaded


# -- HTTP -----------------------------------------------------------------------------------


def _load(schema: Schema, body: Any) -> dict[str, Any]:
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise Problem(
            422, "the task is not valid", title="Validation failed", errors=exc.messages
        ) from None


def _transition(patch: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The change a PATCH makes, checked against the status the task has when it is applied."""

    def change(document: dict[str, Any]) -> dict[str, Any]:
        current, wanted = document["status"], patch["status"]
        if wanted not in TRANSITIONS[current]:
            raise Problem(409, _refusal(current, wanted), title="Invalid status transition")
        return {**merge_patch(document, patch), "updated_at": _stamp(_now())}

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

    def __init__(self, restplug: Restplug) -> None:
        self.restplug = restplug
        self.parser = ListParser(restplug, TASKS, [], [])

    def routes(self) -> list[Route]:
        item = f"{TASKS.path}/{{id}}"
        handlers: list[tuple[str, str, Handler, Literal["read", "write"], str]] = [
            ("POST", TASKS.path, self.create, "write", "create"),
            ("GET", TASKS.path, self.list, "read", "list"),
            ("GET", item, self.detail, "read", "detail"),
            ("PATCH", item, self.patch, "write", "patch"),
        ]
        return [
            Route(method, path, handler, action, SCOPE, TASKS.name, OPERATIONS[operation])
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
        # Tasks skip the response cache: the forwarder writes them outside any request.
        page = await list_entry(self.restplug, request, self.parser, parsed)
        return send_entry(request, page, NO_STORE)

    async def detail(self, request: web.Request) -> web.Response:
        if request.query:
            raise Problem(400, f"{next(iter(request.query))}: unknown parameter; allowed: none")
        stored = await self.restplug.store.get(TASKS.name, request.match_info["id"])
        if stored is None:
            raise _not_found(request.match_info["id"])
        return send_entry(request, entry(stored.document, ETag=stored.etag), NO_STORE)

    async def patch(self, request: web.Request) -> web.Response:
        id = request.match_info["id"]
        patch = _load(TaskPatchSchema(), await read_json(request, (MERGE_PATCH, JSON)))
        if_match = request.headers.get("If-Match")
        if if_match is None and self.restplug.settings.require_if_match:
            raise Problem(428, "send If-Match with the ETag of the version you are changing")
        try:
            updated = await update_task(
                self.restplug.store, id, _transition(patch), if_match=if_match
            )
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
        if updated is None:
            raise _not_found(id)
        document, etag = updated
        return json_response(document, headers={"ETag": etag, **NO_STORE})


def _not_found(id: str) -> Problem:
    return Problem(404, f"no task with id {id!r}")


#: The OpenAPI operations (the schema classes become components).
_TASK = {"description": "the task", "content": {"application/json": {"schema": TaskSchema}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}}
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
            "201": _TASK,
            "400": problem_response("malformed JSON"),
            "413": problem_response("body too large"),
            "415": problem_response("not application/json"),
            "422": problem_response("invalid task (per-field messages in errors)"),
        },
    },
    "list": {
        "summary": "List tasks, newest first",
        "tags": _TAGS,
        "parameters": [{"in": "query", "schema": TaskListQuerySchema}],
        "responses": {
            "200": {
                "description": "a page",
                "content": {"application/json": {"schema": TaskPageSchema}},
            },
            "400": problem_response("unknown parameter or bad value"),
            "503": problem_response("the store did not answer in time"),
        },
    },
    "detail": {
        "summary": "Read one task",
        "tags": _TAGS,
        "parameters": [_ID],
        "responses": {
            "200": _TASK,
            "304": {"description": "not modified"},
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
        },
    },
}


# -- hooks ----------------------------------------------------------------------------------


@hookimpl
def register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
def register_routes(restplug: Restplug) -> list[Route]:
    return TaskViews(restplug).routes()


@hookimpl
async def startup(restplug: Restplug) -> None:
    await restplug.store.prepare(TASKS.name, INDEX_PATHS)
    if restplug.settings["RESTPLUG_ORCHESTRATOR_URL"] is None:
        return
    forwarder = Forwarder.from_settings(restplug.store, restplug.settings)
    await forwarder.start()
    _forwarders[restplug] = forwarder


@hookimpl
async def shutdown(restplug: Restplug) -> None:
    forwarder = _forwarders.pop(restplug, None)
    if forwarder is not None:
        await forwarder.stop()
