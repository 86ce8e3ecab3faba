"""The catalogue plugin: the ``apps`` resource, package ingest, price histories and their demo
data."""

from __future__ import annotations

from restplug import ALL_OPERATORS, EQUALITY_OPERATORS, Context, Resource, Route, Scope, hookimpl
from restplug_catalog.demo import generate_apps_ahead
from restplug_catalog.history import history_handler, history_operation, latest_prices
from restplug_catalog.package import PACKAGE_OPERATION, package_handler
from restplug_catalog.schemas import AppReadSchema, AppSchema

LIST = ("in", "not_in")

APPS = Resource(
    name="apps",
    schema=AppSchema,
    title="Apps",
    description="Games and other Steam-like applications, with prices per country.",
    filters={
        "id": ALL_OPERATORS,
        "name": EQUALITY_OPERATORS,
        "type": EQUALITY_OPERATORS,
        "is_free": ("neq",),
        "genres": LIST,
        "categories": LIST,
        "developers": LIST,
        "publishers": LIST,
        "platforms.windows": (),
        "platforms.mac": (),
        "platforms.linux": (),
        "release_date": ALL_OPERATORS,
        "total_recommendations": ALL_OPERATORS,
    },
    sorts=("total_recommendations", "name", "release_date", "id"),
    default_order=("-total_recommendations",),
    search_fields={"name": 4.0, "short_description": 1.0, "developers": 2.0, "publishers": 1.5},
    present=latest_prices("/api/v1/apps"),
    read_schema=AppReadSchema,
    requirements={
        "create": Scope("backend/create"),
        "update": Scope("backend/update"),
        "delete": Scope("backend/delete"),
    },
)


@hookimpl
def register_resources() -> list[Resource]:
    return [APPS]


@hookimpl
def register_routes(restplug: Context) -> list[Route]:
    return [
        Route(
            "POST",
            "/api/v1/package",
            package_handler(restplug, APPS),
            "write",
            Scope("backend/package"),
            "package",
            PACKAGE_OPERATION,
        ),
        Route(
            "GET",
            f"{APPS.path}/{{id}}/prices/{{country}}",
            history_handler(restplug, APPS),
            "read",
            None,
            APPS.name,
            history_operation(APPS),
        ),
    ]


@hookimpl
async def load_demo_data(
    restplug: Context, count: int, seed: int, if_empty: bool
) -> dict[str, int]:
    """``count`` realistic apps (:func:`restplug_catalog.demo.generate_apps`), made in a process
    of their own while they are written."""
    if if_empty and await restplug.collection(APPS.name).count():
        return {APPS.name: 0}
    apps = generate_apps_ahead(count, seed)
    return {APPS.name: await restplug.upsert_all(APPS, apps, total=count, validated=True)}
