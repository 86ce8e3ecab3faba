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

from typing import TYPE_CHECKING

from restplug import Route, Setting, hookimpl
from restplug_catalog.tasks.documents import INDEX_PATHS, SETTINGS, TASKS
from restplug_catalog.tasks.forwarding import FORWARDERS, Forwarder, load_demo_tasks
from restplug_catalog.tasks.views import TaskViews

if TYPE_CHECKING:
    from restplug import Context

# -- hooks ----------------------------------------------------------------------------------


@hookimpl
def register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
def register_routes(restplug: Context) -> list[Route]:
    return TaskViews(restplug).routes()


@hookimpl
async def startup(restplug: Context) -> None:
    await restplug.store.prepare(TASKS.name, INDEX_PATHS)
    if restplug.settings["RESTPLUG_ORCHESTRATOR_URL"] is None:
        return
    forwarder = Forwarder.from_settings(restplug.store, restplug.settings)
    await forwarder.start()
    FORWARDERS[restplug] = forwarder


@hookimpl
async def shutdown(restplug: Context) -> None:
    forwarder = FORWARDERS.pop(restplug, None)
    if forwarder is not None:
        await forwarder.stop()


__all__ = ["load_demo_tasks"]
