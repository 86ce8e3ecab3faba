"""Tasks for the scraping orchestrator (plugin ``catalog_tasks``): ``/api/v1/tasks``.

A task is work a client registers (``{"type", "payload"}``) and workers move along
``pending -> running -> done | failed``.  Every route needs the scope ``backend/tasks``.

Registered tasks are written to the store *first*, then forwarded in the background to
``RESTPLUG_ORCHESTRATOR_URL``: the client's 201 never waits on the orchestrator, and an outage
of the orchestrator loses nothing.  The forwarding state lives in the task document itself
(``forwarding``), so it is visible to clients and a restarted server resumes every pending
forward from the store.  Delivery is at least once: the orchestrator dedupes by task id, which
each request also carries as ``Idempotency-Key``.

Tasks are a registered resource without the core's generic routes (``default_routes=False``:
no client chooses an id, no PUT or DELETE, status changes are transitions); this plugin serves
its own.  Every write, the forwarder's bookkeeping included, goes through
``restplug.collection("tasks")``, so reads are cached like the apps' and renewed by each change,
and ``documents_changed`` tells every plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from restplug import Resource, Route, Setting, hookimpl
from restplug_catalog.tasks.documents import SETTINGS, TASKS
from restplug_catalog.tasks.forwarding import FORWARDERS, Forwarder, load_demo_tasks
from restplug_catalog.tasks.views import TaskViews

if TYPE_CHECKING:
    from restplug import Context

#: How many tasks ``restplug demo-data`` registers.
DEMO_TASKS = 20

# -- hooks ----------------------------------------------------------------------------------


@hookimpl
def register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
def register_resources() -> list[Resource]:
    return [TASKS]


@hookimpl
def register_routes(restplug: Context) -> list[Route]:
    return TaskViews(restplug).routes()


@hookimpl
async def load_demo_data(
    restplug: Context, count: int, seed: int, if_empty: bool
) -> dict[str, int]:
    """:data:`DEMO_TASKS` tasks for the demo apps 1 to ``count``."""
    if if_empty and await restplug.collection(TASKS.name).count():
        return {TASKS.name: 0}
    loaded = await load_demo_tasks(restplug, DEMO_TASKS, seed, max_app_id=max(count, 1))
    return {TASKS.name: loaded}


@hookimpl
async def startup(restplug: Context) -> None:
    if restplug.settings["RESTPLUG_ORCHESTRATOR_URL"] is None:
        return
    forwarder = Forwarder.from_settings(restplug.collection(TASKS.name), restplug.settings)
    await forwarder.start()
    FORWARDERS[restplug] = forwarder


@hookimpl
async def shutdown(restplug: Context) -> None:
    forwarder = FORWARDERS.pop(restplug, None)
    if forwarder is not None:
        await forwarder.stop()


__all__ = ["load_demo_tasks"]
