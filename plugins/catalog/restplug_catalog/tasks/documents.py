"""Task documents: settings, schemas, the list resource, and compare-and-set updates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields, validate

from restplug import (
    NotFound,
    PreconditionFailed,
    Resource,
    Scope,
    Setting,
    http_url,
    optional,
    positive_int,
)
from restplug.web import strong_match

if TYPE_CHECKING:
    from restplug import Collection

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
#: Reads are the server's to cache (every write renews them): nobody on the way keeps a copy.
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

#: Timestamps are stored as ISO 8601 text (see :func:`timestamp`), declared as date-times.
DATE_TIME = {"format": "date-time"}


class ForwardingSchema(Schema):
    """Where the task stands on its way to the orchestrator."""

    state = fields.String(
        required=True,
        validate=validate.OneOf(FORWARDING_STATES),
        metadata={"description": "off when no orchestrator is configured"},
    )
    attempts = fields.Integer(
        required=True, metadata={"description": "requests made to the orchestrator"}
    )
    last_error = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "why the latest failed attempt failed"},
    )
    next_attempt_at = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "when the next attempt is due (pending only)", **DATE_TIME},
    )


class TaskSchema(Schema):
    """A task for the scraping orchestrator, as stored and returned."""

    id = fields.String(required=True)
    type = fields.String(required=True)
    payload = fields.Dict(keys=fields.String(), required=True)
    status = fields.String(required=True, validate=validate.OneOf(tuple(TRANSITIONS)))
    result = fields.Raw(metadata={"description": "set by a worker, usually when done"})
    error = fields.String(
        allow_none=True, metadata={"description": "set by a worker, usually when failed"}
    )
    created_at = fields.String(required=True, metadata=DATE_TIME)
    updated_at = fields.String(required=True, metadata=DATE_TIME)
    forwarding = fields.Nested(ForwardingSchema, required=True)


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


#: Registered without the core's routes: no client chooses an id, there is no PUT or DELETE,
#: and a status change is a transition (see ``views``).  The forwarder's start-up scan filters
#: on the forwarding state, hence its index.
TASKS = Resource(
    name="tasks",
    schema=TaskSchema,
    title="Tasks",
    description="Work for the scraping orchestrator.",
    filters={"status": ("in",), "type": ("in",)},
    sorts=("created_at",),
    default_order=("-created_at",),
    indexes=("forwarding.state",),
    default_routes=False,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """A fixed-width ISO 8601 UTC timestamp: string order is time order, so the store can sort
    ``created_at`` as text."""
    return moment.isoformat(timespec="microseconds")


def new_task(id: str, task_type: str, payload: dict[str, Any], *, forward: bool) -> dict[str, Any]:
    """A freshly registered task; ``forward`` when an orchestrator is configured."""
    stamp = timestamp(utc_now())
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
    tasks: Collection,
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
        stored = await tasks.get(id)
        if stored is None:
            return None
        if if_match is not None and not strong_match(if_match, stored.etag):
            raise PreconditionFailed(id)
        document = change(stored.document)
        try:
            etag = await tasks.replace(id, document, if_etag=stored.etag)
        except PreconditionFailed:
            continue
        except NotFound:
            return None
        return document, etag
    raise PreconditionFailed(id)
